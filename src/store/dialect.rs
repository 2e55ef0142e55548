//! Dialect helpers: the SQL fragments whose text differs between SQLite and PostgreSQL
//! and that several queries share. Engine-specific statements sit beside their
//! callers; these are the building blocks.

use super::{Engine, Store};

impl Store {
    /// A sub-select yielding the integers of the JSON array bound at `$n`.
    pub(crate) fn json_ints(&self, n: usize) -> String {
        match self.engine() {
            Engine::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Engine::Postgres => format!("SELECT jsonb_array_elements_text(${n}::jsonb)::bigint"),
        }
    }

    /// A row source `p(campaign_id, recipient_id)` over the pairs: one JSON array at
    /// `$1` on SQLite, two arrays at `$1` and `$2` on PostgreSQL. The PostgreSQL
    /// queries are planned at every run (`persistent(false)`): a cached generic plan
    /// made while `tracking_events` was empty scans the whole table per batch once it
    /// has grown (seconds per batch, measured).
    pub(super) fn pair_table(&self) -> &'static str {
        match self.engine() {
            Engine::Sqlite => {
                "(SELECT json_extract(value, '$[0]') AS campaign_id,
                         json_extract(value, '$[1]') AS recipient_id
                  FROM json_each($1)) p"
            }
            Engine::Postgres => {
                "UNNEST($1::bigint[], $2::bigint[]) AS p(campaign_id, recipient_id)"
            }
        }
    }
}
