//! Worker processes killed with SIGKILL or stopped with SIGTERM mid-campaign, and
//! several workers sharing one campaign: nobody gets two messages, nobody is skipped
//! silently. The HTTP server stopped with SIGTERM finishes what it was answering.

use crate::support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailcast::dispatch::{JobQueue, schedule_campaign};
use mailcast::domain::{CampaignStatus, DeliveryStatus};
use mailcast::store::{ExpiredLeases, Store};
use support::campaign::{HTML, create_campaign};
use support::scripted_smtp::{ScriptedServer, accept_after, accept_all};
use support::smtp::SmtpServer;
use support::{TestDb, recipient};

const SLOTS: i64 = 2;
const BATCH: i64 = 20;
/// SMTP sessions per worker: a killed worker leaves at most this many deliveries unknown.
const CONCURRENCY: u64 = 8;

/// A worker process, killed when dropped: a failing test leaves none behind.
struct WorkerProcess(Child);

impl std::ops::Deref for WorkerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for WorkerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(db_url: &str, smtp_url: &str) -> WorkerProcess {
    spawn_worker_with(db_url, smtp_url, &[])
}

fn spawn_worker_with(db_url: &str, smtp_url: &str, extra: &[&str]) -> WorkerProcess {
    Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(["--database", db_url, "worker", "--smtp", smtp_url])
        .args(extra)
        .args([
            "--slots",
            &SLOTS.to_string(),
            "--batch-size",
            &BATCH.to_string(),
        ])
        .args([
            "--lease-seconds",
            "3",
            "--concurrency",
            &CONCURRENCY.to_string(),
        ])
        .env("RUST_LOG", "mailcast=debug,apalis=info")
        .stdout(Stdio::null())
        .stderr(worker_log())
        .spawn()
        .map(WorkerProcess)
        .expect("start a worker process")
}

/// Worker output goes to `$MAILCAST_TEST_WORKER_LOG` when set, for debugging.
fn worker_log() -> Stdio {
    match std::env::var("MAILCAST_TEST_WORKER_LOG") {
        Ok(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null()),
        Err(_) => Stdio::null(),
    }
}

async fn audience(store: &Store, n: usize) -> Vec<String> {
    let emails: Vec<String> = (0..n)
        .map(|i| format!("reader{i:05}@example.com"))
        .collect();
    for chunk in emails.chunks(1000) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|e| recipient(e, "Reader", &["news"]))
            .collect();
        store.upsert_recipients(&batch).await.unwrap();
    }
    emails
}

async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    support::eventually(what, limit, async || {
        if done().await {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await
}

async fn campaign_done(store: &Store, id: i64) -> bool {
    store.campaign(id).await.unwrap().status == CampaignStatus::Done
}

/// Expires the killed worker's leases as they run out (the lease is 3 s; no other
/// worker runs meanwhile), and says what became of its deliveries.
async fn leases_run_out(store: &Store, campaign: i64) -> ExpiredLeases {
    let mut total = ExpiredLeases::default();
    wait_until(
        "the killed worker's leases to run out",
        Duration::from_secs(30),
        async || {
            let expired = store.expire_leases().await.unwrap();
            total.unknown += expired.unknown;
            total.returned += expired.returned;
            store.ledger_counts(campaign).await.unwrap().sending == 0
        },
    )
    .await;
    total
}

/// Nobody received two messages, and each of `expected` received one or has an
/// unknown outcome; what was received, per address.
async fn received_at_most_once(
    store: &Store,
    campaign: i64,
    server: &SmtpServer,
    expected: &[String],
    engine: &str,
) -> HashMap<String, usize> {
    let received = received_counts(server);
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{engine}: received twice: {twice:?}");
    let unknown: Vec<String> = store
        .deliveries_in(campaign, &[DeliveryStatus::Unknown])
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.email)
        .collect();
    for email in expected {
        assert!(
            received.contains_key(email) || unknown.contains(email),
            "{engine}: {email} neither received nor reported unknown"
        );
    }
    received
}

fn received_counts(server: &SmtpServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for message in server.received() {
        for to in message.to {
            *counts.entry(to).or_insert(0) += 1;
        }
    }
    counts
}

async fn killed_and_restarted(db: TestDb, engine: &str) {
    let store = db.store.clone();
    let emails = audience(&store, 5000).await;
    let campaign = create_campaign(&store, "crash", "news", HTML).await;
    let server = SmtpServer::start();
    schedule_campaign(&store, &JobQueue::new(&store), campaign)
        .await
        .unwrap();

    let kills = [400, 1800, 3500];
    for threshold in kills {
        let mut worker = spawn_worker(&db.url, &server.url());
        wait_until("messages to arrive", Duration::from_secs(120), async || {
            server.received().len() >= threshold
        })
        .await;
        worker.kill().expect("SIGKILL");
        worker.wait().unwrap();
        let expired = leases_run_out(&store, campaign).await;
        assert!(
            expired.unknown <= CONCURRENCY,
            "{engine}: one kill left {} deliveries unknown, more than the {CONCURRENCY} SMTP sessions could hold: {expired:?}",
            expired.unknown
        );
        assert!(
            expired.returned > 0,
            "{engine}: claimed ahead and handed back: {expired:?}"
        );
    }
    let mut worker = spawn_worker(&db.url, &server.url());
    wait_until(
        "the campaign to finish",
        Duration::from_secs(180),
        async || campaign_done(&store, campaign).await,
    )
    .await;
    worker.kill().unwrap();
    worker.wait().unwrap();

    let received = received_at_most_once(&store, campaign, &server, &emails, engine).await;
    let most = kills.len() as u64 * CONCURRENCY;
    let counts = store.ledger_counts(campaign).await.unwrap();
    assert!(
        counts.unknown as u64 <= most,
        "{engine}: {} unknown after {} kills",
        counts.unknown,
        kills.len()
    );
    assert_eq!(counts.sent + counts.unknown, 5000, "{engine}: {counts:?}");
    eprintln!("{engine}: {counts:?}, {} received", received.len());
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_campaign_never_sends_twice_and_reports_what_it_cannot_know() {
    killed_and_restarted(TestDb::sqlite().await, "sqlite").await;
    if let Some(db) = TestDb::postgres().await {
        killed_and_restarted(db, "postgres").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_postgresql_share_one_campaign() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("TEST_DATABASE_URL unset: skipped");
        return;
    };
    let store = db.store.clone();
    let emails = audience(&store, 3000).await;
    let campaign = create_campaign(&store, "shared", "news", HTML).await;
    let server = SmtpServer::start();
    // One unthrottled worker can send all 3,000 before a newly started worker's first
    // poll: the rate cap keeps the campaign long enough for the three to share it.
    let mut workers: Vec<WorkerProcess> = (0..3)
        .map(|_| spawn_worker_with(&db.url, &server.url(), &["--rate", "40"]))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    schedule_campaign(&store, &JobQueue::new(&store), campaign)
        .await
        .unwrap();
    wait_until(
        "the campaign to finish",
        Duration::from_secs(180),
        async || campaign_done(&store, campaign).await,
    )
    .await;
    for worker in &mut workers {
        worker.kill().unwrap();
        worker.wait().unwrap();
    }
    let received = received_counts(&server);
    let counts = store.ledger_counts(campaign).await.unwrap();
    assert_eq!(received.len(), emails.len(), "none missed: {counts:?}");
    assert!(received.values().all(|n| *n == 1), "no recipient twice");
    let by_worker = store.sent_by_worker(campaign).await.unwrap();
    assert_eq!(
        by_worker.len(),
        3,
        "work spread across all three: {by_worker:?}"
    );
    assert!(
        by_worker.iter().all(|(_, n)| *n > 100),
        "each did a real share: {by_worker:?}"
    );
    db.drop_database().await;
}

/// A worker on a slow relay: two connections, batches of 10, a lease of `lease` seconds.
fn spawn_slow_worker(db_url: &str, smtp_url: &str, lease: &str) -> WorkerProcess {
    Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(["--database", db_url, "worker", "--smtp", smtp_url])
        .args(["--slots", "2", "--batch-size", "10", "--concurrency", "2"])
        .args(["--lease-seconds", lease])
        .env("RUST_LOG", "mailcast=debug,apalis=info")
        .stdout(Stdio::null())
        .stderr(worker_log())
        .spawn()
        .map(WorkerProcess)
        .expect("start a worker process")
}

fn terminate(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: sends a signal to a child process this test started and has not reaped.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
}

/// Waits for the process to exit by itself, at most `limit`.
async fn exit_status(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the process") {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("still running {}s after SIGTERM", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn messages_per_recipient(relay: &ScriptedServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for to in relay.recipients() {
        *counts.entry(to).or_insert(0) += 1;
    }
    counts
}

fn assert_each_once(relay: &ScriptedServer, emails: &[String], engine: &str) {
    let counts = messages_per_recipient(relay);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{engine}: received twice: {twice:?}");
    let missed: Vec<_> = emails.iter().filter(|e| !counts.contains_key(*e)).collect();
    assert!(missed.is_empty(), "{engine}: never received: {missed:?}");
}

async fn killed_worker_leases_expire(db: TestDb, engine: &str) {
    let store = db.store.clone();
    audience(&store, 60).await;
    let campaign = create_campaign(&store, "gone", "news", HTML).await;
    let relay = ScriptedServer::start(accept_all(), accept_after(Duration::from_millis(300))).await;
    schedule_campaign(&store, &JobQueue::new(&store), campaign)
        .await
        .unwrap();

    let mut gone = spawn_slow_worker(&db.url, &relay.url(), "2");
    wait_until("messages to arrive", Duration::from_secs(60), async || {
        relay.received().len() >= 4
    })
    .await;
    gone.kill().expect("SIGKILL");
    gone.wait().unwrap();
    let held = store.ledger_counts(campaign).await.unwrap().sending;
    assert!(held > 0, "{engine}: the killed worker held deliveries");

    // The second worker's own batches outlive the 2 s lease too (10 messages over two
    // connections at 0.3 s each): it must renew them, yet let the killed one's expire.
    let mut live = spawn_slow_worker(&db.url, &relay.url(), "2");
    wait_until(
        "the campaign to finish",
        Duration::from_secs(120),
        async || campaign_done(&store, campaign).await,
    )
    .await;
    live.kill().unwrap();
    live.wait().unwrap();

    let counts = store.ledger_counts(campaign).await.unwrap();
    assert!(
        counts.unknown >= 1 && counts.unknown <= held,
        "{engine}: only the killed worker's {held} leases may expire: {counts:?}"
    );
    assert_eq!(counts.sent + counts.unknown, 60, "{engine}: {counts:?}");
    let received = messages_per_recipient(&relay);
    assert!(received.values().all(|n| *n == 1), "{engine}: nobody twice");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_leases_expire_while_a_live_worker_keeps_its_own() {
    killed_worker_leases_expire(TestDb::sqlite().await, "sqlite").await;
    if let Some(db) = TestDb::postgres().await {
        killed_worker_leases_expire(db, "postgres").await;
    }
}

async fn terminated_and_restarted(db: TestDb, engine: &str) {
    let store = db.store.clone();
    let emails = audience(&store, 60).await;
    let campaign = create_campaign(&store, "terminated", "news", HTML).await;
    let relay = ScriptedServer::start(accept_all(), accept_after(Duration::from_millis(200))).await;
    schedule_campaign(&store, &JobQueue::new(&store), campaign)
        .await
        .unwrap();

    // A long lease: whatever a stopped worker left `sending` would stay so.
    let mut worker = spawn_slow_worker(&db.url, &relay.url(), "600");
    wait_until("messages to arrive", Duration::from_secs(60), async || {
        relay.received().len() >= 5
    })
    .await;
    terminate(&worker);
    let status = exit_status(&mut worker, Duration::from_secs(20)).await;
    assert!(status.success(), "{engine}: SIGTERM exit: {status}");
    let counts = store.ledger_counts(campaign).await.unwrap();
    assert_eq!(
        (counts.sending, counts.unknown),
        (0, 0),
        "{engine}: everything recorded or handed back: {counts:?}"
    );
    assert!(
        counts.pending > 0,
        "{engine}: stopped mid-campaign: {counts:?}"
    );

    let mut restarted = spawn_slow_worker(&db.url, &relay.url(), "600");
    wait_until(
        "the campaign to finish",
        Duration::from_secs(120),
        async || campaign_done(&store, campaign).await,
    )
    .await;
    terminate(&restarted);
    let status = exit_status(&mut restarted, Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "{engine}: idle worker's SIGTERM exit: {status}"
    );

    assert_each_once(&relay, &emails, engine);
    let counts = store.ledger_counts(campaign).await.unwrap();
    assert_eq!(counts.sent, 60, "{engine}: {counts:?}");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_worker_cleanly_and_a_restart_mails_everyone_once() {
    terminated_and_restarted(TestDb::sqlite().await, "sqlite").await;
    if let Some(db) = TestDb::postgres().await {
        terminated_and_restarted(db, "postgres").await;
    }
}

/// A free loopback port for a server process to listen on.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_http_server_after_the_request_it_is_answering() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let db = TestDb::sqlite().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .args(["--database", &db.url, "serve", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(worker_log())
        .spawn()
        .expect("start mailcast serve");
    let health = format!("http://{addr}/healthz");
    wait_until(
        "the server to answer",
        Duration::from_secs(30),
        async || {
            reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;

    // A one-click unsubscribe whose body has not fully arrived: in flight. The server's
    // `100 Continue` shows it has accepted the connection and is reading the body.
    let body = "List-Unsubscribe=One-Click";
    let mut request = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /u/not-a-token HTTP/1.1\r\nhost: {addr}\r\nexpect: 100-continue\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    request.write_all(head.as_bytes()).await.unwrap();
    request.flush().await.unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(10), request.read_exact(&mut interim))
        .await
        .expect("100 Continue within 10 s")
        .unwrap();
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&interim)
    );
    request.write_all(&body.as_bytes()[..10]).await.unwrap();
    request.flush().await.unwrap();
    terminate(&server);
    wait_until(
        "the listener to close",
        Duration::from_secs(10),
        async || TcpStream::connect(&addr).await.is_err(),
    )
    .await;

    request.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    request.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 404"),
        "the request in flight is answered (a bad token is a 404): {answer:?}"
    );
    let status = exit_status(&mut server, Duration::from_secs(10)).await;
    assert!(status.success(), "SIGTERM exit: {status}");
    db.drop_database().await;
}

const AUTOMATION: &str = r#"
name = "cart"
from = { email = "shop@shop.example.com" }
trigger = { event = "cart_add" }

[[step]]
wait = "1min"

[[step]]
id = "reminder"
send = { template = "cart-reminder", topic = "news" }
"#;

/// Runs whose timers have all expired, worked on by worker processes killed twice
/// (once as the first messages arrive, so runs are claimed and half moved on, and
/// once mid-send): after a restart each step's message arrived at most once, and
/// every run's message was either sent or reported unknown.
async fn automation_killed_and_restarted(db: TestDb, engine: &str) {
    let store = db.store.clone();
    let emails = audience(&store, 2000).await;
    support::automation::store_template(&store, "cart-reminder", support::automation::CART_HTML)
        .await;
    support::automation::load(&store, AUTOMATION).await;
    let an_hour_ago = mailcast::time::now() - 3600;
    for (i, email) in emails.iter().enumerate() {
        let id = format!("cart-{i}");
        support::automation::push_event(&store, &id, email, "cart_add", None, an_hour_ago).await;
    }
    let server = SmtpServer::start();
    for threshold in [1, 900] {
        let mut worker = spawn_worker(&db.url, &server.url());
        wait_until("messages to arrive", Duration::from_secs(120), async || {
            server.received().len() >= threshold
        })
        .await;
        worker.kill().expect("SIGKILL");
        worker.wait().unwrap();
    }
    let mut worker = spawn_worker(&db.url, &server.url());
    let id = store.automation_by_name("cart").await.unwrap().unwrap().id;
    wait_until(
        "every run to end and its message to settle",
        Duration::from_secs(180),
        async || {
            let stats = store.automation_stats(id).await.unwrap();
            stats.entered == 2000
                && stats.active == 0
                && store.automation_deliveries_open().await.unwrap() == 0
        },
    )
    .await;
    worker.kill().unwrap();
    worker.wait().unwrap();

    let received = received_counts(&server);
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{engine}: received twice: {twice:?}");
    let stats = store.automation_stats(id).await.unwrap();
    let reminder = stats.steps.iter().find(|s| s.step == 1).unwrap();
    let unknown = automation_unknown(&store).await;
    assert_eq!(
        reminder.sent as usize + unknown,
        2000,
        "{engine}: sent {} + unknown {unknown}; {stats:?}",
        reminder.sent
    );
    // An unknown message may have arrived (the relay took it as the worker died).
    let arrived = received.len();
    let sent = reminder.sent as usize;
    assert!(
        (sent..=sent + unknown).contains(&arrived),
        "{engine}: {arrived} arrived, {sent} sent, {unknown} unknown"
    );
    assert!(
        unknown as u64 <= 2 * CONCURRENCY,
        "{engine}: {unknown} unknown after 2 kills"
    );
    db.drop_database().await;
}

async fn automation_unknown(store: &Store) -> usize {
    let sql = "SELECT COUNT(*) FROM deliveries d
               JOIN automation_campaigns c ON c.campaign_id = d.campaign_id
               WHERE d.status = 'unknown'";
    let (n,): (i64,) = match store.db() {
        mailcast::store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await,
        mailcast::store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
    }
    .unwrap();
    n as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automation_runs_survive_killed_workers_with_each_message_at_most_once() {
    automation_killed_and_restarted(TestDb::sqlite().await, "sqlite").await;
    if let Some(db) = TestDb::postgres().await {
        automation_killed_and_restarted(db, "postgres").await;
    }
}

/// An A/B test whose worker is killed twice in the test phase: every recipient keeps
/// the variant drawn for them, the judge (run here on a clock past the wait) sends the
/// winner to the rest through a restarted worker, nobody gets two messages and the
/// holdout gets none.
async fn experiment_killed_in_its_test(db: TestDb, engine: &str) {
    use mailcast::config::{SmtpUrl, TransportConfig};
    use mailcast::dispatch::{JudgeOutcome, judge_experiment};
    use mailcast::experiment::{Arm, ExperimentInput, VariantInput, assign, design};

    let store = db.store.clone();
    let emails = audience(&store, 3000).await;
    let variant = |subject: &str| VariantInput {
        subject: Some(subject.into()),
        ..VariantInput::default()
    };
    let input = ExperimentInput {
        variants: vec![variant("Winter sale"), variant("Last chance")],
        test_share: Some("50%".into()),
        holdout: Some("10%".into()),
        ..ExperimentInput::default()
    };
    let experiment = design::check(&input, |_| None).unwrap();
    let mut new = support::campaign::draft(&store, "ab-crash", "news", HTML).await;
    new.settings.experiment = Some(experiment.clone());
    let campaign = support::campaign::create(&store, new).await.id;
    let server = SmtpServer::start();
    schedule_campaign(&store, &JobQueue::new(&store), campaign)
        .await
        .unwrap();
    for threshold in [200, 900] {
        let mut worker = spawn_worker(&db.url, &server.url());
        wait_until("messages to arrive", Duration::from_secs(120), async || {
            server.received().len() >= threshold
        })
        .await;
        worker.kill().expect("SIGKILL");
        worker.wait().unwrap();
        leases_run_out(&store, campaign).await;
    }
    let mut worker = spawn_worker(&db.url, &server.url());
    let ids: Vec<i64> = store
        .delivery_variants(campaign)
        .await
        .unwrap()
        .into_keys()
        .collect();
    let mut everyone = Vec::with_capacity(emails.len());
    for email in &emails {
        let address = mailcast::domain::EmailAddress::parse(email).unwrap();
        everyone.push(
            store
                .recipient_by_email(&address)
                .await
                .unwrap()
                .unwrap()
                .id,
        );
    }
    let arms: HashMap<i64, Arm> = everyone
        .iter()
        .map(|id| (*id, assign::arm(&experiment, campaign, *id)))
        .collect();
    let tested = arms
        .values()
        .filter(|a| matches!(a, Arm::Variant(_)))
        .count();
    assert_eq!(ids.len(), tested, "{engine}: the test share, frozen once");
    wait_until(
        "the test phase to be sent",
        Duration::from_secs(120),
        async || {
            let counts = store.ledger_counts(campaign).await.unwrap();
            counts.pending + counts.sending + counts.deferred == 0
        },
    )
    .await;

    let config = TransportConfig::Smtp(SmtpUrl::parse(&server.url()).unwrap());
    let past_the_wait = mailcast::time::Clock::manual(mailcast::time::now() + 5 * 3_600);
    let judge = support::campaign::dispatcher_configured(
        &store,
        &config,
        &support::campaign::WorkerOptions::default(),
        move |s| s.clock = past_the_wait,
    )
    .await;
    let outcome = judge_experiment(&judge, campaign).await.unwrap();
    assert!(
        matches!(outcome, JudgeOutcome::Judged { .. }),
        "{engine}: {outcome:?}"
    );
    wait_until(
        "the rest to be sent",
        Duration::from_secs(180),
        async || campaign_done(&store, campaign).await,
    )
    .await;
    worker.kill().unwrap();
    worker.wait().unwrap();

    for (recipient, variant) in store.delivery_variants(campaign).await.unwrap() {
        let arm = arms[&recipient];
        let expected = match arm {
            Arm::Rest => None,
            Arm::Variant(v) => Some(v as i64),
            Arm::Holdout => panic!("{engine}: a held-out recipient is in the ledger"),
        };
        if let Some(expected) = expected {
            assert_eq!(
                variant,
                Some(expected),
                "{engine}: recipient {recipient} kept the variant drawn"
            );
        }
    }
    let (mailed, held): (Vec<_>, Vec<_>) = emails
        .iter()
        .zip(&everyone)
        .partition(|(_, id)| arms[*id] != Arm::Holdout);
    let mailed: Vec<String> = mailed.into_iter().map(|(e, _)| e.clone()).collect();
    let received = received_at_most_once(&store, campaign, &server, &mailed, engine).await;
    for (email, _) in held {
        assert!(
            !received.contains_key(email),
            "{engine}: {email} is held out"
        );
    }
    db.drop_database().await;
}

#[tokio::test]
async fn an_experiment_killed_in_its_test_keeps_every_variant_and_mails_each_recipient_once() {
    experiment_killed_in_its_test(TestDb::sqlite().await, "sqlite").await;
    if let Some(db) = TestDb::postgres().await {
        experiment_killed_in_its_test(db, "postgres").await;
    }
}
