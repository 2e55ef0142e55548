//! How an automation's runs went, per version and step: entered, waiting, sent,
//! exited by the goal, converted, and human opens and clicks of what each step sent.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Store, StoreError, on_pool};

/// One step of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepStats {
    pub version: i64,
    /// Index into that version's steps.
    pub step: i64,
    pub entered: i64,
    /// Runs at this step now, waiting for its time or event.
    pub waiting: i64,
    /// Messages handed to SMTP by this step.
    pub sent: i64,
    /// Runs ended here because the goal came.
    pub exited_by_goal: i64,
    /// Runs that reached the goal after this step was the last to send.
    pub converted: i64,
    /// Recipients who opened / clicked this step's messages (human verdicts).
    pub unique_human_opens: i64,
    pub unique_human_clicks: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AutomationStats {
    pub entered: i64,
    pub active: i64,
    pub converted: i64,
    /// Ended runs by why: finished, exit, goal, unsubscribed, bounced, ...
    pub ended: BTreeMap<String, i64>,
    pub steps: Vec<StepStats>,
}

type Key = (i64, i64);

impl Store {
    pub async fn automation_stats(
        &self,
        automation_id: i64,
    ) -> Result<AutomationStats, StoreError> {
        let mut steps: BTreeMap<Key, StepStats> = BTreeMap::new();
        let mut add = |rows: Vec<(i64, i64, i64)>, set: fn(&mut StepStats, i64)| {
            for (version, step, n) in rows {
                let entry = steps.entry((version, step)).or_insert_with(|| StepStats {
                    version,
                    step,
                    ..StepStats::default()
                });
                set(entry, n);
            }
        };
        add(self.step_counts(ENTERED, automation_id).await?, |s, n| {
            s.entered = n
        });
        add(self.step_counts(WAITING, automation_id).await?, |s, n| {
            s.waiting = n
        });
        add(self.step_counts(SENT, automation_id).await?, |s, n| {
            s.sent = n
        });
        add(self.step_counts(GOAL, automation_id).await?, |s, n| {
            s.exited_by_goal = n
        });
        add(self.step_counts(CONVERTED, automation_id).await?, |s, n| {
            s.converted = n
        });
        add(
            self.step_counts(&touched("open"), automation_id).await?,
            |s, n| s.unique_human_opens = n,
        );
        add(
            self.step_counts(&touched("click"), automation_id).await?,
            |s, n| s.unique_human_clicks = n,
        );
        let mut stats = self.run_totals(automation_id).await?;
        stats.steps = steps.into_values().collect();
        Ok(stats)
    }

    async fn step_counts(&self, sql: &str, id: i64) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        Ok(on_pool!(self, pool =>
            sqlx::query_as(super::built(sql)).bind(id).fetch_all(pool).await)?)
    }

    async fn run_totals(&self, automation_id: i64) -> Result<AutomationStats, StoreError> {
        let rows: Vec<(String, Option<String>, i64, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT status, end_reason, COUNT(*), COUNT(converted_at) FROM automation_runs
             WHERE automation_id = $1 GROUP BY status, end_reason")
            .bind(automation_id).fetch_all(pool).await)?;
        let mut stats = AutomationStats::default();
        for (status, reason, n, converted) in rows {
            stats.entered += n;
            stats.converted += converted;
            match reason {
                Some(reason) if status == "ended" => *stats.ended.entry(reason).or_default() += n,
                _ => stats.active += n,
            }
        }
        Ok(stats)
    }
}

const ENTERED: &str = "
    SELECT v.version, s.step, COUNT(*) FROM automation_run_steps s
    JOIN automation_runs r ON r.id = s.run_id
    JOIN automation_versions v ON v.id = r.version_id
    WHERE r.automation_id = $1 GROUP BY v.version, s.step";

const WAITING: &str = "
    SELECT v.version, r.step, COUNT(*) FROM automation_runs r
    JOIN automation_versions v ON v.id = r.version_id
    WHERE r.automation_id = $1 AND r.status = 'active' GROUP BY v.version, r.step";

const SENT: &str = "
    SELECT v.version, c.step, COUNT(*) FROM automation_campaigns c
    JOIN automation_versions v ON v.id = c.version_id
    JOIN deliveries d ON d.campaign_id = c.campaign_id
    WHERE c.automation_id = $1 AND d.status = 'sent' GROUP BY v.version, c.step";

const GOAL: &str = "
    SELECT v.version, r.ended_at_step, COUNT(*) FROM automation_runs r
    JOIN automation_versions v ON v.id = r.version_id
    WHERE r.automation_id = $1 AND r.end_reason = 'goal' GROUP BY v.version, r.ended_at_step";

const CONVERTED: &str = "
    SELECT v.version, r.last_sent_step, COUNT(*) FROM automation_runs r
    JOIN automation_versions v ON v.id = r.version_id
    WHERE r.automation_id = $1 AND r.converted_at IS NOT NULL AND r.last_sent_step IS NOT NULL
    GROUP BY v.version, r.last_sent_step";

fn touched(kind: &str) -> String {
    format!(
        "SELECT v.version, c.step, COUNT(DISTINCT t.recipient_id) FROM automation_campaigns c
         JOIN automation_versions v ON v.id = c.version_id
         JOIN tracking_events t ON t.campaign_id = c.campaign_id
         WHERE c.automation_id = $1 AND t.kind = '{kind}' AND t.verdict = 'human'
         GROUP BY v.version, c.step"
    )
}

impl Store {
    /// Automation messages not yet sent or settled (pending or being sent).
    pub async fn automation_deliveries_open(&self) -> Result<i64, StoreError> {
        let (open,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM deliveries d
             JOIN automation_campaigns c ON c.campaign_id = d.campaign_id
             WHERE d.status IN ('pending', 'sending')")
            .fetch_one(pool).await)?;
        Ok(open)
    }
}
