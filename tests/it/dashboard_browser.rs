//! The dashboard in a real Chromium (Debian's, driven over WebDriver): a marketer signs
//! in, writes a segment with a mistake and sees the caret, fixes it and sees the count,
//! previews a recipient, creates and schedules a campaign that a real SMTP server
//! receives, watches it finish, opens its results, pauses and resumes another, and
//! exports a recipient.

use std::time::Duration;

use crate::support;
use crate::support::browser::Browser;
use crate::support::dashboard::{PASSWORD, user};
use crate::support::http::TestServer;
use crate::support::smtp::SmtpServer;

use mailcast::accounts::Role;
use mailcast::dispatch::spawn_worker;
use mailcast::store::{NewTemplate, Store};
use support::campaign::{WorkerOptions, dispatcher};
use support::recipient;

const WAIT: Duration = Duration::from_secs(30);

async fn shop(store: &Store) {
    let mut people = Vec::new();
    for (n, country) in ["DE", "DE", "DE", "FR", "US"].iter().enumerate() {
        let mut one = recipient(
            &format!("person{n}@example.com"),
            &format!("Person{n}"),
            &["news"],
        );
        one.country = Some(country.to_string());
        people.push(one);
    }
    let mut hostile = recipient("mallory@example.com", "<b>Mallory</b>", &["news"]);
    hostile.country = Some("FR".into());
    people.push(hostile);
    store.upsert_recipients(&people).await.unwrap();
    store
        .upsert_template(&NewTemplate {
            name: "spring".into(),
            subject: "Spring picks for {{ recipient.first_name }}".into(),
            preheader: None,
            html: support::campaign::HTML.into(),
            text: None,
        })
        .await
        .unwrap();
    user(store, "marketer@shop.example.com", Role::Editor).await;
}

async fn sign_in(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/app/campaigns")).await;
    assert!(
        browser.url().await.contains("/app/login?next="),
        "signed out → sign-in page"
    );
    browser
        .find("#email")
        .await
        .type_text("marketer@shop.example.com")
        .await;
    browser.find("#password").await.type_text(PASSWORD).await;
    browser
        .find("form.stack button[type=submit]")
        .await
        .click()
        .await;
    browser.wait_for_text("h1", "Campaigns", WAIT).await;
}

async fn write_a_segment(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/app/segments/new")).await;
    browser.find("#name").await.type_text("germans").await;
    let expression = browser.find("#expression").await;
    expression.type_text("country in [\"DE\",").await;
    let error = browser.wait_for_text("#segment-result", "^", WAIT).await;
    assert!(
        error.contains("country in"),
        "the caret under the expression: {error}"
    );
    expression.clear().await;
    expression.type_text("country == \"DE\"").await;
    browser.wait_for_text("#segment-count", "3", WAIT).await;
    browser.find("#save-segment").await.click().await;
    browser.wait_for_text("main", "germans", WAIT).await;
}

async fn preview_a_recipient(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/app/templates/spring")).await;
    let field = browser.find("#recipient").await;
    field.clear().await;
    field.type_text("person3@example.com").await;
    browser.find("#preview-button").await.click().await;
    browser
        .wait_for_text("#subject", "Spring picks for Person3", WAIT)
        .await;
    let text = browser.find("#text-part").await.text().await;
    assert!(text.contains("person3@example.com"), "{text}");
    assert!(browser.try_find("iframe.desktop").await.is_some());
    assert!(browser.try_find("iframe.phone").await.is_some());
}

/// Creates a campaign through the form; returns its page's URL.
async fn create_campaign(browser: &Browser, base: &str, name: &str, send_at: &str) -> String {
    browser.goto(&format!("{base}/app/campaigns/new")).await;
    browser.find("#name").await.type_text(name).await;
    browser
        .find("#from_email")
        .await
        .type_text("news@shop.example.com")
        .await;
    // Chosen by keyboard, as a keyboard user would.
    browser.find("#segment").await.click().await;
    browser
        .find("#segment option[value=germans]")
        .await
        .click()
        .await;
    if !send_at.is_empty() {
        let set = "arguments[0].value = arguments[1];";
        let field = browser.find("#send_at").await;
        browser
            .execute(set, vec![field.as_arg(), send_at.into()])
            .await;
    }
    browser
        .find("form.stack button[type=submit]")
        .await
        .click()
        .await;
    browser.wait_for_text("h1", name, WAIT).await;
    browser.url().await
}

#[tokio::test]
async fn a_marketer_works_through_the_dashboard_in_chromium() {
    let Some(browser) = Browser::start(1280, 900).await else {
        eprintln!("skipped: no chromium/chromedriver (set MAILCAST_TEST_CI=1 to fail instead)");
        return;
    };
    let db = support::TestDb::sqlite().await;
    let store = db.store.clone();
    shop(&store).await;
    let smtp = SmtpServer::start();
    let worker = spawn_worker(dispatcher(&store, &smtp.url(), &WorkerOptions::default()).await);
    let server = TestServer::start(&store).await;
    let base = server.base.clone();

    sign_in(&browser, &base).await;
    write_a_segment(&browser, &base).await;
    preview_a_recipient(&browser, &base).await;

    // Schedule a campaign and watch it finish: the page follows the worker by itself.
    let spring = create_campaign(&browser, &base, "Spring sale", "").await;
    browser.find("#schedule").await.click().await;
    browser
        .wait_for_text("#campaign-status", "done", WAIT)
        .await;
    let received: Vec<String> = smtp.received().iter().flat_map(|m| m.to.clone()).collect();
    assert_eq!(received.len(), 3, "the three Germans: {received:?}");
    let delivered = browser.wait_for_text("#headline", "Delivered", WAIT).await;
    assert!(delivered.contains('3'), "{delivered}");
    assert!(
        browser
            .find("svg.chart")
            .await
            .attribute("role")
            .await
            .is_some()
    );

    // The list shows it done with its progress.
    browser.goto(&format!("{base}/app/campaigns")).await;
    let list = browser.find("#campaign-list").await.text().await;
    assert!(
        list.contains("Spring sale") && list.contains("done"),
        "{list}"
    );

    // Another campaign, due tomorrow: pause it, resume it.
    let later = create_campaign(&browser, &base, "Summer preview", "2099-06-01T09:00").await;
    browser
        .wait_for_text("main", "Sends at 2099-06-01", WAIT)
        .await;
    browser.find("#schedule").await.click().await;
    browser
        .wait_for_text("#campaign-status", "scheduled", WAIT)
        .await;
    browser.find("#pause").await.click().await;
    browser
        .wait_for_text("#campaign-status", "paused", WAIT)
        .await;
    browser.find("#resume").await.click().await;
    browser
        .wait_for_text("#campaign-status", "scheduled", WAIT)
        .await;
    assert_ne!(spring, later);

    // Find a recipient and export them: the download is the API's export.
    browser.goto(&format!("{base}/app/recipients")).await;
    browser.find("#q").await.type_text("mallory").await;
    browser.press_keys(support::browser::ENTER).await;
    browser
        .wait_for_text("#recipient-results", "mallory@example.com", WAIT)
        .await;
    let cell = browser.find("#recipient-results").await.text().await;
    assert!(
        cell.contains("<b>Mallory</b>"),
        "hostile name shown as text: {cell}"
    );
    browser.find("#recipient-results a").await.click().await;
    browser
        .wait_for_text("#recipient-email", "mallory@example.com", WAIT)
        .await;
    let fetch = "const x = new XMLHttpRequest(); x.open('GET', arguments[0].href, false); \
                 x.send(); return [x.status, x.getResponseHeader('content-disposition'), x.responseText];";
    let link = browser.find("a#export").await;
    let exported = browser.execute(fetch, vec![link.as_arg()]).await;
    assert_eq!(exported[0], 200, "{exported}");
    assert!(
        exported[1]
            .as_str()
            .unwrap_or_default()
            .contains("attachment"),
        "{exported}"
    );
    let export: serde_json::Value = serde_json::from_str(exported[2].as_str().unwrap()).unwrap();
    assert_eq!(
        export["recipient"]["email"], "mallory@example.com",
        "{export}"
    );

    browser.quit().await;
    server.stop().await;
    worker.shutdown().await.unwrap();
    db.drop_database().await;
}
