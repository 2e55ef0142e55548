//! SMTP sessions are reused across messages, and never after they went wrong.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use mailcast::config::{SmtpUrl, TransportConfig};
use mailcast::dispatch::{HandOver, NothingToMark, Outgoing, SendResult, Transport};
use support::scripted_smtp::{
    AfterDot, DotPolicy, ScriptedServer, accept_all, always_accept_dot, refuse,
};

async fn transport(server: &ScriptedServer, concurrency: usize) -> Transport {
    let url = SmtpUrl::parse(&server.url()).expect("test server URL");
    Transport::new(&TransportConfig::Smtp(url), concurrency)
        .await
        .expect("SMTP transport")
}

fn message(to: &str) -> Vec<u8> {
    format!("From: news@shop.example.com\r\nTo: {to}\r\nSubject: Hello\r\n\r\nHello.\r\n")
        .into_bytes()
}

async fn send(transport: &Transport, to: &str) -> SendResult {
    let raw = message(to);
    transport
        .send(&Outgoing {
            from: "news@shop.example.com",
            to,
            raw: &raw,
            file_stem: "unused",
            relay: None,
            hand_over: &NothingToMark,
        })
        .await
}

#[tokio::test]
async fn two_hundred_messages_over_two_connections_use_two_sessions() {
    let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
    let transport = transport(&server, 2).await;
    let results: Vec<SendResult> = futures::stream::iter(0..200)
        .map(|i| {
            let transport = &transport;
            async move { send(transport, &format!("reader{i}@example.com")).await }
        })
        .buffer_unordered(50)
        .collect()
        .await;

    assert!(
        results.iter().all(|r| *r == SendResult::Accepted),
        "{results:?}"
    );
    assert_eq!(server.received().len(), 200);
    assert_eq!(server.sessions(), 2, "one session per connection slot");
    assert_eq!(
        server.pipelined(),
        200,
        "MAIL, RCPT and DATA went out together for every message"
    );
    server.stop();
}

#[tokio::test]
async fn a_session_that_got_a_5xx_is_not_reused() {
    let rcpt = refuse("gone@example.com", 550, "5.1.1 no such user");
    let server = ScriptedServer::start(rcpt, always_accept_dot()).await;
    let transport = transport(&server, 1).await;

    assert_eq!(
        send(&transport, "ann@example.com").await,
        SendResult::Accepted
    );
    let rejected = send(&transport, "gone@example.com").await;
    assert!(
        matches!(
            rejected,
            SendResult::Rejected {
                bad_mailbox: true,
                ..
            }
        ),
        "{rejected:?}"
    );
    assert_eq!(
        send(&transport, "ben@example.com").await,
        SendResult::Accepted
    );
    assert_eq!(
        send(&transport, "cat@example.com").await,
        SendResult::Accepted
    );

    assert_eq!(
        server.sessions(),
        2,
        "a new session after the rejection, then that one reused"
    );
    assert_eq!(
        server.recipients(),
        ["ann@example.com", "ben@example.com", "cat@example.com"],
        "no message for the refused recipient"
    );
    server.stop();
}

#[tokio::test]
async fn a_4xx_to_a_pipelined_recipient_defers_and_sends_no_body() {
    let rcpt = refuse("busy@example.com", 451, "4.7.1 try again later");
    let server = ScriptedServer::start(rcpt, always_accept_dot()).await;
    let transport = transport(&server, 1).await;

    let deferred = send(&transport, "busy@example.com").await;
    assert!(
        matches!(&deferred, SendResult::Deferred(reason) if reason.contains("4.7.1")),
        "{deferred:?}"
    );
    assert_eq!(
        send(&transport, "ann@example.com").await,
        SendResult::Accepted
    );
    assert_eq!(server.recipients(), ["ann@example.com"]);
    assert_eq!(server.pipelined(), 2);
    assert_eq!(server.sessions(), 2, "the deferred session was dropped");
    server.stop();
}

#[tokio::test]
async fn a_session_that_timed_out_is_dropped_and_the_outcome_is_unknown() {
    let dot: DotPolicy = Arc::new(|_, number| {
        if number == 0 {
            AfterDot::Hang
        } else {
            AfterDot::Accept
        }
    });
    let server = ScriptedServer::start(accept_all(), dot).await;
    let transport = transport(&server, 1)
        .await
        .with_send_timeout(Duration::from_millis(500));

    let first = send(&transport, "ann@example.com").await;
    assert!(matches!(first, SendResult::Unknown(_)), "{first:?}");
    assert_eq!(
        send(&transport, "ben@example.com").await,
        SendResult::Accepted
    );
    assert_eq!(server.sessions(), 2, "the hung session was not reused");
    server.stop();
}

#[tokio::test]
async fn an_unreachable_relay_defers_and_the_next_one_takes_over() {
    let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("smtp://{}", closed.local_addr().unwrap());
    drop(closed);
    let relays = vec![
        ("dead".to_string(), SmtpUrl::parse(&dead).unwrap()),
        ("live".to_string(), SmtpUrl::parse(&server.url()).unwrap()),
    ];
    let transport = Transport::new(&TransportConfig::Relays(relays), 1)
        .await
        .unwrap();

    assert_eq!(
        send(&transport, "ann@example.com").await,
        SendResult::Accepted
    );
    assert_eq!(server.recipients(), ["ann@example.com"]);
    server.stop();
}

/// What `send` makes of a refusal of MAIL FROM and of a bad mailbox at RCPT TO, with
/// or without pipelining (without it, one command at a time: the reply's command is
/// known either way).
async fn refusals_name_the_command_they_answered(pipelining: bool) {
    use support::scripted_smtp::{MailReply, answer_mail};

    let sender_refused = ScriptedServer::start_with_mail(
        answer_mail(MailReply::Refuse(
            553,
            "5.1.8 Sender address rejected: Domain not found",
        )),
        accept_all(),
        always_accept_dot(),
    )
    .await;
    let mailbox_refused = ScriptedServer::start(
        refuse("cat@example.com", 550, "5.1.1 no such user"),
        always_accept_dot(),
    )
    .await;
    if !pipelining {
        sender_refused.stop_offering_pipelining();
        mailbox_refused.stop_offering_pipelining();
    }
    let result = send(&transport(&sender_refused, 1).await, "ann@example.com").await;
    assert!(
        matches!(&result, SendResult::Refused(reason) if reason.contains("5.1.8") && reason.contains("MAIL FROM")),
        "pipelining {pipelining}: {result:?}"
    );
    let result = send(&transport(&mailbox_refused, 1).await, "cat@example.com").await;
    assert!(
        matches!(&result, SendResult::Rejected { reason, bad_mailbox: true } if reason.contains("RCPT TO")),
        "pipelining {pipelining}: {result:?}"
    );
    assert_eq!(
        send(&transport(&mailbox_refused, 1).await, "ann@example.com").await,
        SendResult::Accepted,
        "pipelining {pipelining}"
    );
    assert_eq!(mailbox_refused.recipients(), ["ann@example.com"]);
    let pipelined = sender_refused.pipelined() + mailbox_refused.pipelined();
    assert_eq!(pipelined > 0, pipelining);
    sender_refused.stop();
    mailbox_refused.stop();
}

#[tokio::test]
async fn pipelined_refusals_name_the_command_they_answered() {
    refusals_name_the_command_they_answered(true).await;
}

#[tokio::test]
async fn refusals_one_command_at_a_time_name_the_command_they_answered() {
    refusals_name_the_command_they_answered(false).await;
}

/// A ledger that will not mark the delivery as handed (its lease ran out, the worker
/// is stopping): the envelope may have gone out, the body must not.
struct Refuses;

impl HandOver for Refuses {
    fn hand_over(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err("no longer held".to_string()) })
    }
}

#[tokio::test]
async fn no_body_goes_out_when_the_hand_over_is_refused() {
    for pipelining in [true, false] {
        let server = ScriptedServer::start(accept_all(), always_accept_dot()).await;
        if !pipelining {
            server.stop_offering_pipelining();
        }
        let transport = transport(&server, 1).await;
        let raw = message("ann@example.com");
        let result = transport
            .send(&Outgoing {
                from: "news@shop.example.com",
                to: "ann@example.com",
                raw: &raw,
                file_stem: "unused",
                relay: None,
                hand_over: &Refuses,
            })
            .await;
        assert_eq!(
            result,
            SendResult::NotHanded("no longer held".into()),
            "pipelining {pipelining}"
        );
        assert!(
            server.received().is_empty(),
            "pipelining {pipelining}: no message was taken"
        );
        assert_eq!(
            send(&transport, "ben@example.com").await,
            SendResult::Accepted,
            "pipelining {pipelining}: the next message goes out on a new session"
        );
        assert_eq!(server.recipients(), ["ben@example.com"]);
        // Both envelopes went out, pipelined when offered; one body.
        assert_eq!(server.pipelined(), if pipelining { 2 } else { 0 });
        server.stop();
    }
}
