//! When and how often people are mailed: local send times across a daylight-saving
//! change, quiet hours, and frequency caps, on both engines, with a clock the test
//! moves (no sleeping to see that nothing happened).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{
    DispatchSettings, Dispatcher, TriggeredSend, WorkerHandle, cancel_campaign, check_send,
    enqueue_send, pause_campaign, resume_campaign, schedule_campaign, spawn_worker,
};
use mailcast::domain::{CampaignKind, CampaignStatus};
use mailcast::links::KeyRing;
use mailcast::render::LinkSettings;
use mailcast::schedule::{FrequencyCap, LocalSendTime, QuietHours, WhenCapped, parse_zone};
use mailcast::store::{
    Campaign, CampaignSettings, Claim, Db, DeliveryOutcome, Handing, NewCampaign, SqlFilter,
    SqlParam, Store,
};
use mailcast::time::Clock;

use crate::support::campaign::{
    self, HTML, WorkerOptions, create, dispatcher_configured, wait_for_status,
};
use crate::support::smtp::SmtpServer;
use crate::support::{eventually, for_each_engine, recipient};

fn utc(text: &str) -> i64 {
    mailcast::time::parse_timestamp(text).unwrap()
}

/// A worker with the test defaults, then `configure`, that looks again at waiting
/// campaigns every 50 ms.
async fn worker(
    store: &Store,
    smtp: &SmtpServer,
    configure: impl FnOnce(&mut DispatchSettings),
) -> (Arc<Dispatcher>, WorkerHandle) {
    let config = TransportConfig::Smtp(SmtpUrl::parse(&smtp.url()).unwrap());
    let dispatcher = dispatcher_configured(store, &config, &WorkerOptions::default(), |s| {
        s.recheck = Duration::from_millis(50);
        configure(s);
    })
    .await;
    let handle = spawn_worker(dispatcher.clone());
    (dispatcher, handle)
}

/// A marketing campaign of the test template to everyone subscribed to `news`, now.
async fn draft(store: &Store, name: &str) -> NewCampaign {
    campaign::draft(store, name, "news", HTML).await
}

async fn marketing(store: &Store, name: &str) -> Campaign {
    create(store, draft(store, name).await).await
}

async fn transactional(store: &Store, name: &str) -> Campaign {
    let receipt = NewCampaign {
        kind: CampaignKind::Transactional,
        ..draft(store, name).await
    };
    create(store, receipt).await
}

async fn done(store: &Store, campaign: &Campaign) {
    wait_for_status(
        store,
        campaign.id,
        CampaignStatus::Done,
        Duration::from_secs(30),
    )
    .await;
}

fn received(smtp: &SmtpServer) -> BTreeSet<String> {
    smtp.received()
        .into_iter()
        .flat_map(|m| m.to)
        .map(|to| to.trim_matches(['<', '>']).to_string())
        .collect()
}

/// Each delivery's recipient, status, next attempt and last error.
async fn ledger(
    store: &Store,
    campaign_id: i64,
) -> Vec<(String, String, Option<i64>, Option<String>)> {
    let sql = "SELECT r.email, d.status, d.next_attempt_at, d.last_error
               FROM deliveries d JOIN recipients r ON r.id = d.recipient_id
               WHERE d.campaign_id = $1 ORDER BY r.email";
    match store.db() {
        Db::Sqlite(pool) => sqlx::query_as(sql).bind(campaign_id).fetch_all(pool).await,
        Db::Postgres(pool) => sqlx::query_as(sql).bind(campaign_id).fetch_all(pool).await,
    }
    .unwrap()
}

async fn people(store: &Store, zones: &[(&str, Option<&str>)]) {
    let batch: Vec<_> = zones
        .iter()
        .map(|(email, zone)| {
            let mut r = recipient(email, "P", &["news"]);
            r.timezone = zone.map(str::to_string);
            r
        })
        .collect();
    store.upsert_recipients(&batch).await.unwrap();
}

#[tokio::test]
async fn each_recipient_gets_the_campaign_at_nine_their_time_across_a_daylight_saving_change() {
    for_each_engine(|store, engine| async move {
        people(
            &store,
            &[
                ("auckland@example.com", Some("Pacific/Auckland")),
                ("berlin@example.com", Some("Europe/Berlin")),
                ("la@example.com", Some("America/Los_Angeles")),
                ("nozone@example.com", None),
            ],
        )
        .await;
        // 2026-03-08: Los Angeles and New York (the default zone here) move to
        // daylight time at 02:00 that morning.
        let local: LocalSendTime = "2026-03-08T09:00".parse().unwrap();
        let settings = CampaignSettings {
            local_send_time: Some(local.to_string()),
            ..CampaignSettings::default()
        };
        let news = create(
            &store,
            NewCampaign {
                settings,
                send_at: Some(local.earliest()),
                ..draft(&store, "nine").await
            },
        )
        .await;
        let smtp = SmtpServer::start();
        let clock = Clock::manual(utc("2026-03-07T12:00:00Z"));
        let (dispatcher, handle) = worker(&store, &smtp, |s| {
            s.clock = clock.clone();
            s.default_zone = parse_zone("America/New_York").unwrap();
        })
        .await;
        schedule_campaign(&store, &dispatcher.queue, news.id)
            .await
            .unwrap();
        wait_for_status(
            &store,
            news.id,
            CampaignStatus::Running,
            Duration::from_secs(20),
        )
        .await;

        let expected = [
            ("auckland@example.com", utc("2026-03-07T20:00:00Z")),
            ("berlin@example.com", utc("2026-03-08T08:00:00Z")),
            ("nozone@example.com", utc("2026-03-08T13:00:00Z")),
            ("la@example.com", utc("2026-03-08T16:00:00Z")),
        ];
        let waiting: Vec<(String, Option<i64>)> = ledger(&store, news.id)
            .await
            .into_iter()
            .map(|(email, status, at, _)| {
                assert_eq!(status, "deferred", "{engine}: {email}");
                (email, at)
            })
            .collect();
        for (email, at) in expected {
            assert!(
                waiting.contains(&(email.to_string(), Some(at))),
                "{engine}: {email} at {at}: {waiting:?}"
            );
        }
        assert_eq!(
            store.waiting(news.id).await.unwrap().local_time,
            4,
            "{engine}"
        );

        let mut due = BTreeSet::new();
        for (email, at) in expected {
            clock.advance(at - clock.now());
            due.insert(email.to_string());
            let arrived = eventually(
                &format!("{engine}: {email} at {at}"),
                Duration::from_secs(20),
                async || {
                    let now = received(&smtp);
                    if now.contains(email) {
                        Ok(now)
                    } else {
                        Err(format!("{now:?}"))
                    }
                },
            )
            .await;
            assert_eq!(arrived, due, "{engine}: nobody before their time");
        }
        done(&store, &news).await;
        handle.shutdown().await.unwrap();
        assert_eq!(smtp.received().len(), 4, "{engine}: one message each");
    })
    .await;
}

#[tokio::test]
async fn quiet_hours_hold_marketing_until_morning_in_the_recipients_zone_and_let_transactional_pass()
 {
    for_each_engine(|store, engine| async move {
        people(&store, &[("night@example.com", Some("Europe/Berlin"))]).await;
        let smtp = SmtpServer::start();
        // 22:30 in Berlin.
        let clock = Clock::manual(utc("2026-12-07T21:30:00Z"));
        let quiet: QuietHours = "21:00-08:00".parse().unwrap();
        let (dispatcher, handle) = worker(&store, &smtp, |s| {
            s.clock = clock.clone();
            s.quiet_hours = Some(quiet);
        })
        .await;
        let news = marketing(&store, "evening-news").await;
        let receipt = transactional(&store, "receipt").await;
        schedule_campaign(&store, &dispatcher.queue, news.id)
            .await
            .unwrap();
        schedule_campaign(&store, &dispatcher.queue, receipt.id)
            .await
            .unwrap();

        done(&store, &receipt).await;
        let held = eventually(
            &format!("{engine}: the news held"),
            Duration::from_secs(20),
            async || match ledger(&store, news.id).await.pop() {
                Some(row) if row.1 == "deferred" => Ok(row),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
        assert_eq!(
            held.2,
            Some(utc("2026-12-08T07:00:00Z")),
            "{engine}: until 08:00 Berlin"
        );
        assert_eq!(
            held.3.as_deref(),
            Some("quiet hours 21:00-08:00 in Europe/Berlin"),
            "{engine}"
        );
        assert_eq!(
            store.waiting(news.id).await.unwrap().quiet_hours,
            1,
            "{engine}"
        );
        assert_eq!(smtp.received().len(), 1, "{engine}: only the receipt");

        clock.advance(utc("2026-12-08T07:00:00Z") - clock.now());
        done(&store, &news).await;
        handle.shutdown().await.unwrap();
        assert_eq!(
            smtp.received().len(),
            2,
            "{engine}: the news came in the morning"
        );
    })
    .await;
}

#[tokio::test]
async fn a_triggered_marketing_send_after_two_campaigns_is_capped_for_exactly_those_who_had_two() {
    for_each_engine(|store, engine| async move {
        people(
            &store,
            &[
                ("one@example.com", None),
                ("two@example.com", None),
                ("three@example.com", None),
            ],
        )
        .await;
        store
            .upsert_segment(
                "first-two",
                r#"email in ["one@example.com", "two@example.com"]"#,
                "",
            )
            .await
            .unwrap();
        let segment = store.segment_by_name("first-two").await.unwrap().unwrap();
        let smtp = SmtpServer::start();
        let cap = FrequencyCap {
            when_capped: WhenCapped::Skip,
            ..("2/1d".parse().unwrap())
        };
        let (dispatcher, handle) = worker(&store, &smtp, |s| s.frequency_cap = Some(cap)).await;

        let everyone = marketing(&store, "monday").await;
        let first_two = NewCampaign {
            segment_id: Some(segment.id),
            ..draft(&store, "monday-noon").await
        };
        let second = create(&store, first_two).await;
        let receipt = transactional(&store, "monday-receipt").await;
        for c in [&everyone, &second, &receipt] {
            schedule_campaign(&store, &dispatcher.queue, c.id)
                .await
                .unwrap();
            done(&store, c).await;
        }
        // The third: a triggered marketing send to each of them, as a CRM would ask.
        let mut evening = Vec::new();
        let mut skipped = 0;
        for email in ["one@example.com", "three@example.com", "two@example.com"] {
            let send_id = triggered_marketing_send(&store, &dispatcher, email).await;
            wait_for_status(
                &store,
                send_id,
                CampaignStatus::Done,
                Duration::from_secs(30),
            )
            .await;
            evening.extend(ledger(&store, send_id).await);
            skipped += store.waiting(send_id).await.unwrap().capped_skipped;
        }
        handle.shutdown().await.unwrap();

        let seen: Vec<(&str, &str, Option<&str>)> = evening
            .iter()
            .map(|(email, status, _, error)| (email.as_str(), status.as_str(), error.as_deref()))
            .collect();
        let capped = Some("capped: 2 marketing messages in 1d already");
        assert_eq!(
            seen,
            [
                ("one@example.com", "suppressed", capped),
                ("three@example.com", "sent", None),
                ("two@example.com", "suppressed", capped),
            ],
            "{engine}"
        );
        assert_eq!(skipped, 2, "{engine}");
        let receipts = ledger(&store, receipt.id).await;
        assert!(
            receipts.iter().all(|r| r.1 == "sent"),
            "{engine}: transactional is exempt: {receipts:?}"
        );
        assert_eq!(smtp.received().len(), 3 + 2 + 1 + 3, "{engine}");
    })
    .await;
}

/// `POST /api/sends` as the CRM calls it, with `kind: marketing`; returns the send's
/// campaign id.
async fn triggered_marketing_send(store: &Store, dispatcher: &Dispatcher, email: &str) -> i64 {
    let send: TriggeredSend = serde_json::from_value(serde_json::json!({
        "template": "monday-template",
        "email": email,
        "from_email": "news@shop.example.com",
        "kind": "marketing",
        "topic": "news",
    }))
    .unwrap();
    let links = LinkSettings::new("http://localhost:8080".into(), KeyRing::development());
    let checked = check_send(store, &links, send).await.unwrap();
    enqueue_send(store, &dispatcher.queue, checked)
        .await
        .unwrap()
        .send_id
}

/// Two workers claim two campaigns' deliveries to the same people at once, under a
/// cap of one: each person passes the cap in one claim only. Five rounds, each with
/// people of its own, since a lost race shows only sometimes.
#[tokio::test]
async fn racing_claims_never_both_pass_the_cap_for_one_recipient() {
    for_each_engine(|store, engine| async move {
        for round in 0..5 {
            race_once(&store, engine, round).await;
        }
    })
    .await;
}

async fn race_once(store: &Store, engine: &str, round: usize) {
    let emails: Vec<String> = (0..30)
        .map(|i| format!("r{round}-{i:02}@example.com"))
        .collect();
    let zones: Vec<(&str, Option<&str>)> = emails.iter().map(|e| (e.as_str(), None)).collect();
    people(store, &zones).await;
    let this_round = SqlFilter {
        sql: "r.email LIKE $1".into(),
        params: vec![SqlParam::Text(format!("r{round}-%"))],
    };
    let a = marketing(store, &format!("race-a{round}")).await;
    let b = marketing(store, &format!("race-b{round}")).await;
    for c in [&a, &b] {
        store.freeze_audience(c, &this_round).await.unwrap();
    }
    let cap: FrequencyCap = "1/1d".parse().unwrap();
    let claim = |campaign_id: i64, worker: &str| Claim {
        campaign_id,
        worker: worker.into(),
        limit: 100,
        lease_seconds: 300,
        after_id: 0,
        due: mailcast::time::now(),
        cap: Some(cap),
    };
    let (to_a, to_b) = (claim(a.id, "w1"), claim(b.id, "w2"));
    let (first, second) = tokio::join!(store.claim(&to_a), store.claim(&to_b));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!((first.len(), second.len()), (30, 30), "{engine}");
    for email in &emails {
        let passes = first
            .iter()
            .chain(&second)
            .filter(|d| &d.recipient.email == email && d.capped_until.is_none())
            .count();
        assert_eq!(passes, 1, "{engine}, round {round}: {email}");
    }
}

#[test]
fn bad_timing_settings_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("m.db").display().to_string();
    let cases: [(&[&str], &str); 4] = [
        (&["worker", "--quiet-hours", "21-08"], "--quiet-hours"),
        (&["worker", "--frequency-cap", "0/7d"], "send nothing"),
        (
            &["worker", "--default-timezone", "Mars/Olympus"],
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            &[
                "campaign",
                "create",
                "c",
                "--template",
                "t",
                "--from-email",
                "a@example.com",
                "--local",
                "--send-at",
                "2026-12-08T09:00Z",
            ],
            "without an offset",
        ),
    ];
    for (args, needle) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_mailcast"))
            .arg("--database")
            .arg(&database)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// A worker that dies between claiming a capped delivery and recording it: when its
/// lease runs out the delivery comes back unsent, and the next claim caps it again, so
/// a retry never sends what the cap held back.
#[tokio::test]
async fn a_capped_delivery_is_capped_again_after_its_worker_died() {
    for_each_engine(|store, engine| async move {
        people(&store, &[("busy@example.com", None)]).await;
        let first = marketing(&store, "first").await;
        let second = marketing(&store, "second").await;
        for c in [&first, &second] {
            store.freeze_audience(c, &SqlFilter::all()).await.unwrap();
        }
        let cap: FrequencyCap = "1/1d".parse().unwrap();
        let claim = |campaign_id: i64, worker: &str, lease_seconds: i64| Claim {
            campaign_id,
            worker: worker.into(),
            limit: 10,
            lease_seconds,
            after_id: 0,
            due: mailcast::time::now(),
            cap: Some(cap),
        };
        let sent = store.claim(&claim(first.id, "w1", 300)).await.unwrap();
        assert_eq!(sent[0].capped_until, None, "{engine}");
        let delivery_id = sent[0].delivery_id;
        let handing = Handing {
            delivery_id,
            rendered_with: "1;1;d;;;".into(),
        };
        store.write_ledger("w1", &[], &[handing]).await.unwrap();
        let outcome = DeliveryOutcome::Sent {
            delivery_id,
            message_id: "<m@example.com>".into(),
        };
        store.record_outcomes("w1", &[outcome]).await.unwrap();

        // w2 claims the second campaign's delivery, finds it capped, and dies.
        let doomed = store.claim(&claim(second.id, "w2", -1)).await.unwrap();
        assert!(doomed[0].capped_until.is_some(), "{engine}: {doomed:?}");
        let expired = store.expire_leases().await.unwrap();
        assert_eq!((expired.unknown, expired.returned), (0, 1), "{engine}");
        let again = store.claim(&claim(second.id, "w3", 300)).await.unwrap();
        assert_eq!(again.len(), 1, "{engine}");
        assert!(
            again[0].capped_until.is_some(),
            "{engine}: still capped on retry"
        );
    })
    .await;
}

/// A worker that dies between claiming a marketing delivery in quiet hours and
/// recording it held: when its lease runs out the delivery comes back unsent, and the
/// next worker holds it again until the window ends, then sends it once.
#[tokio::test]
async fn a_delivery_held_for_quiet_hours_is_held_again_after_its_worker_died() {
    for_each_engine(|store, engine| async move {
        people(&store, &[("night@example.com", Some("Europe/Berlin"))]).await;
        let news = marketing(&store, "late-news").await;
        store
            .freeze_audience(&news, &SqlFilter::all())
            .await
            .unwrap();
        store
            .transition_campaign(news.id, &[CampaignStatus::Draft], CampaignStatus::Running)
            .await
            .unwrap();
        let doomed = store
            .claim(&Claim {
                campaign_id: news.id,
                worker: "died".into(),
                limit: 10,
                lease_seconds: -1,
                after_id: 0,
                due: mailcast::time::now(),
                cap: None,
            })
            .await
            .unwrap();
        assert_eq!(doomed.len(), 1, "{engine}");
        let expired = store.expire_leases().await.unwrap();
        assert_eq!((expired.unknown, expired.returned), (0, 1), "{engine}");

        let smtp = SmtpServer::start();
        // 22:30 in Berlin.
        let clock = Clock::manual(utc("2026-12-07T21:30:00Z"));
        let quiet: QuietHours = "21:00-08:00".parse().unwrap();
        let (_dispatcher, handle) = worker(&store, &smtp, |s| {
            s.clock = clock.clone();
            s.quiet_hours = Some(quiet);
        })
        .await;
        let held = eventually(
            &format!("{engine}: held again by the next worker"),
            Duration::from_secs(20),
            async || match ledger(&store, news.id).await.pop() {
                Some(row) if row.1 == "deferred" => Ok(row),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
        assert_eq!(held.2, Some(utc("2026-12-08T07:00:00Z")), "{engine}");
        assert!(
            smtp.received().is_empty(),
            "{engine}: nothing in quiet hours"
        );

        clock.advance(utc("2026-12-08T07:00:00Z") - clock.now());
        done(&store, &news).await;
        handle.shutdown().await.unwrap();
        assert_eq!(
            smtp.received().len(),
            1,
            "{engine}: sent once, in the morning"
        );
    })
    .await;
}

/// Three local-time campaigns to the same people: one runs, one is paused and later
/// resumed, one is cancelled, all while their deliveries wait for 09:00. The running
/// one shows when the worker has acted on the clock; the other two send nothing until
/// resumed, and the resumed one then sends each message once.
#[tokio::test]
async fn a_local_time_campaign_can_be_paused_resumed_and_cancelled_while_it_waits() {
    for_each_engine(|store, engine| async move {
        people(
            &store,
            &[
                ("tokyo@example.com", Some("Asia/Tokyo")),
                ("lima@example.com", Some("America/Lima")),
            ],
        )
        .await;
        let local: LocalSendTime = "2026-06-01T09:00".parse().unwrap();
        let at_nine = || CampaignSettings {
            local_send_time: Some(local.to_string()),
            ..CampaignSettings::default()
        };
        let start = Some(local.earliest());
        let runs = create(
            &store,
            NewCampaign {
                settings: at_nine(),
                send_at: start,
                ..draft(&store, "runs").await
            },
        )
        .await;
        let paused = create(
            &store,
            NewCampaign {
                settings: at_nine(),
                send_at: start,
                ..draft(&store, "paused").await
            },
        )
        .await;
        let cancelled = create(
            &store,
            NewCampaign {
                settings: at_nine(),
                send_at: start,
                ..draft(&store, "cancelled").await
            },
        )
        .await;
        let smtp = SmtpServer::start();
        let clock = Clock::manual(utc("2026-05-31T12:00:00Z"));
        let (dispatcher, handle) = worker(&store, &smtp, |s| s.clock = clock.clone()).await;
        for c in [&runs, &paused, &cancelled] {
            schedule_campaign(&store, &dispatcher.queue, c.id)
                .await
                .unwrap();
            wait_for_status(
                &store,
                c.id,
                CampaignStatus::Running,
                Duration::from_secs(20),
            )
            .await;
        }
        pause_campaign(&store, paused.id).await.unwrap();
        cancel_campaign(&store, cancelled.id).await.unwrap();

        // 09:00 in Lima (UTC−5), the last of the two.
        clock.advance(utc("2026-06-01T14:00:00Z") - clock.now());
        done(&store, &runs).await;
        assert_eq!(
            smtp.received().len(),
            2,
            "{engine}: only the running campaign sent"
        );
        for c in [&paused, &cancelled] {
            let counts = store.ledger_counts(c.id).await.unwrap();
            assert_eq!(
                (counts.deferred, counts.sent),
                (2, 0),
                "{engine}: {}",
                c.name
            );
            assert_eq!(store.waiting(c.id).await.unwrap().local_time, 2, "{engine}");
        }

        resume_campaign(&store, &dispatcher.queue, paused.id, 2)
            .await
            .unwrap();
        done(&store, &paused).await;
        handle.shutdown().await.unwrap();
        assert_eq!(
            smtp.received().len(),
            4,
            "{engine}: the resumed campaign once each"
        );
        assert_eq!(
            store.campaign(cancelled.id).await.unwrap().status,
            CampaignStatus::Cancelled,
            "{engine}"
        );
    })
    .await;
}
