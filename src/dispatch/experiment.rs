//! The judge job of a test-then-winner experiment: once the test has had its wait,
//! judge it by the rule in `experiment::judge`, store the judgement once, and send the
//! variant that won (the default, A, when none won) to the rest of the audience.

use std::sync::Arc;
use std::time::Duration;

use super::{DeliverBatch, DispatchError, Dispatcher, StartCampaign};
use crate::domain::CampaignStatus;
use crate::experiment::Experiment;
use crate::experiment::judge::{self, Decision};
use crate::store::{Store, StoredJudgement};

#[derive(Debug, Clone, PartialEq)]
pub enum JudgeOutcome {
    /// The wait is not over: the job comes back at `due`.
    NotYet { due: i64 },
    /// Judged (now or before); `released` deliveries were added for the rest now.
    Judged {
        judgement: StoredJudgement,
        released: u64,
    },
    /// Nothing to judge: no test, or the campaign is not under way.
    Skipped(String),
}

/// Judges the campaign's test if its wait is over. Safe to run twice and after a
/// crash anywhere: the first stored judgement holds, and the rest is added once, in
/// the transaction that stores it.
pub async fn judge_experiment(
    dispatcher: &Arc<Dispatcher>,
    campaign_id: i64,
) -> Result<JudgeOutcome, DispatchError> {
    let store = &dispatcher.store;
    let campaign = store.campaign(campaign_id).await?;
    let Some(experiment) = campaign.settings.0.experiment.clone() else {
        return Ok(JudgeOutcome::Skipped(
            "the campaign has no experiment".into(),
        ));
    };
    if !experiment.picks_a_winner() {
        return Ok(JudgeOutcome::Skipped(
            "a split has no winner to send".into(),
        ));
    }
    if !matches!(
        campaign.status,
        CampaignStatus::Running | CampaignStatus::Paused | CampaignStatus::Done
    ) {
        return Ok(JudgeOutcome::Skipped(format!(
            "the campaign is {}",
            campaign.status
        )));
    }
    let now = dispatcher.settings.clock.now();
    let judgement = match store.judgement(campaign_id).await? {
        Some(judgement) => judgement,
        None => {
            let due = due_at(store, &experiment, campaign_id, now).await?;
            if now < due {
                let wait = Duration::from_secs((due - now) as u64);
                let job = StartCampaign::judge(campaign_id);
                dispatcher.queue.push_start(job, wait).await?;
                return Ok(JudgeOutcome::NotYet { due });
            }
            judge_now(store, &experiment, campaign_id, now).await?
        }
    };
    let (judgement, released) = store
        .judge_and_release(campaign_id, &judgement, now)
        .await?;
    if released > 0 {
        tracing::info!(
            campaign_id,
            released,
            variant = judgement.sent_variant,
            "the rest of the audience gets the chosen variant"
        );
        resume_delivering(dispatcher, campaign_id).await?;
    }
    Ok(JudgeOutcome::Judged {
        judgement,
        released,
    })
}

/// When the test may be judged: its wait after its start, or after the latest variant
/// send time when that is later.
async fn due_at(
    store: &Store,
    experiment: &Experiment,
    campaign_id: i64,
    now: i64,
) -> Result<i64, DispatchError> {
    let started = store
        .experiment_started_at(campaign_id)
        .await?
        .unwrap_or(now);
    let latest_send = experiment
        .variants
        .iter()
        .filter_map(|v| v.send_at)
        .fold(started, i64::max);
    Ok(latest_send + experiment.wait_seconds)
}

async fn judge_now(
    store: &Store,
    experiment: &Experiment,
    campaign_id: i64,
    now: i64,
) -> Result<StoredJudgement, DispatchError> {
    let metric = experiment.metric();
    let samples = store
        .experiment_samples(campaign_id, metric, experiment.variants.len())
        .await?;
    let judgement = judge::judge(metric, &samples);
    let winner = match judgement.decision {
        Decision::Winner { variant } => Some(variant as i64),
        Decision::NoSignificantWinner { .. } => None,
    };
    tracing::info!(campaign_id, ?winner, "experiment judged");
    Ok(StoredJudgement {
        judged_at: now,
        winner,
        sent_variant: winner.unwrap_or(0),
        judgement: serde_json::to_string(&judgement).expect("a judgement serialises"),
    })
}

/// A campaign finished with its test goes on running for the rest.
async fn resume_delivering(
    dispatcher: &Arc<Dispatcher>,
    campaign_id: i64,
) -> Result<(), DispatchError> {
    dispatcher
        .store
        .transition_campaign(
            campaign_id,
            &[CampaignStatus::Done],
            CampaignStatus::Running,
        )
        .await?;
    for _ in 0..dispatcher.settings.jobs_per_campaign.max(1) {
        dispatcher
            .queue
            .push_deliver(DeliverBatch { campaign_id }, Duration::ZERO)
            .await?;
    }
    Ok(())
}
