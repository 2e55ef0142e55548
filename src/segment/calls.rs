//! Function calls: behaviour (`purchases`, `did`, `last`, …), engagement (`opened`,
//! `clicked`), `exists(field)` and `segment("name")`.

use super::ast::{Duration, EventFilter, Expr, Metric, PURCHASE, Test};
use super::error::{ParseError, Pos};
use super::lexer::Tok;
use super::parser::{Lit, Parser};
use super::typing;

/// What a function returns, and so what must follow it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Returns {
    /// A condition on its own: `did(...)`.
    Bool,
    /// A number to compare: `purchases(...) >= 3`.
    Number,
    /// A duration to compare: `last(purchase) > 180d`.
    Age,
}

/// How a function takes the event kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KindArg {
    Required,
    Optional,
    Fixed(&'static str),
    /// `spent()` (always purchases) and the engagement functions.
    Absent,
}

struct Spec {
    name: &'static str,
    returns: Returns,
    kind: KindArg,
    /// Named arguments besides `kind`.
    named: &'static [&'static str],
}

const EVENT_ARGS: &[&str] = &["within", "sku", "category"];

const SPECS: &[Spec] = &[
    spec("events", Returns::Number, KindArg::Optional, EVENT_ARGS),
    spec(
        "purchases",
        Returns::Number,
        KindArg::Fixed(PURCHASE),
        EVENT_ARGS,
    ),
    spec("views", Returns::Number, KindArg::Fixed("view"), EVENT_ARGS),
    spec(
        "cart_adds",
        Returns::Number,
        KindArg::Fixed("cart_add"),
        EVENT_ARGS,
    ),
    spec("spent", Returns::Number, KindArg::Absent, EVENT_ARGS),
    spec("did", Returns::Bool, KindArg::Required, EVENT_ARGS),
    spec("viewed", Returns::Bool, KindArg::Fixed("view"), EVENT_ARGS),
    spec(
        "purchased",
        Returns::Bool,
        KindArg::Fixed(PURCHASE),
        EVENT_ARGS,
    ),
    spec(
        "last",
        Returns::Age,
        KindArg::Required,
        &["sku", "category"],
    ),
    spec("opened", Returns::Number, KindArg::Absent, &["within"]),
    spec("clicked", Returns::Number, KindArg::Absent, &["within"]),
];

const fn spec(
    name: &'static str,
    returns: Returns,
    kind: KindArg,
    named: &'static [&'static str],
) -> Spec {
    Spec {
        name,
        returns,
        kind,
        named,
    }
}

/// The names of every function, for error messages and documentation.
pub fn function_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
    names.extend(["exists", "segment"]);
    names
}

/// The shorthand that prints a kind most readably: `purchases(...)` rather than
/// `events(purchase, ...)`.
pub fn shorthand(returns_bool: bool, kind: &str) -> Option<&'static str> {
    let kind = kind_static(kind)?;
    SPECS
        .iter()
        .filter(|s| (s.returns == Returns::Bool) == returns_bool)
        .find(|s| s.kind == KindArg::Fixed(kind))
        .map(|s| s.name)
}

fn kind_static(kind: &str) -> Option<&'static str> {
    [PURCHASE, "view", "cart_add"]
        .into_iter()
        .find(|k| *k == kind)
}

pub(super) fn call(parser: &mut Parser, name: &str) -> Result<Expr, ParseError> {
    match name {
        "exists" => return exists(parser),
        "segment" => return segment(parser),
        _ => {}
    }
    let Some(spec) = SPECS.iter().find(|s| s.name == name) else {
        return parser.fail(format!(
            "unknown function '{name}': functions are {}",
            function_names().join(", ")
        ));
    };
    let start = parser.pos();
    parser.bump();
    let args = arguments(parser)?;
    let filter = event_filter(spec, args, start)?;
    finish(parser, spec, filter)
}

/// One argument as written: `purchase`, `within: 30d`.
struct Arg {
    key: Option<String>,
    value: ArgValue,
    pos: Pos,
}

enum ArgValue {
    /// A bare word: `purchase`, `shoes`.
    Word(String),
    Lit(Lit),
}

fn arguments(parser: &mut Parser) -> Result<Vec<Arg>, ParseError> {
    parser.expect(&Tok::LParen, "'('")?;
    let mut args = Vec::new();
    if parser.peek() == &Tok::RParen {
        parser.bump();
        return Ok(args);
    }
    loop {
        args.push(argument(parser)?);
        match parser.peek() {
            Tok::Comma => {
                parser.bump();
            }
            Tok::RParen => {
                parser.bump();
                return Ok(args);
            }
            other => {
                let found = other.describe();
                return parser.fail(format!(
                    "expected ',' or ')' after the argument, found {found}"
                ));
            }
        }
    }
}

fn argument(parser: &mut Parser) -> Result<Arg, ParseError> {
    let key = match (parser.peek().clone(), parser.peek_ahead(1)) {
        (Tok::Ident(word), Tok::Colon) => {
            parser.bump();
            parser.bump();
            Some(word)
        }
        _ => None,
    };
    let pos = parser.pos();
    let is_duration = matches!(parser.peek(), Tok::Duration(_));
    if key.as_deref() == Some("within") && !is_duration {
        return parser.fail("expected a duration like 30d after 'within:'");
    }
    let value = match parser.peek().clone() {
        Tok::Ident(word) if word != "true" && word != "false" => {
            parser.bump();
            ArgValue::Word(word)
        }
        _ => ArgValue::Lit(parser.literal()?.0),
    };
    Ok(Arg { key, value, pos })
}

fn event_filter(spec: &Spec, args: Vec<Arg>, start: Pos) -> Result<EventFilter, ParseError> {
    let mut filter = EventFilter::default();
    let mut seen: Vec<String> = Vec::new();
    let positional_kind = matches!(spec.kind, KindArg::Required | KindArg::Optional);
    for (index, arg) in args.into_iter().enumerate() {
        let key = match arg.key.clone() {
            Some(key) => key,
            None if index == 0 && positional_kind => "kind".to_string(),
            None => return Err(ParseError::new(arg.pos, takes(spec, "named arguments"))),
        };
        if seen.contains(&key) {
            return Err(ParseError::new(arg.pos, format!("'{key}' is given twice")));
        }
        set_argument(spec, &mut filter, &key, arg)?;
        seen.push(key);
    }
    match spec.kind {
        KindArg::Required if filter.kind.is_none() => Err(ParseError::new(
            start,
            format!(
                "{}() needs an event kind: {}(purchase)",
                spec.name, spec.name
            ),
        )),
        KindArg::Fixed(kind) => Ok(EventFilter {
            kind: Some(kind.to_string()),
            ..filter
        }),
        _ => Ok(filter),
    }
}

fn takes(spec: &Spec, what: &str) -> String {
    let mut names: Vec<&str> = spec.named.to_vec();
    if matches!(spec.kind, KindArg::Required | KindArg::Optional) {
        names.insert(0, "kind");
    }
    format!("{}() takes {what}: {}", spec.name, names.join(", "))
}

fn set_argument(
    spec: &Spec,
    filter: &mut EventFilter,
    key: &str,
    arg: Arg,
) -> Result<(), ParseError> {
    let kind_allowed = matches!(spec.kind, KindArg::Required | KindArg::Optional);
    match key {
        "kind" if kind_allowed => filter.kind = Some(word(arg)?),
        "within" if spec.named.contains(&"within") => filter.within = Some(duration(arg)?),
        "sku" if spec.named.contains(&"sku") => filter.sku = Some(word(arg)?),
        "category" if spec.named.contains(&"category") => filter.category = Some(word(arg)?),
        other => {
            let message = format!(
                "{}; '{other}' is not one of them",
                takes(spec, "the arguments")
            );
            return Err(ParseError::new(arg.pos, message));
        }
    }
    Ok(())
}

fn word(arg: Arg) -> Result<String, ParseError> {
    match arg.value {
        ArgValue::Word(w) | ArgValue::Lit(Lit::Text(w)) if !w.is_empty() => Ok(w),
        _ => Err(ParseError::new(
            arg.pos,
            "expected a word or a string such as \"shoes\"",
        )),
    }
}

fn duration(arg: Arg) -> Result<Duration, ParseError> {
    match arg.value {
        ArgValue::Lit(Lit::Duration(d) | Lit::Ago(d)) => Ok(d),
        _ => Err(ParseError::new(
            arg.pos,
            "expected a duration like 30d after 'within:'",
        )),
    }
}

/// What follows the call: nothing for a condition, a comparison for a measure.
fn finish(parser: &mut Parser, spec: &Spec, filter: EventFilter) -> Result<Expr, ParseError> {
    if spec.returns == Returns::Bool {
        return Ok(Expr::Did(filter));
    }
    let Tok::Op(op) = parser.peek().clone() else {
        let example = if spec.returns == Returns::Age {
            "> 180d"
        } else {
            ">= 3"
        };
        return parser.fail(format!(
            "expected a comparison such as {example} after {}(…)",
            spec.name
        ));
    };
    parser.bump();
    let (value, pos) = parser.literal()?;
    match (spec.returns, value) {
        (Returns::Age, Lit::Duration(d) | Lit::Ago(d)) => Ok(Expr::Recency(filter, op, d)),
        (Returns::Age, _) => Err(ParseError::new(
            pos,
            format!(
                "{}() is the time since the latest event: compare it with a duration such as 180d",
                spec.name
            ),
        )),
        (_, Lit::Number(n)) => Ok(Expr::Metric(metric(spec, filter), op, n)),
        _ => Err(ParseError::new(
            pos,
            format!(
                "{}() is a number: compare it with a number such as 3",
                spec.name
            ),
        )),
    }
}

fn metric(spec: &Spec, filter: EventFilter) -> Metric {
    match spec.name {
        "spent" => Metric::Spent(filter),
        "opened" => Metric::Opened(filter.within),
        "clicked" => Metric::Clicked(filter.within),
        _ => Metric::Events(filter),
    }
}

/// `exists(attr.age)`, the same as `attr.age exists`.
fn exists(parser: &mut Parser) -> Result<Expr, ParseError> {
    parser.bump();
    parser.expect(&Tok::LParen, "'(' after 'exists'")?;
    let pos = parser.pos();
    let Some(field) = parser.field()? else {
        return parser.fail("expected a field such as attr.age inside exists(…)");
    };
    parser.expect(&Tok::RParen, "')' after the field")?;
    typing::check_test(&field, &Test::Exists).map_err(|m| ParseError::new(pos, m))?;
    Ok(Expr::Field(field, Test::Exists))
}

/// `segment("vip")`: a stored segment, inlined when compiled.
fn segment(parser: &mut Parser) -> Result<Expr, ParseError> {
    parser.bump();
    parser.expect(&Tok::LParen, "'(' after 'segment'")?;
    let name = match parser.peek().clone() {
        Tok::Str(name) if !name.is_empty() => name,
        _ => return parser.fail("expected the segment's name as a string: segment(\"vip\")"),
    };
    parser.bump();
    parser.expect(&Tok::RParen, "')' after the segment's name")?;
    Ok(Expr::Segment(name))
}
