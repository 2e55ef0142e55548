//! A batch may name one recipient several times. Applying its rows one after the
//! other is the same as applying one row merged from them in order, and a set-based
//! upsert can touch each row only once (PostgreSQL refuses more), so rows are merged
//! here first.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::NewRecipient;

/// One consent an import grants; the first row naming a (recipient, topic) pair
/// sets its source, as a later one would find the consent already there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsentGrant {
    pub email_key: String,
    pub topic: String,
    pub source: String,
}

/// A batch with one row per email key, in the order each key first appears.
#[derive(Debug)]
pub(crate) struct MergedBatch {
    pub keys: Vec<String>,
    pub recipients: Vec<NewRecipient>,
    pub consents: Vec<ConsentGrant>,
}

pub(crate) fn merge_by_email(batch: &[NewRecipient]) -> MergedBatch {
    let mut position: HashMap<String, usize> = HashMap::with_capacity(batch.len());
    let mut merged = MergedBatch {
        keys: Vec::with_capacity(batch.len()),
        recipients: Vec::with_capacity(batch.len()),
        consents: Vec::new(),
    };
    let mut granted = std::collections::HashSet::new();
    for row in batch {
        let key = row.email.key();
        for topic in &row.topics {
            if granted.insert((key.clone(), topic.clone())) {
                merged.consents.push(ConsentGrant {
                    email_key: key.clone(),
                    topic: topic.clone(),
                    source: row.consent_source.clone(),
                });
            }
        }
        match position.entry(key) {
            Entry::Occupied(at) => apply(&mut merged.recipients[*at.get()], row),
            Entry::Vacant(slot) => {
                merged.keys.push(slot.key().clone());
                slot.insert(merged.recipients.len());
                merged.recipients.push(row.clone());
            }
        }
    }
    merged
}

/// What the store's upsert does to a held row, done to the earlier row: given fields
/// replace, attributes replace key by key. `created_at` stays the first row's, as it
/// is only ever written by the insert.
fn apply(earlier: &mut NewRecipient, later: &NewRecipient) {
    earlier.email = later.email.clone();
    let fields = [
        (&mut earlier.first_name, &later.first_name),
        (&mut earlier.last_name, &later.last_name),
        (&mut earlier.country, &later.country),
        (&mut earlier.city, &later.city),
        (&mut earlier.locale, &later.locale),
        (&mut earlier.timezone, &later.timezone),
    ];
    for (field, given) in fields {
        if given.is_some() {
            field.clone_from(given);
        }
    }
    for (name, value) in &later.attributes {
        earlier.attributes.insert(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::EmailAddress;

    fn row(email: &str, first_name: Option<&str>, attributes: serde_json::Value) -> NewRecipient {
        NewRecipient {
            email: EmailAddress::parse(email).unwrap(),
            first_name: first_name.map(str::to_string),
            last_name: None,
            country: None,
            city: None,
            locale: None,
            timezone: None,
            attributes: attributes.as_object().unwrap().clone(),
            created_at: None,
            topics: vec![],
            consent_source: "import".into(),
        }
    }

    #[test]
    fn a_repeated_address_becomes_one_row_where_later_given_values_win() {
        let mut first = row(
            "Ada@example.com",
            Some("Ada"),
            json!({"a": 1, "o": {"x": 1}}),
        );
        first.created_at = Some(5);
        let mut second = row("ada@EXAMPLE.com", None, json!({"o": {"y": 2}, "b": null}));
        second.created_at = Some(9);
        let other = row("bob@example.com", Some("Bob"), json!({}));
        let merged = merge_by_email(&[first, other, second]);
        assert_eq!(merged.keys, ["ada@example.com", "bob@example.com"]);
        let ada = &merged.recipients[0];
        let later = EmailAddress::parse("ada@EXAMPLE.com").unwrap();
        assert_eq!(ada.email.as_str(), later.as_str(), "the later spelling");
        assert_eq!(
            ada.first_name.as_deref(),
            Some("Ada"),
            "kept: not given later"
        );
        assert_eq!(ada.created_at, Some(5), "the inserting row's");
        let attributes = serde_json::Value::Object(ada.attributes.clone());
        assert_eq!(attributes, json!({"a": 1, "o": {"y": 2}, "b": null}));
    }

    #[test]
    fn the_first_row_granting_a_topic_names_its_source() {
        let mut first = row("ada@example.com", None, json!({}));
        first.topics = vec!["news".into()];
        first.consent_source = "shop".into();
        let mut second = first.clone();
        second.topics = vec!["news".into(), "sales".into()];
        second.consent_source = "crm".into();
        let merged = merge_by_email(&[first, second]);
        let granted: Vec<(&str, &str)> = merged
            .consents
            .iter()
            .map(|c| (c.topic.as_str(), c.source.as_str()))
            .collect();
        assert_eq!(granted, [("news", "shop"), ("sales", "crm")]);
    }
}
