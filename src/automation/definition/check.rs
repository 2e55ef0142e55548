//! A parsed definition against what the store holds.

use std::collections::BTreeSet;

use super::error::{DefinitionErrors, Problems};
use super::suggest;
use super::types::{Action, Change, Definition, Trigger};
use crate::segment;

/// The names a definition may refer to, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub event_kinds: BTreeSet<String>,
    pub templates: BTreeSet<String>,
    pub topics: BTreeSet<String>,
    pub segments: BTreeSet<String>,
}

/// Checks that every event kind, template, topic and segment `def` names is known,
/// reporting every one that is not.
pub fn check(def: &Definition, known: &Known) -> Result<(), DefinitionErrors> {
    let mut checker = Checker {
        known,
        problems: Problems::default(),
    };
    checker.trigger(&def.trigger);
    if let Some(goal) = &def.goal {
        checker.name(None, "goal.event", Name::EventKind, &goal.kind);
    }
    for (index, step) in def.steps.iter().enumerate() {
        checker.action(index, &step.action);
    }
    checker.problems.finish(Some(()))
}

#[derive(Clone, Copy)]
enum Name {
    EventKind,
    Template,
    Topic,
    Segment,
}

struct Checker<'a> {
    known: &'a Known,
    problems: Problems,
}

impl Checker<'_> {
    fn trigger(&mut self, trigger: &Trigger) {
        match trigger {
            Trigger::Event(event) => self.name(None, "trigger.event", Name::EventKind, &event.kind),
            Trigger::Subscribed { topic } => {
                self.name(None, "trigger.subscribed", Name::Topic, topic)
            }
            Trigger::EntersSegment { expression } => {
                self.segments(None, "trigger.enters_segment", expression)
            }
            Trigger::RecipientCreated | Trigger::Date { .. } => {}
        }
    }

    fn action(&mut self, index: usize, action: &Action) {
        let step = Some(index);
        match action {
            Action::WaitFor { event, .. } => {
                self.name(step, "wait_for", Name::EventKind, &event.kind)
            }
            Action::If { condition, .. } => self.segments(step, "if", condition),
            Action::Send {
                template, topic, ..
            } => {
                self.name(step, "send", Name::Template, template);
                if let Some(topic) = topic {
                    self.name(step, "send", Name::Topic, topic);
                }
            }
            Action::Update {
                change: Change::Subscribe(topic) | Change::Unsubscribe(topic),
                ..
            } => self.name(step, "update", Name::Topic, topic),
            _ => {}
        }
    }

    fn segments(&mut self, step: Option<usize>, field: &str, expression: &str) {
        match segment::parse(expression) {
            Ok(expr) => {
                for name in segment::references(&expr) {
                    self.name(step, field, Name::Segment, &name);
                }
            }
            Err(e) => self.problems.add(step, field, format!("at {e}")),
        }
    }

    /// Reports `name` unless it is known.
    fn name(&mut self, step: Option<usize>, field: &str, what: Name, name: &str) {
        let (known, what) = match what {
            Name::EventKind => (&self.known.event_kinds, "event kind"),
            Name::Template => (&self.known.templates, "template"),
            Name::Topic => (&self.known.topics, "topic"),
            Name::Segment => (&self.known.segments, "segment"),
        };
        if !known.contains(name) {
            let hint = suggest::hint(name, known);
            self.problems
                .add(step, field, format!("unknown {what} `{name}`{hint}"));
        }
    }
}
