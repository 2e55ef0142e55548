//! The file as written. Keys whose values are checked one by one are kept as TOML
//! values, so a bad value is reported under its own key and the rest is still read;
//! `deny_unknown_fields` names a misspelt key.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefinition {
    pub name: Option<Value>,
    pub description: Option<Value>,
    pub from: Option<Value>,
    pub entry: Option<Value>,
    pub goal: Option<Value>,
    pub trigger: Option<Value>,
    pub step: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSender {
    pub email: String,
    pub name: Option<String>,
    pub reply_to: Option<String>,
}

/// An event and its filters: `goal`, and within `trigger` and `wait_for`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    pub event: String,
    pub sku: Option<String>,
    pub category: Option<String>,
    /// In currency units.
    pub min_amount: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrigger {
    pub event: Option<String>,
    pub sku: Option<String>,
    pub category: Option<String>,
    pub min_amount: Option<f64>,
    pub recipient_created: Option<bool>,
    pub subscribed: Option<String>,
    pub enters_segment: Option<String>,
    pub date: Option<String>,
    pub at: Option<String>,
}

/// One `[[step]]`: an action key and the keys that say where to go next.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub id: Option<Value>,
    pub wait: Option<Value>,
    pub wait_until: Option<Value>,
    pub wait_for: Option<Value>,
    #[serde(rename = "if")]
    pub condition: Option<Value>,
    pub split: Option<Value>,
    pub send: Option<Value>,
    pub update: Option<Value>,
    pub exit: Option<Value>,
    pub goto: Option<Value>,
    pub then: Option<Value>,
    #[serde(rename = "else")]
    pub otherwise: Option<Value>,
    pub on_event: Option<Value>,
    pub on_timeout: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWaitFor {
    pub event: String,
    pub timeout: String,
    pub sku: Option<String>,
    pub category: Option<String>,
    pub min_amount: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    pub weight: i64,
    pub goto: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSend {
    pub template: String,
    pub kind: Option<String>,
    pub topic: Option<String>,
    #[serde(default)]
    pub utm: BTreeMap<String, String>,
    #[serde(default)]
    pub data: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpdate {
    pub attribute: Option<String>,
    pub value: Option<Value>,
    pub subscribe: Option<String>,
    pub unsubscribe: Option<String>,
}

/// `value` read as `T`, or serde's account of why not (naming the inner key when
/// there is one).
pub fn value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    value
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string().trim().replace('\n', " "))
}

/// A table read as `T`: refuses other values in words rather than with the name of
/// the struct.
pub fn table<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    match value {
        Value::Table(_) => self::value(value),
        other => Err(format!(
            "is {} {other}, not a table",
            article(other.type_str())
        )),
    }
}

/// `value`, which must be a list of tables, as `T`s.
pub fn tables<T: DeserializeOwned>(value: Value) -> Result<Vec<T>, String> {
    match value {
        Value::Array(items) => items.into_iter().map(table).collect(),
        other => Err(format!(
            "is {} {other}, not a list of tables",
            article(other.type_str())
        )),
    }
}

fn article(word: &str) -> String {
    if word.starts_with(['a', 'i']) {
        format!("an {word}")
    } else {
        format!("a {word}")
    }
}

/// A TOML value as JSON. TOML dates and times become their text; infinities and NaN
/// (which JSON cannot hold) are refused.
pub fn json(value: Value) -> Result<serde_json::Value, String> {
    if !finite(&value) {
        return Err("JSON cannot hold inf or nan".into());
    }
    serde_json::Value::deserialize(value).map_err(|e| e.to_string())
}

/// A TOML table as a JSON object.
pub fn json_object(
    table: toml::Table,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match json(Value::Table(table))? {
        serde_json::Value::Object(object) => Ok(object),
        other => Err(format!("is not a table but {other}")),
    }
}

fn finite(value: &Value) -> bool {
    match value {
        Value::Float(f) => f.is_finite(),
        Value::Array(items) => items.iter().all(finite),
        Value::Table(table) => table.values().all(finite),
        _ => true,
    }
}
