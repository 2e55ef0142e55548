//! Reading a definition: syntax, shape, and every rule that needs no store.

use serde::Deserialize;
use toml::Spanned;
use toml::Value;
use toml::de::{DeTable, Deserializer};

use super::error::{DefinitionError, DefinitionErrors, Place, Problems};
use super::raw::{self, RawDefinition, RawEvent, RawSender, RawTrigger};
use super::types::{DateField, Definition, EntryRule, EventMatch, Sender, Trigger};
use super::{steps, units};
use crate::domain::EmailAddress;
use crate::segment;

/// Reads a definition from its TOML text, reporting every problem found. A syntax
/// error is reported alone, with its line and column.
pub fn parse(text: &str) -> Result<Definition, DefinitionErrors> {
    let document = DeTable::parse(text).map_err(|e| syntax(text, &e))?;
    let mut p = Problems::default();
    let Some(raw) = top_level(text, document, &mut p) else {
        return p.finish(None);
    };
    let name = present(&mut p, "name", raw.name)
        .and_then(|v| p.take(None, "name", string(v).and_then(|n| units::name(&n))));
    let description = raw
        .description
        .and_then(|v| p.take(None, "description", string(v)));
    let sender = present(&mut p, "from", raw.from).and_then(|v| sender(&mut p, v));
    let entry = raw
        .entry
        .and_then(|v| p.take(None, "entry", string(v).and_then(|e| units::entry_rule(&e))));
    let trigger = present(&mut p, "trigger", raw.trigger).and_then(|v| trigger(&mut p, v));
    let goal = raw.goal.and_then(|v| goal(&mut p, v));
    if let (Some(Trigger::Event(started)), Some(goal)) = (&trigger, &goal) {
        same_kind(&mut p, started, goal);
    }
    let steps = step_list(&mut p, raw.step);
    let (Some(name), Some(sender), Some(trigger), Some(steps)) = (name, sender, trigger, steps)
    else {
        return p.finish(None);
    };
    p.finish(Some(Definition {
        name,
        description: description.unwrap_or_default(),
        sender,
        trigger,
        entry: entry.unwrap_or(EntryRule::Once),
        goal,
        steps,
    }))
}

/// The top-level keys. Each unknown key is reported at its line and column, in the
/// order of the file, and left out so that the rest is still read.
fn top_level(
    text: &str,
    mut document: Spanned<DeTable>,
    p: &mut Problems,
) -> Option<RawDefinition> {
    let mut unknown = Vec::new();
    let raw = loop {
        let error = match RawDefinition::deserialize(Deserializer::from(document.clone())) {
            Ok(raw) => break Some(raw),
            Err(error) => error,
        };
        let span = error.span();
        let key = document.get_ref().keys().find(|k| Some(k.span()) == span);
        let key = key.cloned();
        unknown.push(error);
        match key {
            Some(key) => {
                document.get_mut().remove(&key);
            }
            None => break None,
        }
    };
    unknown.sort_by_key(|e| e.span().map(|s| s.start));
    for error in &unknown {
        p.add(None, "", located(text, error));
    }
    raw
}

fn syntax(text: &str, error: &toml::de::Error) -> DefinitionErrors {
    DefinitionErrors(vec![DefinitionError {
        step: None,
        field: String::new(),
        message: located(text, error),
    }])
}

/// `line 7, column 3: …`
fn located(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let (line, column) = position(text, span.start);
            format!("line {line}, column {column}: {}", error.message())
        }
        None => error.message().to_string(),
    }
}

/// Line and column (in characters), both from 1, of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

fn present(p: &mut Problems, key: &str, value: Option<Value>) -> Option<Value> {
    if value.is_none() {
        p.add(None, key, "missing");
    }
    value
}

fn string(value: Value) -> Result<String, String> {
    raw::value(value)
}

/// Refuses empty text; the message follows the key's name.
pub(super) fn non_empty(text: String) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("is empty".into())
    } else {
        Ok(text)
    }
}

fn sender(p: &mut Problems, value: Value) -> Option<Sender> {
    let place = Place {
        step: None,
        table: "from",
    };
    let raw: RawSender = p.take(None, "from", raw::table(value))?;
    let email = place.take(p, "email", address(&raw.email));
    let reply_to = raw.reply_to.map(|r| place.take(p, "reply_to", address(&r)));
    Some(Sender {
        email: email?,
        name: raw.name.unwrap_or_default(),
        reply_to: match reply_to {
            Some(None) => return None,
            other => other.flatten(),
        },
    })
}

fn address(text: &str) -> Result<String, String> {
    EmailAddress::parse(text)
        .map(|a| a.as_str().to_string())
        .map_err(|e| e.to_string())
}

fn trigger(p: &mut Problems, value: Value) -> Option<Trigger> {
    let place = Place {
        step: None,
        table: "trigger",
    };
    let raw: RawTrigger = p.take(None, "trigger", raw::table(value))?;
    if !one_trigger(p, &raw) {
        return None;
    }
    if raw.event.is_none() {
        let filters = [
            ("sku", raw.sku.is_some()),
            ("category", raw.category.is_some()),
            ("min_amount", raw.min_amount.is_some()),
        ];
        for (key, _) in filters.iter().filter(|f| f.1) {
            place.add(p, key, "filters events: only an `event` trigger takes it");
        }
    }
    if raw.date.is_none() && raw.at.is_some() {
        place.add(p, "at", "only a `date` trigger takes it");
    }
    trigger_kind(p, place, raw)
}

/// Whether exactly one kind of trigger is given; reports it when not.
fn one_trigger(p: &mut Problems, raw: &RawTrigger) -> bool {
    let kinds = [
        ("event", raw.event.is_some()),
        ("recipient_created", raw.recipient_created.is_some()),
        ("subscribed", raw.subscribed.is_some()),
        ("enters_segment", raw.enters_segment.is_some()),
        ("date", raw.date.is_some()),
    ];
    let given: Vec<String> = kinds
        .iter()
        .filter(|k| k.1)
        .map(|k| format!("`{}`", k.0))
        .collect();
    if given.len() == 1 {
        return true;
    }
    let found = if given.is_empty() {
        "none".to_string()
    } else {
        given.join(", ")
    };
    p.add(
        None,
        "trigger",
        format!(
            "needs exactly one of `event`, `recipient_created`, `subscribed`, \
             `enters_segment` or `date` (found {found})"
        ),
    );
    false
}

fn trigger_kind(p: &mut Problems, place: Place, raw: RawTrigger) -> Option<Trigger> {
    if let Some(event) = raw.event {
        let raw = RawEvent {
            event,
            sku: raw.sku,
            category: raw.category,
            min_amount: raw.min_amount,
        };
        return event_match(p, place, raw).map(Trigger::Event);
    }
    if let Some(created) = raw.recipient_created {
        if !created {
            place.add(p, "recipient_created", "can only be true");
        }
        return Some(Trigger::RecipientCreated);
    }
    if let Some(topic) = raw.subscribed {
        let topic = place.take(p, "subscribed", non_empty(topic))?;
        return Some(Trigger::Subscribed { topic });
    }
    if let Some(expression) = raw.enters_segment {
        place.take(p, "enters_segment", condition(&expression))?;
        return Some(Trigger::EntersSegment { expression });
    }
    let field = place.take(p, "date", date_field(raw.date.as_deref().unwrap_or("")));
    let at = match raw.at {
        Some(at) => place.take(p, "at", units::local_time(&at)),
        None => place.take(
            p,
            "at",
            Err(
                "missing: a `date` trigger needs the local time to start at, such as \"09:00\""
                    .into(),
            ),
        ),
    };
    Some(Trigger::Date {
        field: field?,
        at: at?,
    })
}

fn date_field(text: &str) -> Result<DateField, String> {
    if text == "created_at" {
        return Ok(DateField::CreatedAt);
    }
    let wrong = || format!("`{text}` is not a date field: write \"created_at\" or \"attr.NAME\"");
    let path = text.strip_prefix("attr.").ok_or_else(wrong)?;
    units::attribute_path(path).map(DateField::Attribute)
}

/// Parses segment language text and checks its types. `segment("name")` references
/// are left for [`super::check`].
pub(super) fn condition(text: &str) -> Result<segment::Expr, String> {
    let expr = segment::parse(text).map_err(|e| format!("at {e}"))?;
    segment::check_expr(&expr).map_err(|e| e.to_string())?;
    Ok(expr)
}

fn goal(p: &mut Problems, value: Value) -> Option<EventMatch> {
    let raw: RawEvent = p.take(None, "goal", raw::table(value))?;
    let place = Place {
        step: None,
        table: "goal",
    };
    event_match(p, place, raw)
}

fn same_kind(p: &mut Problems, trigger: &EventMatch, goal: &EventMatch) {
    if trigger.kind == goal.kind {
        let message = format!(
            "`{}` is also the trigger's event; the goal must be another kind of event",
            goal.kind
        );
        p.add(None, "goal.event", message);
    }
}

/// An event kind and its filters, with `min_amount` (currency units) in cents.
pub(super) fn event_match(p: &mut Problems, place: Place, raw: RawEvent) -> Option<EventMatch> {
    let kind = place.take(p, "event", non_empty(raw.event));
    let min_amount_cents = raw
        .min_amount
        .map(|units| place.take(p, "min_amount", cents(units)));
    Some(EventMatch {
        kind: kind?,
        sku: raw.sku,
        category: raw.category,
        min_amount_cents: match min_amount_cents {
            Some(None) => return None,
            other => other.flatten(),
        },
    })
}

fn cents(units: f64) -> Result<i64, String> {
    if !(0.0..=1e13).contains(&units) {
        return Err(format!(
            "`{units}` is not an amount: write currency units, 0 or more, such as 49.99"
        ));
    }
    let cents = units * 100.0;
    if (cents - cents.round()).abs() > 1e-6 {
        return Err(format!("`{units}` has more than two decimals"));
    }
    Ok(cents.round() as i64)
}

fn step_list(p: &mut Problems, value: Option<Value>) -> Option<Vec<super::types::Step>> {
    match value {
        Some(Value::Array(tables)) if !tables.is_empty() => steps::read(p, tables),
        Some(Value::Array(_)) | None => {
            p.add(
                None,
                "step",
                "no steps: an automation needs at least one [[step]]",
            );
            None
        }
        Some(_) => {
            p.add(None, "step", "write each step as a [[step]] table");
            None
        }
    }
}
