//! The dashboard's segment list: stored segments a page at a time, and which campaigns
//! use each, as their audience (`campaigns.segment_id`) or as a declared segment
//! (`declared_segments` in the campaign's settings).

use serde::Serialize;

use super::{Engine, Segment, Store, StoreError, built, on_pool};

/// One campaign using a segment, with how many campaigns use it that way in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SegmentUse {
    pub segment: String,
    pub campaign_id: i64,
    pub campaign_name: String,
    /// Campaigns using `segment` this way, including those not listed.
    pub total: i64,
}

/// Campaigns with a segment of `$1` (a JSON list of names) as their audience.
const AUDIENCE_USES: &str = "SELECT s.name AS segment, c.id AS campaign_id, c.name AS campaign_name
     FROM campaigns c JOIN segments s ON s.id = c.segment_id
     WHERE s.name IN ({names})";

/// Campaigns declaring a segment of `$1`. Settings are JSON text in SQLite and
/// JSONB in PostgreSQL, where a missing or non-list `declared_segments` lists nothing.
const DECLARED_USES_SQLITE: &str = "SELECT d.value AS segment, c.id AS campaign_id,
        c.name AS campaign_name
     FROM campaigns c, json_each(c.settings, '$.declared_segments') d
     WHERE d.value IN ({names})";
const DECLARED_USES_POSTGRES: &str = "SELECT d.value AS segment, c.id AS campaign_id,
        c.name AS campaign_name
     FROM campaigns c CROSS JOIN LATERAL jsonb_array_elements_text(
         CASE WHEN jsonb_typeof(c.settings -> 'declared_segments') = 'array'
              THEN c.settings -> 'declared_segments' ELSE '[]'::jsonb END) AS d(value)
     WHERE d.value IN ({names})";

impl Store {
    /// Up to `limit` stored segments by name, those after `after` (all when None).
    pub async fn segment_page(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Segment>, StoreError> {
        let sql = "SELECT id, name, expression, description FROM segments
                   WHERE name > $1 ORDER BY name LIMIT $2";
        Ok(on_pool!(self, pool => sqlx::query_as(sql)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// The newest `per_segment` campaigns with each of `names` as their audience.
    pub async fn segment_audience_uses(
        &self,
        names: &[String],
        per_segment: i64,
    ) -> Result<Vec<SegmentUse>, StoreError> {
        self.newest_uses(AUDIENCE_USES, names, per_segment).await
    }

    /// The newest `per_segment` campaigns declaring each of `names`.
    pub async fn segment_declared_uses(
        &self,
        names: &[String],
        per_segment: i64,
    ) -> Result<Vec<SegmentUse>, StoreError> {
        let uses = match self.engine() {
            Engine::Sqlite => DECLARED_USES_SQLITE,
            Engine::Postgres => DECLARED_USES_POSTGRES,
        };
        self.newest_uses(uses, names, per_segment).await
    }

    /// The rows of `uses` (a query of segment, campaign_id, campaign_name over the
    /// names in `$1`), newest campaigns first, at most `per_segment` per segment.
    async fn newest_uses(
        &self,
        uses: &str,
        names: &[String],
        per_segment: i64,
    ) -> Result<Vec<SegmentUse>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let uses = uses.replace("{names}", &self.json_strings(1));
        let sql = format!(
            "SELECT segment, campaign_id, campaign_name, total FROM (
                SELECT u.segment, u.campaign_id, u.campaign_name,
                       ROW_NUMBER() OVER (PARTITION BY u.segment ORDER BY u.campaign_id DESC) AS place,
                       COUNT(*) OVER (PARTITION BY u.segment) AS total
                FROM ({uses}) u) ranked
             WHERE place <= $2
             ORDER BY segment, campaign_id DESC"
        );
        let names = serde_json::to_string(names).expect("names serialise");
        Ok(on_pool!(self, pool => sqlx::query_as(built(&sql))
            .bind(&names)
            .bind(per_segment)
            .fetch_all(pool)
            .await)?)
    }
}
