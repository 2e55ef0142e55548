//! Starting runs: scans of new events, new recipients and new subscriptions, segment
//! re-evaluation, and dates coming round. Each run start is keyed by what triggered
//! it, so a scan read twice (two workers, a retry, the catch-up sweep) starts nothing
//! twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, Duration as Days};

use super::AutomationError;
use super::definition::{DateField, Definition, EntryRule, Trigger};
use super::engine::AutomationEngine;
use super::local_time::occurrence_near;
use crate::schedule::{local_time_at, zone_of};
use crate::store::{DateColumn, NewRun, ScannedEvent, StoredAutomation};

const SCAN_BATCH: i64 = 5_000;
/// PostgreSQL hands out event ids before their transactions commit, so a scan can
/// pass an id that becomes visible later; this often, events since the last sweep
/// are read again (each event is read about twice).
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Unreachable recipients' runs are ended this often (they also end when due).
const UNREACHABLE_EVERY: Duration = Duration::from_secs(60);
/// Date triggers look this far ahead, so a run is waiting before its time comes.
const DATE_LOOKAHEAD: i64 = 26 * 3600;
/// And this far back, for a worker that was down when the time came.
const DATE_GRACE: i64 = 2 * 3600;
const HOUR: i64 = 3600;

/// What this process remembers between scans.
#[derive(Default)]
pub struct ScanMemory {
    swept_at: Option<Instant>,
    /// The event cursor at the last sweep: the next sweep re-reads from there.
    events_at_sweep: Option<i64>,
    unreachable_at: Option<Instant>,
    /// Automation id → the clock time of its last segment or date scan.
    scanned: std::collections::HashMap<i64, i64>,
}

type Active = [(StoredAutomation, Arc<Definition>)];

impl AutomationEngine {
    /// Starts the runs due to triggers since the last scan; returns how many started.
    pub(super) async fn scan_triggers(&self, now: i64) -> Result<u64, AutomationError> {
        self.end_unreachable(now).await?;
        let active = self.active_automations().await?;
        if active.is_empty() {
            return Ok(0);
        }
        let mut started = self.scan_events(&active, now).await?;
        started += self.scan_new_recipients(&active, now).await?;
        for (automation, definition) in active.iter() {
            started += match &definition.trigger {
                Trigger::Subscribed { topic } => {
                    self.scan_subscriptions(automation, definition, topic)
                        .await?
                }
                Trigger::EntersSegment { expression } => {
                    self.scan_segment(automation, definition, expression, now)
                        .await?
                }
                Trigger::Date { field, at } => {
                    self.scan_dates(automation, definition, field, at, now)
                        .await?
                }
                Trigger::Event(_) | Trigger::RecipientCreated => 0,
            };
        }
        Ok(started)
    }

    async fn end_unreachable(&self, now: i64) -> Result<(), AutomationError> {
        let due = {
            let mut scans = self.scans.lock().expect("not poisoned");
            let due = scans
                .unreachable_at
                .is_none_or(|at| at.elapsed() >= UNREACHABLE_EVERY);
            if due {
                scans.unreachable_at = Some(Instant::now());
            }
            due
        };
        if due {
            self.store.end_runs_of_unreachable(now).await?;
        }
        Ok(())
    }

    /// New events start runs of event-triggered automations and wake runs waiting
    /// for them (or ending on them).
    async fn scan_events(&self, active: &Active, now: i64) -> Result<u64, AutomationError> {
        let start = active.iter().map(|(a, _)| a.events_from).min().unwrap_or(0);
        let cursor = self.store.automation_cursor("events", start).await?;
        let mut started = self.sweep_events(active, cursor, now).await?;
        let mut after = cursor;
        loop {
            let events = self.store.events_after(after, SCAN_BATCH).await?;
            let Some(last) = events.last() else {
                return Ok(started);
            };
            after = last.id;
            started += self.take_events(active, &events, now).await?;
            self.store.move_automation_cursor("events", after).await?;
            if (events.len() as i64) < SCAN_BATCH {
                return Ok(started);
            }
        }
    }

    /// Reads again the events between the cursor of the last sweep and `cursor`.
    async fn sweep_events(
        &self,
        active: &Active,
        cursor: i64,
        now: i64,
    ) -> Result<u64, AutomationError> {
        let from = {
            let mut scans = self.scans.lock().expect("not poisoned");
            if scans.swept_at.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
                return Ok(0);
            }
            scans.swept_at = Some(Instant::now());
            scans.events_at_sweep.replace(cursor)
        };
        let Some(mut after) = from else {
            return Ok(0);
        };
        let mut started = 0;
        while after < cursor {
            let events = self.store.events_after(after, SCAN_BATCH).await?;
            let events: Vec<ScannedEvent> = events.into_iter().filter(|e| e.id <= cursor).collect();
            let Some(last) = events.last() else {
                break;
            };
            after = last.id;
            started += self.take_events(active, &events, now).await?;
        }
        Ok(started)
    }

    async fn take_events(
        &self,
        active: &Active,
        events: &[ScannedEvent],
        now: i64,
    ) -> Result<u64, AutomationError> {
        let mut runs = Vec::new();
        let mut wake = BTreeSet::new();
        for event in events {
            wake.insert((event.recipient_id, event.kind.clone()));
            for (automation, definition) in active {
                let Trigger::Event(wanted) = &definition.trigger else {
                    continue;
                };
                let fits = wanted.matches(
                    &event.kind,
                    event.sku.as_deref(),
                    event.category.as_deref(),
                    event.amount_cents,
                );
                if fits && event.id > automation.events_from {
                    let mut run = new_run(automation, definition, event.recipient_id);
                    run.trigger_key = format!("e{}", event.id);
                    run.trigger_event_id = Some(event.id);
                    (run.started_at, run.due_at) = (event.occurred_at, event.occurred_at);
                    runs.push(run);
                }
            }
        }
        let mut started = self.store.start_runs(&runs).await?;
        let touched: BTreeSet<i64> = events.iter().map(|e| e.recipient_id).collect();
        started += self.segments_touched(active, &touched, now).await?;
        let wake: Vec<(i64, String)> = wake.into_iter().collect();
        self.store.wake_runs(&wake, now).await?;
        Ok(started)
    }

    /// Recipients whose events put them into an `enters_segment` automation's
    /// segment enter it now, not at the next evaluation.
    async fn segments_touched(
        &self,
        active: &Active,
        touched: &BTreeSet<i64>,
        now: i64,
    ) -> Result<u64, AutomationError> {
        let ids: Vec<i64> = touched.iter().copied().collect();
        let mut started = 0;
        for (automation, definition) in active {
            let Trigger::EntersSegment { expression } = &definition.trigger else {
                continue;
            };
            if !self.members_known(automation.id) {
                continue;
            }
            let filter = crate::segment::compile_text(&self.store, expression, now)
                .await
                .map_err(AutomationError::Segment)?;
            let matching = self.store.matching_among(&ids, &filter).await?;
            let entered = self.store.add_members(automation.id, &matching).await?;
            started += self.enter(automation, definition, entered, now).await?;
        }
        Ok(started)
    }

    /// Whether the segment was evaluated whole once already (before that, everyone
    /// in it enters at the first evaluation anyway).
    fn members_known(&self, automation_id: i64) -> bool {
        let scans = self.scans.lock().expect("not poisoned");
        scans.scanned.contains_key(&automation_id)
    }

    async fn enter(
        &self,
        automation: &StoredAutomation,
        definition: &Definition,
        entered: Vec<i64>,
        now: i64,
    ) -> Result<u64, AutomationError> {
        let runs: Vec<NewRun> = entered
            .into_iter()
            .map(|recipient_id| {
                let mut run = new_run(automation, definition, recipient_id);
                run.trigger_key = format!("entered:{now}");
                (run.started_at, run.due_at) = (now, now);
                run
            })
            .collect();
        Ok(self.store.start_runs(&runs).await?)
    }

    async fn scan_new_recipients(&self, active: &Active, now: i64) -> Result<u64, AutomationError> {
        let created: Vec<&(StoredAutomation, Arc<Definition>)> = active
            .iter()
            .filter(|(_, d)| d.trigger == Trigger::RecipientCreated)
            .collect();
        let Some(start) = created.iter().map(|(a, _)| a.recipients_from).min() else {
            return Ok(0);
        };
        let mut after = self.store.automation_cursor("recipients", start).await?;
        let mut started = 0;
        loop {
            let recipients = self.store.recipients_after(after, SCAN_BATCH).await?;
            let Some(&(last, _)) = recipients.last() else {
                return Ok(started);
            };
            let mut runs = Vec::new();
            for (automation, definition) in &created {
                for &(id, _) in recipients
                    .iter()
                    .filter(|(id, _)| *id > automation.recipients_from)
                {
                    let mut run = new_run(automation, definition, id);
                    run.trigger_key = "created".into();
                    (run.started_at, run.due_at) = (now, now);
                    runs.push(run);
                }
            }
            started += self.store.start_runs(&runs).await?;
            self.store
                .move_automation_cursor("recipients", last)
                .await?;
            after = last;
            if (recipients.len() as i64) < SCAN_BATCH {
                return Ok(started);
            }
        }
    }

    async fn scan_subscriptions(
        &self,
        automation: &StoredAutomation,
        definition: &Definition,
        topic: &str,
    ) -> Result<u64, AutomationError> {
        let name = format!("subscribed:{}", automation.id);
        let mut after = self
            .store
            .automation_cursor(&name, automation.created_at)
            .await?;
        let mut started = 0;
        loop {
            let found = self
                .store
                .subscriptions_after(topic, after, SCAN_BATCH)
                .await?;
            let Some(&(_, last)) = found.last() else {
                return Ok(started);
            };
            let runs: Vec<NewRun> = found
                .iter()
                .map(|&(recipient_id, at)| {
                    let mut run = new_run(automation, definition, recipient_id);
                    run.trigger_key = format!("subscribed:{at}");
                    (run.started_at, run.due_at) =
                        (self.settings.clock.now(), self.settings.clock.now());
                    run
                })
                .collect();
            started += self.store.start_runs(&runs).await?;
            self.store.move_automation_cursor(&name, last).await?;
            after = last;
            if (found.len() as i64) < SCAN_BATCH {
                return Ok(started);
            }
        }
    }

    /// Whether the automation's periodic scan is due at `now`, every `every` seconds
    /// of the automation clock; marks it done when it is.
    fn periodic_due(&self, automation_id: i64, now: i64, every: i64) -> bool {
        let mut scans = self.scans.lock().expect("not poisoned");
        let due = scans
            .scanned
            .get(&automation_id)
            .is_none_or(|last| now >= last + every || now < *last);
        if due {
            scans.scanned.insert(automation_id, now);
        }
        due
    }

    /// Recipients who match the segment now and did not at the last evaluation enter.
    async fn scan_segment(
        &self,
        automation: &StoredAutomation,
        definition: &Definition,
        expression: &str,
        now: i64,
    ) -> Result<u64, AutomationError> {
        if !self.periodic_due(automation.id, now, self.settings.segment_every) {
            return Ok(0);
        }
        let filter = crate::segment::compile_text(&self.store, expression, now)
            .await
            .map_err(AutomationError::Segment)?;
        let matching = self.store.matching_ids(&filter).await?;
        let entered = self.store.replace_members(automation.id, &matching).await?;
        self.enter(automation, definition, entered, now).await
    }

    /// Runs for dates coming round in the next day, each due at its local time.
    async fn scan_dates(
        &self,
        automation: &StoredAutomation,
        definition: &Definition,
        field: &DateField,
        at: &super::definition::LocalTime,
        now: i64,
    ) -> Result<u64, AutomationError> {
        if !self.periodic_due(automation.id, now, HOUR) {
            return Ok(0);
        }
        let column = match field {
            DateField::Attribute(path) => DateColumn::Attribute(path.clone()),
            DateField::CreatedAt => DateColumn::CreatedAt,
        };
        let today = local_time_at(now, chrono_tz::UTC).date();
        let month_days: Vec<String> = (-1..=2)
            .map(|offset| today + Days::days(offset))
            .map(|d| format!("{:02}-{:02}", d.month(), d.day()))
            .collect();
        let candidates = self.store.date_candidates(&column, &month_days).await?;
        let mut runs = Vec::new();
        for candidate in candidates {
            let zone = zone_of(candidate.timezone.as_deref(), self.settings.default_zone);
            let Some(when) = occurrence_near(now, &candidate.month_day, at, zone) else {
                continue;
            };
            let in_window = when >= now - DATE_GRACE && when <= now + DATE_LOOKAHEAD;
            let first_year =
                *field == DateField::CreatedAt && when - candidate.created_at < 300 * 86_400;
            if in_window && !first_year {
                let mut run = new_run(automation, definition, candidate.id);
                run.trigger_key = format!("date:{}", local_time_at(when, zone).year());
                (run.started_at, run.due_at) = (when, when);
                runs.push(run);
            }
        }
        Ok(self.store.start_runs(&runs).await?)
    }
}

/// A run of the automation's current version for one recipient, with its entry rule;
/// the caller sets what triggered it and when.
fn new_run(automation: &StoredAutomation, definition: &Definition, recipient_id: i64) -> NewRun {
    NewRun {
        automation_id: automation.id,
        version_id: automation.version_id,
        recipient_id,
        trigger_key: String::new(),
        trigger_event_id: None,
        goal_kind: definition.goal.as_ref().map(|g| g.kind.clone()),
        started_at: 0,
        due_at: 0,
        entry_period: match definition.entry {
            EntryRule::Once => Some(i64::MAX / 4),
            EntryRule::OncePer { seconds } => Some(seconds),
            EntryRule::EveryTime => None,
        },
    }
}
