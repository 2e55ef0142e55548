//! Loading a definition: parsed, checked against what the store holds, and stored as
//! a new version only when all of it is right.

use std::collections::BTreeSet;

use serde::Serialize;

use super::AutomationError;
use super::definition::{self, Known};
use crate::store::Store;

/// Event kinds an automation may name before any such event is stored.
pub const STANDARD_EVENT_KINDS: [&str; 3] = ["cart_add", "purchase", "view"];

#[derive(Debug, Clone, Serialize)]
pub struct LoadOutcome {
    pub name: String,
    pub version: i64,
    /// False when the file was the same as the current version.
    pub changed: bool,
    pub steps: usize,
}

/// Parses and checks `source`, then stores it as the automation's newest version.
/// Nothing is stored when any part is wrong; the error lists every problem.
pub async fn load_automation(store: &Store, source: &str) -> Result<LoadOutcome, AutomationError> {
    let parsed = definition::parse(source)?;
    definition::check(&parsed, &known_names(store).await?)?;
    let json = serde_json::to_string(&parsed).expect("a definition serialises");
    let saved = store.save_automation(&parsed.name, &json, source).await?;
    Ok(LoadOutcome {
        name: parsed.name,
        version: saved.version,
        changed: saved.changed,
        steps: parsed.steps.len(),
    })
}

/// The names a definition may refer to: event kinds, templates, topics, segments.
pub async fn known_names(store: &Store) -> Result<Known, AutomationError> {
    let mut event_kinds: BTreeSet<String> = store.event_kinds().await?.into_iter().collect();
    event_kinds.extend(STANDARD_EVENT_KINDS.iter().map(|k| k.to_string()));
    Ok(Known {
        event_kinds,
        templates: store.template_names().await?.into_iter().collect(),
        topics: store.topic_names().await?.into_iter().collect(),
        segments: store
            .segments()
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect(),
    })
}
