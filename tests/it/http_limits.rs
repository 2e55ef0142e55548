//! What one client may cost the server, over real TCP against the real server: bodies
//! announced too large are refused before they are read, bodies and headers that stop
//! arriving and idle connections are cut off at their (short, test-configured)
//! timeouts, connections beyond the cap are refused, and the link keys a database
//! generates for itself are shared by every process on it and refuse forged links.

use crate::support;
use crate::support::http;

use std::time::Duration;

use http::{TestServer, api_key, settings};
use mailcast::http::{HttpLimits, HttpServer, ServeError, bind};
use mailcast::links::{KeyRing, Token};
use mailcast::store::Store;
use support::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough never to fire during a test; what a test measures is set short.
const NEVER: Duration = Duration::from_secs(600);
/// A test's short timeout.
const SHORT: Duration = Duration::from_millis(300);
/// How long a test waits for what must happen well before it.
const PATIENCE: Duration = Duration::from_secs(20);

fn limits(change: impl FnOnce(&mut HttpLimits)) -> HttpLimits {
    let mut limits = HttpLimits {
        header_timeout: NEVER,
        body_timeout: NEVER,
        idle_timeout: NEVER,
        ..HttpLimits::default()
    };
    change(&mut limits);
    limits
}

async fn server(store: &Store, limits: HttpLimits) -> TestServer {
    let mut settings = settings();
    settings.limits = limits;
    TestServer::start_with(store, settings).await
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// What the server sends until it closes the connection (a reset counts as closed).
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {PATIENCE:?}; it sent: {}",
        String::from_utf8_lossy(&received)
    );
    String::from_utf8_lossy(&received).into_owned()
}

/// The status line's code, if the server answered at all.
fn status(response: &str) -> Option<u16> {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
}

#[tokio::test]
async fn a_body_announced_over_the_limit_gets_413_without_being_read() {
    let db = TestDb::sqlite().await;
    let server = server(&db.store, limits(|l| l.api_body_limit = 64 * 1024)).await;
    let key = api_key(&db.store, "crm").await;
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /api/recipients/batch HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: 100000000000\r\n\r\n[{{\"email\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Nothing more is sent: only an answer that does not wait for the 100 GB ends this.
    let response = until_closed(&mut stream).await;
    assert_eq!(status(&response), Some(413), "{response}");
    assert!(response.contains("65536"), "the limit is named: {response}");
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413() {
    let db = TestDb::sqlite().await;
    let server = server(&db.store, limits(|l| l.api_body_limit = 1024)).await;
    let key = api_key(&db.store, "crm").await;
    let body = format!(
        "[{}]",
        vec!["{\"email\": \"a@example.com\"}"; 200].join(",")
    );
    let mut stream = connect(&server).await;
    let request = format!(
        "POST /api/recipients/batch HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
         {:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = until_closed(&mut stream).await;
    assert_eq!(status(&response), Some(413), "{response}");
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_link_route_takes_small_bodies_only() {
    let db = TestDb::sqlite().await;
    let server = server(&db.store, limits(|l| l.link_body_limit = 1024)).await;
    let token = Token::unsubscribe(1, 1);
    let url = server.token_url(&token, &http::server_keys());
    let response = server
        .client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_cut_off_at_the_body_timeout() {
    let db = TestDb::sqlite().await;
    let server = server(&db.store, limits(|l| l.body_timeout = SHORT)).await;
    let key = api_key(&db.store, "crm").await;
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /api/recipients/batch HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n[{{\"email\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = until_closed(&mut stream).await;
    assert_eq!(status(&response), Some(408), "{response}");
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_header_that_never_ends_is_closed_at_the_header_timeout() {
    let db = TestDb::sqlite().await;
    let server = server(&db.store, limits(|l| l.header_timeout = SHORT)).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-slow: ")
        .await
        .unwrap();
    let response = until_closed(&mut stream).await;
    assert_eq!(
        status(&response),
        None,
        "no request was complete: {response}"
    );
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_at_the_idle_timeout() {
    let db = TestDb::sqlite().await;
    let server = server(&db.store, limits(|l| l.idle_timeout = SHORT)).await;
    // One that never sends anything, and one kept alive after a request.
    let mut silent = connect(&server).await;
    let mut kept = connect(&server).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(until_closed(&mut silent).await, "");
    let response = until_closed(&mut kept).await;
    assert_eq!(
        status(&response),
        Some(200),
        "answered, then closed: {response}"
    );
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_and_a_freed_place_is_reused() {
    let db = TestDb::sqlite().await;
    let server = server(&db.store, limits(|l| l.max_connections = 2)).await;
    let mut first = connect(&server).await;
    let _second = connect(&server).await;
    let mut third = connect(&server).await;
    let refused = until_closed(&mut third).await;
    assert!(
        refused.is_empty() || status(&refused) == Some(503),
        "{refused}"
    );
    // The first one still works, and once it is closed a new connection is served.
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(status(&until_closed(&mut first).await), Some(200));
    drop(first);
    let served = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut next = connect(&server).await;
            next.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            if status(&until_closed(&mut next).await) == Some(200) {
                break;
            }
        }
    })
    .await;
    assert!(
        served.is_ok(),
        "the freed place was never given to a new connection"
    );
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case() {
    let db = TestDb::sqlite().await;
    let server = server(&db.store, HttpLimits::default()).await;
    let key = api_key(&db.store, "crm").await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = server
            .client
            .get(server.url("/api/segments/nosuch"))
            .header("authorization", format!("{scheme} {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{scheme}: authenticated");
    }
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_api_refuses_a_segment_cycle_as_the_cli_does() {
    support::for_each_engine(|store, engine| async move {
        let server = server(&store, HttpLimits::default()).await;
        let key = api_key(&store, "crm").await;
        let put = |name: &'static str, expression: &'static str| {
            server
                .client
                .put(server.url(&format!("/api/segments/{name}")))
                .bearer_auth(&key)
                .json(&serde_json::json!({ "expression": expression }))
                .send()
        };
        assert_eq!(put("a", r#"country == "US""#).await.unwrap().status(), 200);
        assert_eq!(put("b", r#"segment("a")"#).await.unwrap().status(), 200);
        let cycle = put("a", r#"segment("b")"#).await.unwrap();
        assert_eq!(cycle.status().as_u16(), 422, "{engine}");
        let body = cycle.text().await.unwrap();
        assert!(body.contains("expression"), "{engine}: {body}");
        let stored = store.segment_by_name("a").await.unwrap().unwrap();
        assert_eq!(
            stored.expression, r#"country == "US""#,
            "{engine}: unchanged"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn processes_sharing_a_database_share_one_generated_ring() {
    let engines: Vec<TestDb> = [Some(TestDb::sqlite().await), TestDb::postgres().await]
        .into_iter()
        .flatten()
        .collect();
    for db in engines {
        // Two connections started at once, as two processes on their first start.
        let other = Store::open(&db.url).await.unwrap();
        let (mine, theirs) = tokio::join!(KeyRing::stored(&db.store), KeyRing::stored(&other));
        let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
        assert!(!mine.contains_development_key());
        let token = Token::click(7, 11, 13);
        let signed_here = token.sign(&mine);
        let signed_there = token.sign(&theirs);
        assert_eq!(Token::verify(&theirs, &signed_here).unwrap(), token);
        assert_eq!(Token::verify(&mine, &signed_there).unwrap(), token);
        let again = KeyRing::stored(&db.store).await.unwrap();
        assert_eq!(Token::verify(&again, &signed_there).unwrap(), token);
        other.close().await;
        db.drop_database().await;
    }
}

#[tokio::test]
async fn a_link_signed_with_the_development_key_does_not_verify_against_a_generated_ring() {
    let db = TestDb::sqlite().await;
    let generated = KeyRing::stored(&db.store).await.unwrap();
    let mut settings = settings();
    settings.keyring = generated.clone();
    let server = TestServer::start_with(&db.store, settings).await;
    let token = Token::unsubscribe(1, 1);
    let forged = server.token_url(&token, &KeyRing::development());
    assert_eq!(
        server.client.get(forged).send().await.unwrap().status(),
        404
    );
    assert!(Token::verify(&generated, &token.sign(&KeyRing::development())).is_err());
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_development_key_is_refused_on_a_public_address() {
    let db = TestDb::sqlite().await;
    let mut settings = settings();
    settings.keyring = KeyRing::development();
    let listener = bind("0.0.0.0:0").await.unwrap();
    let started = HttpServer::start(listener, db.store.clone(), settings.clone())
        .await
        .unwrap();
    let error = started.shutdown().await.unwrap_err();
    assert!(
        matches!(error, ServeError::DevelopmentKey { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("development link key"),
        "{error}"
    );
    // On loopback it is a developer's own machine: served.
    let loopback = TestServer::start_with(&db.store, settings).await;
    assert_eq!(loopback.get("/healthz").await.status(), 200);
    loopback.stop().await;
    db.drop_database().await;
}
