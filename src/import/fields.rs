//! Reading one typed value out of a [`Record`]: every function names the column in
//! its error and never guesses (money is parsed from its decimal text, not a float).

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::error::FieldError;
use super::reader::{Cell, Record, json_message};
use crate::domain::EmailAddress;

pub(crate) type FieldResult<T> = Result<T, FieldError>;

/// CSV text, or a JSON string, number or boolean as text; trimmed.
fn as_text<'a>(column: &str, cell: Cell<'a>) -> FieldResult<Cow<'a, str>> {
    match cell {
        Cell::Text(text) => Ok(Cow::Borrowed(text.trim())),
        Cell::Json(Value::String(text)) => Ok(Cow::Borrowed(text.trim())),
        Cell::Json(Value::Number(n)) => Ok(Cow::Owned(n.to_string())),
        Cell::Json(Value::Bool(b)) => Ok(Cow::Owned(b.to_string())),
        Cell::Json(other) => Err(FieldError::new(
            column,
            format!("expected text, found {}", json_type(other)),
        )),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The column's text, when given; `check` may refuse or normalise it.
fn optional_with<T>(
    record: &Record<'_>,
    column: &str,
    check: impl FnOnce(&str) -> Result<T, String>,
) -> FieldResult<Option<T>> {
    let Some(cell) = record.get(column) else {
        return Ok(None);
    };
    let text = as_text(column, cell)?;
    check(&text)
        .map(Some)
        .map_err(|reason| FieldError::new(column, reason))
}

pub(crate) fn required<T>(column: &str, value: Option<T>) -> FieldResult<T> {
    value.ok_or_else(|| FieldError::new(column, "missing (required)"))
}

pub(crate) fn optional_text(record: &Record<'_>, column: &str) -> FieldResult<Option<String>> {
    optional_with(record, column, |text| Ok(text.to_string()))
}

pub(crate) fn required_text(record: &Record<'_>, column: &str) -> FieldResult<String> {
    required(column, optional_text(record, column)?)
}

pub(crate) fn email(record: &Record<'_>, column: &str) -> FieldResult<EmailAddress> {
    let parsed = optional_with(record, column, |text| {
        EmailAddress::parse(text).map_err(|e| e.to_string())
    })?;
    required(column, parsed)
}

/// ISO 3166-1 alpha-2, upper-cased.
pub(crate) fn country(record: &Record<'_>, column: &str) -> FieldResult<Option<String>> {
    optional_with(record, column, |text| {
        if text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(text.to_ascii_uppercase())
        } else {
            Err(format!(
                "'{text}' is not a two-letter country code (like US)"
            ))
        }
    })
}

/// A BCP 47 tag such as `en-US` (`en_US` is accepted and written with a hyphen).
pub(crate) fn locale(record: &Record<'_>, column: &str) -> FieldResult<Option<String>> {
    optional_with(record, column, |text| {
        let tag = text.replace('_', "-");
        let mut parts = tag.split('-');
        let language = parts.next().unwrap_or_default();
        let language_ok =
            (2..=8).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_alphabetic());
        let rest_ok = parts
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if language_ok && rest_ok {
            Ok(tag)
        } else {
            Err(format!(
                "'{text}' is not a BCP 47 language tag (like en-US)"
            ))
        }
    })
}

/// The shape of an IANA zone name (`America/New_York`, `UTC`, `Etc/GMT+5`).
pub(crate) fn timezone(record: &Record<'_>, column: &str) -> FieldResult<Option<String>> {
    optional_with(record, column, |text| {
        let shape_ok = text.len() <= 64
            && text.starts_with(|c: char| c.is_ascii_alphabetic())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if shape_ok {
            Ok(text.to_string())
        } else {
            Err(format!(
                "'{text}' is not an IANA time zone (like America/New_York)"
            ))
        }
    })
}

/// RFC 3339 or unix seconds (a JSON integer counts as unix seconds).
pub(crate) fn timestamp(record: &Record<'_>, column: &str) -> FieldResult<Option<i64>> {
    optional_with(record, column, crate::time::parse_timestamp)
}

/// A decimal amount in the main unit as hundredths ("cents"), exactly.
pub(crate) fn cents(
    record: &Record<'_>,
    column: &str,
    max_decimals: usize,
) -> FieldResult<Option<i64>> {
    optional_with(record, column, |text| parse_cents(text, max_decimals))
}

/// `49.99` → 4999. Refuses signs, exponents, separators and more than
/// `max_decimals` significant decimals (trailing zeros are fine: `49.990`).
pub(crate) fn parse_cents(text: &str, max_decimals: usize) -> Result<i64, String> {
    if text.starts_with('-') {
        return Err(format!("'{text}' is negative"));
    }
    let (units, fraction) = text.split_once('.').unwrap_or((text, "00"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(units) || !digits(fraction) {
        return Err(format!("'{text}' is not a decimal number"));
    }
    let fraction = fraction.trim_end_matches('0');
    let max_decimals = max_decimals.min(2);
    if fraction.len() > max_decimals {
        return Err(format!("'{text}' has more than {max_decimals} decimals"));
    }
    let hundredths: i64 = format!("{fraction:0<2}").parse().unwrap_or(0);
    units
        .parse::<i64>()
        .ok()
        .and_then(|u| u.checked_mul(100))
        .and_then(|c| c.checked_add(hundredths))
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// `true`/`false`/`1`/`0`/`yes`/`no`, any case.
pub(crate) fn boolean(record: &Record<'_>, column: &str) -> FieldResult<Option<bool>> {
    optional_with(record, column, |text| {
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(format!("'{text}' is not true/false/1/0/yes/no")),
        }
    })
}

/// An http(s) URL with a host.
pub(crate) fn http_url(record: &Record<'_>, column: &str) -> FieldResult<Option<String>> {
    optional_with(record, column, |text| match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.to_string())
        }
        _ => Err(format!("'{text}' is not an http(s) URL")),
    })
}

/// A lower-case word: letters, digits and `_`, starting with a letter (input is
/// lower-cased first, so `Purchase` is `purchase`).
pub(crate) fn word(record: &Record<'_>, column: &str) -> FieldResult<Option<String>> {
    optional_with(record, column, |text| {
        let word = text.to_ascii_lowercase();
        let ok = word.len() <= 64
            && word.starts_with(|c: char| c.is_ascii_lowercase())
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(word)
        } else {
            Err(format!(
                "'{text}' is not a lower-case word (letters, digits, '_')"
            ))
        }
    })
}

/// A JSON object: a JSON value in JSON Lines, JSON text in a CSV cell. Nulls inside
/// objects are dropped (a null means "not given").
pub(crate) fn json_object(record: &Record<'_>, column: &str) -> FieldResult<Map<String, Value>> {
    let value = match record.get(column) {
        None => return Ok(Map::new()),
        Some(Cell::Json(value)) if !value.is_string() => value.clone(),
        Some(cell) => {
            let text = cell.as_str().unwrap_or_default();
            serde_json::from_str(text).map_err(|e| {
                FieldError::new(column, format!("malformed JSON: {}", json_message(&e)))
            })?
        }
    };
    if let Some(path) = nul_path(&value) {
        return Err(FieldError::new(column, nul_reason(&path)));
    }
    match without_nulls(value) {
        Value::Object(object) => Ok(object),
        other => Err(FieldError::new(
            column,
            format!("expected a JSON object, found {}", json_type(&other)),
        )),
    }
}

/// Removes null members of objects, at any depth (arrays keep their elements).
pub(crate) fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// A CSV attribute cell as a typed value: integers and decimals become numbers,
/// `true`/`false` booleans, anything else (including `007`) stays a string.
pub(crate) fn infer(text: &str) -> Value {
    let text = text.trim();
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if !is_plain_number(text) {
        return Value::String(text.to_string());
    }
    if let Ok(n) = text.parse::<i64>() {
        return Value::Number(n.into());
    }
    match text.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) if text.contains('.') => Value::Number(n),
        _ => Value::String(text.to_string()),
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`
fn is_plain_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (units, fraction) = match unsigned.split_once('.') {
        Some((u, f)) => (u, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(units) && (units == "0" || !units.starts_with('0')) && fraction.is_none_or(digits)
}

/// The value of an extra column as an attribute: typed by [`infer`] in CSV, as is
/// in JSON Lines.
pub(crate) fn attribute(cell: Cell<'_>) -> Value {
    match cell {
        Cell::Text(text) => infer(text),
        Cell::Json(value) => without_nulls(value.clone()),
    }
}

/// `;`-separated names in CSV; a JSON array of strings or the same text in JSON Lines.
pub(crate) fn list(record: &Record<'_>, column: &str) -> FieldResult<Vec<String>> {
    let split = |text: &str| -> Vec<String> {
        text.split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    };
    match record.get(column) {
        None => Ok(Vec::new()),
        Some(Cell::Json(Value::Array(items))) => items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                _ => Err(FieldError::new(column, "expected an array of names")),
            })
            .collect(),
        Some(cell) => Ok(split(&as_text(column, cell)?)),
    }
}

const NUL_REASON: &str = "contains a NUL character (U+0000), which cannot be stored";

/// Refuses a row with a NUL character in any column name or value, naming the column
/// (and, inside a JSON value, the path to the string holding it). PostgreSQL stores no
/// NUL in text or JSON, so without this one such row would end the whole import.
pub(crate) fn refuse_nul(record: &Record<'_>) -> FieldResult<()> {
    for (name, cell) in record.cells() {
        if name.contains('\0') {
            let column = name.replace('\0', "\\u0000");
            return Err(FieldError::new(
                &column,
                format!("the column name {NUL_REASON}"),
            ));
        }
        let nul_at = match cell {
            Cell::Text(text) => text.contains('\0').then(String::new),
            Cell::Json(value) => nul_path(value),
        };
        if let Some(path) = nul_at {
            return Err(FieldError::new(name, nul_reason(&path)));
        }
    }
    Ok(())
}

fn nul_reason(path: &str) -> String {
    if path.is_empty() {
        NUL_REASON.to_string()
    } else {
        format!("{path}: {NUL_REASON}")
    }
}

/// Where in `value` a string or object key holds a NUL: `""` for the value itself,
/// `.a.b[2]` inside it; None when nowhere.
pub(crate) fn nul_path(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(String::new),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item).map(|rest| format!("[{i}]{rest}"))),
        Value::Object(object) => object.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(format!(".{}", key.replace('\0', "\\u0000")));
            }
            nul_path(item).map(|rest| format!(".{key}{rest}"))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_parsed_from_its_decimal_text() {
        assert_eq!(parse_cents("49.99", 2), Ok(4999));
        assert_eq!(parse_cents("49.9", 2), Ok(4990));
        assert_eq!(parse_cents("49", 2), Ok(4900));
        assert_eq!(parse_cents("0.07", 2), Ok(7));
        assert_eq!(parse_cents("49.990", 2), Ok(4999));
        assert_eq!(parse_cents("1200", 0), Ok(120_000));
        assert_eq!(parse_cents("92233720368547758.07", 2), Ok(i64::MAX));
    }

    #[test]
    fn money_refuses_what_it_would_have_to_round_or_guess() {
        for (text, reason) in [
            ("49.999", "more than 2 decimals"),
            ("1200.5", "more than 0 decimals"),
            ("-1.00", "negative"),
            ("1,299.00", "not a decimal"),
            ("1e3", "not a decimal"),
            (".5", "not a decimal"),
            ("5.", "not a decimal"),
            ("+5", "not a decimal"),
            ("92233720368547758.08", "too large"),
        ] {
            let max = if text == "1200.5" { 0 } else { 2 };
            let error = parse_cents(text, max).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn attribute_cells_are_typed_conservatively() {
        assert_eq!(infer("42"), Value::from(42));
        assert_eq!(infer("-3.5"), Value::from(-3.5));
        assert_eq!(infer("true"), Value::Bool(true));
        assert_eq!(infer("007"), Value::from("007"));
        assert_eq!(infer("1e5"), Value::from("1e5"));
        assert_eq!(infer("NaN"), Value::from("NaN"));
        assert_eq!(infer("+15551234"), Value::from("+15551234"));
        assert_eq!(
            infer("99999999999999999999"),
            Value::from("99999999999999999999")
        );
        assert_eq!(infer("gold"), Value::from("gold"));
    }

    #[test]
    fn nulls_inside_objects_are_dropped() {
        let value = serde_json::json!({"a": null, "b": {"c": null, "d": 1}, "e": [null]});
        assert_eq!(
            without_nulls(value),
            serde_json::json!({"b": {"d": 1}, "e": [null]})
        );
    }

    #[test]
    fn nul_characters_are_found_with_their_path() {
        let value = serde_json::json!({"a": [1, {"b": "x\u{0}y"}]});
        assert_eq!(nul_path(&value).as_deref(), Some(".a[1].b"));
        assert_eq!(nul_path(&Value::from("\u{0}")).as_deref(), Some(""));
        assert_eq!(nul_path(&serde_json::json!({"ok": ["fine"]})), None);
    }
}
