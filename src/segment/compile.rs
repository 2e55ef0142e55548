//! AST → [`SqlFilter`]: a boolean SQL expression over `recipients r` for SQLite or
//! PostgreSQL. Every value and every JSON path is a bound parameter; the SQL text
//! holds only the compiler's own keywords, column names and type names.
//!
//! Every condition compiles to a never-NULL boolean (`col IS NOT NULL AND …`,
//! `COALESCE(…, FALSE)`, `EXISTS`), so `not`, `and` and `or` follow two-valued logic
//! exactly as the in-memory evaluator does.
//!
//! Behaviour compiles to correlated subqueries on `events e` / `tracking_events t`
//! keyed by `recipient_id` and kind, which the `(recipient_id, kind, occurred_at)`
//! indexes serve. Wherever the meaning allows, a test is an `EXISTS` / `NOT EXISTS`
//! (`did(…)`, `purchases(…) >= 1`, `opened(…) == 0`, `last(…) > 180d`) or is guarded
//! by one (`purchases(…) >= 3` is `EXISTS (…) AND (SELECT COUNT(*) …) >= 3`): at the
//! top of a WHERE clause PostgreSQL turns those into hash semi- and anti-joins over
//! the `(kind, occurred_at)` indexes instead of running a subquery for each of a
//! million recipients, and elsewhere it can still pick a hashed or a per-row subplan;
//! the count or sum then only runs for recipients that have a matching event at all.
//! (migrations/*/0002_segment_indexes.sql holds the indexes; benches/SEGMENTS.md the
//! figures.)

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
    /// The placeholder of `param`. A value bound before (same type, same value) keeps
    /// its placeholder, so a test written as two subqueries binds its values once.
    pub(super) fn bind(&mut self, param: SqlParam) -> String {
        let index = match self.params.iter().position(|p| *p == param) {
            Some(i) => i + 1,
            None => {
                self.params.push(param);
                self.params.len()
            }
        };
        format!("${index}")
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
            Expr::Recency(filter, op, d) => self.recency(filter, *op, *d),
            Expr::Did(filter) => {
                let select = self.events("1", filter, filter.kind.as_deref(), None);
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
        // Never NULL, and unlike COALESCE(…, FALSE) the planner can estimate both
        // halves from the column's statistics.
        Ok(format!("{column} IS NOT NULL AND {condition}"))
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

    /// `latest {op.flipped()} since`, where `latest` is the time of the newest matching
    /// event and recipients without one never match: `last(purchase) > 180d` is "a
    /// purchase, and none in the last 180 days".
    fn recency(&mut self, filter: &EventFilter, op: Order, d: super::ast::Duration) -> String {
        let kind = filter.kind.as_deref();
        let since = self.now - d.seconds();
        match op.flipped() {
            // The newest is (at or) after `since`: some event is.
            latest @ (Order::Gt | Order::Ge) => {
                let after = self.events("1", filter, kind, Some((latest, since)));
                format!("EXISTS ({after})")
            }
            // The newest is before (or at) `since`: there is one, and none after.
            latest @ (Order::Lt | Order::Le) => {
                let any = self.events("1", filter, kind, None);
                let later = if latest == Order::Lt {
                    Order::Ge
                } else {
                    Order::Gt
                };
                let after = self.events("1", filter, kind, Some((later, since)));
                format!("EXISTS ({any}) AND NOT EXISTS ({after})")
            }
            latest @ (Order::Eq | Order::Ne) => {
                let max = self.events("MAX(e.occurred_at)", filter, kind, None);
                let since = self.int(since);
                format!("COALESCE(({max}) {} {since}, FALSE)", latest.sql())
            }
        }
    }

    fn metric(&mut self, metric: &Metric, op: Order, n: f64) -> String {
        match metric {
            Metric::Events(filter) => {
                let kind = filter.kind.as_deref();
                let mut select = |sql: &mut Sql, what: &str| sql.events(what, filter, kind, None);
                self.count_test(&mut select, op, n)
            }
            Metric::Spent(filter) => {
                let target = cents(n);
                let sum = self.events("SUM(e.amount_cents)", filter, Some(PURCHASE), None);
                let p = self.number(target);
                let test = format!("COALESCE(({sum}), 0) {} {p}", op.sql());
                if op.holds(&0.0, &target) {
                    return test;
                }
                // Without a purchase the sum is 0, which fails the test.
                let any = self.events("1", filter, Some(PURCHASE), None);
                format!("EXISTS ({any}) AND {test}")
            }
            Metric::Opened(within) => {
                let mut select = |sql: &mut Sql, what: &str| sql.engagement(what, "open", *within);
                self.count_test(&mut select, op, n)
            }
            Metric::Clicked(within) => {
                let mut select = |sql: &mut Sql, what: &str| sql.engagement(what, "click", *within);
                self.count_test(&mut select, op, n)
            }
        }
    }

    /// `(SELECT COUNT(*) …) op n`, written as `EXISTS` / `NOT EXISTS` when it means
    /// "at least one" / "none", and guarded by `EXISTS` when no match means false.
    /// `select(sql, what)` gives `SELECT {what} FROM … WHERE …` of the counted rows.
    fn count_test(
        &mut self,
        select: &mut dyn FnMut(&mut Sql, &str) -> String,
        op: Order,
        n: f64,
    ) -> String {
        match CountTest::of(op, n) {
            CountTest::AtLeastOne => format!("EXISTS ({})", select(self, "1")),
            CountTest::None => format!("NOT EXISTS ({})", select(self, "1")),
            CountTest::NeedsOne => {
                let any = select(self, "1");
                let count = select(self, "COUNT(*)");
                let n = self.number(n);
                format!("EXISTS ({any}) AND ({count}) {} {n}", op.sql())
            }
            CountTest::Other => {
                let count = select(self, "COUNT(*)");
                let n = self.number(n);
                format!("({count}) {} {n}", op.sql())
            }
        }
    }

    /// `SELECT {what} FROM events e … WHERE e.recipient_id = r.id AND …`, with
    /// `e.occurred_at {op} {time}` when `time` is given.
    fn events(
        &mut self,
        what: &str,
        filter: &EventFilter,
        kind: Option<&str>,
        time: Option<(Order, i64)>,
    ) -> String {
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
        if let Some((op, time)) = time {
            let p = self.int(time);
            sql.push_str(&format!(" AND e.occurred_at {} {p}", op.sql()));
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

    /// `SELECT {what} FROM tracking_events t WHERE …`: the human opens or clicks
    /// recorded for earlier campaigns.
    fn engagement(
        &mut self,
        what: &str,
        kind: &str,
        within: Option<super::ast::Duration>,
    ) -> String {
        let kind = self.text(kind);
        let human = self.text("human");
        let mut sql = format!(
            "SELECT {what} FROM tracking_events t
              WHERE t.recipient_id = r.id AND t.kind = {kind} AND t.verdict = {human}"
        );
        if let Some(within) = within {
            let p = self.int(self.now - within.seconds());
            sql.push_str(&format!(" AND t.occurred_at >= {p}"));
        }
        sql
    }
}

/// What `count op n` means for a count of matching rows (0, 1, 2, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountTest {
    /// Holds exactly when the count is at least one.
    AtLeastOne,
    /// Holds exactly when the count is zero.
    None,
    /// Never holds for a count of zero.
    NeedsOne,
    Other,
}

impl CountTest {
    fn of(op: Order, n: f64) -> CountTest {
        let holds_for_zero = op.holds(&0.0, &n);
        let below_one = (0.0..1.0).contains(&n);
        let up_to_one = n > 0.0 && n <= 1.0;
        match op {
            Order::Gt if below_one => CountTest::AtLeastOne,
            Order::Ge if up_to_one => CountTest::AtLeastOne,
            Order::Ne if n == 0.0 => CountTest::AtLeastOne,
            Order::Eq if n == 0.0 => CountTest::None,
            Order::Lt if up_to_one => CountTest::None,
            Order::Le if below_one => CountTest::None,
            _ if !holds_for_zero => CountTest::NeedsOne,
            _ => CountTest::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CountTest::of` agrees with the comparison itself on every count.
    #[test]
    fn count_tests_mean_what_the_comparison_means() {
        let ns = [-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0];
        for op in Order::ALL {
            for n in ns {
                let test = CountTest::of(op, n);
                for count in 0..6 {
                    let holds = op.holds(&f64::from(count), &n);
                    match test {
                        CountTest::AtLeastOne => assert_eq!(holds, count >= 1, "{op:?} {n}"),
                        CountTest::None => assert_eq!(holds, count == 0, "{op:?} {n}"),
                        CountTest::NeedsOne if count == 0 => assert!(!holds, "{op:?} {n}"),
                        _ => {}
                    }
                }
            }
        }
        assert_eq!(CountTest::of(Order::Ge, 3.0), CountTest::NeedsOne);
        assert_eq!(CountTest::of(Order::Eq, 0.0), CountTest::None);
        assert_eq!(CountTest::of(Order::Gt, 0.0), CountTest::AtLeastOne);
        assert_eq!(CountTest::of(Order::Lt, 3.0), CountTest::Other);
    }
}
