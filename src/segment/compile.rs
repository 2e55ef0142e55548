//! AST → [`SqlFilter`]: a boolean SQL expression over `recipients r` for SQLite or
//! PostgreSQL. Every value and every JSON path is a bound parameter; the SQL text
//! holds only the compiler's own keywords, column names and type names.
//!
//! Every condition compiles to a never-NULL boolean (`COALESCE(…, FALSE)`), so `not`,
//! `and` and `or` follow two-valued logic exactly as the in-memory evaluator does.
//! Behaviour compiles to correlated subqueries on `events e` / `tracking_events t`
//! keyed by `recipient_id` and kind, which the `(recipient_id, kind, occurred_at)`
//! indexes serve.

use super::ast::{EventFilter, Expr, Field, Metric, Order, PURCHASE, Test, Value, cents};
use super::error::SegmentError;
use super::inline::{Resolve, inline};
use super::typing::check_expr;
use crate::store::{Engine, SqlFilter, SqlParam};

/// Compiles `expr` for `engine`, with relative times (`30d ago`, `within: 30d`) taken
/// back from `now` (unix seconds). `resolve` gives the expression text of a stored
/// segment by name; references are inlined, cycles refused.
pub fn compile(
    expr: &Expr,
    engine: Engine,
    now: i64,
    resolve: Resolve<'_>,
) -> Result<SqlFilter, SegmentError> {
    let expr = inline(expr, resolve)?;
    check_expr(&expr)?;
    let mut sql = Sql {
        engine,
        now,
        params: Vec::new(),
    };
    let text = sql.expr(&expr)?;
    Ok(SqlFilter {
        sql: text,
        params: sql.params,
    })
}

pub(super) struct Sql {
    pub(super) engine: Engine,
    now: i64,
    params: Vec<SqlParam>,
}

impl Sql {
    pub(super) fn bind(&mut self, param: SqlParam) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    pub(super) fn text(&mut self, text: &str) -> String {
        self.bind(SqlParam::Text(text.to_string()))
    }

    fn int(&mut self, value: i64) -> String {
        self.bind(SqlParam::Int(value))
    }

    pub(super) fn number(&mut self, value: f64) -> String {
        self.bind(SqlParam::Float(value))
    }

    fn expr(&mut self, expr: &Expr) -> Result<String, SegmentError> {
        Ok(match expr {
            Expr::Const(true) => "1 = 1".to_string(),
            Expr::Const(false) => "1 = 0".to_string(),
            Expr::Not(inner) => format!("NOT ({})", self.expr(inner)?),
            Expr::And(terms) => self.join(terms, " AND ")?,
            Expr::Or(terms) => self.join(terms, " OR ")?,
            Expr::Field(field, test) => self.field(field, test)?,
            Expr::Metric(metric, op, n) => self.metric(metric, *op, *n),
            Expr::Recency(filter, op, d) => {
                let latest = self.events("MAX(e.occurred_at)", filter, filter.kind.as_deref());
                let since = self.int(self.now - d.seconds());
                format!("COALESCE(({latest}) {} {since}, FALSE)", op.flipped().sql())
            }
            Expr::Did(filter) => {
                let select = self.events("1", filter, filter.kind.as_deref());
                format!("EXISTS ({select})")
            }
            Expr::Segment(name) => return Err(SegmentError::UnknownSegment(name.clone())),
        })
    }

    fn join(&mut self, terms: &[Expr], sep: &str) -> Result<String, SegmentError> {
        let parts: Result<Vec<String>, SegmentError> = terms
            .iter()
            .map(|t| self.expr(t).map(|sql| format!("({sql})")))
            .collect();
        Ok(parts?.join(sep))
    }

    fn field(&mut self, field: &Field, test: &Test) -> Result<String, SegmentError> {
        match field {
            Field::Text(column) => self.column(&format!("r.{}", column.name()), test),
            Field::CreatedAt => match test {
                Test::Compare(op, Value::Time(t)) => {
                    let at = self.int(t.resolve(self.now));
                    Ok(format!("r.created_at {} {at}", op.sql()))
                }
                _ => Err(SegmentError::Invalid(
                    "created_at takes a comparison with a time".into(),
                )),
            },
            Field::Attr(path) => Ok(self.attr(path, test)),
        }
    }

    /// A test on a nullable text column.
    fn column(&mut self, column: &str, test: &Test) -> Result<String, SegmentError> {
        let text = |v: &Value| match v {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(SegmentError::Invalid(format!("{column} holds text"))),
        };
        let condition = match test {
            Test::Compare(op, value) => {
                let p = self.text(&text(value)?);
                self.ordered(column, *op, &p)
            }
            Test::In(values) => {
                let list: Result<Vec<String>, SegmentError> =
                    values.iter().map(|v| Ok(self.text(&text(v)?))).collect();
                format!("{column} IN ({})", list?.join(", "))
            }
            Test::Contains(value) => {
                let p = self.text(&text(value)?);
                self.contains_text(column, &p)
            }
            Test::StartsWith(prefix) => self.starts_with(column, prefix),
            Test::EndsWith(suffix) => self.ends_with(column, suffix),
            Test::Exists => return Ok(format!("{column} IS NOT NULL")),
        };
        Ok(format!("COALESCE({condition}, FALSE)"))
    }

    /// `text op param`, ordering by code point on both engines (`COLLATE "C"`).
    pub(super) fn ordered(&self, text: &str, op: Order, param: &str) -> String {
        match (self.engine, op) {
            (Engine::Postgres, Order::Lt | Order::Le | Order::Gt | Order::Ge) => {
                format!("({text} COLLATE \"C\") {} {param}", op.sql())
            }
            _ => format!("{text} {} {param}", op.sql()),
        }
    }

    pub(super) fn contains_text(&self, text: &str, param: &str) -> String {
        match self.engine {
            Engine::Sqlite => format!("instr({text}, {param}) > 0"),
            Engine::Postgres => format!("strpos({text}, {param}) > 0"),
        }
    }

    pub(super) fn starts_with(&mut self, text: &str, prefix: &str) -> String {
        let p = self.text(prefix);
        match self.engine {
            Engine::Sqlite => format!("substr({text}, 1, length({p})) = {p}"),
            Engine::Postgres => format!("starts_with({text}, {p})"),
        }
    }

    pub(super) fn ends_with(&mut self, text: &str, suffix: &str) -> String {
        let p = self.text(suffix);
        match self.engine {
            Engine::Sqlite => format!(
                "(length({text}) >= length({p}) AND substr({text}, length({text}) - length({p}) + 1) = {p})"
            ),
            Engine::Postgres => format!("right({text}, length({p})) = {p}"),
        }
    }

    fn metric(&mut self, metric: &Metric, op: Order, n: f64) -> String {
        let op = op.sql();
        match metric {
            Metric::Events(filter) => {
                let count = self.events("COUNT(*)", filter, filter.kind.as_deref());
                let n = self.number(n);
                format!("({count}) {op} {n}")
            }
            Metric::Spent(filter) => {
                let sum = self.events("SUM(e.amount_cents)", filter, Some(PURCHASE));
                let n = self.number(cents(n));
                format!("COALESCE(({sum}), 0) {op} {n}")
            }
            Metric::Opened(within) => self.engagement("open", *within, op, n),
            Metric::Clicked(within) => self.engagement("click", *within, op, n),
        }
    }

    /// `SELECT {what} FROM events e … WHERE e.recipient_id = r.id AND …`
    fn events(&mut self, what: &str, filter: &EventFilter, kind: Option<&str>) -> String {
        let by_product = filter.sku.is_some() || filter.category.is_some();
        let mut sql = format!("SELECT {what} FROM events e");
        if by_product {
            sql.push_str(" JOIN products p ON p.id = e.product_id");
        }
        sql.push_str(" WHERE e.recipient_id = r.id");
        if let Some(kind) = kind {
            let p = self.text(kind);
            sql.push_str(&format!(" AND e.kind = {p}"));
        }
        if let Some(within) = filter.within {
            let p = self.int(self.now - within.seconds());
            sql.push_str(&format!(" AND e.occurred_at >= {p}"));
        }
        if let Some(sku) = &filter.sku {
            let p = self.text(sku);
            sql.push_str(&format!(" AND p.sku = {p}"));
        }
        if let Some(category) = &filter.category {
            let p = self.text(category);
            sql.push_str(&format!(" AND p.category = {p}"));
        }
        sql
    }

    /// Human opens or clicks recorded for earlier campaigns.
    fn engagement(
        &mut self,
        kind: &str,
        within: Option<super::ast::Duration>,
        op: &str,
        n: f64,
    ) -> String {
        let kind = self.text(kind);
        let human = self.text("human");
        let mut sql = format!(
            "(SELECT COUNT(*) FROM tracking_events t
              WHERE t.recipient_id = r.id AND t.kind = {kind} AND t.verdict = {human}"
        );
        if let Some(within) = within {
            let p = self.int(self.now - within.seconds());
            sql.push_str(&format!(" AND t.occurred_at >= {p}"));
        }
        let n = self.number(n);
        format!("{sql}) {op} {n}")
    }
}
