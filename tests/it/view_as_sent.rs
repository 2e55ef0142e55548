//! "View in browser" shows the message that was sent: every delivery's `/v/` page is the
//! HTML part of the message it received (open pixel aside), also after the template and
//! the recipient's data changed; `preview`, `recommend show` and `campaign sent` tell the
//! same personalisation.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mailcast::dispatch::{schedule_campaign, spawn_worker};
use mailcast::domain::{CampaignKind, CampaignStatus, EmailAddress};
use mailcast::links::Token;
use mailcast::recommend::import_fixtures;
use mailcast::render::load_template_dir;
use mailcast::store::{Campaign, CampaignSettings, NewCampaign, SqlFilter, Store};

use crate::support::TestDb;
use crate::support::campaign::wait_for_status;
use crate::support::http::{TestServer, outbox_dispatcher, server_keys, settings};

/// Fixture recipients used (with their events, and every product).
const RECIPIENTS: usize = 120;
const CAMPAIGN: &str = "weekly-picks";

#[tokio::test]
async fn view_online_is_the_message_that_was_sent_on_both_engines() {
    let sqlite = TestDb::sqlite().await;
    view_online_is_the_message_that_was_sent(&sqlite, "sqlite").await;
    sqlite.drop_database().await;
    if let Some(postgres) = TestDb::postgres().await {
        view_online_is_the_message_that_was_sent(&postgres, "postgres").await;
        postgres.drop_database().await;
    }
}

async fn view_online_is_the_message_that_was_sent(db: &TestDb, engine: &str) {
    let store = &db.store;
    let dir = tempfile::tempdir().unwrap();
    let someone = fixtures_subset(dir.path());
    import_fixtures(store, dir.path()).await.unwrap();
    let campaign = weekly_picks(store).await;
    let before = Told::before_sending(&db.url, &someone, dir.path());

    let outbox = dir.path().join("outbox");
    send(store, &campaign, &outbox).await;
    let server = TestServer::start(store).await;
    let sent = sent_messages(store, &outbox).await;
    assert!(sent.len() > RECIPIENTS / 3, "{engine}: {} sent", sent.len());
    let personal = sent
        .iter()
        .filter(|m| m.html.contains("class=\"reason\""))
        .count();
    assert_eq!(personal, sent.len(), "{engine}: every message recommends");
    assert!(
        sent.iter().any(|m| m.html.contains("class=\"vip\"")),
        "{engine}: some recipient is in the vip block"
    );
    assert!(
        sent.iter().any(|m| m.html.contains("bought together with")),
        "{engine}: some reason names another product"
    );
    assert_pages_equal_sent(&server, &campaign, &sent, engine).await;

    // A new template version, and every recipient renamed, moved and re-tiered.
    change_template(store, &campaign).await;
    change_recipients(store, &sent).await;
    assert_pages_equal_sent(&server, &campaign, &sent, engine).await;

    let after = Told::after_sending(&db.url, &someone);
    assert_eq!(before.block, after, "{engine}: preview and campaign sent");
    let personal = ["with", "you looked", "your cart", "popular in"];
    assert!(
        personal.iter().any(|reason| after.contains(reason)),
        "{engine}: the busiest subscriber gets personal picks: {after}"
    );
    let shown: Vec<&str> = before
        .recommend_show
        .lines()
        .filter(|l| l.starts_with("  "))
        .collect();
    assert!(shown.len() >= 4, "{engine}: {}", before.recommend_show);
    for line in shown {
        assert!(after.contains(line), "{engine}: {line:?} not in\n{after}");
    }

    assert_unsent_is_not_shown(store, &server, &campaign, &sent[0]).await;
    let nobody = view_online(&server, campaign.id, 9_999_999).await;
    assert_eq!(nobody.status(), 404, "{engine}: no such delivery");
    server.stop().await;
}

/// Writes the first `RECIPIENTS` fixture recipients, their events and all products
/// into `dir`; returns the newsletter subscriber among them with the most events.
fn fixtures_subset(dir: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let recipients = std::fs::read_to_string(root.join("recipients.csv")).unwrap();
    let kept: Vec<&str> = recipients.lines().take(RECIPIENTS + 1).collect();
    let email = |line: &str| line.split(',').next().unwrap().to_lowercase();
    let subscribers: HashSet<String> = kept[1..]
        .iter()
        .filter(|l| l.contains(",newsletter"))
        .map(|l| email(l))
        .collect();
    let emails: HashSet<String> = kept[1..].iter().map(|l| email(l)).collect();
    std::fs::write(dir.join("recipients.csv"), kept.join("\n") + "\n").unwrap();
    std::fs::copy(root.join("products.csv"), dir.join("products.csv")).unwrap();
    let mut events = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for line in std::fs::read_to_string(root.join("events.jsonl"))
        .unwrap()
        .lines()
    {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let who = event["email"].as_str().unwrap().to_lowercase();
        if emails.contains(&who) {
            events.push_str(line);
            events.push('\n');
            *counts.entry(who).or_default() += 1;
        }
    }
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    let busiest = subscribers
        .into_iter()
        .max_by_key(|e| (counts.get(e).copied(), e.clone()));
    busiest.unwrap()
}

/// The demo's weekly picks, to everyone subscribed to the newsletter, with a `vip`
/// segment the template branches on.
async fn weekly_picks(store: &Store) -> Campaign {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let template = load_template_dir(root.join("templates/weekly-picks")).unwrap();
    let template_id = store.upsert_template(&template).await.unwrap();
    store
        .upsert_segment("vip", r#"attr.loyalty_tier == "gold""#, "")
        .await
        .unwrap();
    let settings = CampaignSettings {
        declared_segments: vec!["vip".into()],
        ..CampaignSettings::default()
    };
    let id = store
        .create_campaign(&NewCampaign {
            name: CAMPAIGN.into(),
            kind: CampaignKind::Marketing,
            template_id,
            segment_id: None,
            topic: Some("newsletter".into()),
            from_name: "Northwind".into(),
            from_email: "news@shop.example.com".into(),
            reply_to: None,
            send_at: None,
            settings,
        })
        .await
        .unwrap();
    store.campaign(id).await.unwrap()
}

async fn send(store: &Store, campaign: &Campaign, outbox: &Path) {
    let dispatcher = outbox_dispatcher(store, outbox, &settings().base_url).await;
    schedule_campaign(store, &dispatcher.queue, campaign.id)
        .await
        .unwrap();
    let worker = spawn_worker(dispatcher);
    let limit = Duration::from_secs(60);
    wait_for_status(store, campaign.id, CampaignStatus::Done, limit).await;
    worker.shutdown().await.unwrap();
}

struct Sent {
    recipient_id: i64,
    email: String,
    /// The HTML part as the recipient's client decodes it, line breaks as LF.
    html: String,
}

/// Every message in the outbox, read with a MIME parser that is not ours.
async fn sent_messages(store: &Store, outbox: &Path) -> Vec<Sent> {
    let mut sent = Vec::new();
    for entry in std::fs::read_dir(outbox).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let email = message.to().unwrap().first().unwrap().address().unwrap();
        let html = message.body_html(0).unwrap().replace("\r\n", "\n");
        let address = EmailAddress::parse(email).unwrap();
        let recipient = store.recipient_by_email(&address).await.unwrap().unwrap();
        sent.push(Sent {
            recipient_id: recipient.id,
            email: email.to_string(),
            html,
        });
    }
    sent.sort_by_key(|s| s.recipient_id);
    sent
}

async fn assert_pages_equal_sent(
    server: &TestServer,
    campaign: &Campaign,
    sent: &[Sent],
    engine: &str,
) {
    for message in sent {
        let response = view_online(server, campaign.id, message.recipient_id).await;
        assert_eq!(response.status(), 200, "{engine}: {}", message.email);
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
        assert_eq!(header("content-type"), "text/html; charset=utf-8");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("cache-control"), "private, no-store");
        let page = response.text().await.unwrap();
        assert_eq!(
            page,
            without_open_pixel(&message.html),
            "{engine}: /v/ of {} is not the message sent",
            message.email
        );
    }
}

/// `GET /v/{token}` for one recipient of one campaign.
async fn view_online(
    server: &TestServer,
    campaign_id: i64,
    recipient_id: i64,
) -> reqwest::Response {
    let token = Token::view(campaign_id, recipient_id);
    server
        .client
        .get(server.token_url(&token, &server_keys()))
        .send()
        .await
        .unwrap()
}

/// The sent HTML without its one open-pixel `<img>`.
fn without_open_pixel(html: &str) -> String {
    let marker = format!("<img src=\"{}/o/", settings().base_url);
    let start = html.find(&marker).expect("an open pixel");
    assert!(html[start + 1..].find(&marker).is_none(), "one open pixel");
    let end = start + html[start..].find('>').unwrap() + 1;
    [&html[..start], &html[end..]].concat()
}

async fn change_template(store: &Store, campaign: &Campaign) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut template = load_template_dir(root.join("templates/weekly-picks")).unwrap();
    template.html = template
        .html
        .replace("these are for you", "we changed this line");
    let newer = store.store_template(&template).await.unwrap();
    assert!(newer.is_new);
    let moved = store
        .set_campaign_template(campaign.id, newer.id, &[CampaignStatus::Done])
        .await
        .unwrap();
    assert!(moved);
}

async fn change_recipients(store: &Store, sent: &[Sent]) {
    let changed: Vec<_> = sent
        .iter()
        .map(|m| {
            let mut r = crate::support::recipient(&m.email, "Renamed", &[]);
            r.country = Some("NZ".into());
            r.attributes
                .insert("loyalty_tier".into(), serde_json::json!("gold"));
            r
        })
        .collect();
    store.upsert_recipients(&changed).await.unwrap();
}

/// A delivery frozen but not sent has no message to show.
async fn assert_unsent_is_not_shown(
    store: &Store,
    server: &TestServer,
    sent: &Campaign,
    someone: &Sent,
) {
    let later = NewCampaign {
        name: "later".into(),
        kind: CampaignKind::Marketing,
        template_id: sent.template_id,
        segment_id: None,
        topic: Some("newsletter".into()),
        from_name: sent.from_name.clone(),
        from_email: sent.from_email.clone(),
        reply_to: None,
        send_at: None,
        settings: CampaignSettings::default(),
    };
    let later = store
        .campaign(store.create_campaign(&later).await.unwrap())
        .await
        .unwrap();
    store
        .freeze_audience(&later, &SqlFilter::all())
        .await
        .unwrap();
    let response = view_online(server, later.id, someone.recipient_id).await;
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("has not been sent yet")
    );
}

/// What the command line says of one recipient's personalisation before sending.
struct Told {
    /// `mailcast preview`'s description, from its template line on.
    block: String,
    recommend_show: String,
}

impl Told {
    fn before_sending(database: &str, email: &str, dir: &Path) -> Told {
        let out = dir.join("preview").display().to_string();
        let preview = mailcast(
            database,
            &[
                "preview",
                "--campaign",
                CAMPAIGN,
                "--recipient",
                email,
                "--out",
                &out,
            ],
        );
        let block = preview
            .lines()
            .skip_while(|l| !l.starts_with("template:"))
            .take_while(|l| !l.starts_with("wrote "))
            .collect::<Vec<_>>()
            .join("\n");
        Told {
            block,
            recommend_show: mailcast(database, &["recommend", "show", "--recipient", email]),
        }
    }

    /// `mailcast campaign sent`'s description, from its template line on.
    fn after_sending(database: &str, email: &str) -> String {
        let sent = mailcast(
            database,
            &["campaign", "sent", CAMPAIGN, "--recipient", email],
        );
        sent.lines()
            .skip_while(|l| !l.starts_with("template:"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn mailcast(database: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mailcast"))
        .arg("--database")
        .arg(database)
        .args(args)
        .env_remove("MAILCAST_BASE_URL")
        .output()
        .expect("run mailcast");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "mailcast {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
