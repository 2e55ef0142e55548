//! The dashboard's guard, over real HTTP on both engines: every route needs a session,
//! viewers cannot change anything, forms need the session's CSRF token, sign-ins are
//! throttled, sessions expire (on a manual clock), cookies and headers carry the flags
//! a browser enforces, and hostile recipient data shows as text.

use crate::support;
use crate::support::dashboard::{Dashboard, PASSWORD, cookie_pair, user};
use crate::support::http::{TestServer, settings};

use mailcast::accounts::Role;
use mailcast::store::Store;
use mailcast::time::Clock;
use support::{for_each_engine, recipient};

/// One path of every dashboard page and action (ids and names need not exist: the
/// guard answers before the handler looks).
const GET_ROUTES: &[&str] = &[
    "/app",
    "/app/campaigns",
    "/app/campaigns/new",
    "/app/campaigns/1",
    "/app/campaigns/1/progress",
    "/app/segments",
    "/app/segments/new",
    "/app/segments/vip",
    "/app/templates",
    "/app/templates/welcome",
    "/app/templates/welcome/preview.html",
    "/app/recipients",
    "/app/recipients/ada@example.com",
    "/app/recipients/ada@example.com/export",
    "/app/recipients/ada@example.com/erase",
    "/app/automations",
    "/app/automations/cart",
    "/app/settings",
];

const POST_ROUTES: &[&str] = &[
    "/app/logout",
    "/app/campaigns",
    "/app/campaigns/1/schedule",
    "/app/campaigns/1/pause",
    "/app/campaigns/1/resume",
    "/app/campaigns/1/cancel",
    "/app/segments",
    "/app/segments/check",
    "/app/templates/welcome/test",
    "/app/recipients/ada@example.com/erase",
    "/app/automations/cart/pause",
    "/app/automations/cart/resume",
    "/app/settings/api-keys",
    "/app/settings/api-keys/crm/revoke",
];

/// Changes a viewer may not make (logout is allowed to everyone).
fn changes() -> impl Iterator<Item = &'static str> {
    POST_ROUTES.iter().copied().filter(|p| *p != "/app/logout")
}

async fn people(store: &Store) {
    user(store, "admin@shop.example.com", Role::Admin).await;
    user(store, "editor@shop.example.com", Role::Editor).await;
    user(store, "viewer@shop.example.com", Role::Viewer).await;
}

/// A server whose sessions and throttle take their time from a clock the test moves.
async fn on_manual_clock(store: &Store) -> (TestServer, Clock) {
    let mut settings = settings();
    let clock = Clock::manual(1_800_000_000);
    settings.clock = clock.clone();
    (TestServer::start_with(store, settings).await, clock)
}

#[tokio::test]
async fn every_route_without_a_session_redirects_to_sign_in() {
    for_each_engine(|store, engine| async move {
        let server = TestServer::start(&store).await;
        let anonymous = Dashboard::new(&server.base);
        for path in GET_ROUTES {
            let response = anonymous.get_response(path).await;
            let location = response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            assert_eq!(response.status(), 303, "{engine}: GET {path}");
            let location = location.unwrap_or_default();
            assert!(
                location.starts_with("/app/login?next="),
                "{engine}: GET {path} → {location}"
            );
        }
        for path in POST_ROUTES {
            let (status, _) = anonymous.post_raw(path, &[("csrf", "x")]).await;
            assert_eq!(status, 303, "{engine}: POST {path}");
        }
        // A forged or stale session cookie is no session.
        let mut forged = Dashboard::new(&server.base);
        forged.session = Some("mailcast_session=not-a-session".into());
        assert_eq!(
            forged.get_response("/app/campaigns").await.status(),
            303,
            "{engine}"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_viewer_looks_but_cannot_change_anything() {
    for_each_engine(|store, engine| async move {
        people(&store).await;
        let server = TestServer::start(&store).await;
        let viewer = Dashboard::sign_in(&server.base, "viewer@shop.example.com").await;
        let (status, html) = viewer.get("/app/campaigns").await;
        assert_eq!(status, 200, "{engine}");
        assert!(
            !html.contains("New campaign"),
            "{engine}: a viewer is offered no changes"
        );
        for path in changes() {
            let (status, body) = viewer.post(path, &[]).await;
            assert_eq!(status, 403, "{engine}: viewer POST {path}: {body}");
        }
        // Signing out is not a change to the data.
        let (status, _) = viewer.post("/app/logout", &[]).await;
        assert_eq!(status, 303, "{engine}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused() {
    for_each_engine(|store, engine| async move {
        people(&store).await;
        let server = TestServer::start(&store).await;
        let editor = Dashboard::sign_in(&server.base, "editor@shop.example.com").await;
        let other = Dashboard::sign_in(&server.base, "admin@shop.example.com").await;
        assert_ne!(editor.csrf, other.csrf, "{engine}: a token per session");
        for path in changes() {
            let (missing, _) = editor.post_raw(path, &[("name", "x")]).await;
            let (wrong, _) = editor.post_raw(path, &[("csrf", "forged")]).await;
            let (someone_elses, _) = editor.post_raw(path, &[("csrf", &other.csrf)]).await;
            assert_eq!(
                (missing, wrong, someone_elses),
                (403, 403, 403),
                "{engine}: {path}"
            );
        }
        // With the token the guard lets the request through to its handler.
        let (status, body) = editor
            .post("/app/campaigns", &[("name", ""), ("from_email", "bad")])
            .await;
        assert_eq!(status, 422, "{engine}: {body}");
        assert!(body.contains("must not be empty"), "{engine}: {body}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_secure_behind_https() {
    for_each_engine(|store, engine| async move {
        people(&store).await;
        let server = TestServer::start(&store).await;
        let outcome = Dashboard::new(&server.base)
            .try_sign_in("editor@shop.example.com", PASSWORD)
            .await;
        let session = outcome
            .set_cookies
            .iter()
            .find(|c| c.starts_with("mailcast_session="))
            .cloned()
            .unwrap();
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/app"] {
            assert!(session.contains(flag), "{engine}: {session}");
        }
        assert!(
            !session.contains("Secure"),
            "{engine}: plain HTTP on loopback: {session}"
        );
        server.stop().await;

        let mut secure = settings();
        secure.base_url = "https://mail.shop.example.com".into();
        let server = TestServer::start_with(&store, secure).await;
        let outcome = Dashboard::new(&server.base)
            .try_sign_in("editor@shop.example.com", PASSWORD)
            .await;
        let session = outcome.set_cookies.join("\n");
        assert!(session.contains("; Secure"), "{engine}: {session}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    for_each_engine(|store, engine| async move {
        people(&store).await;
        let server = TestServer::start(&store).await;
        let editor = Dashboard::sign_in(&server.base, "editor@shop.example.com").await;
        for path in ["/app/login", "/app/campaigns"] {
            let response = editor.get_response(path).await;
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            let csp = header("content-security-policy");
            assert!(csp.contains("script-src 'self'"), "{engine}: {path}: {csp}");
            assert!(!csp.contains("unsafe-inline"), "{engine}: {path}: {csp}");
            assert!(
                csp.contains("frame-ancestors 'none'"),
                "{engine}: {path}: {csp}"
            );
            assert_eq!(
                header("x-content-type-options"),
                "nosniff",
                "{engine}: {path}"
            );
            assert_eq!(header("cache-control"), "no-store", "{engine}: {path}");
        }
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account_and_per_address() {
    for_each_engine(|store, engine| async move {
        people(&store).await;
        let (server, clock) = on_manual_clock(&store).await;
        let browser = Dashboard::new(&server.base);
        for attempt in 1..=5 {
            let outcome = browser
                .try_sign_in("editor@shop.example.com", "wrong password!")
                .await;
            assert_eq!(outcome.status, 401, "{engine}: attempt {attempt}");
        }
        // The sixth, right or wrong, is refused without looking at the password.
        let outcome = browser
            .try_sign_in("editor@shop.example.com", PASSWORD)
            .await;
        assert_eq!(outcome.status, 429, "{engine}");
        assert!(
            cookie_pair(&outcome.set_cookies, "mailcast_session").is_none(),
            "{engine}"
        );
        // Another account from the same address is not locked by these five.
        let admin = browser
            .try_sign_in("admin@shop.example.com", PASSWORD)
            .await;
        assert_eq!(admin.status, 303, "{engine}");
        // After the window the account may try again.
        clock.advance(15 * 60 + 1);
        let later = browser
            .try_sign_in("editor@shop.example.com", PASSWORD)
            .await;
        assert_eq!(later.status, 303, "{engine}");

        // Twenty failures from one address, spread over accounts, lock the address.
        for n in 0..20 {
            let email = format!("nobody{n}@shop.example.com");
            let outcome = browser.try_sign_in(&email, "wrong password!").await;
            assert_eq!(outcome.status, 401, "{engine}: {email}");
        }
        let viewer = browser
            .try_sign_in("viewer@shop.example.com", PASSWORD)
            .await;
        assert_eq!(viewer.status, 429, "{engine}: the address is throttled");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn sessions_end_when_idle_at_their_absolute_limit_and_at_sign_out() {
    for_each_engine(|store, engine| async move {
        people(&store).await;
        let (server, clock) = on_manual_clock(&store).await;

        let idle = Dashboard::sign_in(&server.base, "editor@shop.example.com").await;
        clock.advance(29 * 60);
        assert_eq!(
            idle.get("/app/campaigns").await.0,
            200,
            "{engine}: 29 minutes idle"
        );
        clock.advance(30 * 60);
        assert_eq!(
            idle.get("/app/campaigns").await.0,
            303,
            "{engine}: 30 minutes idle"
        );

        // Busy, but 12 hours after signing in.
        let busy = Dashboard::sign_in(&server.base, "editor@shop.example.com").await;
        for _ in 0..24 {
            clock.advance(29 * 60);
            assert_eq!(busy.get("/app/campaigns").await.0, 200, "{engine}");
        }
        clock.advance(29 * 60);
        assert_eq!(
            busy.get("/app/campaigns").await.0,
            303,
            "{engine}: past 12 hours"
        );

        let leaving = Dashboard::sign_in(&server.base, "editor@shop.example.com").await;
        assert_eq!(leaving.post("/app/logout", &[]).await.0, 303, "{engine}");
        assert_eq!(
            leaving.get("/app/campaigns").await.0,
            303,
            "{engine}: signed out"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn hostile_recipient_data_shows_as_text() {
    for_each_engine(|store, engine| async move {
        people(&store).await;
        let mut hostile = recipient(
            "mallory@example.com",
            "<script>alert(1)</script>",
            &["news"],
        );
        hostile.last_name = Some("<img src=x onerror=alert(2)>".into());
        store.upsert_recipients(&[hostile]).await.unwrap();
        let server = TestServer::start(&store).await;
        let editor = Dashboard::sign_in(&server.base, "editor@shop.example.com").await;
        for path in [
            "/app/recipients/mallory@example.com",
            "/app/recipients?q=mallory",
        ] {
            let (status, html) = editor.get(path).await;
            assert_eq!(status, 200, "{engine}: {path}");
            assert!(!html.contains("<script>alert(1)"), "{engine}: {path}");
            assert!(!html.contains("<img src=x"), "{engine}: {path}");
            assert!(
                html.contains("&lt;script&gt;alert(1)"),
                "{engine}: {path}: {html}"
            );
        }
        server.stop().await;
    })
    .await;
}

/// An automation whose stored definition cannot be read is named in the list; the
/// others are still shown.
#[tokio::test]
async fn one_unreadable_automation_does_not_hide_the_others() {
    for_each_engine(|store, engine| async move {
        people(&store).await;
        let html = crate::support::automation::CART_HTML;
        crate::support::automation::store_template(&store, "cart-reminder", html).await;
        crate::support::automation::load(
            &store,
            r#"
name = "cart"
from = { email = "shop@shop.example.com", name = "Shop" }
trigger = { event = "cart_add" }
description = "Reminds people of their cart"

[[step]]
send = { template = "cart-reminder" }
"#,
        )
        .await;
        store
            .save_automation("broken", "{not json", "broken source")
            .await
            .unwrap();
        let server = TestServer::start(&store).await;
        let viewer = Dashboard::sign_in(&server.base, "viewer@shop.example.com").await;
        let (status, page) = viewer.get("/app/automations").await;
        assert_eq!(status, 200, "{engine}: {page}");
        for shown in [
            "Reminds people of their cart",
            "broken",
            "its stored definition cannot be read",
        ] {
            assert!(page.contains(shown), "{engine}: {shown:?} not in\n{page}");
        }
        server.stop().await;
    })
    .await;
}
