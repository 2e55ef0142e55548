//! What the SMTP server answers decides the ledger: deferred and retried, failed and
//! suppressed, or unknown and never re-sent on the worker's own.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use mailcast::domain::{DeliveryStatus, EmailAddress};
use mailcast::store::Store;
use mailin::Response;
use support::campaign::{HTML, WorkerOptions, create_campaign, run_to_done};
use support::scripted_smtp::{AfterDot, ScriptedServer, accept_all, always_accept_dot, refuse};
use support::{for_each_engine, recipient};

async fn three_readers(store: &Store) {
    store
        .upsert_recipients(&[
            recipient("ann@example.com", "Ann", &["news"]),
            recipient("ben@example.com", "Ben", &["news"]),
            recipient("cat@example.com", "Cat", &["news"]),
        ])
        .await
        .unwrap();
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

#[tokio::test]
async fn a_4xx_reply_defers_and_the_retry_delivers_the_message_once() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let rcpt = Arc::new(|to: &str, seen: usize| {
            (to == "ben@example.com" && seen == 0)
                .then(|| Response::custom(451, "4.3.0 mailbox busy, try later".into()))
        });
        let server = ScriptedServer::start(rcpt, always_accept_dot()).await;
        let campaign = create_campaign(&store, "defer", "news", HTML).await;
        let counts = run_to_done(&store, campaign, &server.url(), &WorkerOptions::default()).await;

        assert_eq!(counts.sent, 3, "{engine}: {counts:?}");
        assert_eq!(
            sorted(server.recipients()),
            ["ann@example.com", "ben@example.com", "cat@example.com"],
            "{engine}: each message arrived exactly once"
        );
        let ben = store
            .deliveries_in(campaign, &[DeliveryStatus::Sent])
            .await
            .unwrap();
        let ben = ben.iter().find(|d| d.email == "ben@example.com").unwrap();
        assert_eq!(ben.attempts, 2, "{engine}: one deferral, one retry");
        server.stop();
    })
    .await;
}

#[tokio::test]
async fn a_bad_mailbox_fails_the_delivery_suppresses_the_address_and_a_later_campaign_skips_it() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let rcpt = refuse("cat@example.com", 550, "5.1.1 no such user here");
        let server = ScriptedServer::start(rcpt, always_accept_dot()).await;
        let first = create_campaign(&store, "first", "news", HTML).await;
        let counts = run_to_done(&store, first, &server.url(), &WorkerOptions::default()).await;
        assert_eq!((counts.sent, counts.failed), (2, 1), "{engine}: {counts:?}");
        let failed = store
            .deliveries_in(first, &[DeliveryStatus::Failed])
            .await
            .unwrap();
        assert!(
            failed[0].last_error.as_deref().unwrap().contains("5.1.1"),
            "{engine}: {failed:?}"
        );
        let cat = EmailAddress::parse("cat@example.com").unwrap();
        assert!(
            store.is_suppressed(&cat).await.unwrap(),
            "{engine}: suppressed"
        );

        let second = create_campaign(&store, "second", "news", HTML).await;
        let counts = run_to_done(&store, second, &server.url(), &WorkerOptions::default()).await;
        assert_eq!(
            counts.total(),
            2,
            "{engine}: the suppressed address is not in the audience"
        );
        server.stop();
    })
    .await;
}

async fn ambiguous_after_dot(store: Store, engine: &str, behaviour: AfterDot) {
    three_readers(&store).await;
    let dot = Arc::new(move |message: &support::smtp::Received, _n: usize| {
        if message.to.iter().any(|t| t == "ann@example.com") {
            behaviour
        } else {
            AfterDot::Accept
        }
    });
    let server = ScriptedServer::start(accept_all(), dot).await;
    let campaign = create_campaign(&store, "ambiguous", "news", HTML).await;
    let options = WorkerOptions {
        send_timeout: Duration::from_secs(2),
        ..WorkerOptions::default()
    };
    let counts = run_to_done(&store, campaign, &server.url(), &options).await;
    assert_eq!(
        (counts.sent, counts.unknown),
        (2, 1),
        "{engine} {behaviour:?}: {counts:?}"
    );
    let unknown = store
        .deliveries_in(campaign, &[DeliveryStatus::Unknown])
        .await
        .unwrap();
    assert_eq!(unknown[0].email, "ann@example.com", "{engine}");
    // run_to_done has stopped the worker: what the server got is final.
    let to_ann = server
        .recipients()
        .iter()
        .filter(|t| *t == "ann@example.com")
        .count();
    assert_eq!(
        to_ann, 1,
        "{engine} {behaviour:?}: never re-sent by the worker on its own"
    );
    server.stop();
}

#[tokio::test]
async fn no_reply_after_the_final_dot_is_unknown_and_never_resent() {
    for_each_engine(|store, engine| ambiguous_after_dot(store, engine, AfterDot::Hang)).await;
}

#[tokio::test]
async fn a_connection_dropped_after_the_final_dot_is_unknown_and_never_resent() {
    for_each_engine(|store, engine| ambiguous_after_dot(store, engine, AfterDot::Drop)).await;
}

#[tokio::test]
async fn while_the_smtp_server_is_down_deliveries_defer_then_complete_once_it_is_back() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let campaign = create_campaign(&store, "outage", "news", HTML).await;
        let options = WorkerOptions::default();
        let worker =
            support::campaign::start(&store, campaign, &format!("smtp://{addr}"), &options).await;

        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.ledger_counts(campaign).await.unwrap().deferred < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "{engine}: nothing deferred"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let server = ScriptedServer::start_on(addr, accept_all(), always_accept_dot()).await;
        support::campaign::wait_for_status(
            &store,
            campaign,
            mailcast::domain::CampaignStatus::Done,
            Duration::from_secs(60),
        )
        .await;
        worker.shutdown().await.unwrap();
        let counts = store.ledger_counts(campaign).await.unwrap();
        assert_eq!(counts.sent, 3, "{engine}: {counts:?}");
        assert_eq!(server.recipients().len(), 3, "{engine}: each once");
        server.stop();
    })
    .await;
}

const DOTS_HTML: &str = "<html><body><p>Hi {{ recipient.first_name }}</p><pre>\nline one\n.\nline two\r\n.\r\nline three\r\n\r\n.\nend of body</pre>\
<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></body></html>";

#[tokio::test]
async fn a_body_with_lone_dots_arrives_as_one_intact_message() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
        let campaign = create_campaign(&store, "dots", "news", DOTS_HTML).await;
        let counts = run_to_done(&store, campaign, &server.url(), &WorkerOptions::default()).await;
        assert_eq!(counts.sent, 3, "{engine}: {counts:?}");
        for message in server.received() {
            let parsed = mail_parser::MessageParser::default()
                .parse(&message.data)
                .expect("parsable message");
            let html = parsed.body_html(0).expect("html part").to_string();
            assert!(
                html.contains("end of body"),
                "{engine}: body cut short: {html}"
            );
            assert!(html.contains("line three"), "{engine}");
            let text = parsed.body_text(0).expect("text part").to_string();
            assert!(
                text.contains("end of body"),
                "{engine}: text cut short: {text}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn when_the_first_relay_is_down_the_next_one_delivers_without_deferring() {
    use mailcast::config::{SmtpUrl, TransportConfig};
    use mailcast::dispatch::{schedule_campaign, spawn_worker};
    use support::campaign::{dispatcher_with, wait_for_status};

    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let down = format!("smtp://{}", closed.local_addr().unwrap());
        drop(closed);
        let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
        let relays = TransportConfig::Relays(vec![
            ("primary".into(), SmtpUrl::parse(&down).unwrap()),
            ("backup".into(), SmtpUrl::parse(&server.url()).unwrap()),
        ]);
        let campaign = create_campaign(&store, "failover", "news", HTML).await;
        let dispatcher = dispatcher_with(&store, &relays, &WorkerOptions::default()).await;
        schedule_campaign(&store, &dispatcher.queue, campaign)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher);
        wait_for_status(
            &store,
            campaign,
            mailcast::domain::CampaignStatus::Done,
            Duration::from_secs(30),
        )
        .await;
        worker.shutdown().await.unwrap();
        let sent = store
            .deliveries_in(campaign, &[DeliveryStatus::Sent])
            .await
            .unwrap();
        assert_eq!(sent.len(), 3, "{engine}");
        assert!(
            sent.iter().all(|d| d.attempts == 1),
            "{engine}: nothing deferred: {sent:?}"
        );
        assert_eq!(server.recipients().len(), 3, "{engine}");
        server.stop();
    })
    .await;
}

const SENDER_DOMAIN_UNKNOWN: &str =
    "5.1.8 <news@shop.example.com>: Sender address rejected: Domain not found";

/// Waits until the campaign's ledger satisfies `done`.
async fn eventually_counts(
    store: &Store,
    campaign: i64,
    done: impl Fn(&mailcast::store::LedgerCounts) -> bool,
) -> mailcast::store::LedgerCounts {
    support::eventually("the ledger's counts", Duration::from_secs(30), async || {
        let counts = store.ledger_counts(campaign).await.unwrap();
        if done(&counts) {
            Ok(counts)
        } else {
            Err(format!("{counts:?}"))
        }
    })
    .await
}

/// Runs the campaign against `server` until it pauses; returns the pause reason once
/// every delivery is back to pending.
async fn run_until_paused(store: &Store, campaign: i64, server: &ScriptedServer) -> String {
    use mailcast::domain::CampaignStatus;
    let options = WorkerOptions::default();
    let worker = support::campaign::start(store, campaign, &server.url(), &options).await;
    support::campaign::wait_for_status(
        store,
        campaign,
        CampaignStatus::Paused,
        Duration::from_secs(30),
    )
    .await;
    eventually_counts(store, campaign, |c| c.pending == c.total()).await;
    worker.shutdown().await.unwrap();
    store
        .campaign(campaign)
        .await
        .unwrap()
        .pause_reason
        .unwrap_or_default()
}

async fn nobody_suppressed(store: &Store, engine: &str) {
    for address in ["ann@example.com", "ben@example.com", "cat@example.com"] {
        let address = EmailAddress::parse(address).unwrap();
        assert!(
            !store.is_suppressed(&address).await.unwrap(),
            "{engine}: {address} suppressed"
        );
    }
    assert_eq!(store.suppressions(100, 0).await.unwrap(), [], "{engine}");
}

#[tokio::test]
async fn a_sender_rejection_pauses_the_campaign_with_the_reason_suppresses_nobody_and_resume_sends_everyone()
 {
    use mailcast::dispatch::{resume_campaign, spawn_worker};
    use support::scripted_smtp::{MailReply, answer_mail};

    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let refusing = ScriptedServer::start_with_mail(
            answer_mail(MailReply::Refuse(553, SENDER_DOMAIN_UNKNOWN)),
            accept_all(),
            always_accept_dot(),
        )
        .await;
        let campaign = create_campaign(&store, "refused sender", "news", HTML).await;

        let reason = run_until_paused(&store, campaign, &refusing).await;
        assert!(reason.contains("5.1.8"), "{engine}: {reason}");
        assert!(reason.contains("MAIL FROM"), "{engine}: {reason}");
        let counts = store.ledger_counts(campaign).await.unwrap();
        assert_eq!(
            (counts.pending, counts.failed),
            (3, 0),
            "{engine}: {counts:?}"
        );
        nobody_suppressed(&store, engine).await;
        assert!(refusing.received().is_empty(), "{engine}");
        refusing.stop();

        let fixed = ScriptedServer::start(accept_all(), always_accept_dot()).await;
        let dispatcher =
            support::campaign::dispatcher(&store, &fixed.url(), &WorkerOptions::default()).await;
        resume_campaign(&store, &dispatcher.queue, campaign, 2)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher);
        support::campaign::wait_for_status(
            &store,
            campaign,
            mailcast::domain::CampaignStatus::Done,
            Duration::from_secs(30),
        )
        .await;
        worker.shutdown().await.unwrap();
        assert_eq!(
            store.ledger_counts(campaign).await.unwrap().sent,
            3,
            "{engine}"
        );
        assert_eq!(
            sorted(fixed.recipients()),
            ["ann@example.com", "ben@example.com", "cat@example.com"],
            "{engine}"
        );
        let resumed = store.campaign(campaign).await.unwrap();
        assert_eq!(resumed.pause_reason, None, "{engine}: cleared on resume");
        fixed.stop();
    })
    .await;
}

#[tokio::test]
async fn a_sender_code_in_reply_to_rcpt_pauses_and_suppresses_nobody() {
    // Postfix with smtpd_delay_reject answers RCPT TO with the sender's problem.
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let rcpt =
            Arc::new(|_: &str, _: usize| Some(Response::custom(553, SENDER_DOMAIN_UNKNOWN.into())));
        let server = ScriptedServer::start(rcpt, always_accept_dot()).await;
        let campaign = create_campaign(&store, "delayed reject", "news", HTML).await;
        let reason = run_until_paused(&store, campaign, &server).await;
        assert!(reason.contains("5.1.8"), "{engine}: {reason}");
        assert!(reason.contains("RCPT TO"), "{engine}: {reason}");
        nobody_suppressed(&store, engine).await;
        server.stop();
    })
    .await;
}

#[tokio::test]
async fn a_bad_mailbox_at_rcpt_suppresses_only_that_address_naming_the_campaign_and_reply() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let rcpt = refuse(
            "cat@example.com",
            550,
            "5.1.1 <cat@example.com>: no such user here",
        );
        let server = ScriptedServer::start(rcpt, always_accept_dot()).await;
        let campaign = create_campaign(&store, "first", "news", HTML).await;
        let counts = run_to_done(&store, campaign, &server.url(), &WorkerOptions::default()).await;
        assert_eq!((counts.sent, counts.failed), (2, 1), "{engine}: {counts:?}");

        let all = store.suppressions(100, 0).await.unwrap();
        assert_eq!(all.len(), 1, "{engine}: {all:?}");
        let cat = EmailAddress::parse("cat@example.com").unwrap();
        let suppression = store.suppression(&cat).await.unwrap().unwrap();
        assert_eq!(suppression.campaign.as_deref(), Some("first"), "{engine}");
        assert_eq!(suppression.campaign_id, Some(campaign), "{engine}");
        assert!(suppression.delivery_id.is_some(), "{engine}");
        let reply = suppression.smtp_reply.clone().unwrap_or_default();
        assert!(
            reply.contains("5.1.1") && reply.contains("no such user here"),
            "{engine}: {reply}"
        );
        assert!(
            suppression.reason.starts_with("bounce"),
            "{engine}: {suppression:?}"
        );
        server.stop();
    })
    .await;
}

#[tokio::test]
async fn a_removed_suppression_lets_the_address_be_mailed_again() {
    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let cat = EmailAddress::parse("cat@example.com").unwrap();
        store.suppress(&cat, "bounce: test").await.unwrap();
        let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
        let before = create_campaign(&store, "before", "news", HTML).await;
        let counts = run_to_done(&store, before, &server.url(), &WorkerOptions::default()).await;
        assert_eq!(counts.total(), 2, "{engine}: cat is suppressed");

        let removed = store.remove_suppression(&cat).await.unwrap();
        assert_eq!(
            removed.map(|s| s.reason).as_deref(),
            Some("bounce: test"),
            "{engine}"
        );
        assert_eq!(
            store.remove_suppression(&cat).await.unwrap(),
            None,
            "{engine}"
        );
        let after = create_campaign(&store, "after", "news", HTML).await;
        let counts = run_to_done(&store, after, &server.url(), &WorkerOptions::default()).await;
        assert_eq!(counts.sent, 3, "{engine}: {counts:?}");
        let to_cat = server
            .recipients()
            .iter()
            .filter(|t| *t == "cat@example.com")
            .count();
        assert_eq!(to_cat, 1, "{engine}");
        server.stop();
    })
    .await;
}

#[tokio::test]
async fn an_endless_reply_line_is_cut_off_and_the_delivery_deferred() {
    use support::scripted_smtp::{MailReply, answer_mail};

    for_each_engine(|store, engine| async move {
        three_readers(&store).await;
        let endless = ScriptedServer::start_with_mail(
            answer_mail(MailReply::Endless),
            accept_all(),
            always_accept_dot(),
        )
        .await;
        let campaign = create_campaign(&store, "endless", "news", HTML).await;
        let options = WorkerOptions {
            // Without a bound the client reads until this runs out.
            send_timeout: Duration::from_secs(5),
            retry_first: Duration::from_secs(600),
            ..WorkerOptions::default()
        };
        let worker = support::campaign::start(&store, campaign, &endless.url(), &options).await;
        let counts = eventually_counts(&store, campaign, |c| c.deferred + c.unknown == 3).await;
        worker.shutdown().await.unwrap();
        assert_eq!(
            counts.deferred, 3,
            "{engine}: nothing was handed over: {counts:?}"
        );
        let deferred = store
            .deliveries_in(campaign, &[DeliveryStatus::Deferred])
            .await
            .unwrap();
        for delivery in &deferred {
            let error = delivery.last_error.as_deref().unwrap_or_default();
            assert!(error.contains("endless reply"), "{engine}: {error}");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while endless.endless_written().len() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "{engine}: the client never hung up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // What went out before the hang-up: what the client read (at most 256 KiB)
        // plus what the two kernels' socket buffers held.
        for written in endless.endless_written() {
            assert!(
                written < 32 << 20,
                "{engine}: {written} bytes of one reply line"
            );
        }
        endless.stop();
    })
    .await;
}
