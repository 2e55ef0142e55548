//! `events` rows: parsed on their own, then resolved a batch at a time (recipient
//! and product ids, one query each) into [`NewEvent`]s.

use serde_json::{Map, Value};

use super::error::{FieldError, RowError};
use super::fields::{self, FieldResult, required};
use super::reader::Record;
use crate::domain::EmailAddress;
use crate::store::{NewEvent, Store, StoreError};

pub(crate) const REQUIRED: &[&str] = &["email", "kind", "occurred_at"];

/// An event row whose recipient and product are still named, not resolved.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub line: u64,
    pub email: EmailAddress,
    pub sku: Option<String>,
    pub external_id: Option<String>,
    pub kind: String,
    pub amount_cents: Option<i64>,
    pub occurred_at: i64,
    pub properties: Map<String, Value>,
}

pub(crate) fn parse(record: &Record<'_>) -> FieldResult<PendingEvent> {
    Ok(PendingEvent {
        line: record.line,
        external_id: fields::optional_text(record, "event_id")?,
        email: fields::email(record, "email")?,
        kind: required("kind", fields::word(record, "kind")?)?,
        sku: fields::optional_text(record, "sku")?,
        amount_cents: fields::cents(record, "amount", 2)?,
        occurred_at: required("occurred_at", fields::timestamp(record, "occurred_at")?)?,
        properties: fields::json_object(record, "properties")?,
    })
}

/// The batch's events with ids filled in, and the rows naming a recipient or
/// product the store does not hold.
pub(crate) async fn resolve(
    store: &Store,
    batch: Vec<PendingEvent>,
) -> Result<(Vec<NewEvent>, Vec<RowError>), StoreError> {
    let keys: Vec<String> = batch.iter().map(|e| e.email.key()).collect();
    let mut key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    key_refs.sort_unstable();
    key_refs.dedup();
    let mut skus: Vec<&str> = batch.iter().filter_map(|e| e.sku.as_deref()).collect();
    skus.sort_unstable();
    skus.dedup();
    let recipients = store.recipient_ids(&key_refs).await?;
    let products = store.product_ids(&skus).await?;
    let (mut events, mut rejected) = (Vec::with_capacity(batch.len()), Vec::new());
    for (event, key) in batch.into_iter().zip(&keys) {
        let Some(&recipient_id) = recipients.get(key) else {
            let reason = format!("unknown recipient '{}'", event.email);
            rejected.push(FieldError::new("email", reason).at(event.line));
            continue;
        };
        let product_id = match &event.sku {
            None => None,
            Some(sku) => match products.get(sku.as_str()) {
                Some(&id) => Some(id),
                None => {
                    let reason = format!("unknown product '{sku}'");
                    rejected.push(FieldError::new("sku", reason).at(event.line));
                    continue;
                }
            },
        };
        events.push(new_event(event, recipient_id, product_id));
    }
    Ok((events, rejected))
}

fn new_event(event: PendingEvent, recipient_id: i64, product_id: Option<i64>) -> NewEvent {
    NewEvent {
        external_id: event.external_id,
        recipient_id,
        kind: event.kind,
        product_id,
        amount_cents: event.amount_cents,
        occurred_at: event.occurred_at,
        properties: event.properties,
    }
}
