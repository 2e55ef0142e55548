//! Reads the dashboard's lists need: pages by keyset (never a whole table) and the
//! headline figures of the campaigns on one page.

use super::{Campaign, Store, StoreError, built, on_pool};

/// Unique recipients with a human open and a human click, per campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HumanReach {
    pub opened: i64,
    pub clicked: i64,
}

impl Store {
    /// Up to `limit` campaigns, newest first, older than `before` (an id) when given.
    pub async fn campaign_page(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Campaign>, StoreError> {
        let sql = format!(
            "SELECT {} FROM campaigns WHERE id < $1 ORDER BY id DESC LIMIT $2",
            super::campaigns::COLUMNS
        );
        Ok(on_pool!(self, pool => sqlx::query_as(built(&sql))
            .bind(before.unwrap_or(i64::MAX)).bind(limit).fetch_all(pool).await)?)
    }

    /// The campaign's unique human openers and clickers, from its kept totals (a
    /// recipient is in one variant's total only).
    pub async fn human_reach(&self, campaign_id: i64) -> Result<HumanReach, StoreError> {
        let sql = "SELECT kind, CAST(SUM(recipients) AS BIGINT) FROM engagement_totals
                   WHERE campaign_id = $1 AND kind IN ('open', 'click') AND verdict = 'human'
                   GROUP BY kind";
        let rows: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(campaign_id).fetch_all(pool).await)?;
        let mut reach = HumanReach::default();
        for (kind, count) in rows {
            match kind.as_str() {
                "open" => reach.opened = count,
                _ => reach.clicked = count,
            }
        }
        Ok(reach)
    }
}
