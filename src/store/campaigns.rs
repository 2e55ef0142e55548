use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use super::{Store, StoreError, built, on_pool};
use crate::domain::{CampaignKind, CampaignStatus};

/// Per-campaign options kept as JSON, so later options need no migration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CampaignSettings {
    /// UTM parameters appended to tracked links.
    pub utm: std::collections::BTreeMap<String, String>,
    /// Names of segments whose membership the template may branch on.
    pub declared_segments: Vec<String>,
    /// Name of the SMTP relay to send through first (others take over on failure).
    pub smtp_relay: Option<String>,
    /// Values the template sees as `data` (a triggered send's own, such as an order
    /// number).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Sent at this wall time in each recipient's own zone (`2026-12-08T09:00`; see
    /// `schedule::LocalSendTime`); `send_at` is then when it first comes anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_send_time: Option<String>,
    /// Quiet hours for this campaign (`21:00-08:00`), or `off`; the worker's when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<String>,
    /// Kept running for deliveries added later (an automation step's campaign): it
    /// is never marked done when its ledger is drained.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub standing: bool,
    /// Variants, a test share and wait, a holdout (see `crate::experiment`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<crate::experiment::Experiment>,
    /// How long after a human click a purchase is still this campaign's (seconds);
    /// [`super::ATTRIBUTION_WINDOW_SECONDS`] when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution_window: Option<i64>,
    /// View-through: a purchase no human click explains goes to the last message
    /// delivered within this many seconds before it. Off when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_through_window: Option<i64>,
}

impl CampaignSettings {
    pub fn attribution_window(&self) -> i64 {
        self.attribution_window
            .unwrap_or(super::ATTRIBUTION_WINDOW_SECONDS)
    }
}

#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub kind: CampaignKind,
    pub template_id: i64,
    pub segment_id: Option<i64>,
    pub topic: Option<String>,
    pub from_name: String,
    pub from_email: String,
    pub reply_to: Option<String>,
    pub send_at: Option<i64>,
    pub settings: CampaignSettings,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub kind: CampaignKind,
    #[sqlx(try_from = "String")]
    pub status: CampaignStatus,
    pub template_id: i64,
    pub segment_id: Option<i64>,
    pub topic_id: Option<i64>,
    pub from_name: String,
    pub from_email: String,
    pub reply_to: Option<String>,
    pub send_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub settings: Json<CampaignSettings>,
    /// Why the campaign paused itself (a relay refused the sender, too many render
    /// failures); None when a person paused it or it is not paused.
    pub pause_reason: Option<String>,
}

pub(super) const COLUMNS: &str =
    "id, name, kind, status, template_id, segment_id, topic_id, from_name,
    from_email, reply_to, send_at, started_at, finished_at, settings, pause_reason";

impl Store {
    pub async fn create_campaign(&self, campaign: &NewCampaign) -> Result<i64, StoreError> {
        let topic_id = match &campaign.topic {
            Some(topic) => {
                self.ensure_topics(&[topic]).await?;
                Some(self.topic_id(topic).await?)
            }
            None => None,
        };
        let sql = "INSERT INTO campaigns (name, kind, status, template_id, segment_id, topic_id,
                       from_name, from_email, reply_to, send_at, settings, created_at, updated_at)
                   VALUES ($1, $2, 'draft', $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
                   RETURNING id";
        let (id,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(&campaign.name)
            .bind(campaign.kind.as_str())
            .bind(campaign.template_id)
            .bind(campaign.segment_id)
            .bind(topic_id)
            .bind(&campaign.from_name)
            .bind(&campaign.from_email)
            .bind(&campaign.reply_to)
            .bind(campaign.send_at)
            .bind(Json(&campaign.settings))
            .bind(crate::time::now())
            .fetch_one(pool)
            .await)?;
        Ok(id)
    }

    async fn topic_id(&self, name: &str) -> Result<i64, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, pool =>
            sqlx::query_as("SELECT id FROM topics WHERE name = $1")
                .bind(name).fetch_optional(pool).await)?;
        row.map(|(id,)| id)
            .ok_or_else(|| StoreError::not_found("topic", name))
    }

    pub async fn campaign(&self, id: i64) -> Result<Campaign, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1");
        let row = on_pool!(self, pool =>
            sqlx::query_as(built(&sql)).bind(id).fetch_optional(pool).await)?;
        row.ok_or_else(|| StoreError::not_found("campaign", id.to_string()))
    }

    /// Campaigns whose bounce and complaint rates still matter: sending or paused, or
    /// finished since `since`; newest first, at most `limit`.
    pub async fn campaigns_to_watch(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<Campaign>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM campaigns
             WHERE status IN ('running', 'paused') OR finished_at >= $1
             ORDER BY id DESC LIMIT $2"
        );
        Ok(on_pool!(self, pool =>
            sqlx::query_as(built(&sql)).bind(since).bind(limit).fetch_all(pool).await)?)
    }

    pub async fn campaign_by_name(&self, name: &str) -> Result<Option<Campaign>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE name = $1");
        Ok(
            on_pool!(self, pool => sqlx::query_as(built(&sql)).bind(name).fetch_optional(pool).await)?,
        )
    }

    /// Moves a campaign from one of `from` to `to`; false when it was in none of them.
    pub async fn transition_campaign(
        &self,
        id: i64,
        from: &[CampaignStatus],
        to: CampaignStatus,
    ) -> Result<bool, StoreError> {
        let now = crate::time::now();
        let allowed: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let stamp = match to {
            CampaignStatus::Running => {
                ", started_at = COALESCE(started_at, $3), pause_reason = NULL"
            }
            CampaignStatus::Done | CampaignStatus::Cancelled | CampaignStatus::Expired => {
                ", finished_at = $3"
            }
            _ => "",
        };
        let sql = format!(
            "UPDATE campaigns SET status = $2, updated_at = $3 {stamp}
             WHERE id = $1 AND status IN ({})",
            self.json_strings(4)
        );
        let json = serde_json::to_string(&allowed).expect("strings serialise");
        let result = on_pool!(self, pool => sqlx::query(built(&sql))
            .bind(id).bind(to.as_str()).bind(now).bind(&json)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(result == 1)
    }

    /// Pauses a running campaign and says why; false when it was not running.
    pub async fn pause_campaign_because(&self, id: i64, reason: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE campaigns SET status = 'paused', pause_reason = $2, updated_at = $3
                   WHERE id = $1 AND status = 'running'";
        let paused = on_pool!(self, pool => sqlx::query(sql)
            .bind(id).bind(reason).bind(crate::time::now())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(paused == 1)
    }

    /// A sub-select yielding the strings of the JSON array bound at `$n`.
    pub(crate) fn json_strings(&self, n: usize) -> String {
        match self.engine() {
            super::Engine::Sqlite => format!("SELECT value FROM json_each(${n})"),
            super::Engine::Postgres => format!("SELECT jsonb_array_elements_text(${n}::jsonb)"),
        }
    }
}

impl Store {
    pub async fn campaign_ids_with_status(
        &self,
        status: CampaignStatus,
    ) -> Result<Vec<i64>, StoreError> {
        let sql = "SELECT id FROM campaigns WHERE status = $1 ORDER BY id";
        let rows: Vec<(i64,)> = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(status.as_str()).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

impl Store {
    pub async fn set_send_at(
        &self,
        campaign_id: i64,
        send_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE campaigns SET send_at = $2, updated_at = $3 WHERE id = $1";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(campaign_id)
            .bind(send_at)
            .bind(crate::time::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Store {
    /// Points the campaign at template version `template_id` while it is in one of
    /// `from`; false when it was in none of them.
    pub async fn set_campaign_template(
        &self,
        campaign_id: i64,
        template_id: i64,
        from: &[CampaignStatus],
    ) -> Result<bool, StoreError> {
        let allowed: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let sql = format!(
            "UPDATE campaigns SET template_id = $2, updated_at = $3
             WHERE id = $1 AND status IN ({})",
            self.json_strings(4)
        );
        let json = serde_json::to_string(&allowed).expect("strings serialise");
        let changed = on_pool!(self, pool => sqlx::query(built(&sql))
            .bind(campaign_id).bind(template_id).bind(crate::time::now()).bind(&json)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }
}

/// One line of `mailcast campaign list`: the campaign and its deliveries counted.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CampaignSummary {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub created_at: i64,
    pub send_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
}

impl Store {
    /// Every campaign, oldest first, with its deliveries counted in one query.
    pub async fn list_campaigns(&self) -> Result<Vec<CampaignSummary>, StoreError> {
        let sql = "SELECT c.id, c.name, c.status, c.created_at, c.send_at, c.started_at,
                          c.finished_at, COUNT(d.campaign_id) AS total,
                          SUM(CASE WHEN d.status = 'sent' THEN 1 ELSE 0 END) AS sent,
                          SUM(CASE WHEN d.status = 'failed' THEN 1 ELSE 0 END) AS failed
                   FROM campaigns c LEFT JOIN deliveries d ON d.campaign_id = c.id
                   GROUP BY c.id, c.name, c.status, c.created_at, c.send_at, c.started_at,
                            c.finished_at
                   ORDER BY c.id";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }
}
