//! A checked automation: what [`super::parse`] returns and what is stored as JSON.

use std::collections::BTreeMap;

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use crate::domain::CampaignKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    pub description: String,
    pub sender: Sender,
    pub trigger: Trigger,
    pub entry: EntryRule,
    /// Reaching it (an event of this kind) takes a person out of the automation.
    pub goal: Option<EventMatch>,
    pub steps: Vec<Step>,
}

/// The `from` table. `name` is empty when not given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    pub email: String,
    pub name: String,
    pub reply_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Event(EventMatch),
    RecipientCreated,
    Subscribed {
        topic: String,
    },
    /// Segment language text, checked at parse time.
    EntersSegment {
        expression: String,
    },
    /// The anniversary of a date: each year when its month and day come round, at a
    /// local time in the recipient's zone.
    Date {
        field: DateField,
        at: LocalTime,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateField {
    /// The attribute path after `attr.`, dotted for nested objects.
    Attribute(String),
    CreatedAt,
}

/// A wall time, `HH:MM`, taken in the recipient's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalTime {
    pub hour: u32,
    pub minute: u32,
}

impl LocalTime {
    pub fn naive(&self) -> NaiveTime {
        NaiveTime::from_hms_opt(self.hour, self.minute, 0).expect("checked when parsed")
    }
}

/// An event of `kind`, optionally only for a product's sku or category, or at least
/// an amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMatch {
    pub kind: String,
    pub sku: Option<String>,
    pub category: Option<String>,
    pub min_amount_cents: Option<i64>,
}

impl EventMatch {
    /// Whether an event with these values matches. A filter on a value the event does
    /// not have does not match.
    pub fn matches(
        &self,
        kind: &str,
        sku: Option<&str>,
        category: Option<&str>,
        amount_cents: Option<i64>,
    ) -> bool {
        let same = |wanted: &Option<String>, got: Option<&str>| {
            wanted.as_deref().is_none_or(|w| got == Some(w))
        };
        self.kind == kind
            && same(&self.sku, sku)
            && same(&self.category, category)
            && self
                .min_amount_cents
                .is_none_or(|min| amount_cents.is_some_and(|a| a >= min))
    }
}

/// Whether a person who already went through the automation may enter it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryRule {
    Once,
    /// Again once this long has passed since the last entry.
    OncePer {
        seconds: i64,
    },
    EveryTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// As given, or `step-N` (N from 1).
    pub id: String,
    pub action: Action,
}

/// Where a person goes after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// An index into [`Definition::steps`].
    Step(usize),
    Exit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Wait {
        seconds: i64,
        next: Next,
    },
    /// Until the next time the local time is `at`.
    WaitUntil {
        at: LocalTime,
        next: Next,
    },
    WaitFor {
        event: EventMatch,
        timeout_seconds: i64,
        on_event: Next,
        on_timeout: Next,
    },
    If {
        /// Segment language text.
        condition: String,
        then: Next,
        otherwise: Next,
    },
    /// A random branch, chosen in proportion to the weights.
    Split {
        branches: Vec<(u32, Next)>,
    },
    Send {
        template: String,
        kind: CampaignKind,
        topic: Option<String>,
        utm: BTreeMap<String, String>,
        data: serde_json::Map<String, serde_json::Value>,
        next: Next,
    },
    Update {
        change: Change,
        next: Next,
    },
    Exit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Sets the attribute at a dotted path.
    Attribute {
        path: String,
        value: serde_json::Value,
    },
    Subscribe(String),
    Unsubscribe(String),
}

impl Step {
    /// The action's key in the TOML file.
    pub fn kind_name(&self) -> &'static str {
        match self.action {
            Action::Wait { .. } => "wait",
            Action::WaitUntil { .. } => "wait_until",
            Action::WaitFor { .. } => "wait_for",
            Action::If { .. } => "if",
            Action::Split { .. } => "split",
            Action::Send { .. } => "send",
            Action::Update { .. } => "update",
            Action::Exit => "exit",
        }
    }
}

impl Definition {
    /// The send steps with their indices.
    pub fn sends(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, step)| matches!(step.action, Action::Send { .. }))
    }
}
