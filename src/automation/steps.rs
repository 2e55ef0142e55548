//! Moving one claimed run on: from its step, through every step that can be done now,
//! to the step it waits at or to its end.

use sha2::{Digest, Sha256};

use super::AutomationError;
use super::definition::{Action, Change, Definition, EventMatch, Next};
use super::engine::AutomationEngine;
use super::local_time::next_local_time;
use crate::schedule::zone_of;
use crate::store::{ClaimedRun, Recipient, RunState, RunUpdate};

/// What moving a run on did: where it stands, and the deliveries it needs in the
/// ledger, `(campaign_id, recipient_id)`.
pub(super) struct Moved {
    pub update: RunUpdate,
    pub deliveries: Vec<(i64, i64)>,
}

/// The run being moved: its position and what it did on the way.
struct Position<'a> {
    run: &'a ClaimedRun,
    step: usize,
    entered_at: i64,
    last_sent: Option<i64>,
    entered: Vec<(i64, i64)>,
    deliveries: Vec<(i64, i64)>,
}

enum Went {
    On,
    Stop(RunState),
}

impl Position<'_> {
    fn go(&mut self, next: &Next, at: i64) -> Went {
        match next {
            Next::Step(index) => {
                self.step = *index;
                self.entered_at = at;
                self.entered.push((*index as i64, at));
                Went::On
            }
            Next::Exit => Went::Stop(ended(self.step, at, "finished", None)),
        }
    }

    fn finish(self, state: RunState) -> Moved {
        Moved {
            update: RunUpdate {
                run_id: self.run.id,
                state,
                last_sent_step: self.last_sent,
                entered: self.entered,
            },
            deliveries: self.deliveries,
        }
    }
}

fn ended(step: usize, at: i64, reason: &str, converted_at: Option<i64>) -> RunState {
    RunState::Ended {
        step: step as i64,
        at,
        reason: reason.to_string(),
        converted_at,
    }
}

fn waiting(step: usize, entered_at: i64, due_at: i64, waiting_for: Option<String>) -> RunState {
    RunState::Waiting {
        step: step as i64,
        entered_at,
        due_at,
        waiting_for,
    }
}

impl AutomationEngine {
    /// Moves `run` on as far as it goes at `now`.
    pub(super) async fn move_run(
        &self,
        definition: &Definition,
        run: &ClaimedRun,
        recipient: Option<&Recipient>,
        now: i64,
    ) -> Result<Moved, AutomationError> {
        let mut at = Position {
            run,
            step: run.step as usize,
            entered_at: run.step_entered_at,
            last_sent: run.last_sent_step,
            entered: Vec::new(),
            deliveries: Vec::new(),
        };
        if run.step == 0 && run.step_entered_at == run.started_at {
            at.entered.push((0, run.started_at));
        }
        let Some(recipient) = recipient.filter(|r| r.status == "active") else {
            let reason = recipient.map_or("erased", |r| r.status.as_str());
            return Ok(at.finish(ended(run.step as usize, now, reason, None)));
        };
        if let Some(reached) = self.goal_reached(definition, run, now).await? {
            let converted = at.last_sent.map(|_| reached);
            let state = ended(at.step, reached, "goal", converted);
            return Ok(at.finish(state));
        }
        // Steps form no cycle, so every step is passed at most once.
        for _ in 0..=definition.steps.len() {
            match self.take_step(definition, &mut at, recipient, now).await? {
                Went::On => continue,
                Went::Stop(state) => return Ok(at.finish(state)),
            }
        }
        let step = at.step;
        Ok(at.finish(ended(step, now, "finished", None)))
    }

    async fn take_step(
        &self,
        definition: &Definition,
        at: &mut Position<'_>,
        recipient: &Recipient,
        now: i64,
    ) -> Result<Went, AutomationError> {
        let Some(step) = definition.steps.get(at.step) else {
            return Ok(Went::Stop(ended(at.step, at.entered_at, "finished", None)));
        };
        let entered_at = at.entered_at;
        Ok(match &step.action {
            Action::Wait { seconds, next } => {
                let due = entered_at + seconds;
                if due > now {
                    return Ok(Went::Stop(waiting(at.step, entered_at, due, None)));
                }
                at.go(next, due)
            }
            Action::WaitUntil { at: time, next } => {
                let zone = zone_of(recipient.timezone.as_deref(), self.settings.default_zone);
                let due = next_local_time(entered_at, time, zone);
                if due > now {
                    return Ok(Went::Stop(waiting(at.step, entered_at, due, None)));
                }
                at.go(next, due)
            }
            Action::WaitFor {
                event,
                timeout_seconds,
                on_event,
                on_timeout,
            } => {
                let deadline = entered_at + timeout_seconds;
                let until = deadline.min(now);
                let came = self.first_match(event, at.run, entered_at, until).await?;
                match came {
                    Some(when) => at.go(on_event, when.max(entered_at)),
                    None if now >= deadline => at.go(on_timeout, deadline),
                    None => {
                        let kind = Some(event.kind.clone());
                        return Ok(Went::Stop(waiting(at.step, entered_at, deadline, kind)));
                    }
                }
            }
            Action::If {
                condition,
                then,
                otherwise,
            } => {
                let filter = self.condition(condition, now).await.map_err(|source| {
                    AutomationError::Condition {
                        step: at.step + 1,
                        source,
                    }
                })?;
                let holds = self.store.recipient_matches(recipient.id, &filter).await?;
                at.go(if holds { then } else { otherwise }, entered_at)
            }
            Action::Split { branches } => {
                let next = pick_branch(at.run.id, at.step, branches);
                at.go(&next, entered_at)
            }
            Action::Send { next, .. } => {
                let campaign = self.step_campaign(definition, at.run, at.step).await?;
                at.deliveries.push((campaign, at.run.recipient_id));
                at.last_sent = Some(at.step as i64);
                at.go(next, entered_at)
            }
            Action::Update { change, next } => {
                self.apply_change(definition, recipient.id, change).await?;
                at.go(next, entered_at)
            }
            Action::Exit => Went::Stop(ended(at.step, entered_at, "exit", None)),
        })
    }

    /// When the run's goal event came, if it has come since the run started.
    async fn goal_reached(
        &self,
        definition: &Definition,
        run: &ClaimedRun,
        now: i64,
    ) -> Result<Option<i64>, AutomationError> {
        match &definition.goal {
            Some(goal) => self.first_match(goal, run, run.started_at, now).await,
            None => Ok(None),
        }
    }

    /// When the first event matching `wanted` came between `from` and `to`.
    async fn first_match(
        &self,
        wanted: &EventMatch,
        run: &ClaimedRun,
        from: i64,
        to: i64,
    ) -> Result<Option<i64>, AutomationError> {
        if to < from {
            return Ok(None);
        }
        let events = self
            .store
            .first_event_between(
                run.recipient_id,
                &wanted.kind,
                from,
                to,
                run.trigger_event_id,
            )
            .await?;
        Ok(events
            .iter()
            .find(|e| {
                wanted.matches(
                    &e.kind,
                    e.sku.as_deref(),
                    e.category.as_deref(),
                    e.amount_cents,
                )
            })
            .map(|e| e.occurred_at))
    }

    async fn apply_change(
        &self,
        definition: &Definition,
        recipient_id: i64,
        change: &Change,
    ) -> Result<(), AutomationError> {
        let source = format!("automation:{}", definition.name);
        match change {
            Change::Attribute { path, value } => {
                self.store.set_attribute(recipient_id, path, value).await?
            }
            Change::Subscribe(topic) => {
                self.store
                    .subscribe_topic(recipient_id, topic, &source)
                    .await?
            }
            Change::Unsubscribe(topic) => {
                self.store
                    .unsubscribe(recipient_id, Some(topic), &source)
                    .await?
            }
        }
        Ok(())
    }
}

/// The same branch for a run every time it is asked: a hash of run and step.
fn pick_branch(run_id: i64, step: usize, branches: &[(u32, Next)]) -> Next {
    let total: u64 = branches.iter().map(|(weight, _)| u64::from(*weight)).sum();
    let digest = Sha256::digest(format!("{run_id}:{step}").as_bytes());
    let mut point = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % total.max(1);
    for (weight, next) in branches {
        let weight = u64::from(*weight);
        if point < weight {
            return *next;
        }
        point -= weight;
    }
    Next::Exit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_picks_the_same_branch_for_a_run_and_follows_the_weights() {
        let branches = vec![(80, Next::Step(1)), (20, Next::Step(2))];
        let mut first = 0;
        for run in 0..10_000 {
            let picked = pick_branch(run, 3, &branches);
            assert_eq!(picked, pick_branch(run, 3, &branches));
            if picked == Next::Step(1) {
                first += 1;
            }
        }
        assert!(
            (7_700..8_300).contains(&first),
            "{first} of 10,000 took the 80 % branch"
        );
    }
}
