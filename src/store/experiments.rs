//! An experiment's state in the store: when its test began, its judgement (written
//! once), the rest released to the variant that won, and what each variant's
//! recipients did.

use serde::Serialize;

use super::attribution::{self, Windows};
use super::{
    Engine, LEDGER_LOCK, Store, StoreError, WRITE_FROM_THE_START, built, on_pool, with_sort_memory,
};
use crate::experiment::judge::{ArmSample, Metric};

/// A test's judgement as stored: the JSON is the full [`crate::experiment::judge::Judgement`].
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StoredJudgement {
    pub judged_at: i64,
    pub winner: Option<i64>,
    pub sent_variant: i64,
    pub judgement: String,
}

/// How many of an experiment's audience are outside the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExperimentParts {
    pub holdout: i64,
    /// Waiting for the winner (0 once it went out).
    pub waiting: i64,
}

/// Purchases within a period by a group of recipients: who bought, and what they spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GroupOutcome {
    pub recipients: i64,
    pub converted: i64,
    /// Sum of revenue per recipient, and of its squares, in currency units.
    pub revenue: f64,
    pub revenue_squares: f64,
}

/// The ledger states of a message that reached the receiving server: what
/// experiments, attribution and recommendation slots count as delivered.
pub(crate) const DELIVERED_STATES: &str = "('sent', 'bounced', 'unknown')";

/// Whether a ledger state is one of [`DELIVERED_STATES`].
pub(crate) fn is_delivered(status: &str) -> bool {
    matches!(status, "sent" | "bounced" | "unknown")
}

impl Store {
    /// When the test began: the first of its deliveries entered the ledger.
    pub async fn experiment_started_at(&self, campaign_id: i64) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT MIN(created_at) FROM deliveries
                   WHERE campaign_id = $1 AND variant IS NOT NULL";
        Ok(on_pool!(self, pool =>
            sqlx::query_scalar(sql).bind(campaign_id).fetch_one(pool).await)?)
    }

    /// Each recipient's variant in the campaign's ledger (None: no experiment).
    pub async fn delivery_variants(
        &self,
        campaign_id: i64,
    ) -> Result<std::collections::HashMap<i64, Option<i64>>, StoreError> {
        let sql = "SELECT recipient_id, variant FROM deliveries WHERE campaign_id = $1";
        let rows: Vec<(i64, Option<i64>)> = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(campaign_id).fetch_all(pool).await)?;
        Ok(rows.into_iter().collect())
    }

    pub async fn judgement(&self, campaign_id: i64) -> Result<Option<StoredJudgement>, StoreError> {
        let sql = "SELECT judged_at, winner, sent_variant, judgement
                   FROM experiment_judgements WHERE campaign_id = $1";
        Ok(on_pool!(self, pool =>
            sqlx::query_as(sql).bind(campaign_id).fetch_optional(pool).await)?)
    }

    /// Stores the judgement unless one is stored already, and adds the rest of the
    /// audience to the ledger with the variant the stored judgement sends, in one
    /// transaction: whoever sees the judgement sees the rest's deliveries too. Running
    /// it again adds nobody twice; recipients erased meanwhile are gone from the rest.
    pub async fn judge_and_release(
        &self,
        campaign_id: i64,
        judgement: &StoredJudgement,
        now: i64,
    ) -> Result<(StoredJudgement, u64), StoreError> {
        let save = "INSERT INTO experiment_judgements
                        (campaign_id, judged_at, winner, sent_variant, judgement)
                    VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (campaign_id) DO NOTHING";
        let read = "SELECT judged_at, winner, sent_variant, judgement
                    FROM experiment_judgements WHERE campaign_id = $1";
        let release = "INSERT INTO deliveries (campaign_id, recipient_id, status, variant,
                                               created_at, updated_at)
                       SELECT a.campaign_id, a.recipient_id, 'pending', $2, $3, $3
                       FROM experiment_audience a
                       WHERE a.campaign_id = $1 AND a.part = 'rest'
                       ON CONFLICT (campaign_id, recipient_id) DO NOTHING";
        let begin = match self.engine() {
            Engine::Sqlite => WRITE_FROM_THE_START,
            Engine::Postgres => "BEGIN",
        };
        Ok(on_pool!(self, pool => {
            let mut tx = pool.begin_with(begin).await?;
            if self.engine() == Engine::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                    .bind(LEDGER_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(save)
                .bind(campaign_id)
                .bind(judgement.judged_at)
                .bind(judgement.winner)
                .bind(judgement.sent_variant)
                .bind(&judgement.judgement)
                .execute(&mut *tx)
                .await?;
            let stored: StoredJudgement =
                sqlx::query_as(read).bind(campaign_id).fetch_one(&mut *tx).await?;
            let released = sqlx::query(release)
                .bind(campaign_id)
                .bind(stored.sent_variant)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            (stored, released)
        }))
    }

    /// The holdout, and (until the test is judged) who waits for the winner: the
    /// judgement and the rest's deliveries are written in one transaction, and erasing
    /// a recipient removes both their delivery and their place in the audience, so a
    /// judged test has nobody waiting.
    pub async fn experiment_parts(
        &self,
        campaign_id: i64,
        judged: bool,
    ) -> Result<ExperimentParts, StoreError> {
        let holdout = "SELECT COUNT(*) FROM experiment_audience a
                       WHERE a.campaign_id = $1 AND a.part = 'holdout'";
        let waiting = "SELECT COUNT(*) FROM experiment_audience a
                       WHERE a.campaign_id = $1 AND a.part = 'rest'
                         AND NOT EXISTS (SELECT 1 FROM deliveries d
                                         WHERE d.campaign_id = a.campaign_id
                                           AND d.recipient_id = a.recipient_id)";
        let holdout: i64 = on_pool!(self, pool =>
            sqlx::query_scalar(holdout).bind(campaign_id).fetch_one(pool).await)?;
        let waiting: i64 = match judged {
            true => 0,
            false => with_sort_memory!(self, conn =>
                sqlx::query_scalar(waiting).bind(campaign_id).fetch_one(conn).await?),
        };
        Ok(ExperimentParts { holdout, waiting })
    }

    /// What each of `variants` variants' delivered recipients did, by `metric`: unique
    /// human opens or clicks (machine events never count), or purchases attributed to
    /// the campaign.
    pub async fn experiment_samples(
        &self,
        campaign_id: i64,
        metric: Metric,
        variants: usize,
    ) -> Result<Vec<ArmSample>, StoreError> {
        let mut samples = vec![ArmSample::rate(0, 0); variants];
        let engaged = match metric {
            Metric::HumanOpens => Some("open"),
            Metric::HumanClicks => Some("click"),
            Metric::Conversions | Metric::RevenuePerRecipient => None,
        };
        let (delivered, attributed) = tokio::try_join!(
            self.delivered_by_variant(campaign_id, engaged),
            self.attributed_by_variant(campaign_id, engaged.is_none()),
        )?;
        for (variant, recipients, successes) in delivered {
            if let Some(slot) = usize::try_from(variant)
                .ok()
                .and_then(|v| samples.get_mut(v))
            {
                *slot = ArmSample::rate(successes as u64, recipients as u64);
            }
        }
        if engaged.is_none() {
            add_purchases(metric, &attributed, &mut samples);
        }
        Ok(samples)
    }

    /// What each variant of the campaign earned (nothing read unless `wanted`).
    async fn attributed_by_variant(
        &self,
        campaign_id: i64,
        wanted: bool,
    ) -> Result<Vec<attribution::VariantAttribution>, StoreError> {
        if !wanted {
            return Ok(Vec::new());
        }
        let campaign = self.campaign(campaign_id).await?;
        let sql = attribution::by_variant_sql("", Windows::of(&campaign.settings));
        Ok(with_sort_memory!(self, conn =>
            sqlx::query_as(built(&sql)).bind(campaign_id).fetch_all(conn).await?))
    }

    /// Per variant: delivered recipients, and of them those with a human event of
    /// `kind` (none counted when `kind` is None).
    async fn delivered_by_variant(
        &self,
        campaign_id: i64,
        kind: Option<&str>,
    ) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let sql = format!(
            "SELECT d.variant, COUNT(*), COUNT(h.recipient_id)
             FROM deliveries d
             LEFT JOIN recipient_engagement h
                    ON h.campaign_id = $1 AND h.kind = $2 AND h.verdict = 'human'
                   AND h.recipient_id = d.recipient_id
             WHERE d.campaign_id = $1 AND d.variant IS NOT NULL AND d.status IN {DELIVERED_STATES}
             GROUP BY d.variant"
        );
        Ok(on_pool!(self, pool => sqlx::query_as(built(&sql))
            .bind(campaign_id)
            .bind(kind.unwrap_or(""))
            .fetch_all(pool)
            .await)?)
    }

    /// Purchases between `from` and `until` by the campaign's mailed recipients (its
    /// ledger) and by its holdout: the two sides of the uplift.
    pub async fn uplift_groups(
        &self,
        campaign_id: i64,
        from: i64,
        until: i64,
    ) -> Result<(GroupOutcome, GroupOutcome), StoreError> {
        let mailed = "SELECT d.recipient_id FROM deliveries d WHERE d.campaign_id = $1";
        let held = "SELECT a.recipient_id FROM experiment_audience a
                    WHERE a.campaign_id = $1 AND a.part = 'holdout'";
        tokio::try_join!(
            self.group_outcome(mailed, campaign_id, from, until),
            self.group_outcome(held, campaign_id, from, until),
        )
    }

    async fn group_outcome(
        &self,
        members: &str,
        campaign_id: i64,
        from: i64,
        until: i64,
    ) -> Result<GroupOutcome, StoreError> {
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM ({members}) m), COUNT(*),
                    CAST(COALESCE(SUM(p.cents), 0) AS DOUBLE PRECISION) / 100.0,
                    COALESCE(SUM(CAST(p.cents AS DOUBLE PRECISION) * p.cents), 0) / 10000.0
             FROM (SELECT t.recipient_id, SUM(t.amount_cents) AS cents
                   FROM purchase_touches t
                   WHERE t.occurred_at >= $2 AND t.occurred_at <= $3
                     AND t.recipient_id IN ({members})
                   GROUP BY t.recipient_id) p"
        );
        let (recipients, converted, revenue, revenue_squares): (i64, i64, f64, f64) = with_sort_memory!(self, conn => sqlx::query_as(built(&sql))
                .bind(campaign_id)
                .bind(from)
                .bind(until)
                .fetch_one(conn)
                .await?, super::MERGED_PLANS);
        Ok(GroupOutcome {
            recipients,
            converted,
            revenue,
            revenue_squares,
        })
    }
}

/// Conversions (recipients with an attributed purchase) or revenue per recipient into
/// each variant's sample, whose `recipients` are set already.
fn add_purchases(
    metric: Metric,
    attributed: &[attribution::VariantAttribution],
    samples: &mut [ArmSample],
) {
    for sample in samples.iter_mut() {
        sample.total = 0.0;
        sample.total_squares = 0.0;
    }
    for row in attributed {
        let Some(sample) = row
            .variant
            .and_then(|v| usize::try_from(v).ok())
            .and_then(|v| samples.get_mut(v))
        else {
            continue;
        };
        let converted = row.converted as f64;
        (sample.total, sample.total_squares) = match metric {
            Metric::RevenuePerRecipient => (row.units, row.units_squared),
            _ => (converted, converted),
        };
    }
}
