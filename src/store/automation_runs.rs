//! Automation runs: one recipient's way through one automation version, with the
//! timer that says when its next step is due. Claimed with leases like deliveries.

use serde::Serialize;

use super::{Engine, Store, StoreError, built, on_pool};

/// A run to start. Rows that break the automation's entry rule, that would be a
/// second active run, or whose trigger already started a run, are skipped.
#[derive(Debug, Clone, Serialize)]
pub struct NewRun {
    #[serde(rename = "a")]
    pub automation_id: i64,
    #[serde(rename = "v")]
    pub version_id: i64,
    #[serde(rename = "r")]
    pub recipient_id: i64,
    /// What started it, unique per automation and recipient: `e<event id>`,
    /// `created`, `date:2026`, ...
    #[serde(rename = "k")]
    pub trigger_key: String,
    #[serde(rename = "e")]
    pub trigger_event_id: Option<i64>,
    #[serde(rename = "g")]
    pub goal_kind: Option<String>,
    /// When the run started (the trigger's time).
    #[serde(rename = "t")]
    pub started_at: i64,
    /// When its first step is due (later than the start for date triggers).
    #[serde(rename = "d")]
    pub due_at: i64,
    /// No start when a run of this automation for this recipient started within
    /// this many seconds; None starts every time.
    #[serde(rename = "p")]
    pub entry_period: Option<i64>,
}

/// A run claimed to be moved on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedRun {
    pub id: i64,
    pub automation_id: i64,
    pub version_id: i64,
    pub recipient_id: i64,
    pub ordinal: i64,
    pub trigger_event_id: Option<i64>,
    pub step: i64,
    pub step_entered_at: i64,
    pub started_at: i64,
    pub last_sent_step: Option<i64>,
}

/// Where a claimed run stands after it was moved on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// At `step` (entered at `entered_at`) until `due_at`, or earlier when an event
    /// of kind `waiting_for` comes.
    Waiting {
        step: i64,
        entered_at: i64,
        due_at: i64,
        waiting_for: Option<String>,
    },
    /// Ended at `step` for `reason`; `converted_at` when its goal was reached.
    Ended {
        step: i64,
        at: i64,
        reason: String,
        converted_at: Option<i64>,
    },
}

#[derive(Debug, Clone)]
pub struct RunUpdate {
    pub run_id: i64,
    pub state: RunState,
    pub last_sent_step: Option<i64>,
    /// Steps entered on the way, with when.
    pub entered: Vec<(i64, i64)>,
}

/// A stored event as the trigger scan reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScannedEvent {
    pub id: i64,
    pub recipient_id: i64,
    pub kind: String,
    pub sku: Option<String>,
    pub category: Option<String>,
    pub amount_cents: Option<i64>,
    pub occurred_at: i64,
}

const START_ROWS_SQLITE: &str = "
    SELECT value ->> 'a' AS a, value ->> 'v' AS v, value ->> 'r' AS r, value ->> 'k' AS k,
           value ->> 'e' AS e, value ->> 'g' AS g, value ->> 't' AS t, value ->> 'd' AS d,
           value ->> 'p' AS p
    FROM json_each($1)";

const START_ROWS_POSTGRES: &str = "
    SELECT * FROM jsonb_to_recordset(CAST($1 AS JSONB))
        AS n(a BIGINT, v BIGINT, r BIGINT, k TEXT, e BIGINT, g TEXT, t BIGINT, d BIGINT,
             p BIGINT)";

const START: &str = "
    INSERT INTO automation_runs (automation_id, version_id, recipient_id, ordinal, trigger_key,
                                 trigger_event_id, goal_kind, status, step, step_entered_at,
                                 due_at, started_at)
    SELECT n.a, n.v, n.r,
           COALESCE((SELECT MAX(x.ordinal) FROM automation_runs x
                     WHERE x.automation_id = n.a AND x.recipient_id = n.r), 0) + 1,
           n.k, n.e, n.g, 'active', 0, n.d, n.d, n.t
    FROM ({rows}) n
    WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.id = n.r AND r.status = 'active')
      AND NOT EXISTS (SELECT 1 FROM automation_runs x
                      WHERE x.automation_id = n.a AND x.recipient_id = n.r
                        AND (x.status = 'active'
                             OR (n.p IS NOT NULL AND x.started_at > n.t - n.p)))
    ON CONFLICT DO NOTHING";

const CLAIM_POSTGRES: &str = "
    UPDATE automation_runs SET lease_owner = $1, lease_until = $2
    WHERE id IN (
        SELECT r.id FROM automation_runs r JOIN automations a ON a.id = r.automation_id
        WHERE r.status = 'active' AND r.due_at <= $3 AND a.status = 'active'
          AND (r.lease_until IS NULL OR r.lease_until < $4)
        ORDER BY r.due_at LIMIT $5
        FOR UPDATE OF r SKIP LOCKED)
    RETURNING id, automation_id, version_id, recipient_id, ordinal, trigger_event_id, step,
              step_entered_at, started_at, last_sent_step";

const CLAIM_SQLITE: &str = "
    UPDATE automation_runs SET lease_owner = $1, lease_until = $2
    WHERE id IN (
        SELECT r.id FROM automation_runs r JOIN automations a ON a.id = r.automation_id
        WHERE r.status = 'active' AND r.due_at <= $3 AND a.status = 'active'
          AND (r.lease_until IS NULL OR r.lease_until < $4)
        ORDER BY r.due_at LIMIT $5)
    RETURNING id, automation_id, version_id, recipient_id, ordinal, trigger_event_id, step,
              step_entered_at, started_at, last_sent_step";

/// One statement per batch: `{rows}` reads the JSON array of [`SavedRow`]s.
const SAVE: &str = "
    UPDATE automation_runs
    SET step = u.step, step_entered_at = COALESCE(u.entered_at, automation_runs.step_entered_at),
        due_at = u.due_at,
        waiting_for = u.waiting_for, last_sent_step = u.last_sent, status = u.status,
        ended_at = u.ended_at, end_reason = u.reason, converted_at = u.converted_at,
        ended_at_step = CASE WHEN u.status = 'ended' THEN u.step END,
        lease_owner = NULL, lease_until = NULL
    FROM ({rows}) u
    WHERE automation_runs.id = u.id AND automation_runs.lease_owner = $1
      AND automation_runs.status = 'active'";

const SAVED_SQLITE: &str = "
    SELECT value ->> 'id' AS id, value ->> 'step' AS step, value ->> 'entered_at' AS entered_at,
           value ->> 'due_at' AS due_at, value ->> 'waiting_for' AS waiting_for,
           value ->> 'last_sent' AS last_sent, value ->> 'status' AS status,
           value ->> 'ended_at' AS ended_at, value ->> 'reason' AS reason,
           value ->> 'converted_at' AS converted_at
    FROM json_each($2)";

const SAVED_POSTGRES: &str = "
    SELECT * FROM jsonb_to_recordset(CAST($2 AS JSONB))
        AS u(id BIGINT, step BIGINT, entered_at BIGINT, due_at BIGINT, waiting_for TEXT,
             last_sent BIGINT, status TEXT, ended_at BIGINT, reason TEXT, converted_at BIGINT)";

const ENTERED_SQLITE: &str = "
    INSERT INTO automation_run_steps (run_id, step, entered_at)
    SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1) WHERE true
    ON CONFLICT (run_id, step) DO NOTHING";

const ENTERED_POSTGRES: &str = "
    INSERT INTO automation_run_steps (run_id, step, entered_at)
    SELECT (value ->> 0)::BIGINT, (value ->> 1)::BIGINT, (value ->> 2)::BIGINT
    FROM jsonb_array_elements(CAST($1 AS JSONB))
    ON CONFLICT (run_id, step) DO NOTHING";

/// A run as [`SAVE`] writes it.
#[derive(Serialize)]
struct SavedRow<'a> {
    id: i64,
    step: i64,
    entered_at: Option<i64>,
    due_at: Option<i64>,
    waiting_for: Option<&'a str>,
    last_sent: Option<i64>,
    status: &'static str,
    ended_at: Option<i64>,
    reason: Option<&'a str>,
    converted_at: Option<i64>,
}

impl<'a> SavedRow<'a> {
    fn of(update: &'a RunUpdate) -> SavedRow<'a> {
        let (id, last_sent) = (update.run_id, update.last_sent_step);
        match &update.state {
            RunState::Waiting {
                step,
                entered_at,
                due_at,
                waiting_for,
            } => SavedRow {
                id,
                step: *step,
                entered_at: Some(*entered_at),
                due_at: Some(*due_at),
                waiting_for: waiting_for.as_deref(),
                last_sent,
                status: "active",
                ended_at: None,
                reason: None,
                converted_at: None,
            },
            RunState::Ended {
                step,
                at,
                reason,
                converted_at,
            } => SavedRow {
                id,
                step: *step,
                entered_at: None,
                due_at: None,
                waiting_for: None,
                last_sent,
                status: "ended",
                ended_at: Some(*at),
                reason: Some(reason),
                converted_at: *converted_at,
            },
        }
    }
}

impl Store {
    /// Starts the runs that may start; returns how many did.
    pub async fn start_runs(&self, runs: &[NewRun]) -> Result<u64, StoreError> {
        if runs.is_empty() {
            return Ok(0);
        }
        let rows = match self.engine() {
            Engine::Sqlite => START_ROWS_SQLITE,
            Engine::Postgres => START_ROWS_POSTGRES,
        };
        let sql = START.replace("{rows}", rows);
        let json = serde_json::to_string(runs).expect("runs serialise");
        Ok(on_pool!(self, pool => sqlx::query(built(&sql)).bind(json)
            .execute(pool).await.map(|r| r.rows_affected()))?)
    }

    /// Leases up to `limit` active runs due by `now` (the automation clock) whose
    /// automation is not paused, for `lease_seconds` of system time.
    pub async fn claim_due_runs(
        &self,
        owner: &str,
        now: i64,
        lease_seconds: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedRun>, StoreError> {
        let system_now = crate::time::now();
        let sql = match self.engine() {
            Engine::Sqlite => CLAIM_SQLITE,
            Engine::Postgres => CLAIM_POSTGRES,
        };
        Ok(on_pool!(self, pool => sqlx::query_as(sql)
            .bind(owner).bind(system_now + lease_seconds).bind(now).bind(system_now).bind(limit)
            .fetch_all(pool).await)?)
    }

    /// Writes where claimed runs stand now: two statements in one transaction. A run
    /// whose lease `owner` lost (it expired and another worker took it) is left as the
    /// other worker leaves it.
    pub async fn save_runs(&self, owner: &str, updates: &[RunUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let (rows, entered_sql) = match self.engine() {
            Engine::Sqlite => (SAVED_SQLITE, ENTERED_SQLITE),
            Engine::Postgres => (SAVED_POSTGRES, ENTERED_POSTGRES),
        };
        let save_sql = SAVE.replace("{rows}", rows);
        let saved: Vec<SavedRow> = updates.iter().map(SavedRow::of).collect();
        let saved = serde_json::to_string(&saved).expect("rows serialise");
        let entered: Vec<(i64, i64, i64)> = updates
            .iter()
            .flat_map(|u| u.entered.iter().map(|&(step, at)| (u.run_id, step, at)))
            .collect();
        let entered = serde_json::to_string(&entered).expect("rows serialise");
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(built(entered_sql)).bind(&entered).execute(&mut *tx).await?;
            sqlx::query(built(&save_sql)).bind(owner).bind(&saved).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Makes due now the active runs of these recipients that wait for an event of
    /// the given kind or end on it: `(recipient_id, kind)` pairs.
    pub async fn wake_runs(&self, pairs: &[(i64, String)], now: i64) -> Result<u64, StoreError> {
        if pairs.is_empty() {
            return Ok(0);
        }
        let rows = match self.engine() {
            Engine::Sqlite => "SELECT value ->> 0 AS r, value ->> 1 AS k FROM json_each($1)",
            Engine::Postgres => {
                "SELECT (value ->> 0)::BIGINT AS r, value ->> 1 AS k
                 FROM jsonb_array_elements(CAST($1 AS JSONB))"
            }
        };
        // The IN list lets the recipient index find the runs; EXISTS matches the kind.
        let sql = format!(
            "UPDATE automation_runs SET due_at = $2
             WHERE recipient_id IN (SELECT w.r FROM ({rows}) w)
               AND status = 'active' AND due_at > $2
               AND EXISTS (SELECT 1 FROM ({rows}) w
                           WHERE w.r = automation_runs.recipient_id
                             AND (w.k = automation_runs.waiting_for
                                  OR w.k = automation_runs.goal_kind))"
        );
        let json = serde_json::to_string(pairs).expect("pairs serialise");
        Ok(
            on_pool!(self, pool => sqlx::query(built(&sql)).bind(json).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?,
        )
    }

    /// The recipient's first event of `kind` between `from` and `to` (inclusive) that
    /// passes the filters, with its product's sku and category.
    pub async fn first_event_between(
        &self,
        recipient_id: i64,
        kind: &str,
        from: i64,
        to: i64,
        exclude_id: Option<i64>,
    ) -> Result<Vec<ScannedEvent>, StoreError> {
        let sql = "
            SELECT e.id, e.recipient_id, e.kind, p.sku, p.category, e.amount_cents, e.occurred_at
            FROM events e LEFT JOIN products p ON p.id = e.product_id
            WHERE e.recipient_id = $1 AND e.kind = $2 AND e.occurred_at >= $3
              AND e.occurred_at <= $4 AND e.id <> $5
            ORDER BY e.occurred_at, e.id LIMIT 50";
        Ok(on_pool!(self, pool => sqlx::query_as(sql)
            .bind(recipient_id).bind(kind).bind(from).bind(to).bind(exclude_id.unwrap_or(0))
            .fetch_all(pool).await)?)
    }

    /// Events with an id above `after`, lowest first.
    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ScannedEvent>, StoreError> {
        let sql = "
            SELECT e.id, e.recipient_id, e.kind, p.sku, p.category, e.amount_cents, e.occurred_at
            FROM events e LEFT JOIN products p ON p.id = e.product_id
            WHERE e.id > $1 ORDER BY e.id LIMIT $2";
        Ok(
            on_pool!(self, pool => sqlx::query_as(sql).bind(after).bind(limit)
            .fetch_all(pool).await)?,
        )
    }

    /// Recipients with an id above `after`, lowest first: `(id, created_at)`.
    pub async fn recipients_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT id, created_at FROM recipients WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after).bind(limit).fetch_all(pool).await)?)
    }

    /// Where the scan `name` has read up to; `start` when it never ran.
    pub async fn automation_cursor(&self, name: &str, start: i64) -> Result<i64, StoreError> {
        let read = "SELECT position FROM automation_cursors WHERE name = $1";
        let found: Option<(i64,)> = on_pool!(self, pool =>
            sqlx::query_as(read).bind(name).fetch_optional(pool).await)?;
        if let Some((position,)) = found {
            return Ok(position);
        }
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO automation_cursors (name, position) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING")
            .bind(name).bind(start).execute(pool).await.map(|r| r.rows_affected()))?;
        let (position,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT position FROM automation_cursors WHERE name = $1")
            .bind(name).fetch_one(pool).await)?;
        Ok(position)
    }

    /// Moves the scan `name` on to `position` (never back).
    pub async fn move_automation_cursor(
        &self,
        name: &str,
        position: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE automation_cursors SET position = $2 WHERE name = $1 AND position < $2")
            .bind(name).bind(position).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends the active runs of recipients who may no longer be mailed (unsubscribed
    /// from everything, bounced, erased); returns how many ended.
    pub async fn end_runs_of_unreachable(&self, now: i64) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query(
            "UPDATE automation_runs
             SET status = 'ended', ended_at = $1, ended_at_step = step, due_at = NULL,
                 end_reason = (SELECT r.status FROM recipients r
                               WHERE r.id = automation_runs.recipient_id),
                 lease_owner = NULL, lease_until = NULL
             WHERE status = 'active'
               AND recipient_id IN (SELECT id FROM recipients WHERE status <> 'active')")
            .bind(now).execute(pool).await.map(|r| r.rows_affected()))?)
    }

    /// The campaign a send step of a run with this ordinal goes through, if made.
    pub async fn automation_campaign(
        &self,
        version_id: i64,
        step: i64,
        ordinal: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT campaign_id FROM automation_campaigns
             WHERE version_id = $1 AND step = $2 AND ordinal = $3")
            .bind(version_id).bind(step).bind(ordinal).fetch_optional(pool).await)?;
        Ok(row.map(|(id,)| id))
    }

    /// Records `campaign_id` as the campaign of a send step; when another worker
    /// made one first, returns theirs (the caller's is then cancelled unused).
    pub async fn link_automation_campaign(
        &self,
        campaign_id: i64,
        automation_id: i64,
        version_id: i64,
        step: i64,
        ordinal: i64,
    ) -> Result<i64, StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO automation_campaigns (campaign_id, automation_id, version_id, step, ordinal)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version_id, step, ordinal) DO NOTHING")
            .bind(campaign_id).bind(automation_id).bind(version_id).bind(step).bind(ordinal)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        let linked = self.automation_campaign(version_id, step, ordinal).await?;
        linked.ok_or_else(|| StoreError::not_found("automation campaign", campaign_id.to_string()))
    }

    /// Adds `matching` to the members of an `enters_segment` automation and returns
    /// those who were not members before (leaving is seen by [`Store::replace_members`]).
    pub async fn add_members(
        &self,
        automation_id: i64,
        matching: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        if matching.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self.insert_members();
        let json = serde_json::to_string(matching).expect("ids serialise");
        let new: Vec<(i64,)> = on_pool!(self, pool => sqlx::query_as(built(&sql))
            .bind(automation_id).bind(json).fetch_all(pool).await)?;
        Ok(new.into_iter().map(|(id,)| id).collect())
    }

    /// Adds the ids of the JSON array at `$2` to automation `$1`'s members, returning
    /// those that were new.
    fn insert_members(&self) -> String {
        format!(
            "INSERT INTO automation_members (automation_id, recipient_id)
             SELECT $1, m.* FROM ({}) m WHERE true
             ON CONFLICT (automation_id, recipient_id) DO NOTHING
             RETURNING recipient_id",
            self.json_ints(2)
        )
    }

    /// Sets the members of an `enters_segment` automation to `matching` (ascending
    /// ids) and returns those who were not members before.
    pub async fn replace_members(
        &self,
        automation_id: i64,
        matching: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        let json = serde_json::to_string(matching).expect("ids serialise");
        let entered = self.insert_members();
        let left = format!(
            "DELETE FROM automation_members WHERE automation_id = $1
               AND recipient_id NOT IN ({})",
            self.json_ints(2)
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(built(&left)).bind(automation_id).bind(&json).execute(&mut *tx).await?;
            let new: Vec<(i64,)> = sqlx::query_as(built(&entered))
                .bind(automation_id).bind(&json).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            Ok(new.into_iter().map(|(id,)| id).collect())
        })
    }
}

impl Store {
    /// The recipients with these ids that still exist.
    pub async fn recipients_by_ids(
        &self,
        ids: &[i64],
    ) -> Result<Vec<super::Recipient>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = self.json_ints(1);
        let sql = format!(
            "SELECT id, email, first_name, last_name, country, city, attributes, locale,
                    timezone, status, created_at
             FROM recipients WHERE id IN ({list})"
        );
        let json = serde_json::to_string(ids).expect("ids serialise");
        Ok(on_pool!(self, pool => sqlx::query_as(built(&sql)).bind(json).fetch_all(pool).await)?)
    }

    /// Recipients who subscribed to `topic` after `after` (the consent's time):
    /// `(recipient_id, updated_at)`, oldest first.
    pub async fn subscriptions_after(
        &self,
        topic: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT c.recipient_id, c.updated_at FROM consents c
             JOIN topics t ON t.id = c.topic_id
             WHERE t.name = $1 AND c.status = 'subscribed' AND c.updated_at > $2
             ORDER BY c.updated_at LIMIT $3")
            .bind(topic).bind(after).bind(limit).fetch_all(pool).await)?)
    }
}

/// An automation's trigger event as a template sees it (`trigger.kind`,
/// `trigger.product.name`, `trigger.properties.order_id`, ...).
#[derive(Debug, Clone)]
pub struct TriggerEvent {
    pub kind: String,
    pub occurred_at: i64,
    pub amount_cents: Option<i64>,
    pub properties: serde_json::Value,
    pub product: Option<super::Product>,
}

type TriggerRow = (
    i64,
    String,
    i64,
    Option<i64>,
    sqlx::types::Json<serde_json::Value>,
    Option<i64>,
);

impl Store {
    /// For these recipients of an automation step's campaign, the event that started
    /// the run the campaign's message belongs to (runs started otherwise have none).
    pub async fn trigger_events(
        &self,
        campaign_id: i64,
        recipient_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, TriggerEvent>, StoreError> {
        if recipient_ids.is_empty() {
            return Ok(Default::default());
        }
        let list = self.json_ints(2);
        let sql = format!(
            "SELECT r.recipient_id, e.kind, e.occurred_at, e.amount_cents, e.properties, e.product_id
             FROM automation_campaigns c
             JOIN automation_runs r ON r.automation_id = c.automation_id
                                   AND r.version_id = c.version_id AND r.ordinal = c.ordinal
             JOIN events e ON e.id = r.trigger_event_id
             WHERE c.campaign_id = $1 AND r.recipient_id IN ({list})"
        );
        let ids = serde_json::to_string(recipient_ids).expect("ids serialise");
        let rows: Vec<TriggerRow> = on_pool!(self, pool => sqlx::query_as(built(&sql))
            .bind(campaign_id).bind(ids).fetch_all(pool).await)?;
        let product_ids: Vec<i64> = rows.iter().filter_map(|row| row.5).collect();
        let products = self.products_by_id(&product_ids).await?;
        Ok(rows
            .into_iter()
            .map(
                |(recipient_id, kind, occurred_at, amount_cents, properties, product)| {
                    let product = product.and_then(|id| products.get(&id).cloned());
                    let properties = properties.0;
                    let trigger = TriggerEvent {
                        kind,
                        occurred_at,
                        amount_cents,
                        properties,
                        product,
                    };
                    (recipient_id, trigger)
                },
            )
            .collect())
    }
}
