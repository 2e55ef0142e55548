//! `recipients` rows → [`NewRecipient`] (columns: FORMATS.md).

use serde_json::{Map, Value};

use super::fields::{self, FieldResult};
use super::reader::Record;
use crate::store::NewRecipient;

/// Columns with a meaning of their own; any other column becomes an attribute.
const COLUMNS: [&str; 11] = [
    "email",
    "first_name",
    "last_name",
    "country",
    "city",
    "locale",
    "timezone",
    "created_at",
    "topics",
    "consent_source",
    "attributes",
];

pub(crate) const REQUIRED: &[&str] = &["email"];

pub(crate) fn parse(record: &Record<'_>) -> FieldResult<NewRecipient> {
    Ok(NewRecipient {
        email: fields::email(record, "email")?,
        first_name: fields::optional_text(record, "first_name")?,
        last_name: fields::optional_text(record, "last_name")?,
        country: fields::country(record, "country")?,
        city: fields::optional_text(record, "city")?,
        locale: fields::locale(record, "locale")?,
        timezone: fields::timezone(record, "timezone")?,
        attributes: attributes(record)?,
        created_at: fields::timestamp(record, "created_at")?,
        topics: fields::list(record, "topics")?,
        consent_source: fields::optional_text(record, "consent_source")?
            .unwrap_or_else(|| "import".to_string()),
    })
}

/// The `attributes` object, then every extra column on top of it.
fn attributes(record: &Record<'_>) -> FieldResult<Map<String, Value>> {
    let mut attributes = fields::json_object(record, "attributes")?;
    for (name, cell) in record.cells() {
        if !COLUMNS.contains(&name) {
            attributes.insert(name.to_string(), fields::attribute(cell));
        }
    }
    Ok(attributes)
}
