//! A/B tests through the real worker on both engines, on a clock the test moves: each
//! recipient's variant drawn once and kept in the ledger, the test judged by the rule
//! (machine clicks never count, equal variants have no winner), the chosen variant
//! sent to the rest exactly once, and the holdout never mailed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{
    Dispatcher, JudgeOutcome, judge_experiment, schedule_campaign, spawn_worker,
};
use mailcast::domain::CampaignStatus;
use mailcast::experiment::{Arm, Experiment, ExperimentInput, VariantInput, assign, design};
use mailcast::links::{Token, link_id};
use mailcast::store::{Campaign, NewEvent, NewTrackingEvent, Store, TrackingKind, Verdict};
use mailcast::time::Clock;

use crate::support::campaign::{
    WorkerOptions, create, dispatcher_configured, draft, wait_for_status,
};
use crate::support::http::{
    SALE_URL, SHOES_URL, TEMPLATE_HTML, TestServer, server_keys, wait_for_events,
};
use crate::support::smtp::SmtpServer;
use crate::support::{eventually, for_each_engine, recipient};

const T0: i64 = 1_780_000_000;
const PEOPLE: usize = 1_000;

/// Two subjects, 40 % tested, 10 % held out, judged on clicks after 4 h.
fn two_subjects() -> Experiment {
    let variant = |subject: &str| VariantInput {
        subject: Some(subject.into()),
        ..VariantInput::default()
    };
    let input = ExperimentInput {
        variants: vec![variant("Winter sale"), variant("Last chance")],
        test_share: Some("40%".into()),
        wait: Some("4h".into()),
        metric: Some("clicks".into()),
        holdout: Some("10%".into()),
    };
    design::check(&input, |_| None).unwrap()
}

/// The audience: `PEOPLE` recipients subscribed to `news`; their ids.
async fn audience(store: &Store) -> Vec<i64> {
    let batch: Vec<_> = (0..PEOPLE)
        .map(|i| recipient(&format!("p{i:04}@example.com"), "Pat", &["news"]))
        .collect();
    store.upsert_recipients(&batch).await.unwrap();
    let mut ids = Vec::with_capacity(PEOPLE);
    for i in 0..PEOPLE {
        let email = mailcast::domain::EmailAddress::parse(&format!("p{i:04}@example.com")).unwrap();
        ids.push(store.recipient_by_email(&email).await.unwrap().unwrap().id);
    }
    ids
}

struct Running {
    campaign: Campaign,
    dispatcher: Arc<Dispatcher>,
    clock: Clock,
    smtp: SmtpServer,
    /// Each recipient's arm, drawn as the worker draws it.
    arms: HashMap<i64, Arm>,
}

impl Running {
    fn in_arm(&self, wanted: Arm) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .arms
            .iter()
            .filter(|(_, a)| **a == wanted)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }

    fn tested(&self) -> usize {
        self.arms
            .values()
            .filter(|a| matches!(a, Arm::Variant(_)))
            .count()
    }
}

/// Schedules the experiment campaign and runs a worker until the test phase is sent.
async fn test_phase_sent(
    store: &Store,
    ids: &[i64],
    html: &str,
) -> (Running, mailcast::dispatch::WorkerHandle) {
    let smtp = SmtpServer::start();
    let clock = Clock::manual(T0);
    let mut new = draft(store, "winter", "news", html).await;
    new.settings.experiment = Some(two_subjects());
    let campaign = create(store, new).await;
    let options = WorkerOptions {
        batch_size: 100,
        ..WorkerOptions::default()
    };
    let config = TransportConfig::Smtp(SmtpUrl::parse(&smtp.url()).unwrap());
    let moved = clock.clone();
    let dispatcher =
        dispatcher_configured(store, &config, &options, move |s| s.clock = moved).await;
    schedule_campaign(store, &dispatcher.queue, campaign.id)
        .await
        .unwrap();
    let worker = spawn_worker(dispatcher.clone());
    let experiment = two_subjects();
    let arms = ids
        .iter()
        .map(|id| (*id, assign::arm(&experiment, campaign.id, *id)))
        .collect();
    let running = Running {
        campaign,
        dispatcher,
        clock,
        smtp,
        arms,
    };
    let tested = running.tested() as i64;
    eventually(
        "the test phase to be sent",
        Duration::from_secs(60),
        async || {
            let counts = store.ledger_counts(running.campaign.id).await.unwrap();
            if counts.sent == tested && counts.pending + counts.sending == 0 {
                Ok(())
            } else {
                let campaign = store.campaign(running.campaign.id).await.unwrap();
                Err(format!(
                    "{:?} {:?}: {counts:?}, {tested} tested",
                    campaign.status, campaign.pause_reason
                ))
            }
        },
    )
    .await;
    (running, worker)
}

fn human_clicks(campaign: &Campaign, who: &[i64], at: i64) -> Vec<NewTrackingEvent> {
    who.iter()
        .map(|id| NewTrackingEvent {
            kind: TrackingKind::Click,
            campaign_id: campaign.id,
            recipient_id: *id,
            link_id: Some(link_id(SALE_URL)),
            occurred_at: at,
            ip: None,
            user_agent: None,
            verdict: Verdict::Human,
            reason: None,
        })
        .collect()
}

/// Messages received per address, and the subjects each got.
fn inboxes(smtp: &SmtpServer) -> HashMap<String, Vec<String>> {
    let mut inboxes: HashMap<String, Vec<String>> = HashMap::new();
    for message in smtp.received() {
        let text = message.text();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_string();
        for to in message.to {
            inboxes.entry(to).or_default().push(subject.clone());
        }
    }
    inboxes
}

fn email(index_of: &HashMap<i64, usize>, id: i64) -> String {
    format!("p{:04}@example.com", index_of[&id])
}

#[tokio::test]
async fn the_winner_goes_to_the_rest_once_and_the_holdout_gets_nothing() {
    for_each_engine(|store, engine| async move {
        let ids = audience(&store).await;
        let index_of: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let (run, worker) = test_phase_sent(&store, &ids, crate::support::campaign::HTML).await;
        let id = run.campaign.id;
        let stored = store.delivery_variants(id).await.unwrap();
        assert_eq!(stored.len(), run.tested(), "{engine}: only the test share is in the ledger");
        for (recipient, variant) in &stored {
            assert_eq!(Arm::Variant(variant.unwrap() as usize), run.arms[recipient], "{engine}: the variant drawn is the one stored");
        }
        assert_eq!(store.campaign(id).await.unwrap().status, CampaignStatus::Running, "{engine}: waits for its judge");

        // B is clicked far more by people.
        let (a, b) = (run.in_arm(Arm::Variant(0)), run.in_arm(Arm::Variant(1)));
        let mut clicks = human_clicks(&run.campaign, &a[..a.len() / 50], T0 + 60);
        clicks.extend(human_clicks(&run.campaign, &b[..b.len() * 3 / 10], T0 + 60));
        store.insert_tracking_events(&clicks).await.unwrap();

        let early = judge_experiment(&run.dispatcher, id).await.unwrap();
        assert_eq!(early, JudgeOutcome::NotYet { due: T0 + 4 * 3_600 }, "{engine}");
        run.clock.advance(4 * 3_600);
        let JudgeOutcome::Judged { judgement, released } = judge_experiment(&run.dispatcher, id).await.unwrap() else {
            panic!("{engine}: judged after the wait");
        };
        let rest = run.in_arm(Arm::Rest);
        assert_eq!((judgement.winner, judgement.sent_variant, released), (Some(1), 1, rest.len() as u64), "{engine}: {judgement:?}");
        wait_for_status(&store, id, CampaignStatus::Done, Duration::from_secs(60)).await;
        worker.shutdown().await.unwrap();

        let inboxes = inboxes(&run.smtp);
        for (recipient, arm) in &run.arms {
            let got = inboxes.get(&email(&index_of, *recipient)).cloned().unwrap_or_default();
            let expected: &[&str] = match arm {
                Arm::Holdout => &[],
                Arm::Variant(0) => &["Winter sale"],
                Arm::Variant(_) | Arm::Rest => &["Last chance"],
            };
            assert_eq!(got, expected, "{engine}: recipient {recipient} in {arm:?}");
        }

        // Five of B's clickers buy after their click: B's orders and revenue.
        let purchases: Vec<NewEvent> = b[..5]
            .iter()
            .map(|who| NewEvent {
                external_id: Some(format!("order-{who}")),
                recipient_id: *who,
                kind: "purchase".into(),
                product_id: None,
                amount_cents: Some(5_000),
                occurred_at: T0 + 120,
                properties: serde_json::Map::new(),
            })
            .collect();
        store.insert_events(&purchases).await.unwrap();
        let stats = store.campaign_statistics(id).await.unwrap();
        let b_row = stats.experiment.as_ref().unwrap().results.iter().find(|r| r.variant == "B").unwrap().clone();
        assert_eq!((b_row.conversions, b_row.orders, b_row.revenue_cents), (5, 5, 25_000), "{engine}: {b_row:?}");
        let csv = mailcast::store::stats_csv(&stats);
        let line = format!("winter,B,,{},", b_row.delivered);
        assert!(csv.lines().any(|l| l.starts_with(&line) && l.contains(",5,5,250.00,")), "{engine}: {csv}");

        let again = judge_experiment(&run.dispatcher, id).await.unwrap();
        assert!(matches!(again, JudgeOutcome::Judged { released: 0, ref judgement } if judgement.winner == Some(1)), "{engine}: {again:?}");
        let report = store.campaign_statistics(id).await.unwrap().experiment.unwrap();
        assert_eq!(report.judgement.as_ref().and_then(|j| j.winner.as_deref()), Some("B"), "{engine}");
        assert_eq!(report.holdout_recipients as usize, run.in_arm(Arm::Holdout).len(), "{engine}");
        assert_eq!(report.waiting_for_winner, 0, "{engine}");
        let delivered: i64 = report.results.iter().map(|r| r.delivered).sum();
        assert_eq!(delivered as usize, PEOPLE - run.in_arm(Arm::Holdout).len(), "{engine}: {:?}", report.results);
        let detail = &report.judgement.unwrap().detail;
        assert!(detail["rule"].as_str().unwrap().contains("z-test"), "{engine}: {detail}");
    })
    .await;
}

#[tokio::test]
async fn a_scanner_clicking_every_link_of_b_does_not_make_equal_variants_a_winner() {
    for_each_engine(|store, engine| async move {
        let ids = audience(&store).await;
        let index_of: HashMap<i64, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let (run, worker) = test_phase_sent(&store, &ids, TEMPLATE_HTML).await;
        let id = run.campaign.id;
        let (a, b) = (run.in_arm(Arm::Variant(0)), run.in_arm(Arm::Variant(1)));
        // People click both variants alike: 10 of each.
        let mut clicks = human_clicks(&run.campaign, &a[..10], T0 + 60);
        clicks.extend(human_clicks(&run.campaign, &b[..10], T0 + 60));
        store.insert_tracking_events(&clicks).await.unwrap();
        // A security gateway in front of B's other recipients follows every link of
        // every message, over real HTTP.
        let server = TestServer::start(&store).await;
        let keys = server_keys();
        let scanned = &b[10..];
        for recipient in scanned {
            for url in [SALE_URL, SHOES_URL] {
                let token = Token::click(id, *recipient, link_id(url));
                let status = server
                    .client
                    .get(server.token_url(&token, &keys))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, 302, "{engine}");
            }
        }
        wait_for_events(&store, TrackingKind::Click, 20 + 2 * scanned.len() as i64).await;
        server.stop().await;

        run.clock.advance(4 * 3_600);
        let JudgeOutcome::Judged { judgement, .. } =
            judge_experiment(&run.dispatcher, id).await.unwrap()
        else {
            panic!("{engine}: judged after the wait");
        };
        assert_eq!(
            (judgement.winner, judgement.sent_variant),
            (None, 0),
            "{engine}: {judgement:?}"
        );
        wait_for_status(&store, id, CampaignStatus::Done, Duration::from_secs(60)).await;
        worker.shutdown().await.unwrap();

        let report = store
            .campaign_statistics(id)
            .await
            .unwrap()
            .experiment
            .unwrap();
        let b_row = report
            .results
            .iter()
            .find(|r| r.variant == "B" && r.segment.is_none())
            .unwrap();
        assert_eq!(b_row.clicks.unique_human, 10, "{engine}: {b_row:?}");
        assert!(
            b_row.clicks.unique_machine as usize >= scanned.len() - 2,
            "{engine}: the scanner's clicks are machine: {b_row:?}"
        );
        let detail = report.judgement.unwrap().detail;
        assert_eq!(
            detail["decision"]["decision"], "no_significant_winner",
            "{engine}: {detail}"
        );
        let inboxes = inboxes(&run.smtp);
        for recipient in run.in_arm(Arm::Rest) {
            assert_eq!(
                inboxes[&email(&index_of, recipient)],
                ["Winter sale"],
                "{engine}: the default goes to the rest"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_variant_with_its_own_send_time_waits_for_it_and_the_judge_waits_for_the_last() {
    for_each_engine(|store, engine| async move {
        let ids = audience(&store).await;
        let mut experiment = two_subjects();
        experiment.variants[1].send_at = Some(T0 + 3_600);
        let mut new = draft(&store, "timed", "news", crate::support::campaign::HTML).await;
        new.settings.experiment = Some(experiment.clone());
        let campaign = create(&store, new).await;
        let clock = Clock::manual(T0);
        let moved = clock.clone();
        let config = TransportConfig::Smtp(SmtpUrl::parse("smtp://127.0.0.1:9").unwrap());
        let dispatcher =
            dispatcher_configured(&store, &config, &WorkerOptions::default(), move |s| {
                s.clock = moved
            })
            .await;
        schedule_campaign(&store, &dispatcher.queue, campaign.id)
            .await
            .unwrap();
        let started = mailcast::dispatch::start_campaign(&dispatcher, campaign.id)
            .await
            .unwrap();
        assert!(
            matches!(started, mailcast::dispatch::StartOutcome::Started { .. }),
            "{engine}: {started:?}"
        );

        let later: usize = ids
            .iter()
            .filter(|id| assign::arm(&experiment, campaign.id, **id) == Arm::Variant(1))
            .count();
        let counts = store.ledger_counts(campaign.id).await.unwrap();
        assert_eq!(
            counts.deferred as usize, later,
            "{engine}: B waits for its own time: {counts:?}"
        );
        assert!(counts.pending > 0, "{engine}: A goes now: {counts:?}");
        assert_eq!(
            store.next_retry_at(campaign.id).await.unwrap(),
            Some(T0 + 3_600),
            "{engine}"
        );
        clock.advance(4 * 3_600);
        let outcome = judge_experiment(&dispatcher, campaign.id).await.unwrap();
        assert_eq!(
            outcome,
            JudgeOutcome::NotYet {
                due: T0 + 3_600 + 4 * 3_600
            },
            "{engine}"
        );
    })
    .await;
}
