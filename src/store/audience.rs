//! Who may be mailed, and freezing a campaign's audience into the delivery ledger.

use std::collections::HashMap;

use super::{
    Campaign, Engine, SqlFilter, Store, StoreError, WRITE_FROM_THE_START, bind_filter, built,
    on_pool,
};
use crate::domain::CampaignKind;

/// Advisory lock key (PostgreSQL) serialising ledger freezes (shared) against erasures
/// (exclusive): `deliveries` has no foreign keys there (migration 0004), so an erasure
/// must not run while a freeze may still insert a row for the recipient it deletes.
pub const LEDGER_LOCK: i64 = 0x6d61_696c_6361_7374; // "mailcast"

/// Why a recipient may not be mailed now, as SQL over `recipients r`; NULL when they
/// may. `topic` is the SQL for the campaign's topic id (NULL: no topic).
pub(crate) fn ineligible_reason(topic: &str) -> String {
    ineligible_reason_for(topic, "'marketing'")
}

/// As [`ineligible_reason`], where `kind` is the SQL for the campaign kind:
/// transactional messages ignore marketing opt-outs (status `unsubscribed`, topic
/// consent) but never the suppression list, a bounce or an erasure.
pub(crate) fn ineligible_reason_for(topic: &str, kind: &str) -> String {
    format!(
        "CASE
            WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.email_hash = r.email_hash)
                THEN 'address is on the suppression list'
            WHEN r.status IN ('bounced', 'erased') THEN 'recipient is ' || r.status
            WHEN {kind} = 'transactional' THEN NULL
            WHEN r.status <> 'active' THEN 'recipient is ' || r.status
            WHEN {topic} IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM consents k
                WHERE k.recipient_id = r.id AND k.topic_id = {topic} AND k.status = 'subscribed')
                THEN 'not subscribed to the campaign topic'
         END"
    )
}

/// The rule a campaign's audience is held to: [`ineligible_reason_for`] IS NULL,
/// written as separate conditions so that the planner estimates each one (and turns
/// the EXISTS tests into semi- and anti-joins) instead of guessing at one CASE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eligibility {
    /// Not suppressed, not bounced or erased.
    Transactional,
    /// Not suppressed, active.
    Marketing,
    /// Not suppressed, active, subscribed to the topic (bound as the next parameter).
    MarketingForTopic(i64),
}

const NOT_SUPPRESSED: &str =
    "NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email_hash = r.email_hash)";

impl Eligibility {
    fn of(campaign: &Campaign) -> Eligibility {
        match (campaign.kind, campaign.topic_id) {
            (CampaignKind::Transactional, _) => Eligibility::Transactional,
            (CampaignKind::Marketing, None) => Eligibility::Marketing,
            (CampaignKind::Marketing, Some(topic)) => Eligibility::MarketingForTopic(topic),
        }
    }

    /// The conditions over `recipients r`; `topic` is the placeholder of the topic id.
    fn conditions(self, topic: usize) -> String {
        match self {
            Eligibility::Transactional => {
                format!("{NOT_SUPPRESSED} AND r.status NOT IN ('bounced', 'erased')")
            }
            Eligibility::Marketing => format!("{NOT_SUPPRESSED} AND r.status = 'active'"),
            Eligibility::MarketingForTopic(_) => format!(
                "{NOT_SUPPRESSED} AND r.status = 'active' AND EXISTS (
                    SELECT 1 FROM consents k
                    WHERE k.recipient_id = r.id AND k.topic_id = ${topic}
                      AND k.status = 'subscribed')"
            ),
        }
    }

    fn topic(self) -> Option<i64> {
        match self {
            Eligibility::MarketingForTopic(topic) => Some(topic),
            _ => None,
        }
    }
}

/// The freeze statement: `$1` campaign, `$2` now, then the topic when the rule binds
/// one, then the send times when given (JSON object: zone → unix seconds; a delivery
/// whose time is still to come waits `deferred` until then), then the filter's own
/// parameters.
fn freeze_sql(eligibility: Eligibility, filter: &SqlFilter, engine: Engine, local: bool) -> String {
    let mut next = 3 + usize::from(eligibility.topic().is_some());
    let (status, next_attempt, zones) = if local {
        let zones = match engine {
            Engine::Sqlite => format!("(SELECT key AS zone, value AS at FROM json_each(${next}))"),
            Engine::Postgres => format!(
                "(SELECT key AS zone, value::bigint AS at FROM jsonb_each_text(${next}::jsonb))"
            ),
        };
        next += 1;
        (
            "CASE WHEN z.at > $2 THEN 'deferred' ELSE 'pending' END",
            "CASE WHEN z.at > $2 THEN z.at END",
            format!("LEFT JOIN {zones} z ON z.zone = COALESCE(r.timezone, '')"),
        )
    } else {
        ("'pending'", "NULL", String::new())
    };
    format!(
        "INSERT INTO deliveries (campaign_id, recipient_id, status, next_attempt_at,
                                 created_at, updated_at)
         SELECT $1, r.id, {status}, {next_attempt}, $2, $2 FROM recipients r {zones}
         WHERE {} AND ({})
         ON CONFLICT (campaign_id, recipient_id) DO NOTHING",
        eligibility.conditions(3),
        filter.shifted(next - 1)
    )
}

/// Ids per statement when an experiment's audience is written.
const FREEZE_CHUNK: usize = 20_000;

/// An experiment's audience, each recipient in its part.
struct ExperimentParts {
    variants: Vec<Vec<i64>>,
    holdout: Vec<i64>,
    rest: Vec<i64>,
}

impl ExperimentParts {
    fn split(ids: Vec<i64>, variants: usize, arm: impl Fn(i64) -> crate::experiment::Arm) -> Self {
        use crate::experiment::Arm;
        let mut parts = ExperimentParts {
            variants: vec![Vec::new(); variants],
            holdout: Vec::new(),
            rest: Vec::new(),
        };
        for id in ids {
            match arm(id) {
                Arm::Holdout => parts.holdout.push(id),
                Arm::Rest => parts.rest.push(id),
                Arm::Variant(v) => parts.variants[v].push(id),
            }
        }
        parts
    }
}

impl Store {
    /// Freezes the campaign's audience into the ledger, inside the database. Running it
    /// again adds nobody twice.
    pub async fn freeze_audience(
        &self,
        campaign: &Campaign,
        filter: &SqlFilter,
    ) -> Result<u64, StoreError> {
        self.freeze_audience_at(campaign, filter, None, crate::time::now())
            .await
    }

    /// As [`Store::freeze_audience`] at `now`; with `send_times` (the zone a recipient
    /// names, `""` for none → when their message may go), each delivery waits for its
    /// recipient's time.
    pub async fn freeze_audience_at(
        &self,
        campaign: &Campaign,
        filter: &SqlFilter,
        send_times: Option<&HashMap<String, i64>>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let eligibility = Eligibility::of(campaign);
        let sql = freeze_sql(eligibility, filter, self.engine(), send_times.is_some());
        let zones = send_times.map(|t| serde_json::to_string(t).expect("send times serialise"));
        let inserted = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if self.engine() == Engine::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                    .bind(LEDGER_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut query = sqlx::query(built(&sql)).bind(campaign.id).bind(now);
            if let Some(topic) = eligibility.topic() {
                query = query.bind(topic);
            }
            if let Some(zones) = &zones {
                query = query.bind(zones);
            }
            let inserted = bind_filter!(query, filter).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            inserted
        });
        Ok(inserted)
    }

    /// Freezes an experiment's audience: `arm` places each eligible recipient the
    /// filter matches. Tested recipients enter the ledger with their variant (waiting
    /// `deferred` until the variant's own send time, `send_times[variant]`, when that is
    /// still to come); the holdout and the rest go to `experiment_audience`. One
    /// transaction: a freeze that stops leaves nothing, and running it again (the arms
    /// are drawn, not random) adds nobody twice.
    pub async fn freeze_experiment(
        &self,
        campaign: &Campaign,
        filter: &SqlFilter,
        send_times: &[Option<i64>],
        now: i64,
        arm: impl Fn(i64) -> crate::experiment::Arm,
    ) -> Result<u64, StoreError> {
        let eligibility = Eligibility::of(campaign);
        let next = 1 + usize::from(eligibility.topic().is_some());
        let select = format!(
            "SELECT r.id FROM recipients r WHERE {} AND ({}) ORDER BY r.id",
            eligibility.conditions(1),
            filter.shifted(next - 1)
        );
        // The ids are read, then written: on SQLite the write lock is taken first, or
        // another writer between the two would fail the freeze (SQLITE_BUSY_SNAPSHOT).
        let begin = match self.engine() {
            Engine::Sqlite => WRITE_FROM_THE_START,
            Engine::Postgres => "BEGIN",
        };
        let parts = on_pool!(self, pool => {
            let mut tx = pool.begin_with(begin).await?;
            if self.engine() == Engine::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                    .bind(LEDGER_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut query = sqlx::query_scalar(built(&select));
            if let Some(topic) = eligibility.topic() {
                query = query.bind(topic);
            }
            let ids: Vec<i64> = bind_filter!(query, filter).fetch_all(&mut *tx).await?;
            let parts = ExperimentParts::split(ids, send_times.len(), arm);
            for (variant, ids) in parts.variants.iter().enumerate() {
                let at = send_times[variant].filter(|at| *at > now);
                let sql = self.insert_variant_sql();
                for chunk in ids.chunks(FREEZE_CHUNK) {
                    sqlx::query(built(&sql))
                        .bind(campaign.id)
                        .bind(now)
                        .bind(variant as i64)
                        .bind(at)
                        .bind(serde_json::to_string(chunk).expect("ids serialise"))
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for (part, ids) in [("holdout", &parts.holdout), ("rest", &parts.rest)] {
                let sql = format!(
                    "INSERT INTO experiment_audience (campaign_id, recipient_id, part)
                     SELECT $1, r.id, $2 FROM recipients r WHERE r.id IN ({})
                     ON CONFLICT (campaign_id, recipient_id) DO NOTHING",
                    self.json_ints(3)
                );
                for chunk in ids.chunks(FREEZE_CHUNK) {
                    sqlx::query(built(&sql))
                        .bind(campaign.id)
                        .bind(part)
                        .bind(serde_json::to_string(chunk).expect("ids serialise"))
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            parts
        });
        Ok(parts.variants.iter().map(|ids| ids.len() as u64).sum())
    }

    /// `$1` campaign, `$2` now, `$3` variant, `$4` its send time (NULL: now), `$5` ids.
    fn insert_variant_sql(&self) -> String {
        format!(
            "INSERT INTO deliveries (campaign_id, recipient_id, status, next_attempt_at, variant,
                                     created_at, updated_at)
             SELECT $1, r.id, CASE WHEN $4 IS NULL THEN 'pending' ELSE 'deferred' END,
                    $4, $3, $2, $2
             FROM recipients r WHERE r.id IN ({})
             ON CONFLICT (campaign_id, recipient_id) DO NOTHING",
            self.json_ints(5)
        )
    }

    /// Every time zone recipients name, as written (`""` for none).
    pub async fn recipient_zones(&self) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT DISTINCT COALESCE(timezone, '') FROM recipients";
        let rows: Vec<(String,)> =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(zone,)| zone).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_is_bound_only_when_the_rule_reads_it() {
        let filter = SqlFilter {
            sql: "r.country = $1".into(),
            params: vec![],
        };
        let freeze = |eligibility| freeze_sql(eligibility, &filter, Engine::Sqlite, false);
        let marketing = freeze(Eligibility::Marketing);
        assert!(marketing.contains("r.country = $3"), "{marketing}");
        assert!(!marketing.contains("consents"), "{marketing}");
        let topic = freeze(Eligibility::MarketingForTopic(7));
        assert!(topic.contains("k.topic_id = $3"), "{topic}");
        assert!(topic.contains("r.country = $4"), "{topic}");
        let transactional = freeze(Eligibility::Transactional);
        assert!(transactional.contains("NOT IN ('bounced', 'erased')"));
        assert!(transactional.contains("r.country = $3"), "{transactional}");
    }

    #[test]
    fn send_times_come_after_the_topic_and_before_the_filter() {
        let filter = SqlFilter {
            sql: "r.country = $1".into(),
            params: vec![],
        };
        let local = freeze_sql(
            Eligibility::MarketingForTopic(7),
            &filter,
            Engine::Postgres,
            true,
        );
        assert!(local.contains("jsonb_each_text($4::jsonb)"), "{local}");
        assert!(local.contains("r.country = $5"), "{local}");
    }
}
