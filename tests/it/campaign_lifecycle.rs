//! A campaign's life: expired when started too late; paused and resumed mid-send
//! without anyone getting two messages; sent through a relay slower than the lease.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{
    DispatchSettings, Dispatcher, JobQueue, ThrottleSettings, Transport, pause_campaign,
    requeue_deliveries, resume_campaign, schedule_campaign, spawn_worker, unique_worker_name,
};
use mailcast::domain::{CampaignStatus, DeliveryStatus};
use mailcast::links::KeyRing;
use mailcast::store::Store;
use support::campaign::{HTML, create, create_campaign, draft, wait_for_status};
use support::scripted_smtp::{ScriptedServer, accept_after, accept_all};
use support::smtp::SmtpServer;
use support::{for_each_engine, recipient};

async fn slow_dispatcher(store: &Store, smtp: &SmtpServer, per_second: f64) -> Arc<Dispatcher> {
    let config = TransportConfig::Smtp(SmtpUrl::parse(&smtp.url()).unwrap());
    let transport = Transport::new(&config, 4)
        .await
        .unwrap()
        .with_throttle(ThrottleSettings {
            global_per_second: Some(per_second),
            ..ThrottleSettings::default()
        });
    let mut settings = DispatchSettings::new(
        unique_worker_name(),
        "http://localhost".into(),
        KeyRing::development(),
    );
    settings.poll_interval = Duration::from_millis(50);
    settings.batch_size = 5;
    Dispatcher::new(store.clone(), transport, settings)
}

#[tokio::test]
async fn a_campaign_started_after_its_grace_period_expires_and_sends_nothing() {
    for_each_engine(|store, engine| async move {
        store
            .upsert_recipients(&[recipient("a@example.com", "A", &["news"])])
            .await
            .unwrap();
        let campaign = create_campaign(&store, "late", "news", HTML).await;
        let two_days_ago = mailcast::time::now() - 2 * 24 * 3600;
        store
            .set_send_at(campaign, Some(two_days_ago))
            .await
            .unwrap();
        let smtp = SmtpServer::start();
        let dispatcher = slow_dispatcher(&store, &smtp, 100.0).await;
        schedule_campaign(&store, &dispatcher.queue, campaign)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher);
        wait_for_status(
            &store,
            campaign,
            CampaignStatus::Expired,
            Duration::from_secs(20),
        )
        .await;
        worker.shutdown().await.unwrap();
        assert!(smtp.received().is_empty(), "{engine}");
        assert_eq!(
            store.ledger_counts(campaign).await.unwrap().total(),
            0,
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn pausing_stops_sending_within_a_batch_and_resuming_finishes_without_duplicates() {
    for_each_engine(|store, engine| async move {
        let people: Vec<_> = (0..120)
            .map(|i| recipient(&format!("p{i:03}@example.com"), "P", &["news"]))
            .collect();
        store.upsert_recipients(&people).await.unwrap();
        let campaign = create_campaign(&store, "pausable", "news", HTML).await;
        let smtp = SmtpServer::start();
        let dispatcher = slow_dispatcher(&store, &smtp, 60.0).await;
        schedule_campaign(&store, &dispatcher.queue, campaign)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher.clone());
        while smtp.received().len() < 20 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pause_campaign(&store, campaign).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let at_pause = smtp.received().len();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            smtp.received().len(),
            at_pause,
            "{engine}: still sending while paused"
        );
        assert!(at_pause < 120, "{engine}: paused too late to tell");

        resume_campaign(&store, &JobQueue::new(&store), campaign, 2)
            .await
            .unwrap();
        wait_for_status(
            &store,
            campaign,
            CampaignStatus::Done,
            Duration::from_secs(60),
        )
        .await;
        worker.shutdown().await.unwrap();
        let mut to: Vec<String> = smtp.received().iter().flat_map(|m| m.to.clone()).collect();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), 120, "{engine}");
        assert_eq!(smtp.received().len(), 120, "{engine}: nobody twice");
    })
    .await;
}

/// Two SMTP connections and a two-second lease, as a worker started with
/// `--concurrency 2 --lease-seconds 2`.
async fn short_lease_dispatcher(store: &Store, smtp_url: &str) -> Arc<Dispatcher> {
    let config = TransportConfig::Smtp(SmtpUrl::parse(smtp_url).unwrap());
    let transport = Transport::new(&config, 2).await.unwrap();
    let mut settings = DispatchSettings::new(
        unique_worker_name(),
        "http://localhost".into(),
        KeyRing::development(),
    );
    settings.poll_interval = Duration::from_millis(50);
    settings.batch_size = 8;
    settings.slots = 2;
    settings.lease = Duration::from_secs(2);
    Dispatcher::new(store.clone(), transport, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_keeps_its_leases_however_slow_the_relay() {
    for_each_engine(|store, engine| async move {
        let people: Vec<_> = (0..32)
            .map(|i| recipient(&format!("slow{i:03}@example.com"), "S", &["news"]))
            .collect();
        store.upsert_recipients(&people).await.unwrap();
        let campaign = create_campaign(&store, "slow-relay", "news", HTML).await;
        // A batch of 8 over two connections takes 2 s to send, and the batch claimed
        // ahead waits that long before its turn: both outlive a 2 s lease.
        let relay =
            ScriptedServer::start(accept_all(), accept_after(Duration::from_millis(500))).await;
        let dispatcher = short_lease_dispatcher(&store, &relay.url()).await;
        schedule_campaign(&store, &dispatcher.queue, campaign)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher.clone());

        // An operator runs `campaign resend-unknown` the moment anything shows up as
        // unknown: under a live worker, nothing may.
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        let mut became_unknown = 0;
        while store.campaign(campaign).await.unwrap().status != CampaignStatus::Done {
            let counts = store.ledger_counts(campaign).await.unwrap();
            if counts.unknown > 0 {
                became_unknown += counts.unknown;
                requeue_deliveries(
                    &store,
                    &dispatcher.queue,
                    campaign,
                    DeliveryStatus::Unknown,
                    2,
                )
                .await
                .unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{engine}: campaign not done: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        worker.shutdown().await.unwrap();

        assert_eq!(
            became_unknown, 0,
            "{engine}: deliveries became unknown while their worker was sending them"
        );
        let mut to = relay.recipients();
        let messages = to.len();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), 32, "{engine}: everyone mailed");
        assert_eq!(messages, 32, "{engine}: nobody twice");
        let counts = store.ledger_counts(campaign).await.unwrap();
        assert_eq!(counts.sent, 32, "{engine}: {counts:?}");
    })
    .await;
}

mod template_versions {
    use std::time::Duration;

    use mailcast::dispatch::{DispatchError, Retemplated, retemplate_campaign, schedule_campaign};
    use mailcast::domain::{CampaignKind, CampaignStatus};
    use mailcast::store::{CampaignSettings, NewCampaign, NewTemplate, Store};

    use super::support::campaign::{WorkerOptions, dispatcher, wait_for_status};
    use super::support::smtp::SmtpServer;
    use super::support::{for_each_engine, recipient};

    fn version(body: &str) -> NewTemplate {
        NewTemplate {
            name: "weekly".into(),
            subject: "Weekly".into(),
            preheader: None,
            html: format!(r#"<p>{body}</p><a href="{{{{ unsubscribe_url }}}}">Unsubscribe</a>"#),
            text: None,
        }
    }

    const RUNAWAY: &str =
        "{% for i in range(end=100000) %}{% for j in range(end=100000) %}x{% endfor %}{% endfor %}";

    async fn campaign_on(store: &Store, template_id: i64) -> i64 {
        store
            .create_campaign(&NewCampaign {
                name: "weekly-1".into(),
                kind: CampaignKind::Marketing,
                template_id,
                segment_id: None,
                topic: Some("news".into()),
                from_name: "Shop".into(),
                from_email: "news@shop.example.com".into(),
                reply_to: None,
                send_at: None,
                settings: CampaignSettings::default(),
            })
            .await
            .unwrap()
    }

    async fn three_people(store: &Store) {
        let people: Vec<_> = (0..3)
            .map(|i| recipient(&format!("v{i}@example.com"), "V", &["news"]))
            .collect();
        store.upsert_recipients(&people).await.unwrap();
    }

    #[tokio::test]
    async fn a_scheduled_campaign_sends_the_template_version_it_was_checked_with() {
        for_each_engine(|store, engine| async move {
            three_people(&store).await;
            let first = store.store_template(&version("VERSION-ONE")).await.unwrap();
            assert_eq!((first.version, first.is_new), (1, true), "{engine}");
            let campaign = campaign_on(&store, first.id).await;
            let smtp = SmtpServer::start();
            let dispatcher = dispatcher(&store, &smtp.url(), &WorkerOptions::default()).await;
            schedule_campaign(&store, &dispatcher.queue, campaign)
                .await
                .unwrap();

            let second = store.store_template(&version("VERSION-TWO")).await.unwrap();
            assert_eq!((second.version, second.is_new), (2, true), "{engine}");
            let again = store.store_template(&version("VERSION-TWO")).await.unwrap();
            assert_eq!((again.id, again.is_new), (second.id, false), "{engine}");

            let worker = mailcast::dispatch::spawn_worker(dispatcher);
            wait_for_status(
                &store,
                campaign,
                CampaignStatus::Done,
                Duration::from_secs(60),
            )
            .await;
            worker.shutdown().await.unwrap();
            let received = smtp.received();
            assert_eq!(received.len(), 3, "{engine}");
            for message in &received {
                let text = message.text();
                assert!(
                    text.contains("VERSION-ONE") && !text.contains("VERSION-TWO"),
                    "{engine}: {text}"
                );
            }
        })
        .await;
    }

    #[tokio::test]
    async fn retemplate_moves_a_scheduled_campaign_to_a_newer_version_only_if_it_passes_the_check()
    {
        for_each_engine(|store, engine| async move {
            three_people(&store).await;
            let first = store.store_template(&version("VERSION-ONE")).await.unwrap();
            let campaign = campaign_on(&store, first.id).await;
            let smtp = SmtpServer::start();
            let dispatcher = dispatcher(&store, &smtp.url(), &WorkerOptions::default()).await;
            let queue = &dispatcher.queue;
            schedule_campaign(&store, queue, campaign).await.unwrap();

            let second = store.store_template(&version("VERSION-TWO")).await.unwrap();
            let moved = retemplate_campaign(&store, queue, campaign).await.unwrap();
            assert_eq!(moved, Retemplated::Moved { from: 1, to: 2 }, "{engine}");
            let unchanged = retemplate_campaign(&store, queue, campaign).await.unwrap();
            assert_eq!(unchanged, Retemplated::Unchanged { version: 2 }, "{engine}");

            store.store_template(&version(RUNAWAY)).await.unwrap();
            let error = retemplate_campaign(&store, queue, campaign)
                .await
                .unwrap_err();
            assert!(
                matches!(error, DispatchError::Invalid { .. })
                    && error.to_string().contains("loop limit"),
                "{engine}: {error}"
            );
            let kept = store.campaign(campaign).await.unwrap();
            assert_eq!(kept.template_id, second.id, "{engine}: keeps version 2");
            assert_eq!(kept.status, CampaignStatus::Scheduled, "{engine}");

            let worker = mailcast::dispatch::spawn_worker(dispatcher.clone());
            wait_for_status(
                &store,
                campaign,
                CampaignStatus::Done,
                Duration::from_secs(60),
            )
            .await;
            worker.shutdown().await.unwrap();
            let received = smtp.received();
            assert_eq!(received.len(), 3, "{engine}: nobody twice");
            assert!(
                received.iter().all(|m| m.text().contains("VERSION-TWO")),
                "{engine}"
            );
        })
        .await;
    }
}

mod create_from_the_command_line {
    use std::process::Command;

    use super::support::TestDb;

    fn mailcast(database: &str, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
            .arg("--database")
            .arg(database)
            .args(args)
            .output()
            .expect("run mailcast");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn template_dir(root: &std::path::Path, name: &str, html: &str) -> String {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("subject.txt"), "News").unwrap();
        std::fs::write(dir.join("body.html"), html).unwrap();
        dir.display().to_string()
    }

    fn create(
        database: &str,
        campaign: &str,
        template: &str,
        kind: &str,
    ) -> (bool, String, String) {
        mailcast(
            database,
            &[
                "campaign",
                "create",
                campaign,
                "--template",
                template,
                "--from-email",
                "news@shop.example.com",
                "--kind",
                kind,
            ],
        )
    }

    fn refuses_a_marketing_template_without_an_unsubscribe_link(database: &str, engine: &str) {
        let root = tempfile::tempdir().unwrap();
        let dir = template_dir(root.path(), "nolink", "<p>Big sale</p>");
        let (ok, stdout, stderr) = mailcast(database, &["template", "load", &dir]);
        assert!(ok, "{engine}: {stderr}");
        assert!(stdout.contains("version 1"), "{engine}: {stdout}");

        let (ok, _, stderr) = create(database, "sale", "nolink", "marketing");
        assert!(
            !ok,
            "{engine}: a marketing campaign without an unsubscribe link was created"
        );
        assert!(
            stderr.contains("unsubscribe link") && stderr.contains("nolink"),
            "{engine}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{engine}: {stderr}");
        let (ok, stdout, _) = mailcast(database, &["campaign", "status", "sale"]);
        assert!(!ok, "{engine}: the campaign was stored anyway: {stdout}");

        let (ok, stdout, stderr) = create(database, "receipt", "nolink", "transactional");
        assert!(ok, "{engine}: transactional campaigns are exempt: {stderr}");
        assert!(stdout.contains("version 1"), "{engine}: {stdout}");

        let html = r#"<p>Bigger sale</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>"#;
        template_dir(root.path(), "nolink", html);
        let (ok, stdout, stderr) = mailcast(database, &["template", "load", &dir]);
        assert!(
            ok && stdout.contains("version 2"),
            "{engine}: {stdout}{stderr}"
        );
        let (ok, _, stderr) = create(database, "sale", "nolink", "marketing");
        assert!(ok, "{engine}: {stderr}");
    }

    fn lists_campaigns_and_finds_them_by_id(database: &str, engine: &str) {
        let root = tempfile::tempdir().unwrap();
        let html = r#"<p>Sale</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>"#;
        let dir = template_dir(root.path(), "sale", html);
        let (ok, _, stderr) = mailcast(database, &["template", "load", &dir]);
        assert!(ok, "{engine}: {stderr}");
        for name in ["spring", "2024"] {
            let (ok, _, stderr) = create(database, name, "sale", "marketing");
            assert!(ok, "{engine}: {stderr}");
        }

        let (ok, stdout, stderr) = mailcast(database, &["campaign", "list"]);
        assert!(ok, "{engine}: {stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.len(),
            3,
            "{engine}: a header and one line each: {stdout}"
        );
        let spring: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            &spring[1..5],
            ["spring", "draft", "0/0", "0"],
            "{engine}: {stdout}"
        );
        let spring_id = spring[0];
        let year_id = lines[2].split_whitespace().next().unwrap();

        let (ok, stdout, stderr) = mailcast(database, &["campaign", "status", spring_id]);
        assert!(ok, "{engine}: {stderr}");
        assert!(
            stdout.contains("campaign 'spring' is draft"),
            "{engine}: {stdout}"
        );
        // An all-digit name is a name first; `#ID` is always an id.
        let (ok, stdout, stderr) = mailcast(database, &["campaign", "status", "2024"]);
        assert!(
            ok && stdout.contains("campaign '2024'"),
            "{engine}: {stdout}{stderr}"
        );
        let by_hash = format!("#{year_id}");
        let (ok, stdout, stderr) = mailcast(database, &["campaign", "cancel", &by_hash]);
        assert!(ok, "{engine}: {stderr}");
        assert!(
            stdout.contains("campaign '2024' cancelled"),
            "{engine}: {stdout}"
        );

        let (ok, _, stderr) = mailcast(database, &["campaign", "pause", "99999"]);
        assert!(!ok && stderr.contains("99999"), "{engine}: {stderr}");
        assert!(!stderr.contains("panicked"), "{engine}: {stderr}");
    }

    #[tokio::test]
    async fn campaign_list_shows_every_campaign_and_ids_work_where_names_do() {
        let sqlite = TestDb::sqlite().await;
        lists_campaigns_and_finds_them_by_id(&sqlite.url, "sqlite");
        sqlite.drop_database().await;
        if let Some(postgres) = TestDb::postgres().await {
            lists_campaigns_and_finds_them_by_id(&postgres.url, "postgres");
            postgres.drop_database().await;
        }
    }

    #[tokio::test]
    async fn campaign_create_refuses_a_marketing_template_without_an_unsubscribe_link() {
        let sqlite = TestDb::sqlite().await;
        refuses_a_marketing_template_without_an_unsubscribe_link(&sqlite.url, "sqlite");
        sqlite.drop_database().await;
        if let Some(postgres) = TestDb::postgres().await {
            refuses_a_marketing_template_without_an_unsubscribe_link(&postgres.url, "postgres");
            postgres.drop_database().await;
        }
    }
}

/// A campaign paused before its send time and resumed waits for that time; one due now,
/// scheduled after the resume on the same worker, is sent meanwhile.
#[tokio::test]
async fn a_campaign_resumed_before_its_send_time_waits_for_it() {
    for_each_engine(|store, engine| async move {
        store
            .upsert_recipients(&[recipient("ann@example.com", "Ann", &["news"])])
            .await
            .unwrap();
        let later = create(
            &store,
            mailcast::store::NewCampaign {
                send_at: Some(4_070_908_800), // 2099-01-01
                ..draft(&store, "later", "news", HTML).await
            },
        )
        .await;
        let now = create_campaign(&store, "now", "news", HTML).await;
        let smtp = SmtpServer::start();
        let dispatcher = slow_dispatcher(&store, &smtp, 1000.0).await;
        let worker = spawn_worker(dispatcher.clone());
        schedule_campaign(&store, &dispatcher.queue, later.id)
            .await
            .unwrap();
        pause_campaign(&store, later.id).await.unwrap();
        resume_campaign(&store, &dispatcher.queue, later.id, 2)
            .await
            .unwrap();
        schedule_campaign(&store, &dispatcher.queue, now)
            .await
            .unwrap();
        wait_for_status(&store, now, CampaignStatus::Done, Duration::from_secs(60)).await;
        worker.shutdown().await.unwrap();
        assert_eq!(
            store.campaign(later.id).await.unwrap().status,
            CampaignStatus::Scheduled,
            "{engine}"
        );
        assert_eq!(
            smtp.received().len(),
            1,
            "{engine}: only the campaign due now"
        );
    })
    .await;
}
