//! Which tests suit which fields. The parser reports a broken rule at the position of
//! the test; the compiler and the evaluator refuse a hand-built tree that breaks one.

use super::ast::{Duration, Expr, Field, MAX_DURATION_SECONDS, Metric, Order, Test, Value};
use super::error::SegmentError;

/// The most values a list literal may hold.
pub const MAX_LIST: usize = 1_000;

/// Why `field` cannot be given `test`, in words for the person who wrote it.
pub fn check_test(field: &Field, test: &Test) -> Result<(), String> {
    if let Field::Attr(path) = field {
        check_attr_path(path)?;
    }
    match test {
        Test::Compare(_, v) | Test::Contains(v) => check_value_for(field, v)?,
        Test::In(values) => {
            check_list_size(values)?;
            values.iter().try_for_each(|v| check_value_for(field, v))?;
            check_homogeneous(values)?;
        }
        Test::StartsWith(s) | Test::EndsWith(s) => check_text_value(s)?,
        Test::Exists => {}
    }
    check_operator(field, test)
}

/// Whether `value` can be compared with `field` at all.
pub fn check_value_for(field: &Field, value: &Value) -> Result<(), String> {
    let name = field_name(field);
    match (field, value) {
        (Field::Text(_), Value::Text(_)) | (Field::CreatedAt, Value::Time(_)) => Ok(()),
        (Field::Text(_), v) => Err(format!(
            "'{name}' is text: compare it with a string such as \"{}\", not {}",
            example_text(field),
            describe(v)
        )),
        (Field::CreatedAt, v) => Err(format!(
            "'{name}' is a point in time: compare it with a time such as 30d ago or \"2026-01-31\", not {}",
            describe(v)
        )),
        (Field::Attr(_), Value::Time(_)) => Err(
            "attributes hold numbers, text, booleans and lists: a time such as 30d ago does not apply"
                .into(),
        ),
        (Field::Attr(_), _) => Ok(()),
    }?;
    check_value(value)
}

fn check_operator(field: &Field, test: &Test) -> Result<(), String> {
    match (field, test) {
        (Field::CreatedAt, Test::Compare(..)) => Ok(()),
        (Field::CreatedAt, _) => Err(format!(
            "'{}' is a point in time: it takes ==, !=, <, <=, > or >=",
            field_name(field)
        )),
        (Field::Attr(_), Test::Compare(op, Value::Bool(_)))
            if !matches!(op, Order::Eq | Order::Ne) =>
        {
            Err("true and false can only be compared with == and !=".into())
        }
        _ => Ok(()),
    }
}

fn check_list_size(values: &[Value]) -> Result<(), String> {
    if values.is_empty() {
        Err("a list needs at least one value".into())
    } else if values.len() > MAX_LIST {
        Err(format!("a list holds at most {MAX_LIST} values"))
    } else {
        Ok(())
    }
}

fn check_homogeneous(values: &[Value]) -> Result<(), String> {
    let kind = |v: &Value| std::mem::discriminant(v);
    match values.first() {
        Some(first) if values.iter().any(|v| kind(v) != kind(first)) => {
            Err("a list holds values of one type: all strings, all numbers or all booleans".into())
        }
        _ => Ok(()),
    }
}

fn check_value(value: &Value) -> Result<(), String> {
    match value {
        Value::Number(n) => check_number(*n),
        Value::Text(s) => check_text_value(s),
        Value::Bool(_) => Ok(()),
        Value::Time(super::ast::TimeValue::Ago(d)) => check_duration(*d),
        Value::Time(super::ast::TimeValue::At(t)) => check_instant(*t),
    }
}

fn check_number(n: f64) -> Result<(), String> {
    if n.is_finite() {
        Ok(())
    } else {
        Err("the number is too large".into())
    }
}

fn check_text_value(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        Err("text may not contain the NUL character".into())
    } else {
        Ok(())
    }
}

fn check_instant(t: i64) -> Result<(), String> {
    match chrono::DateTime::from_timestamp(t, 0) {
        Some(_) => Ok(()),
        None => Err("the time is out of range".into()),
    }
}

pub fn check_duration(d: Duration) -> Result<(), String> {
    if d.seconds() > MAX_DURATION_SECONDS {
        Err("a duration may be at most 200 years".into())
    } else {
        Ok(())
    }
}

/// Attribute names are identifiers: letters, digits and `_`, not starting with a digit.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_attr_path(path: &[String]) -> Result<(), String> {
    if path.is_empty() {
        return Err("an attribute needs a name: attr.NAME".into());
    }
    match path.iter().find(|p| !is_identifier(p)) {
        Some(bad) => Err(format!("'{bad}' is not a valid attribute name")),
        None => Ok(()),
    }
}

pub fn field_name(field: &Field) -> String {
    match field {
        Field::Text(f) => f.name().to_string(),
        Field::CreatedAt => "created_at".to_string(),
        Field::Attr(path) => format!("attr.{}", path.join(".")),
    }
}

fn example_text(field: &Field) -> &'static str {
    match field {
        Field::Text(super::ast::TextField::Country) => "US",
        Field::Text(super::ast::TextField::Email) => "ana@example.com",
        _ => "text",
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Number(_) => "a number",
        Value::Text(_) => "text",
        Value::Bool(_) => "true or false",
        Value::Time(_) => "a time",
    }
}

/// Checks a whole tree, as the compiler and the evaluator receive it.
pub fn check_expr(expr: &Expr) -> Result<(), SegmentError> {
    let invalid = |message: String| Err(SegmentError::Invalid(message));
    match expr {
        Expr::Const(_) | Expr::Segment(_) => Ok(()),
        Expr::Not(inner) => check_expr(inner),
        Expr::And(terms) | Expr::Or(terms) if terms.len() < 2 => {
            invalid("'and' and 'or' take two or more operands".into())
        }
        Expr::And(terms) | Expr::Or(terms) => terms.iter().try_for_each(check_expr),
        Expr::Field(field, test) => check_test(field, test).or_else(invalid),
        Expr::Metric(metric, _, n) => check_number(*n)
            .and_then(|()| check_metric(metric))
            .or_else(invalid),
        Expr::Recency(filter, _, _) | Expr::Did(filter) if filter.kind.is_none() => {
            invalid("last() and did() need an event kind".into())
        }
        Expr::Recency(filter, _, _) if filter.within.is_some() => {
            invalid("last() takes no 'within:'".into())
        }
        Expr::Recency(filter, _, d) => check_duration(*d)
            .and_then(|()| check_filter(filter))
            .or_else(invalid),
        Expr::Did(filter) => check_filter(filter).or_else(invalid),
    }
}

fn check_metric(metric: &Metric) -> Result<(), String> {
    match metric {
        Metric::Spent(f) if f.kind.is_some() => Err("spent() always sums purchases".into()),
        Metric::Events(f) | Metric::Spent(f) => check_filter(f),
        Metric::Opened(within) | Metric::Clicked(within) => within.map_or(Ok(()), check_duration),
    }
}

fn check_filter(filter: &super::ast::EventFilter) -> Result<(), String> {
    filter.within.map_or(Ok(()), check_duration)?;
    [&filter.kind, &filter.sku, &filter.category]
        .into_iter()
        .flatten()
        .try_for_each(|s| check_text_value(s))
}
