//! Automations on both engines, on a clock the test moves: an abandoned-cart journey
//! with its goal, the same event twice, a 09:00 local wait across a daylight-saving
//! change, definitions refused whole, and two engines sharing many due runs.

use std::collections::BTreeMap;
use std::time::Duration;

use mailcast::automation::load_automation;
use mailcast::store::Store;
use mailcast::time::Clock;

use crate::support::automation::{
    CART_HTML, engine, load, push_event, store_product, store_template, tick, worker,
};
use crate::support::smtp::SmtpServer;
use crate::support::{eventually, for_each_engine, recipient};

const CART_JOURNEY: &str = r#"
name = "cart"
from = { email = "shop@shop.example.com", name = "Shop" }
trigger = { event = "cart_add" }
goal = { event = "purchase" }

[[step]]
id = "wait-for-purchase"
wait_for = { event = "purchase", timeout = "4h" }
on_event = "exit"

[[step]]
id = "reminder"
send = { template = "cart-reminder", topic = "news" }

[[step]]
wait = "1d"
"#;

fn utc(text: &str) -> i64 {
    mailcast::time::parse_timestamp(text).unwrap()
}

/// Addresses that received a message, each with how many.
fn received_by(smtp: &SmtpServer) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for message in smtp.received() {
        for to in message.to {
            *by.entry(to).or_default() += 1;
        }
    }
    by
}

async fn people(store: &Store, names: &[&str]) {
    let batch: Vec<_> = names
        .iter()
        .map(|name| recipient(&format!("{name}@example.com"), name, &["news"]))
        .collect();
    store.upsert_recipients(&batch).await.unwrap();
}

#[tokio::test]
async fn a_cart_left_four_hours_gets_one_reminder_and_a_later_purchase_converts() {
    for_each_engine(async |store, engine_name| {
        // Now, to the minute: the cart the template shows is read at the real time.
        let t0 = mailcast::time::now() / 60 * 60 - 60;
        let clock = Clock::manual(t0);
        people(&store, &["alice", "bob", "carol", "dave"]).await;
        let boots = store_product(&store, "SH-1", "Trail boots").await;
        store_template(&store, "cart-reminder", CART_HTML).await;
        load(&store, CART_JOURNEY).await;
        let smtp = SmtpServer::start();
        let (_dispatcher, worker) = worker(&store, &smtp, &clock).await;
        let automations = engine(&store, &clock);

        for who in ["alice", "bob", "carol", "dave"] {
            let email = format!("{who}@example.com");
            push_event(
                &store,
                &format!("{who}-cart"),
                &email,
                "cart_add",
                Some(boots),
                t0,
            )
            .await;
        }
        // The CRM pushes dave's event twice, then another cart add during his run.
        assert_eq!(
            push_event(
                &store,
                "dave-cart",
                "dave@example.com",
                "cart_add",
                Some(boots),
                t0
            )
            .await,
            0
        );
        assert_eq!(tick(&automations).await.started, 4, "{engine_name}");
        push_event(
            &store,
            "dave-cart-2",
            "dave@example.com",
            "cart_add",
            Some(boots),
            t0,
        )
        .await;
        assert_eq!(
            tick(&automations).await.started,
            0,
            "{engine_name}: one run at a time"
        );

        clock.advance(3600);
        push_event(
            &store,
            "bob-buys",
            "bob@example.com",
            "purchase",
            Some(boots),
            t0 + 3600,
        )
        .await;
        tick(&automations).await;
        clock.advance(3 * 3600 - 1);
        assert_eq!(
            tick(&automations).await.messages,
            0,
            "{engine_name}: not before 4 h"
        );
        clock.advance(1);
        assert_eq!(tick(&automations).await.messages, 3, "{engine_name}");
        let reminded = eventually("three reminders", Duration::from_secs(30), async || {
            let got = received_by(&smtp);
            if got.len() == 3 {
                Ok(got)
            } else {
                Err(format!("{got:?}"))
            }
        })
        .await;
        let expected: BTreeMap<String, usize> = ["alice", "carol", "dave"]
            .iter()
            .map(|who| (format!("{who}@example.com"), 1))
            .collect();
        assert_eq!(reminded, expected, "{engine_name}");
        let raw = smtp.received().remove(0).data;
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let message = parsed.body_html(0).unwrap().into_owned();
        assert!(
            message.contains("In your cart: Trail boots"),
            "{engine_name}: {message}"
        );

        touched(
            &store,
            &[
                ("alice", Kind::Open, Verdict::Human),
                ("carol", Kind::Click, Verdict::Human),
                ("dave", Kind::Open, Verdict::Machine),
            ],
        )
        .await;
        // Carol buys after the reminder: her run ends, a conversion for the reminder.
        clock.advance(3600);
        push_event(
            &store,
            "carol-buys",
            "carol@example.com",
            "purchase",
            Some(boots),
            t0 + 5 * 3600,
        )
        .await;
        tick(&automations).await;
        clock.advance(86_400);
        let last = tick(&automations).await;
        assert_eq!(last.messages, 0, "{engine_name}");

        let id = store.automation_by_name("cart").await.unwrap().unwrap().id;
        let stats = store.automation_stats(id).await.unwrap();
        assert_eq!(stats.entered, 4, "{engine_name}");
        assert_eq!(
            stats.converted, 1,
            "{engine_name}: bob bought before any message"
        );
        assert_eq!(
            stats.ended.get("goal"),
            Some(&2),
            "{engine_name}: {stats:?}"
        );
        assert_eq!(
            stats.ended.get("finished"),
            Some(&2),
            "{engine_name}: {stats:?}"
        );
        let step = |i: i64| {
            stats
                .steps
                .iter()
                .find(|s| s.step == i)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            (step(0).entered, step(0).exited_by_goal),
            (4, 1),
            "{engine_name}: {stats:?}"
        );
        assert_eq!(
            (step(1).entered, step(1).sent, step(1).converted),
            (3, 3, 1),
            "{engine_name}"
        );
        assert_eq!(
            (step(2).entered, step(2).exited_by_goal),
            (3, 1),
            "{engine_name}"
        );
        worker.shutdown().await.unwrap();
        assert_eq!(
            smtp.received().len(),
            3,
            "{engine_name}: no step sent twice"
        );
    })
    .await;
}

const NINE_LOCAL: &str = r#"
name = "mornings"
from = { email = "shop@shop.example.com" }
trigger = { event = "view" }

[[step]]
wait_until = "09:00"

[[step]]
id = "first"
send = { template = "morning", topic = "news" }

[[step]]
wait_until = "09:00"

[[step]]
id = "second"
send = { template = "morning", topic = "news" }
"#;

#[tokio::test]
async fn a_nine_o_clock_wait_fires_at_nine_local_on_both_sides_of_a_daylight_saving_change() {
    for_each_engine(async |store, engine_name| {
        // Berlin leaves summer time on Sunday 2026-10-25 at 03:00 local.
        let saturday_early = utc("2026-10-24T05:00:00Z");
        let clock = Clock::manual(saturday_early);
        let mut berliner = recipient("berlin@example.com", "Bea", &["news"]);
        berliner.timezone = Some("Europe/Berlin".into());
        store.upsert_recipients(&[berliner]).await.unwrap();
        store_template(&store, "morning", CART_HTML).await;
        load(&store, NINE_LOCAL).await;
        let automations = engine(&store, &clock);
        push_event(
            &store,
            "view-1",
            "berlin@example.com",
            "view",
            None,
            saturday_early,
        )
        .await;
        assert_eq!(tick(&automations).await.started, 1, "{engine_name}");

        // Each send is looked for one second before its time and at it.
        let mut sends = Vec::new();
        for due in [utc("2026-10-24T07:00:00Z"), utc("2026-10-25T08:00:00Z")] {
            clock.advance(due - 1 - clock.now());
            assert_eq!(tick(&automations).await.messages, 0, "{engine_name}: early");
            clock.advance(1);
            sends.push(tick(&automations).await.messages);
        }
        assert_eq!(
            sends,
            [1, 1],
            "{engine_name}: 09:00 CEST, then 09:00 CET (25 h later)"
        );
    })
    .await;
}

#[tokio::test]
async fn a_definition_with_any_problem_is_refused_whole_naming_step_and_field() {
    for_each_engine(async |store, engine_name| {
        store_template(&store, "cart-reminder", CART_HTML).await;
        let cases = [
            (
                CART_JOURNEY.replace(
                    "event = \"purchase\", timeout",
                    "event = \"purchse\", timeout",
                ),
                "step 1 `wait_for`: unknown event kind `purchse`",
            ),
            (
                CART_JOURNEY.replace(
                    "template = \"cart-reminder\"",
                    "template = \"cart-remnder\"",
                ),
                "step 2 `send`",
            ),
            (
                CART_JOURNEY.replace("wait = \"1d\"", "wait = \"1d\"\ngoto = \"reminder\""),
                "cycle",
            ),
            (
                CART_JOURNEY.replace("wait = \"1d\"", "if = 'segment(\"nobody\")'"),
                "nobody",
            ),
            (
                CART_JOURNEY.replace("wait = \"1d\"", "wiat = \"1d\""),
                "wiat",
            ),
        ];
        for (source, expected) in cases {
            let error = load_automation(&store, &source)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(expected),
                "{engine_name}: {expected:?} not in:\n{error}"
            );
        }
        assert!(
            store.automations().await.unwrap().is_empty(),
            "{engine_name}: nothing stored"
        );
    })
    .await;
}

const ONE_SEND: &str = r#"
name = "bulk"
from = { email = "shop@shop.example.com" }
trigger = { event = "cart_add" }

[[step]]
id = "note"
send = { template = "cart-reminder", topic = "news" }
"#;

#[tokio::test]
async fn two_engines_on_postgres_share_ten_thousand_due_runs_none_twice_none_missed() {
    let Some(db) = crate::support::TestDb::postgres().await else {
        eprintln!("TEST_DATABASE_URL unset: test skipped");
        return;
    };
    let store = db.store.clone();
    let t0 = utc("2026-12-07T10:00:00Z");
    let clock = Clock::manual(t0);
    let emails: Vec<String> = (0..10_000)
        .map(|i| format!("p{i:05}@example.com"))
        .collect();
    let batch: Vec<_> = emails
        .iter()
        .map(|e| recipient(e, "P", &["news"]))
        .collect();
    for chunk in batch.chunks(2_000) {
        store.upsert_recipients(chunk).await.unwrap();
    }
    store_template(&store, "cart-reminder", CART_HTML).await;
    load(&store, ONE_SEND).await;
    let ids = store
        .recipient_ids(&emails.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .unwrap();
    let events: Vec<mailcast::store::NewEvent> = emails
        .iter()
        .map(|email| mailcast::store::NewEvent {
            external_id: Some(format!("cart-{email}")),
            recipient_id: ids[email],
            kind: "cart_add".into(),
            product_id: None,
            amount_cents: None,
            occurred_at: t0,
            properties: serde_json::Map::new(),
        })
        .collect();
    store.insert_events(&events).await.unwrap();

    let (one, two) = (engine(&store, &clock), engine(&store, &clock));
    let work = async |engine: std::sync::Arc<mailcast::automation::AutomationEngine>| {
        let mut moved = 0;
        for _ in 0..200 {
            let report = tick(&engine).await;
            moved += report.moved;
            if report.moved == 0 && report.started == 0 && moved > 0 {
                break;
            }
        }
        moved
    };
    let (a, b) = tokio::join!(work(one.clone()), work(two.clone()));
    assert_eq!(a + b, 10_000, "runs moved: {a} + {b}");
    assert!(a > 0 && b > 0, "both engines took runs: {a} + {b}");
    let id = store.automation_by_name("bulk").await.unwrap().unwrap().id;
    let stats = store.automation_stats(id).await.unwrap();
    assert_eq!(stats.entered, 10_000);
    assert_eq!(stats.ended.get("finished"), Some(&10_000), "{stats:?}");
    let pending = store.automation_deliveries_open().await.unwrap();
    assert_eq!(pending, 10_000, "one delivery per run in the ledger");
    db.drop_database().await;
}

const TWO_SENDS: &str = r#"
name = "double"
from = { email = "shop@shop.example.com" }
trigger = { event = "view" }

[[step]]
id = "first"
send = { template = "cart-reminder", topic = "news" }

[[step]]
id = "second"
send = { template = "cart-reminder", topic = "news" }
"#;

/// Automation messages go through the same claim as campaign messages, so the
/// frequency cap counts them.
#[tokio::test]
async fn the_frequency_cap_counts_automation_messages() {
    for_each_engine(async |store, engine_name| {
        let t0 = mailcast::time::now();
        let clock = Clock::manual(t0);
        people(&store, &["erin"]).await;
        store_template(&store, "cart-reminder", CART_HTML).await;
        load(&store, TWO_SENDS).await;
        let smtp = SmtpServer::start();
        let config = mailcast::config::TransportConfig::Smtp(
            mailcast::config::SmtpUrl::parse(&smtp.url()).unwrap(),
        );
        let options = crate::support::campaign::WorkerOptions::default();
        let dispatcher =
            crate::support::campaign::dispatcher_configured(&store, &config, &options, |s| {
                s.clock = clock.clone();
                s.automations = false;
                s.frequency_cap = Some(mailcast::schedule::FrequencyCap {
                    when_capped: mailcast::schedule::WhenCapped::Skip,
                    ..("1/1d".parse().unwrap())
                });
            })
            .await;
        let worker = mailcast::dispatch::spawn_worker(dispatcher);
        let automations = engine(&store, &clock);
        push_event(&store, "erin-view", "erin@example.com", "view", None, t0).await;
        assert_eq!(tick(&automations).await.messages, 2, "{engine_name}");
        let outcomes = eventually(
            "both messages settled",
            Duration::from_secs(30),
            async || {
                let sql = "SELECT d.status, d.last_error FROM deliveries d
                       JOIN automation_campaigns c ON c.campaign_id = d.campaign_id
                       ORDER BY d.status";
                let rows: Vec<(String, Option<String>)> = match store.db() {
                    mailcast::store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
                    mailcast::store::Db::Postgres(pool) => {
                        sqlx::query_as(sql).fetch_all(pool).await
                    }
                }
                .unwrap();
                let settled = rows.iter().all(|(s, _)| s != "pending" && s != "sending");
                if settled && rows.len() == 2 {
                    Ok(rows)
                } else {
                    Err(format!("{rows:?}"))
                }
            },
        )
        .await;
        worker.shutdown().await.unwrap();
        assert_eq!(outcomes[0].0, "sent", "{engine_name}: {outcomes:?}");
        assert_eq!(outcomes[1].0, "suppressed", "{engine_name}: {outcomes:?}");
        let reason = outcomes[1].1.as_deref().unwrap_or_default();
        assert!(reason.starts_with("capped"), "{engine_name}: {reason}");
        assert_eq!(smtp.received().len(), 1, "{engine_name}");
    })
    .await;
}

/// An unsubscribe from everything, a bounce or an erasure ends the recipient's runs.
#[tokio::test]
async fn opting_out_or_being_erased_ends_a_run() {
    for_each_engine(async |store, engine_name| {
        let t0 = utc("2026-12-07T10:00:00Z");
        let clock = Clock::manual(t0);
        people(&store, &["frank", "gina", "hal"]).await;
        store_template(&store, "cart-reminder", CART_HTML).await;
        load(&store, CART_JOURNEY).await;
        let automations = engine(&store, &clock);
        for who in ["frank", "gina", "hal"] {
            let email = format!("{who}@example.com");
            push_event(&store, &format!("{who}-cart"), &email, "cart_add", None, t0).await;
        }
        assert_eq!(tick(&automations).await.started, 3, "{engine_name}");
        let id_of = async |email: &str| {
            let address = mailcast::domain::EmailAddress::parse(email).unwrap();
            store
                .recipient_by_email(&address)
                .await
                .unwrap()
                .unwrap()
                .id
        };
        let frank = id_of("frank@example.com").await;
        store.unsubscribe(frank, None, "test").await.unwrap();
        let gina = mailcast::domain::EmailAddress::parse("gina@example.com").unwrap();
        assert!(store.erase_recipient(&gina).await.unwrap());
        clock.advance(4 * 3600);
        let report = tick(&automations).await;
        assert_eq!(report.messages, 1, "{engine_name}: only hal is reminded");
        let id = store.automation_by_name("cart").await.unwrap().unwrap().id;
        let stats = store.automation_stats(id).await.unwrap();
        assert_eq!(
            stats.ended.get("unsubscribed"),
            Some(&1),
            "{engine_name}: {stats:?}"
        );
        assert_eq!(
            stats.entered, 2,
            "{engine_name}: the erased recipient's run is gone with them"
        );
    })
    .await;
}

const KEEN: &str = r#"
name = "keen"
from = { email = "shop@shop.example.com" }
trigger = { enters_segment = 'views(within: 7d) >= 2' }

[[step]]
id = "note"
send = { template = "cart-reminder", topic = "news" }
"#;

/// A segment trigger is evaluated on a schedule, and at once for the recipients an
/// event touches; those in the segment at the first evaluation enter then.
#[tokio::test]
async fn entering_a_segment_starts_a_run_when_the_event_comes_and_once_only() {
    for_each_engine(async |store, engine_name| {
        let t0 = mailcast::time::now();
        let clock = Clock::manual(t0);
        people(&store, &["ivy", "jon"]).await;
        store_template(&store, "cart-reminder", CART_HTML).await;
        for n in 0..2 {
            push_event(
                &store,
                &format!("jon-{n}"),
                "jon@example.com",
                "view",
                None,
                t0 - 60,
            )
            .await;
        }
        load(&store, KEEN).await;
        let automations = engine(&store, &clock);
        assert_eq!(
            tick(&automations).await.started,
            1,
            "{engine_name}: jon, already in it"
        );
        push_event(&store, "ivy-1", "ivy@example.com", "view", None, t0).await;
        assert_eq!(
            tick(&automations).await.started,
            0,
            "{engine_name}: one view is not two"
        );
        push_event(&store, "ivy-2", "ivy@example.com", "view", None, t0).await;
        assert_eq!(
            tick(&automations).await.started,
            1,
            "{engine_name}: ivy enters on her event"
        );
        push_event(&store, "ivy-3", "ivy@example.com", "view", None, t0).await;
        clock.advance(86_400);
        assert_eq!(
            tick(&automations).await.started,
            0,
            "{engine_name}: still in it is not entering"
        );
    })
    .await;
}

use mailcast::store::{NewTrackingEvent, TrackingKind as Kind, Verdict};

/// Opens and clicks of the automation messages the named recipients received.
async fn touched(store: &Store, who: &[(&str, Kind, Verdict)]) {
    let mut events = Vec::new();
    for (name, kind, verdict) in who {
        let address =
            mailcast::domain::EmailAddress::parse(&format!("{name}@example.com")).unwrap();
        let recipient_id = store
            .recipient_by_email(&address)
            .await
            .unwrap()
            .unwrap()
            .id;
        let sql = "SELECT d.campaign_id FROM deliveries d
                   JOIN automation_campaigns c ON c.campaign_id = d.campaign_id
                   WHERE d.recipient_id = $1";
        let (campaign_id,): (i64,) = match store.db() {
            mailcast::store::Db::Sqlite(pool) => {
                sqlx::query_as(sql).bind(recipient_id).fetch_one(pool).await
            }
            mailcast::store::Db::Postgres(pool) => {
                sqlx::query_as(sql).bind(recipient_id).fetch_one(pool).await
            }
        }
        .unwrap();
        events.push(NewTrackingEvent {
            kind: *kind,
            campaign_id,
            recipient_id,
            link_id: None,
            occurred_at: mailcast::time::now(),
            ip: None,
            user_agent: None,
            verdict: *verdict,
            reason: (*verdict == Verdict::Machine).then(|| "test scanner".to_string()),
        });
    }
    store.insert_tracking_events(&events).await.unwrap();
}
