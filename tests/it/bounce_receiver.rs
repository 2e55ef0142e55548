//! The inbound SMTP receiver for the bounce domain, on both engines: it stores a bounce
//! before answering 250 and applies it; it refuses other domains (never a relay),
//! oversize messages and connections over its cap; a bounce stored before a crash is
//! applied when the receiver starts again.

use crate::support;

use std::time::Duration;

use mailcast::bounce::{self, BounceSettings, ReceiverLimits, ReturnPath};
use mailcast::domain::EmailAddress;
use mailcast::links::KeyRing;
use mailcast::store::{IncomingBounce, LedgerCounts, SoftBouncePolicy, Store};
use support::bounce_mail::dsn;
use support::bounce_receiver::{Client, Receiver};
use support::campaign::{HTML, WorkerOptions, create_campaign, run_to_done};
use support::scripted_smtp::{ScriptedServer, accept_all, always_accept_dot};
use support::{eventually, for_each_engine, recipient};

const DOMAIN: &str = "bounce.shop.example.com";

fn settings() -> BounceSettings {
    BounceSettings {
        return_path: Some(ReturnPath::new("bounces", DOMAIN).unwrap()),
        keys: KeyRing::development(),
        soft: SoftBouncePolicy::default(),
        pause: mailcast::bounce::PauseThresholds::default(),
    }
}

fn limits() -> ReceiverLimits {
    ReceiverLimits {
        max_message_size: 64 * 1024,
        max_connections: 4,
        ..ReceiverLimits::default()
    }
}

/// ann and ben get campaign "spring" with return paths; returns the campaign and ann's
/// (return path, Message-ID).
async fn spring_sent(store: &Store) -> (i64, String, String) {
    store
        .upsert_recipients(&[
            recipient("ann@example.com", "Ann", &["news"]),
            recipient("ben@example.com", "Ben", &["news"]),
        ])
        .await
        .unwrap();
    let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
    let campaign = create_campaign(store, "spring", "news", HTML).await;
    let options = WorkerOptions {
        return_path: settings().return_path,
        ..WorkerOptions::default()
    };
    run_to_done(store, campaign, &server.url(), &options).await;
    let ann = server
        .received()
        .into_iter()
        .find(|m| m.to == ["ann@example.com"])
        .unwrap();
    let message_id = ann.message_id();
    server.stop();
    (campaign, ann.from, message_id)
}

async fn wait_for_bounced(store: &Store, campaign: i64, engine: &str) -> LedgerCounts {
    eventually(
        &format!("{engine}: ann's delivery to be bounced"),
        Duration::from_secs(10),
        async || {
            let counts = store.ledger_counts(campaign).await.unwrap();
            if counts.bounced == 1 {
                Ok(counts)
            } else {
                Err(format!("{counts:?}"))
            }
        },
    )
    .await
}

async fn stored(store: &Store) -> usize {
    store.received_bounces(100, 0).await.unwrap().len()
}

#[tokio::test]
async fn a_bounce_is_stored_before_250_and_then_applied() {
    for_each_engine(|store, engine| async move {
        let (campaign, return_path, message_id) = spring_sent(&store).await;
        let receiver = Receiver::start(&store, settings(), limits()).await;
        let mut raw = dsn(
            &return_path,
            "ann@example.com",
            "5.1.1",
            "550 5.1.1 User unknown",
            &message_id,
        );
        // A line that starts with a dot travels dot-stuffed and is stored as written.
        raw.extend_from_slice(b".a line with a leading dot\r\n..and two\r\n");
        let mut client = Client::connect(receiver.addr).await;
        assert!(
            client.greeting.starts_with("220 "),
            "{engine}: {}",
            client.greeting
        );
        let replies = client.send(&return_path, &raw).await;
        assert!(replies[0].contains("SIZE 65536"), "{engine}: {replies:?}");
        assert!(replies[4].starts_with("250 2.0.0"), "{engine}: {replies:?}");
        // 250 came after the commit: the row is there now, whatever processing is doing.
        let listed = store.received_bounces(10, 0).await.unwrap();
        assert_eq!(listed.len(), 1, "{engine}");
        let (record, kept) = store.bounce(listed[0].id).await.unwrap().unwrap();
        assert_eq!(kept, raw, "{engine}: stored dot-unstuffed, byte for byte");
        assert_eq!(
            record.envelope_to.as_deref(),
            Some(return_path.as_str()),
            "{engine}"
        );
        assert_eq!(client.command("QUIT").await, "221 2.0.0 Bye", "{engine}");

        let counts = wait_for_bounced(&store, campaign, engine).await;
        assert_eq!(counts.sent, 1, "{engine}: {counts:?}");
        let ann = EmailAddress::parse("ann@example.com").unwrap();
        assert!(store.is_suppressed(&ann).await.unwrap(), "{engine}");
        receiver.stop().await;
    })
    .await;
}

#[tokio::test]
async fn mail_for_another_domain_is_refused_and_nothing_is_stored() {
    for_each_engine(|store, engine| async move {
        let receiver = Receiver::start(&store, settings(), limits()).await;
        let mut client = Client::connect(receiver.addr).await;
        let raw = dsn(
            "someone@example.org",
            "x@example.net",
            "5.1.1",
            "550 unknown",
            "<a@b>",
        );
        let replies = client.send("someone@example.org", &raw).await;
        assert!(replies[2].starts_with("550 5.7.1"), "{engine}: {replies:?}");
        assert!(
            replies[3].starts_with("554"),
            "{engine}: DATA without a recipient: {replies:?}"
        );
        for other in [
            "postmaster@shop.example.com",
            "a@sub.bounce.shop.example.com",
            "a@bounce.shop.example.com.evil.example",
        ] {
            let reply = client.command(&format!("RCPT TO:<{other}>")).await;
            assert!(reply.starts_with("550 5.7.1"), "{engine}: {other}: {reply}");
        }
        assert_eq!(stored(&store).await, 0, "{engine}");
        receiver.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_oversize_message_is_refused_and_nothing_is_stored() {
    for_each_engine(|store, engine| async move {
        let receiver = Receiver::start(&store, settings(), limits()).await;
        let mut client = Client::connect(receiver.addr).await;
        client.command("EHLO mx.example.net").await;
        let declared = client.command("MAIL FROM:<> SIZE=1000000").await;
        assert!(declared.starts_with("552 5.3.4"), "{engine}: {declared}");

        let to = format!("bounces+x@{DOMAIN}");
        let mut raw = dsn(&to, "ann@example.com", "5.1.1", "550 unknown", "<a@b>");
        for _ in 0..2000 {
            raw.extend_from_slice(b"padding padding padding padding padding padding\r\n");
        }
        let replies = client.send(&to, &raw).await;
        assert!(replies[4].starts_with("552 5.3.4"), "{engine}: {replies:?}");
        assert_eq!(
            client.command("NOOP").await,
            "250 2.0.0 OK",
            "{engine}: still in step"
        );
        assert_eq!(stored(&store).await, 0, "{engine}");
        receiver.stop().await;
    })
    .await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused() {
    for_each_engine(|store, engine| async move {
        let one = ReceiverLimits {
            max_connections: 1,
            ..limits()
        };
        let receiver = Receiver::start(&store, settings(), one).await;
        let mut first = Client::connect(receiver.addr).await;
        assert!(first.greeting.starts_with("220"), "{engine}");
        let second = Client::connect(receiver.addr).await;
        assert!(
            second.greeting.starts_with("421 4.3.2"),
            "{engine}: {}",
            second.greeting
        );
        first.command("QUIT").await;
        drop(first);
        let third = eventually("a free slot", Duration::from_secs(5), async || {
            let client = Client::connect(receiver.addr).await;
            if client.greeting.starts_with("220") {
                Ok(client)
            } else {
                Err(client.greeting.clone())
            }
        })
        .await;
        drop(third);
        receiver.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_bounce_stored_before_a_crash_is_applied_when_the_receiver_starts() {
    for_each_engine(|store, engine| async move {
        let (campaign, return_path, message_id) = spring_sent(&store).await;
        // What a receiver that stopped after its commit (and its 250) leaves behind.
        let raw = dsn(
            &return_path,
            "ann@example.com",
            "5.1.1",
            "550 5.1.1 User unknown",
            &message_id,
        );
        let envelope_to = [return_path.clone()];
        bounce::store(
            &store,
            &IncomingBounce {
                raw: &raw,
                envelope_from: Some(""),
                envelope_to: &envelope_to,
                received_at: mailcast::time::now(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            store.ledger_counts(campaign).await.unwrap().bounced,
            0,
            "{engine}"
        );

        let receiver = Receiver::start(&store, settings(), limits()).await;
        wait_for_bounced(&store, campaign, engine).await;
        assert!(
            store.unprocessed_bounces(10).await.unwrap().is_empty(),
            "{engine}"
        );
        receiver.stop().await;
    })
    .await;
}

/// `mailcast --database URL ARGS…`: (exit code, stdout, stderr).
fn mailcast_cli(database: &str, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("--database")
        .arg(database)
        .args(args)
        .output()
        .expect("run mailcast");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn run_takes_bounces_and_the_cli_lists_them(store: Store, url: String, engine: &str) {
    let (campaign, return_path, message_id) = spring_sent(&store).await;
    let port = free_port();
    let outbox = tempfile::tempdir().unwrap();
    let keys = format!(
        "{}:{}",
        mailcast::links::DEVELOPMENT_KEY_ID,
        hex::encode(mailcast::links::INSECURE_DEVELOPMENT_KEY)
    );
    let bounce_listen = format!("127.0.0.1:{port}");
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("--database")
        .arg(&url)
        .args(["run", "--listen", "127.0.0.1:0", "--outbox"])
        .arg(outbox.path())
        .args(["--bounce-domain", DOMAIN, "--bounce-listen", &bounce_listen])
        .env("MAILCAST_LINK_KEYS", &keys)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mailcast run");
    let addr: std::net::SocketAddr = bounce_listen.parse().unwrap();
    let mut client = eventually(
        "the receiver of `run`",
        Duration::from_secs(20),
        async || match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => Ok(Client::connect(addr).await),
            Err(e) => Err(e.to_string()),
        },
    )
    .await;
    let raw = dsn(
        &return_path,
        "ann@example.com",
        "5.1.1",
        "550 5.1.1 User unknown",
        &message_id,
    );
    let replies = client.send(&return_path, &raw).await;
    assert!(replies[4].starts_with("250 "), "{engine}: {replies:?}");
    client.command("QUIT").await;
    wait_for_bounced(&store, campaign, engine).await;
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let status = run.wait().unwrap();
    assert!(status.success(), "{engine}: run ended with {status}");

    let (code, listed, stderr) = mailcast_cli(&url, &["bounces", "list"]);
    assert_eq!(code, 0, "{engine}: {stderr}");
    assert!(
        listed.starts_with("#1\t") && listed.contains("\thard\tann@example.com\t5.1.1\tdelivery "),
        "{engine}: {listed}"
    );
    let (code, shown, stderr) = mailcast_cli(&url, &["bounces", "show", "1"]);
    assert_eq!(code, 0, "{engine}: {stderr}");
    for expected in [
        "class         hard",
        "matched by    return_path",
        "action        delivery bounced; address suppressed",
        "Final-Recipient: rfc822; ann@example.com",
    ] {
        assert!(
            shown.contains(expected),
            "{engine}: {expected:?} not in\n{shown}"
        );
    }
}

#[tokio::test]
async fn run_receives_bounces_beside_the_worker_and_the_cli_lists_them() {
    let sqlite = support::TestDb::sqlite().await;
    run_takes_bounces_and_the_cli_lists_them(sqlite.store.clone(), sqlite.url.clone(), "sqlite")
        .await;
    sqlite.drop_database().await;
    if let Some(postgres) = support::TestDb::postgres().await {
        run_takes_bounces_and_the_cli_lists_them(
            postgres.store.clone(),
            postgres.url.clone(),
            "postgres",
        )
        .await;
        postgres.drop_database().await;
    }
}

#[tokio::test]
async fn commands_out_of_order_are_refused_and_the_session_goes_on() {
    let db = support::TestDb::sqlite().await;
    let receiver = Receiver::start(&db.store, settings(), limits()).await;
    let mut client = Client::connect(receiver.addr).await;
    let to = format!("RCPT TO:<bounces+x@{DOMAIN}>");
    assert!(
        client
            .command("MAIL FROM:<>")
            .await
            .starts_with("503 5.5.1")
    );
    assert!(
        client
            .command("HELO mx.example.net")
            .await
            .starts_with("250 ")
    );
    assert!(client.command(&to).await.starts_with("503 5.5.1"));
    assert!(client.command("DATA").await.starts_with("503 5.5.1"));
    assert!(
        client
            .command("MAIL FROM:<>")
            .await
            .starts_with("250 2.1.0")
    );
    assert!(
        client
            .command("MAIL FROM:<>")
            .await
            .starts_with("503 5.5.1")
    );
    assert!(client.command("RSET").await.starts_with("250 "));
    assert!(
        client.command(&to).await.starts_with("503 5.5.1"),
        "RSET ended the transaction"
    );
    assert!(
        client
            .command("MAIL FROM:a@b")
            .await
            .starts_with("501 5.5.4")
    );
    assert!(client.command("STARTTLS").await.starts_with("502 5.5.2"));
    assert!(
        client
            .command(&"X".repeat(5000))
            .await
            .starts_with("500 5.5.2")
    );
    assert_eq!(client.command("NOOP").await, "250 2.0.0 OK");
    assert_eq!(client.command("QUIT").await, "221 2.0.0 Bye");
    receiver.stop().await;
}

#[tokio::test]
async fn a_bounce_left_unprocessed_while_running_is_applied_on_the_next_round() {
    for_each_engine(|store, engine| async move {
        let (campaign, return_path, message_id) = spring_sent(&store).await;
        let often = ReceiverLimits {
            retry_interval: Duration::from_millis(100),
            ..limits()
        };
        let receiver = Receiver::start(&store, settings(), often).await;
        // Stored by another process sharing the database, which stopped before applying.
        let raw = dsn(
            &return_path,
            "ann@example.com",
            "5.1.1",
            "550 5.1.1 User unknown",
            &message_id,
        );
        let envelope_to = [return_path.clone()];
        bounce::store(
            &store,
            &IncomingBounce {
                raw: &raw,
                envelope_from: Some(""),
                envelope_to: &envelope_to,
                received_at: mailcast::time::now(),
            },
        )
        .await
        .unwrap();
        wait_for_bounced(&store, campaign, engine).await;
        receiver.stop().await;
    })
    .await;
}

/// `mailcast bounces receive` killed with SIGKILL right after its last 250: every
/// message it answered 250 to is stored, and what it had not applied yet is applied
/// by the next receiver.
async fn killed_receiver_loses_nothing_it_accepted(store: Store, url: String, engine: &str) {
    let (campaign, return_path, message_id) = spring_sent(&store).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let keys = format!(
        "{}:{}",
        mailcast::links::DEVELOPMENT_KEY_ID,
        hex::encode(mailcast::links::INSECURE_DEVELOPMENT_KEY)
    );
    let mut receiver = std::process::Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("--database")
        .arg(&url)
        .args(["bounces", "receive", "--listen", &listen])
        .args(["--bounce-domain", DOMAIN])
        .env("MAILCAST_LINK_KEYS", &keys)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mailcast bounces receive");
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    let mut client = eventually(
        "the bounce receiver process",
        Duration::from_secs(20),
        async || match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => Ok(Client::connect(addr).await),
            Err(e) => Err(e.to_string()),
        },
    )
    .await;
    const SENT: usize = 5;
    for n in 0..SENT {
        let raw = dsn(
            &return_path,
            "ann@example.com",
            "5.1.1",
            &format!("550 5.1.1 User unknown (report {n})"),
            &message_id,
        );
        let replies = client.send(&return_path, &raw).await;
        assert!(replies[4].starts_with("250 "), "{engine}: {replies:?}");
    }
    receiver.kill().expect("SIGKILL the receiver");
    receiver.wait().unwrap();

    assert_eq!(stored(&store).await, SENT, "{engine}: every 250 is stored");
    let restarted = Receiver::start(&store, settings(), limits()).await;
    wait_for_bounced(&store, campaign, engine).await;
    eventually(
        &format!("{engine}: every stored bounce applied"),
        Duration::from_secs(10),
        async || match store.unprocessed_bounces(10).await.unwrap().len() {
            0 => Ok(()),
            left => Err(format!("{left} unprocessed")),
        },
    )
    .await;
    restarted.stop().await;
}

#[tokio::test]
async fn a_receiver_killed_after_its_250_loses_no_bounce() {
    let sqlite = support::TestDb::sqlite().await;
    killed_receiver_loses_nothing_it_accepted(sqlite.store.clone(), sqlite.url.clone(), "sqlite")
        .await;
    sqlite.drop_database().await;
    if let Some(postgres) = support::TestDb::postgres().await {
        killed_receiver_loses_nothing_it_accepted(
            postgres.store.clone(),
            postgres.url.clone(),
            "postgres",
        )
        .await;
        postgres.drop_database().await;
    }
}
