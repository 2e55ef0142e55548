//! Tests on JSON attributes. A value is typed at comparison: `attr.age >= 30` holds
//! only where `age` is a JSON number, `attr.tier == "gold"` only where `tier` is a JSON
//! string, so a missing or differently typed attribute never matches.
//!
//! SQLite: `json_type` / `json_extract` / `json_each` with the path `$."a"."b"` bound.
//! PostgreSQL: `jsonb_extract_path(r.attributes, $a, $b)` with each key bound; values
//! are only cast inside `CASE WHEN jsonb_typeof(…) = …`, which PostgreSQL evaluates in
//! order, so a string is never cast to a number.

use super::ast::{Order, Test, Value};
use super::compile::Sql;
use crate::store::{Engine, SqlParam};

/// One attribute's SQL accessors, its path already bound.
struct Attr {
    /// The JSON type name: `json_type(…)` / `jsonb_typeof(…)`.
    kind: String,
    /// SQLite: the SQL value; PostgreSQL: the jsonb value.
    value: String,
    /// The value as text (strings only).
    text: String,
    /// SQLite only: the bound path, for `json_each`.
    path: String,
}

impl Sql {
    pub(super) fn attr(&mut self, path: &[String], test: &Test) -> String {
        let attr = self.accessors(path);
        let condition = match test {
            Test::Compare(op, value) => return self.attr_compare(&attr, *op, value),
            Test::In(values) => {
                let each: Vec<String> = values
                    .iter()
                    .map(|v| self.attr_compare(&attr, Order::Eq, v))
                    .collect();
                return format!("({})", each.join(" OR "));
            }
            Test::Contains(value) => self.attr_contains(&attr, value),
            Test::StartsWith(prefix) => {
                let test = self.starts_with(&attr.text, prefix);
                self.when_text(&attr, &test)
            }
            Test::EndsWith(suffix) => {
                let test = self.ends_with(&attr.text, suffix);
                self.when_text(&attr, &test)
            }
            Test::Exists => format!("{} <> 'null'", attr.kind),
        };
        format!("COALESCE({condition}, FALSE)")
    }

    fn accessors(&mut self, path: &[String]) -> Attr {
        match self.engine {
            Engine::Sqlite => {
                let quoted: Vec<String> = path.iter().map(|k| format!(".\"{k}\"")).collect();
                let p = self.bind(SqlParam::Text(format!("${}", quoted.concat())));
                Attr {
                    kind: format!("json_type(r.attributes, {p})"),
                    value: format!("json_extract(r.attributes, {p})"),
                    text: format!("json_extract(r.attributes, {p})"),
                    path: p,
                }
            }
            Engine::Postgres => {
                let keys: Vec<String> = path.iter().map(|k| self.text(k)).collect();
                let keys = keys.join(", ");
                Attr {
                    kind: format!("jsonb_typeof(jsonb_extract_path(r.attributes, {keys}))"),
                    value: format!("jsonb_extract_path(r.attributes, {keys})"),
                    text: format!("jsonb_extract_path_text(r.attributes, {keys})"),
                    path: String::new(),
                }
            }
        }
    }

    /// `condition` where the attribute is a string, FALSE elsewhere.
    fn when_text(&self, attr: &Attr, condition: &str) -> String {
        match self.engine {
            Engine::Sqlite => format!("{} = 'text' AND {condition}", attr.kind),
            Engine::Postgres => format!("CASE WHEN {} = 'string' THEN {condition} END", attr.kind),
        }
    }

    fn attr_compare(&mut self, attr: &Attr, op: Order, value: &Value) -> String {
        let condition = match value {
            Value::Number(n) => {
                let p = self.number(*n);
                match self.engine {
                    Engine::Sqlite => format!(
                        "{} IN ('integer', 'real') AND {} {} {p}",
                        attr.kind,
                        attr.value,
                        op.sql()
                    ),
                    Engine::Postgres => format!(
                        "CASE WHEN {} = 'number' THEN CAST({} AS DOUBLE PRECISION) {} {p} END",
                        attr.kind,
                        attr.text,
                        op.sql()
                    ),
                }
            }
            Value::Text(s) => {
                let p = self.text(s);
                let test = self.ordered(&attr.text, op, &p);
                self.when_text(attr, &test)
            }
            Value::Bool(b) => self.attr_is_bool(attr, if op == Order::Ne { !b } else { *b }),
            Value::Time(_) => "1 = 0".to_string(),
        };
        format!("COALESCE({condition}, FALSE)")
    }

    fn attr_is_bool(&mut self, attr: &Attr, b: bool) -> String {
        match self.engine {
            Engine::Sqlite => {
                let p = self.text(if b { "true" } else { "false" });
                format!("{} = {p}", attr.kind)
            }
            Engine::Postgres => {
                let p = self.bind(SqlParam::Bool(b));
                format!("{} = to_jsonb(CAST({p} AS BOOLEAN))", attr.value)
            }
        }
    }

    /// A list holding the value, or a string holding the text.
    fn attr_contains(&mut self, attr: &Attr, value: &Value) -> String {
        let element = self.element(attr, value);
        let substring = match value {
            Value::Text(s) => {
                let p = self.text(s);
                Some(self.contains_text(&attr.text, &p))
            }
            _ => None,
        };
        let string_type = match self.engine {
            Engine::Sqlite => "text",
            Engine::Postgres => "string",
        };
        let substring = substring
            .map(|test| format!(" WHEN '{string_type}' THEN {test}"))
            .unwrap_or_default();
        format!(
            "CASE {} WHEN 'array' THEN {element}{substring} ELSE FALSE END",
            attr.kind
        )
    }

    /// The attribute, an array, has an element equal to `value`.
    fn element(&mut self, attr: &Attr, value: &Value) -> String {
        if self.engine == Engine::Postgres {
            let (p, sql_type) = match value {
                Value::Number(n) => (self.number(*n), "DOUBLE PRECISION"),
                Value::Bool(b) => (self.bind(SqlParam::Bool(*b)), "BOOLEAN"),
                Value::Text(s) => (self.text(s), "TEXT"),
                Value::Time(_) => return "FALSE".to_string(),
            };
            return format!(
                "{} @> jsonb_build_array(CAST({p} AS {sql_type}))",
                attr.value
            );
        }
        let test = match value {
            Value::Number(n) => {
                let p = self.number(*n);
                format!("j.type IN ('integer', 'real') AND j.value = {p}")
            }
            Value::Bool(b) => {
                let p = self.text(if *b { "true" } else { "false" });
                format!("j.type = {p}")
            }
            Value::Text(s) => {
                let p = self.text(s);
                format!("j.type = 'text' AND j.value = {p}")
            }
            Value::Time(_) => return "FALSE".to_string(),
        };
        format!(
            "EXISTS (SELECT 1 FROM json_each(r.attributes, {}) j WHERE {test})",
            attr.path
        )
    }
}
