//! The bounce mailbox poller against a real Dovecot (a private instance per test:
//! imaps and pop3s with a self-signed certificate, a Maildir): DSNs in the mailbox bounce
//! exactly their deliveries and leave the mailbox, moved to a folder when asked; nothing
//! leaves the mailbox before the store holds it; the CLI and `run` poll it too.

use crate::support;

use std::time::Duration;

use mailcast::bounce::{
    BounceSettings, Mailbox, MailboxLimits, MailboxUrl, PauseThresholds, PollReport, ReturnPath,
    poll_once,
};
use mailcast::domain::EmailAddress;
use mailcast::links::KeyRing;
use mailcast::store::{HARD_BOUNCE_REASON, SoftBouncePolicy, Store};
use support::bounce_mail::dsn;
use support::campaign::{HTML, WorkerOptions, create_campaign, run_to_done};
use support::dovecot::{Dovecot, PASSWORD};
use support::scripted_smtp::{ScriptedServer, accept_all, always_accept_dot};
use support::{TestDb, eventually, for_each_engine, recipient};

const DOMAIN: &str = "bounce.shop.example.com";

const NOT_A_BOUNCE: &[u8] = b"From: Ann <ann@example.com>\r\n\
    To: news@shop.example.com\r\n\
    Subject: Re: Picks\r\n\
    Message-ID: <reply-1@example.com>\r\n\
    \r\n\
    Thanks, the picks were lovely.\r\n";

fn settings() -> BounceSettings {
    BounceSettings {
        return_path: Some(ReturnPath::new("bounces", DOMAIN).unwrap()),
        keys: KeyRing::development(),
        soft: SoftBouncePolicy::default(),
        pause: PauseThresholds::default(),
    }
}

fn mailbox(url: &str, move_to: Option<&str>, dovecot: &Dovecot) -> Mailbox {
    mailbox_with(url, move_to, dovecot, MailboxLimits::default())
}

fn mailbox_with(
    url: &str,
    move_to: Option<&str>,
    dovecot: &Dovecot,
    limits: MailboxLimits,
) -> Mailbox {
    let url = MailboxUrl::parse(url, None).unwrap();
    let ca = dovecot.certificate();
    Mailbox::new(url, move_to.map(str::to_string), Some(&ca), limits).unwrap()
}

/// ann, ben and cat get campaign "spring" with return paths; DSNs for ann and ben
/// and a reply that is no bounce go into the mailbox. Returns the campaign and what
/// was delivered.
async fn spring_bounced_into(store: &Store, dovecot: &Dovecot) -> (i64, Vec<String>) {
    store
        .upsert_recipients(&[
            recipient("ann@example.com", "Ann", &["news"]),
            recipient("ben@example.com", "Ben", &["news"]),
            recipient("cat@example.com", "Cat", &["news"]),
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
    let mut delivered = Vec::new();
    for message in server.received() {
        let to = message.to[0].clone();
        if to == "cat@example.com" {
            continue;
        }
        let message_id = message.message_id();
        let diagnostic = format!("550 5.1.1 <{to}>: Recipient address rejected: User unknown");
        delivered.push(dsn(&message.from, &to, "5.1.1", &diagnostic, &message_id));
    }
    server.stop();
    delivered.push(NOT_A_BOUNCE.to_vec());
    for raw in &delivered {
        dovecot.deliver(raw);
    }
    let mut delivered: Vec<String> = delivered
        .iter()
        .map(|raw| String::from_utf8_lossy(raw).into_owned())
        .collect();
    delivered.sort();
    (campaign, delivered)
}

/// Ann and Ben bounced and suppressed, Cat neither; three messages stored.
async fn assert_ann_and_ben_bounced(store: &Store, campaign: i64, engine: &str) {
    let counts = store.ledger_counts(campaign).await.unwrap();
    assert_eq!(
        (counts.bounced, counts.sent),
        (2, 1),
        "{engine}: {counts:?}"
    );
    for (email, reason) in [
        ("ann@example.com", Some(HARD_BOUNCE_REASON)),
        ("ben@example.com", Some(HARD_BOUNCE_REASON)),
        ("cat@example.com", None),
    ] {
        let address = EmailAddress::parse(email).unwrap();
        let suppressed = store.suppression(&address).await.unwrap().map(|s| s.reason);
        assert_eq!(suppressed.as_deref(), reason, "{engine}: {email}");
    }
    let mut classes: Vec<String> = store
        .received_bounces(10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.class.unwrap_or_default())
        .collect();
    classes.sort();
    assert_eq!(classes, ["hard", "hard", "none"], "{engine}");
}

fn all_three_removed() -> PollReport {
    PollReport {
        fetched: 3,
        stored: 3,
        removed: 3,
        skipped: 0,
    }
}

#[tokio::test]
async fn imap_poll_bounces_the_reported_deliveries_and_empties_the_mailbox() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let dovecot = &dovecot;
    for_each_engine(|store, engine| async move {
        let (campaign, _) = spring_bounced_into(&store, dovecot).await;
        let inbox = mailbox(&dovecot.imaps_url("INBOX"), None, dovecot);
        let report = poll_once(&store, &settings(), &inbox).await.unwrap();
        assert_eq!(report, all_three_removed(), "{engine}: {}", dovecot.log());
        assert_ann_and_ben_bounced(&store, campaign, engine).await;
        assert!(dovecot.messages("INBOX").is_empty(), "{engine}: expunged");

        let again = poll_once(&store, &settings(), &inbox).await.unwrap();
        assert_eq!(again, PollReport::default(), "{engine}: nothing left");
    })
    .await;
}

#[tokio::test]
async fn move_to_puts_the_messages_in_a_folder_instead_of_deleting_them() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let dovecot = &dovecot;
    for_each_engine(|store, engine| async move {
        let before = dovecot.messages("Processed");
        let (campaign, delivered) = spring_bounced_into(&store, dovecot).await;
        // The folder does not exist on the first pass: the server says TRYCREATE.
        let inbox = mailbox(&dovecot.imaps_url("INBOX"), Some("Processed"), dovecot);
        let report = poll_once(&store, &settings(), &inbox).await.unwrap();
        assert_eq!(report, all_three_removed(), "{engine}: {}", dovecot.log());
        assert_ann_and_ben_bounced(&store, campaign, engine).await;
        assert!(dovecot.messages("INBOX").is_empty(), "{engine}");
        let mut expected = [before, delivered].concat();
        expected.sort();
        let moved = dovecot.messages("Processed");
        assert_eq!(moved, expected, "{engine}: moved as they were");
    })
    .await;
}

#[tokio::test]
async fn pop3_poll_does_the_same() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let dovecot = &dovecot;
    for_each_engine(|store, engine| async move {
        let (campaign, delivered) = spring_bounced_into(&store, dovecot).await;
        let pop = mailbox(&dovecot.pop3s_url(), None, dovecot);
        let report = poll_once(&store, &settings(), &pop).await.unwrap();
        assert_eq!(report, all_three_removed(), "{engine}: {}", dovecot.log());
        assert_ann_and_ben_bounced(&store, campaign, engine).await;
        assert!(dovecot.messages("INBOX").is_empty(), "{engine}");
        let mut stored = Vec::new();
        for bounce in store.received_bounces(10, 0).await.unwrap() {
            let raw = store.bounce(bounce.id).await.unwrap().unwrap().1;
            stored.push(String::from_utf8_lossy(&raw).into_owned());
        }
        stored.sort();
        assert_eq!(stored, delivered, "{engine}: dot-unstuffed, byte for byte");

        let again = poll_once(&store, &settings(), &pop).await.unwrap();
        assert_eq!(again, PollReport::default(), "{engine}");
    })
    .await;
}

/// A store that cannot write (its pool closed) records nothing, so nothing leaves the
/// mailbox; the next poll with a working store records and removes everything.
async fn nothing_leaves_before_it_is_recorded(
    db: &TestDb,
    engine: &str,
    dovecot: &Dovecot,
    url: &str,
) {
    let (campaign, delivered) = spring_bounced_into(&db.store, dovecot).await;
    let broken = Store::open(&db.url).await.unwrap();
    broken.close().await;
    let inbox = mailbox(url, None, dovecot);
    let error = poll_once(&broken, &settings(), &inbox).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("cannot record message") && text.contains("stay in the mailbox"),
        "{engine}: {text}"
    );
    assert!(!text.contains(PASSWORD), "{engine}: {text}");
    assert_eq!(
        dovecot.messages("INBOX"),
        delivered,
        "{engine}: all still there"
    );
    assert!(
        db.store.received_bounces(10, 0).await.unwrap().is_empty(),
        "{engine}"
    );

    let report = poll_once(&db.store, &settings(), &inbox).await.unwrap();
    assert_eq!(report, all_three_removed(), "{engine}");
    assert_ann_and_ben_bounced(&db.store, campaign, engine).await;
    assert!(dovecot.messages("INBOX").is_empty(), "{engine}");
}

#[tokio::test]
async fn messages_leave_the_mailbox_only_once_recorded_over_imap_and_pop3() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let urls = [dovecot.imaps_url("INBOX"), dovecot.pop3s_url()];
    for url in &urls {
        let sqlite = TestDb::sqlite().await;
        nothing_leaves_before_it_is_recorded(&sqlite, "sqlite", &dovecot, url).await;
        sqlite.drop_database().await;
        if let Some(postgres) = TestDb::postgres().await {
            nothing_leaves_before_it_is_recorded(&postgres, "postgres", &dovecot, url).await;
            postgres.drop_database().await;
        }
    }
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_left_in_the_mailbox() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let db = TestDb::sqlite().await;
    let large = format!("Subject: large\r\n\r\n{}\r\n", "x".repeat(4000));
    dovecot.deliver(large.as_bytes());
    dovecot.deliver(NOT_A_BOUNCE);
    let limits = MailboxLimits {
        max_message_size: 2048,
        ..MailboxLimits::default()
    };
    for url in [dovecot.imaps_url("INBOX"), dovecot.pop3s_url()] {
        let inbox = mailbox_with(&url, None, &dovecot, limits.clone());
        let report = poll_once(&db.store, &settings(), &inbox).await.unwrap();
        assert_eq!(report.skipped, 1, "{url}: {report:?}");
        assert_eq!(dovecot.messages("INBOX"), [large.as_str()], "{url}");
    }
    assert_eq!(db.store.received_bounces(10, 0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_wrong_password_is_refused_naming_the_server_not_the_password() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let db = TestDb::sqlite().await;
    let wrong = format!(
        "imaps://bounces:Wrong-Pass-9@127.0.0.1:{}/INBOX",
        dovecot.imaps_port
    );
    let inbox = mailbox(&wrong, None, &dovecot);
    let error = poll_once(&db.store, &settings(), &inbox)
        .await
        .unwrap_err()
        .to_string();
    let server = format!("imaps://bounces@127.0.0.1:{}/INBOX", dovecot.imaps_port);
    assert!(
        error.contains(&server) && error.contains("LOGIN"),
        "{error}"
    );
    assert!(!error.contains("Wrong-Pass-9"), "{error}");

    let wrong = format!(
        "pop3s://bounces:Wrong-Pass-9@127.0.0.1:{}",
        dovecot.pop3s_port
    );
    let pop = mailbox(&wrong, None, &dovecot);
    let error = poll_once(&db.store, &settings(), &pop)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("PASS") && error.contains("127.0.0.1"),
        "{error}"
    );
    assert!(!error.contains("Wrong-Pass-9"), "{error}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let db = TestDb::sqlite().await;
    dovecot.deliver(NOT_A_BOUNCE);
    let url = MailboxUrl::parse(&dovecot.imaps_url("INBOX"), None).unwrap();
    let public_cas_only = Mailbox::new(url, None, None, MailboxLimits::default()).unwrap();
    let error = poll_once(&db.store, &settings(), &public_cas_only)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("TLS"), "{error}");
    assert_eq!(dovecot.messages("INBOX").len(), 1);
}

fn link_keys() -> String {
    format!(
        "{}:{}",
        mailcast::links::DEVELOPMENT_KEY_ID,
        hex::encode(mailcast::links::INSECURE_DEVELOPMENT_KEY)
    )
}

fn mailcast_cli(database: &str, args: &[&str], password: Option<&str>) -> (i32, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mailcast"));
    command
        .arg("--database")
        .arg(database)
        .args(args)
        .env("MAILCAST_LINK_KEYS", link_keys())
        .env_remove("MAILCAST_BOUNCE_MAILBOX_PASSWORD");
    if let Some(password) = password {
        command.env("MAILCAST_BOUNCE_MAILBOX_PASSWORD", password);
    }
    let output = command.output().expect("run mailcast");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_polls_once_and_prints_its_report() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let db = TestDb::sqlite().await;
    let (campaign, _) = spring_bounced_into(&db.store, &dovecot).await;
    let ca = dovecot.certificate().display().to_string();
    let port = dovecot.imaps_port;
    let wrong = format!("imaps://bounces:Wrong-Pass-9@127.0.0.1:{port}");
    let poll = |url: &str, password: Option<&str>| {
        let args = [
            "bounces",
            "poll",
            "--once",
            "--mailbox",
            url,
            "--mailbox-ca",
            &ca,
        ];
        mailcast_cli(
            &db.url,
            &[&args[..], &["--bounce-domain", DOMAIN]].concat(),
            password,
        )
    };

    let (code, _, stderr) = poll(&wrong, None);
    assert_ne!(code, 0);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    let named = format!("imaps://bounces@127.0.0.1:{port}/INBOX refused LOGIN");
    assert!(errors[0].contains(&named), "{stderr}");
    assert!(!stderr.contains("Wrong-Pass-9"), "{stderr}");
    assert_eq!(dovecot.messages("INBOX").len(), 3);

    // The password from the environment, not the URL.
    let url = format!("imaps://bounces@127.0.0.1:{port}");
    let (code, stdout, stderr) = poll(&url, Some(PASSWORD));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!(
            "imaps://bounces@127.0.0.1:{port}/INBOX: fetched 3, stored 3, removed 3, skipped 0"
        )
    );
    assert_ann_and_ben_bounced(&db.store, campaign, "sqlite").await;
    assert!(dovecot.messages("INBOX").is_empty());
}

#[tokio::test]
async fn run_polls_the_mailbox_beside_the_worker_until_stopped() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let db = TestDb::sqlite().await;
    let (campaign, _) = spring_bounced_into(&db.store, &dovecot).await;
    let outbox = tempfile::tempdir().unwrap();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("--database")
        .arg(&db.url)
        .args(["run", "--listen", "127.0.0.1:0", "--outbox"])
        .arg(outbox.path())
        .args([
            "--bounce-domain",
            DOMAIN,
            "--interval",
            "1s",
            "--mailbox-ca",
        ])
        .arg(dovecot.certificate())
        .args(["--bounce-mailbox", &dovecot.pop3s_url()])
        .env("MAILCAST_LINK_KEYS", link_keys())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mailcast run");
    eventually(
        "`run` to empty the mailbox",
        Duration::from_secs(30),
        async || match dovecot.messages("INBOX").len() {
            0 => Ok(()),
            n => Err(format!("{n} messages left")),
        },
    )
    .await;
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let status = run.wait().unwrap();
    assert!(status.success(), "run ended with {status}");
    assert_ann_and_ben_bounced(&db.store, campaign, "sqlite").await;
}
