//! Segments: a small typed language over recipient fields, attributes and behaviour,
//! compiled to parameterised SQL for SQLite and PostgreSQL.
//!
//! ```text
//! country in ["US", "CA"] and attr.age >= 30 and "running" in attr.interests
//! purchases(within: 90d) >= 3 and spent(within: 365d) > 500
//! did(cart_add, within: 2d) and not did(purchase, within: 2d)
//! last(purchase) > 180d ago
//! viewed(category: "shoes", within: 30d) and not segment("vip")
//! opened(within: 30d) == 0 and created_at < 60d ago
//! ```
//!
//! # Grammar
//!
//! ```text
//! expr       = and { "or" and }
//! and        = unary { "and" unary }
//! unary      = "not" unary | primary
//! primary    = "(" expr ")" | "true" | "false"
//!            | field test                          country == "US"
//!            | value ["not"] "in" field            "running" in attr.interests
//!            | value op field                      30 <= attr.age (same as attr.age >= 30)
//!            | "exists" "(" field ")"              the same as: field exists
//!            | condition-call | measure op value | "last" args op duration ["ago"]
//!            | "segment" "(" string ")"
//! field      = "email" | "first_name" | "last_name" | "country" | "city" | "locale"
//!            | "timezone" | "created_at" | "attr" "." name { "." name }
//! test       = op value | ["not"] "in" "[" value { "," value } "]"
//!            | ["not"] "contains" value | ["not"] "starts_with" string
//!            | ["not"] "ends_with" string | ["not"] "exists"
//! op         = "==" | "!=" | "<" | "<=" | ">" | ">="
//! value      = string | number | "true" | "false" | duration "ago"
//! condition-call = ("did" | "viewed" | "purchased") args
//! measure    = ("events" | "purchases" | "views" | "cart_adds" | "spent"
//!              | "opened" | "clicked") args
//! args       = "(" [ arg { "," arg } ] ")"
//! arg        = kind | "kind:" kind | "within:" duration | "sku:" text | "category:" text
//! kind, text = word | string
//!
//! function         kind            named arguments
//! events           optional        within, sku, category
//! purchases, views, cart_adds, spent, viewed, purchased
//!                  fixed           within, sku, category
//! did              required        within, sku, category
//! last             required        sku, category
//! opened, clicked  none            within
//!
//! duration   = digits ("min" | "h" | "d" | "w" | "mo" | "y")   (mo = 30d, y = 365d)
//! string     = '"' … '"' with escapes \" \\ \n \t \r \u{…}
//! number     = ["-"] digits ["." digits]
//! ```
//!
//! `and` binds tighter than `or`; `not` tighter than both. Keywords `and`, `or`, `not`
//! are accepted in any case. `#` starts a comment to the end of the line.
//!
//! # Meaning
//!
//! - **Text fields** (`email` … `timezone`) compare with strings, case-sensitively and by
//!   code point. `created_at` is a point in time: `created_at < 60d ago` (signed up
//!   more than 60 days ago) or `created_at >= "2026-01-31"` (a date is midnight UTC; an
//!   RFC 3339 time is accepted too).
//! - **Attributes** are typed at comparison: `attr.age >= 30` holds where `age` is a JSON
//!   number, `attr.tier == "gold"` where it is a string, `attr.vip == true` where it is
//!   a boolean (booleans take `==`/`!=` only). `in [..]` tests equality with any listed
//!   value (one type per list). `contains` (and `value in attr.list`) holds where the
//!   attribute is a list with that element, or a string containing that text.
//!   `exists`: present and not `null`. `attr.a.b` reads nested objects.
//! - **Two-valued logic.** A test on a missing value (NULL column, absent attribute,
//!   attribute of another type, no matching event for `last()`) is false, whatever the
//!   operator: `country != "US"` does not match recipients without a country, while
//!   `not country == "US"` does. `not` always negates exactly.
//! - **Behaviour.** `events(kind, within:, sku:, category:)` counts events (every kind
//!   when none is given); `purchases`, `views`, `cart_adds` are `events` of one kind.
//!   `spent(...)` sums the `amount` of purchases in currency units (`spent() > 49.99`
//!   compares cents exactly). `did(kind, ...)` holds when at least one such event
//!   exists; `viewed(...)` and `purchased(...)` are `did(view, ...)` and
//!   `did(purchase, ...)`. `within: 30d` keeps events at or after `now - 30d`.
//! - **Recency.** `last(kind, sku:, category:)` is the time since the latest such event,
//!   a duration: `last(purchase) > 180d` (or, reading as English, `> 180d ago`) means
//!   "the last purchase was more than 180 days ago"; recipients who never purchased
//!   do not match.
//! - **Engagement.** `opened(within:)` and `clicked(within:)` count the human opens and
//!   clicks recorded for earlier campaigns (machine opens, e.g. privacy proxies, are
//!   not counted).
//! - **References.** `segment("vip")` is replaced by the stored segment's expression
//!   when compiled; unknown names and cycles (`a` uses `b` uses `a`) are errors.
//!
//! Anything else, SQL included (`1=1; DROP TABLE recipients`), is refused by the
//! parser with the line and column of the first character it cannot read.
//!
//! # Use
//!
//! ```
//! use mailcast::segment::{compile, no_segments, parse};
//! use mailcast::store::Engine;
//!
//! let expr = parse(r#"country in ["US", "CA"] and purchases(within: 90d) >= 3"#).unwrap();
//! let filter = compile(&expr, Engine::Sqlite, 1_800_000_000, &no_segments).unwrap();
//! assert!(filter.sql.contains("$1"));
//! assert_eq!(filter.params.len(), 5);
//! ```

pub mod ast;
mod calls;
mod compile;
mod compile_attr;
mod error;
pub mod eval;
mod inline;
mod lexer;
mod parser;
mod print;
mod typing;

use std::collections::HashMap;

pub use ast::Expr;
pub use compile::compile;
pub use error::{ParseError, Pos, SegmentError};
pub use inline::{MAX_SEGMENT_DEPTH, MAX_TERMS, Resolve, inline, no_segments, references};
pub use parser::{MAX_DEPTH, parse};
pub use typing::check_expr;

use crate::store::{SqlFilter, Store};

/// Parses `text` and compiles it for the store's engine, resolving `segment("…")`
/// references from the stored segments.
pub async fn compile_text(store: &Store, text: &str, now: i64) -> Result<SqlFilter, SegmentError> {
    let expr = parse(text)?;
    compile_stored(store, &expr, now).await
}

/// Compiles the stored segment `name`.
pub async fn compile_named(store: &Store, name: &str, now: i64) -> Result<SqlFilter, SegmentError> {
    compile_stored(store, &Expr::Segment(name.to_string()), now).await
}

/// Compiles each of a campaign's declared segments, for
/// [`Store::recipient_segment_names`].
pub async fn compile_declared(
    store: &Store,
    names: &[String],
    now: i64,
) -> Result<Vec<(String, SqlFilter)>, SegmentError> {
    let mut declared = Vec::with_capacity(names.len());
    for name in names {
        declared.push((name.clone(), compile_named(store, name, now).await?));
    }
    Ok(declared)
}

/// Compiles `expr` with references resolved from the store.
pub async fn compile_stored(
    store: &Store,
    expr: &Expr,
    now: i64,
) -> Result<SqlFilter, SegmentError> {
    let stored = stored_definitions(store, expr).await?;
    compile(expr, store.engine(), now, &|name| stored.get(name).cloned())
}

/// Checks `definition` as the new expression of the stored segment `name`, before it
/// is saved: it must compile, and the segments it refers to must exist and must not
/// lead back to `name`. The one check of `mailcast segment save` and of
/// `PUT /api/segments/{name}`; returns the filter `name` will have.
pub async fn check_definition(
    store: &Store,
    name: &str,
    definition: &Expr,
    now: i64,
) -> Result<SqlFilter, SegmentError> {
    let mut stored = stored_definitions(store, definition).await?;
    // Checked as it will be stored: `segment(name)` resolves to the new definition, so
    // a reference leading back to it is a cycle.
    stored.insert(name.to_string(), definition.to_string());
    let reference = Expr::Segment(name.to_string());
    compile(&reference, store.engine(), now, &|n| stored.get(n).cloned())
}

/// The expression text of every stored segment `expr` refers to, directly or through
/// other segments. Names that are not stored are left out (compiling reports them).
pub async fn stored_definitions(
    store: &Store,
    expr: &Expr,
) -> Result<HashMap<String, String>, SegmentError> {
    let mut found: HashMap<String, String> = HashMap::new();
    let mut queue = references(expr);
    while let Some(name) = queue.pop() {
        if found.contains_key(&name) {
            continue;
        }
        let Some(segment) = store.segment_by_name(&name).await? else {
            continue;
        };
        if let Ok(parsed) = parse(&segment.expression) {
            queue.extend(references(&parsed));
        }
        found.insert(name, segment.expression);
    }
    Ok(found)
}
