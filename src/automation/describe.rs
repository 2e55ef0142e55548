//! One line per step, as `automation show` prints it.

use super::definition::{
    Action, Change, DateField, Definition, EntryRule, EventMatch, Next, Step, Trigger,
};

/// `an event: cart_add in shoes`, `entering the segment last(purchase) > 120d ago`, ...
pub fn describe_trigger(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Event(event) => format!("an event: {}", event_text(event)),
        Trigger::RecipientCreated => "a recipient is created".into(),
        Trigger::Subscribed { topic } => format!("a subscription to {topic}"),
        Trigger::EntersSegment { expression } => format!("entering the segment {expression}"),
        Trigger::Date { field, at } => {
            let field = match field {
                DateField::Attribute(path) => format!("attr.{path}"),
                DateField::CreatedAt => "created_at".into(),
            };
            format!(
                "{field} comes round, at {:02}:{:02} local time",
                at.hour, at.minute
            )
        }
    }
}

/// `once`, `once per 7d`, `every time`.
pub fn describe_entry(entry: &EntryRule) -> String {
    match entry {
        EntryRule::Once => "once".into(),
        EntryRule::OncePer { seconds } => format!("once per {}", duration(*seconds)),
        EntryRule::EveryTime => "every time".into(),
    }
}

/// `3. reminder: send abandoned-cart (marketing), then step 4 (wait-a-day)`.
pub fn describe_step(definition: &Definition, index: usize, step: &Step) -> String {
    let to = |next: &Next| target(definition, next);
    let what = match &step.action {
        Action::Wait { seconds, next } => format!("wait {}, then {}", duration(*seconds), to(next)),
        Action::WaitUntil { at, next } => format!(
            "wait until {:02}:{:02} local time, then {}",
            at.hour,
            at.minute,
            to(next)
        ),
        Action::WaitFor {
            event,
            timeout_seconds,
            on_event,
            on_timeout,
        } => format!(
            "wait up to {} for {}: when it comes {}, else {}",
            duration(*timeout_seconds),
            event_text(event),
            to(on_event),
            to(on_timeout)
        ),
        Action::If {
            condition,
            then,
            otherwise,
        } => format!("if {condition}: {}, else {}", to(then), to(otherwise)),
        Action::Split { branches } => {
            let parts: Vec<String> = branches
                .iter()
                .map(|(weight, next)| format!("{weight} → {}", to(next)))
                .collect();
            format!("split {}", parts.join(", "))
        }
        Action::Send {
            template,
            kind,
            topic,
            next,
            ..
        } => {
            let topic = topic
                .as_ref()
                .map(|t| format!(", topic {t}"))
                .unwrap_or_default();
            format!("send {template} ({kind}{topic}), then {}", to(next))
        }
        Action::Update { change, next } => {
            let change = match change {
                Change::Attribute { path, value } => format!("set attr.{path} = {value}"),
                Change::Subscribe(topic) => format!("subscribe to {topic}"),
                Change::Unsubscribe(topic) => format!("unsubscribe from {topic}"),
            };
            format!("{change}, then {}", to(next))
        }
        Action::Exit => "exit".to_string(),
    };
    format!("{}. {}: {what}", index + 1, step.id)
}

fn target(definition: &Definition, next: &Next) -> String {
    match next {
        Next::Exit => "exit".into(),
        Next::Step(index) => match definition.steps.get(*index) {
            Some(step) => format!("step {} ({})", index + 1, step.id),
            None => format!("step {}", index + 1),
        },
    }
}

pub fn event_text(event: &EventMatch) -> String {
    let mut text = event.kind.clone();
    if let Some(sku) = &event.sku {
        text.push_str(&format!(" of sku {sku}"));
    }
    if let Some(category) = &event.category {
        text.push_str(&format!(" in {category}"));
    }
    if let Some(cents) = event.min_amount_cents {
        text.push_str(&format!(" of at least {}.{:02}", cents / 100, cents % 100));
    }
    text
}

/// `4h`, `7d`, `90min`: the largest unit that divides it (days at most).
pub fn duration(seconds: i64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("min", 60)] {
        if seconds >= size && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}
