//! The canonical text of an expression. `parse(&expr.to_string())` gives back `expr`
//! for every tree the parser can build.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{Duration, EventFilter, Expr, Field, Metric, Test, TimeValue, Value};
use super::calls::shorthand;
use super::typing::{field_name, is_identifier};

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(b) => write!(f, "{b}"),
            Expr::Not(inner) => {
                f.write_str("not ")?;
                grouped(f, inner, |e| matches!(e, Expr::And(_) | Expr::Or(_)))
            }
            Expr::And(terms) => joined(f, terms, " and ", |e| {
                matches!(e, Expr::And(_) | Expr::Or(_))
            }),
            Expr::Or(terms) => joined(f, terms, " or ", |e| matches!(e, Expr::Or(_))),
            Expr::Field(field, test) => write!(f, "{} {test}", field_name(field)),
            Expr::Metric(metric, op, n) => write!(f, "{metric} {} {}", op.symbol(), Number(*n)),
            Expr::Recency(filter, op, d) => {
                f.write_str("last(")?;
                arguments(f, filter, true)?;
                write!(f, ") {} {d} ago", op.symbol())
            }
            Expr::Did(filter) => call(f, filter, true),
            Expr::Segment(name) => write!(f, "segment({})", Quoted(name)),
        }
    }
}

fn grouped(f: &mut Formatter<'_>, expr: &Expr, needs: fn(&Expr) -> bool) -> fmt::Result {
    if needs(expr) {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

fn joined(
    f: &mut Formatter<'_>,
    terms: &[Expr],
    sep: &str,
    needs: fn(&Expr) -> bool,
) -> fmt::Result {
    for (i, term) in terms.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        grouped(f, term, needs)?;
    }
    Ok(())
}

impl Display for Test {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Test::Compare(op, value) => write!(f, "{} {value}", op.symbol()),
            Test::In(values) => {
                f.write_str("in [")?;
                for (i, value) in values.iter().enumerate() {
                    let sep = if i > 0 { ", " } else { "" };
                    write!(f, "{sep}{value}")?;
                }
                f.write_char(']')
            }
            Test::Contains(value) => write!(f, "contains {value}"),
            Test::StartsWith(s) => write!(f, "starts_with {}", Quoted(s)),
            Test::EndsWith(s) => write!(f, "ends_with {}", Quoted(s)),
            Test::Exists => f.write_str("exists"),
        }
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{}", Number(*n)),
            Value::Text(s) => write!(f, "{}", Quoted(s)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Time(TimeValue::Ago(d)) => write!(f, "{d} ago"),
            Value::Time(TimeValue::At(t)) => write!(f, "{}", Quoted(&date_text(*t))),
        }
    }
}

fn date_text(t: i64) -> String {
    match chrono::DateTime::from_timestamp(t, 0) {
        Some(time) if t % 86_400 == 0 => time.format("%Y-%m-%d").to_string(),
        Some(time) => time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => t.to_string(),
    }
}

impl Display for Duration {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

impl Display for Field {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&field_name(self))
    }
}

impl Display for Metric {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Events(filter) => call(f, filter, false),
            Metric::Spent(filter) => {
                f.write_str("spent(")?;
                arguments(f, filter, false)?;
                f.write_char(')')
            }
            Metric::Opened(within) => engagement(f, "opened", *within),
            Metric::Clicked(within) => engagement(f, "clicked", *within),
        }
    }
}

fn engagement(f: &mut Formatter<'_>, name: &str, within: Option<Duration>) -> fmt::Result {
    match within {
        Some(d) => write!(f, "{name}(within: {d})"),
        None => write!(f, "{name}()"),
    }
}

/// `purchases(...)`, `viewed(...)`, or the general `events(kind, ...)` / `did(kind, ...)`.
fn call(f: &mut Formatter<'_>, filter: &EventFilter, condition: bool) -> fmt::Result {
    let short = filter.kind.as_deref().and_then(|k| shorthand(condition, k));
    let general = if condition { "did" } else { "events" };
    write!(f, "{}(", short.unwrap_or(general))?;
    arguments(f, filter, short.is_none())?;
    f.write_char(')')
}

fn arguments(f: &mut Formatter<'_>, filter: &EventFilter, with_kind: bool) -> fmt::Result {
    let mut parts: Vec<String> = Vec::new();
    if let Some(kind) = filter.kind.as_deref().filter(|_| with_kind) {
        parts.push(word(kind));
    }
    if let Some(d) = filter.within {
        parts.push(format!("within: {d}"));
    }
    if let Some(sku) = &filter.sku {
        parts.push(format!("sku: {}", Quoted(sku)));
    }
    if let Some(category) = &filter.category {
        parts.push(format!("category: {}", Quoted(category)));
    }
    f.write_str(&parts.join(", "))
}

/// An event kind: bare when it is a plain word, quoted otherwise.
fn word(kind: &str) -> String {
    if is_identifier(kind) && kind != "true" && kind != "false" {
        kind.to_string()
    } else {
        Quoted(kind).to_string()
    }
}

/// A number as the lexer reads it back: no exponent, `-` for negatives.
struct Number(f64);

impl Display for Number {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A string literal with `"`, `\` and control characters escaped.
struct Quoted<'a>(&'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}
