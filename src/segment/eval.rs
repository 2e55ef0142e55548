//! A plain in-memory evaluator of the same AST: the reference the SQL compiler is
//! tested against. It is written for clarity, not speed; production resolves
//! segments inside the database.

use serde_json::Value as Json;

use super::ast::{
    EventFilter, Expr, Field, Metric, Order, PURCHASE, Test, TextField, Value, cents,
};
use super::error::SegmentError;
use super::inline::{Resolve, inline};
use super::typing::check_expr;

/// One recipient with everything a segment can look at.
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub id: i64,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub created_at: i64,
    /// The attributes object.
    pub attributes: Json,
    pub events: Vec<PersonEvent>,
    /// Rows of `tracking_events`.
    pub touches: Vec<Touch>,
}

/// A behavioural event with its product's sku and category, if it has a product.
#[derive(Debug, Clone, Default)]
pub struct PersonEvent {
    pub kind: String,
    pub sku: Option<String>,
    pub category: Option<String>,
    pub amount_cents: Option<i64>,
    pub occurred_at: i64,
}

/// An open, click or unsubscribe recorded for an earlier campaign.
#[derive(Debug, Clone)]
pub struct Touch {
    pub kind: String,
    pub human: bool,
    pub occurred_at: i64,
}

/// The ids of the people `expr` selects, in the order given.
pub fn select(
    expr: &Expr,
    people: &[Person],
    now: i64,
    resolve: Resolve<'_>,
) -> Result<Vec<i64>, SegmentError> {
    let expr = inline(expr, resolve)?;
    check_expr(&expr)?;
    let mut ids = Vec::new();
    for person in people {
        if matches(&expr, person, now)? {
            ids.push(person.id);
        }
    }
    Ok(ids)
}

/// Whether `person` is in the segment. References must be inlined first.
pub fn matches(expr: &Expr, person: &Person, now: i64) -> Result<bool, SegmentError> {
    Ok(match expr {
        Expr::Const(b) => *b,
        Expr::Not(inner) => !matches(inner, person, now)?,
        Expr::And(terms) => all(terms, person, now)?,
        Expr::Or(terms) => any(terms, person, now)?,
        Expr::Field(field, test) => field_test(field, test, person, now),
        Expr::Metric(metric, op, n) => metric_test(metric, *op, *n, person, now),
        Expr::Recency(filter, op, d) => events(person, filter, now)
            .map(|e| e.occurred_at)
            .max()
            .is_some_and(|latest| op.holds(&(now - latest), &d.seconds())),
        Expr::Did(filter) => events(person, filter, now).next().is_some(),
        Expr::Segment(name) => return Err(SegmentError::UnknownSegment(name.clone())),
    })
}

fn all(terms: &[Expr], person: &Person, now: i64) -> Result<bool, SegmentError> {
    for term in terms {
        if !matches(term, person, now)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn any(terms: &[Expr], person: &Person, now: i64) -> Result<bool, SegmentError> {
    for term in terms {
        if matches(term, person, now)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn field_test(field: &Field, test: &Test, person: &Person, now: i64) -> bool {
    match field {
        Field::Text(column) => text_test(column_value(person, *column), test),
        Field::CreatedAt => match test {
            Test::Compare(op, Value::Time(t)) => op.holds(&person.created_at, &t.resolve(now)),
            _ => false,
        },
        Field::Attr(path) => attr_test(lookup(&person.attributes, path), test),
    }
}

fn column_value(person: &Person, column: TextField) -> Option<&str> {
    match column {
        TextField::Email => Some(person.email.as_str()),
        TextField::FirstName => person.first_name.as_deref(),
        TextField::LastName => person.last_name.as_deref(),
        TextField::Country => person.country.as_deref(),
        TextField::City => person.city.as_deref(),
        TextField::Locale => person.locale.as_deref(),
        TextField::Timezone => person.timezone.as_deref(),
    }
}

/// A test on text that may be missing: missing matches nothing but `not …`.
fn text_test(text: Option<&str>, test: &Test) -> bool {
    let Some(text) = text else {
        return false;
    };
    match test {
        Test::Compare(op, Value::Text(v)) => op.holds(text, v.as_str()),
        Test::In(values) => values
            .iter()
            .any(|v| matches!(v, Value::Text(v) if v == text)),
        Test::Contains(Value::Text(v)) => text.contains(v.as_str()),
        Test::StartsWith(prefix) => text.starts_with(prefix.as_str()),
        Test::EndsWith(suffix) => text.ends_with(suffix.as_str()),
        Test::Exists => true,
        _ => false,
    }
}

fn lookup<'a>(attributes: &'a Json, path: &[String]) -> Option<&'a Json> {
    path.iter()
        .try_fold(attributes, |value, key| value.as_object()?.get(key))
}

fn attr_test(value: Option<&Json>, test: &Test) -> bool {
    let Some(value) = value else {
        return false;
    };
    match test {
        Test::Compare(op, expected) => attr_compare(value, *op, expected),
        Test::In(values) => values.iter().any(|v| attr_compare(value, Order::Eq, v)),
        Test::Contains(expected) => match value {
            Json::Array(items) => items
                .iter()
                .any(|item| attr_compare(item, Order::Eq, expected)),
            Json::String(s) => matches!(expected, Value::Text(t) if s.contains(t.as_str())),
            _ => false,
        },
        Test::StartsWith(prefix) => value
            .as_str()
            .is_some_and(|s| s.starts_with(prefix.as_str())),
        Test::EndsWith(suffix) => value.as_str().is_some_and(|s| s.ends_with(suffix.as_str())),
        Test::Exists => !value.is_null(),
    }
}

/// A comparison that holds only where the JSON value has the literal's type.
fn attr_compare(value: &Json, op: Order, expected: &Value) -> bool {
    match (value, expected) {
        (Json::Number(n), Value::Number(e)) => n.as_f64().is_some_and(|n| op.holds(&n, e)),
        (Json::String(s), Value::Text(e)) => op.holds(s.as_str(), e.as_str()),
        (Json::Bool(b), Value::Bool(e)) => op.holds(b, e),
        _ => false,
    }
}

fn metric_test(metric: &Metric, op: Order, n: f64, person: &Person, now: i64) -> bool {
    let (measure, target) = match metric {
        Metric::Events(filter) => (events(person, filter, now).count() as f64, n),
        Metric::Spent(filter) => {
            let purchases = EventFilter {
                kind: Some(PURCHASE.to_string()),
                ..filter.clone()
            };
            let sum: i64 = events(person, &purchases, now)
                .filter_map(|e| e.amount_cents)
                .sum();
            (sum as f64, cents(n))
        }
        Metric::Opened(within) => (touches(person, "open", *within, now) as f64, n),
        Metric::Clicked(within) => (touches(person, "click", *within, now) as f64, n),
    };
    op.holds(&measure, &target)
}

fn events<'a>(
    person: &'a Person,
    filter: &'a EventFilter,
    now: i64,
) -> impl Iterator<Item = &'a PersonEvent> + 'a {
    let since = filter.within.map(|d| now - d.seconds());
    person.events.iter().filter(move |e| {
        filter.kind.as_ref().is_none_or(|k| *k == e.kind)
            && since.is_none_or(|since| e.occurred_at >= since)
            && filter
                .sku
                .as_ref()
                .is_none_or(|s| e.sku.as_ref() == Some(s))
            && filter
                .category
                .as_ref()
                .is_none_or(|c| e.category.as_ref() == Some(c))
    })
}

fn touches(person: &Person, kind: &str, within: Option<super::ast::Duration>, now: i64) -> usize {
    let since = within.map(|d| now - d.seconds());
    person
        .touches
        .iter()
        .filter(|t| t.kind == kind && t.human && since.is_none_or(|s| t.occurred_at >= s))
        .count()
}
