//! Recipients whose date (an attribute such as a birthday, or the day they were
//! created) falls on given month-days: the candidates of a date-triggered automation.

use super::{Engine, Store, StoreError, built, on_pool};

/// Which date an automation looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateColumn {
    /// A top-level or dotted attribute holding `YYYY-MM-DD` or `MM-DD`.
    Attribute(String),
    CreatedAt,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DateCandidate {
    pub id: i64,
    pub timezone: Option<String>,
    /// `MM-DD`.
    pub month_day: String,
    pub created_at: i64,
}

impl Store {
    /// Active recipients whose date is on one of `month_days` (`MM-DD`).
    pub async fn date_candidates(
        &self,
        column: &DateColumn,
        month_days: &[String],
    ) -> Result<Vec<DateCandidate>, StoreError> {
        let value = month_day_sql(self.engine(), column);
        let days = serde_json::to_string(month_days).expect("days serialise");
        let list = self.json_strings(1);
        let sql = format!(
            "SELECT id, timezone, month_day, created_at FROM (
                 SELECT r.id, r.timezone, r.created_at, {value} AS month_day
                 FROM recipients r WHERE r.status = 'active') c
             WHERE c.month_day IN ({list})"
        );
        Ok(
            on_pool!(self, pool => sqlx::query_as(built(&sql)).bind(days)
            .fetch_all(pool).await)?,
        )
    }
}

/// The `MM-DD` of the column as SQL; attribute paths were checked to be identifiers
/// joined by dots when the automation was loaded.
fn month_day_sql(engine: Engine, column: &DateColumn) -> String {
    match (engine, column) {
        (Engine::Sqlite, DateColumn::CreatedAt) => {
            "strftime('%m-%d', r.created_at, 'unixepoch')".into()
        }
        (Engine::Postgres, DateColumn::CreatedAt) => {
            "to_char(to_timestamp(r.created_at) AT TIME ZONE 'UTC', 'MM-DD')".into()
        }
        (Engine::Sqlite, DateColumn::Attribute(path)) => {
            format!("substr(r.attributes ->> '$.{}', -5)", safe_path(path))
        }
        (Engine::Postgres, DateColumn::Attribute(path)) => {
            let parts = safe_path(path).replace('.', ",");
            format!("right(r.attributes #>> '{{{parts}}}', 5)")
        }
    }
}

fn safe_path(path: &str) -> String {
    path.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .collect()
}
