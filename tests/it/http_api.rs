//! The CRM API over real HTTP on both engines: authentication, every route in the
//! OpenAPI document, each error status, recipients with consent, events, products,
//! segments, campaigns, statistics, idempotent triggered sends, export and erasure.

use crate::support;
use crate::support::http;

use std::collections::BTreeSet;
use std::time::Duration;

use http::{TestServer, api_key, outbox_dispatcher, seed, server_keys, wait_for_events};
use mailcast::dispatch::{schedule_campaign, spawn_worker};
use mailcast::domain::{CampaignKind, CampaignStatus, EmailAddress};
use mailcast::links::Token;
use mailcast::store::{CampaignSettings, Db, NewCampaign, NewTemplate, Store, TrackingKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::for_each_engine;

/// An API client holding a key.
struct Api<'a> {
    server: &'a TestServer,
    key: String,
}

impl Api<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .server
            .client
            .request(method, self.server.url(path))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

async fn started(store: &Store) -> (TestServer, String) {
    let server = TestServer::start(store).await;
    let key = api_key(store, "crm").await;
    (server, key)
}

fn field_errors(body: &Value) -> BTreeSet<String> {
    body["errors"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_needs_a_key() {
    let db = support::TestDb::sqlite().await;
    let (server, _key) = started(&db.store).await;
    let response = server.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = mailcast::http::api_routes()
        .into_iter()
        .map(|(method, path)| (method, path.to_string()))
        .collect();
    assert_eq!(routed, documented, "routes and the OpenAPI document differ");

    for (method, path) in &routed {
        if path == "/api/openapi.json" {
            continue;
        }
        let concrete = path
            .replace("{email}", "ada%40example.com")
            .replace("{id}", "1")
            .replace("{name}", "vip");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for key in [None, Some("mc_not-a-real-key")] {
            let mut request = server
                .client
                .request(method.clone(), server.url(&concrete))
                .json(&json!({}));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {key:?}");
            let body: Value = response.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains("API key"),
                "{body}"
            );
        }
    }
    let unknown = server.get("/api/nothing-here").await;
    assert_eq!(unknown.status(), 404);
    assert!(
        unknown.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("openapi.json")
    );
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn recipients_are_upserted_with_consent_and_bad_fields_are_named() {
    for_each_engine(|store, engine| async move {
        let (server, key) = started(&store).await;
        let api = Api { server: &server, key };
        let ada = json!({
            "email": "Ada@Example.com", "first_name": "Ada", "country": "gb",
            "topics": ["news"], "consent_source": "signup form",
            "consented_at": "2024-05-01T10:00:00Z", "loyalty_tier": "gold"
        });
        let (status, body) = api.post("/api/recipients", ada.clone()).await;
        assert_eq!(status, 200, "{engine}: {body}");
        assert_eq!(body, json!({"inserted": 1, "updated": 0, "consents_added": 1}), "{engine}");
        let (status, body) = api.post("/api/recipients", json!({"email": "ada@example.com", "last_name": "Lovelace"})).await;
        assert_eq!((status.as_u16(), &body["updated"]), (200, &json!(1)), "{engine}: {body}");

        let (status, export) = api.get("/api/recipients/ada@example.com/export").await;
        assert_eq!(status, 200, "{engine}: {export}");
        assert_eq!(export["recipient"]["country"], "GB");
        assert_eq!(export["recipient"]["last_name"], "Lovelace");
        assert_eq!(export["recipient"]["attributes"]["loyalty_tier"], "gold");
        assert_eq!(
            export["consents"],
            json!([{"topic": "news", "status": "subscribed", "source": "signup form", "updated_at": 1_714_557_600}]),
            "{engine}"
        );

        let (status, body) = api.post("/api/recipients", json!({"email": "not-an-address"})).await;
        assert_eq!(status, 422, "{engine}: {body}");
        assert!(body["errors"]["email"][0].as_str().unwrap().contains("invalid email address"), "{body}");

        let batch = json!({"recipients": [
            {"email": "grace@example.org", "topics": ["news"]},
            {"email": "linus@example.net", "country": "Finland"},
            {"email": "ken@example.com", "consented_at": "yesterday", "topics": ["news"]}
        ]});
        let (status, body) = api.post("/api/recipients/batch", batch).await;
        assert_eq!(status, 422, "{engine}: {body}");
        assert_eq!(
            field_errors(&body),
            BTreeSet::from(["recipients[2].consented_at".to_string()]),
            "{engine}: consent fields are checked first: {body}"
        );
        let batch = json!({"recipients": [
            {"email": "grace@example.org", "topics": ["news"]},
            {"email": "linus@example.net", "country": "Finland"}
        ]});
        let (status, body) = api.post("/api/recipients/batch", batch).await;
        assert_eq!(status, 422, "{engine}: {body}");
        assert_eq!(field_errors(&body), BTreeSet::from(["recipients[1].country".to_string()]), "{body}");
        let grace = EmailAddress::parse("grace@example.org").unwrap();
        assert!(store.recipient_by_email(&grace).await.unwrap().is_none(), "{engine}: all or nothing");

        let (status, body) = api.post("/api/recipients/batch", json!({"recipients": [
            {"email": "grace@example.org", "topics": ["news"]},
            {"email": "linus@example.net", "country": "FI"}
        ]})).await;
        assert_eq!((status.as_u16(), &body["inserted"]), (200, &json!(2)), "{engine}: {body}");

        let (status, body) = api.post("/api/recipients/batch", json!({"recipients": "everyone"})).await;
        assert_eq!(status, 422, "{engine}");
        assert!(field_errors(&body).contains("recipients"), "{body}");
        let (status, body) = api.get("/api/recipients/nobody@example.com/export").await;
        assert_eq!(status, 404, "{engine}: {body}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_and_oversized_bodies_get_400_and_413() {
    let db = support::TestDb::sqlite().await;
    let (server, key) = started(&db.store).await;
    let post = |body: Vec<u8>| {
        server
            .client
            .post(server.url("/api/recipients"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let response = post(b"{\"email\": ".to_vec()).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let huge = format!(
        "{{\"email\": \"a@example.com\", \"note\": \"{}\"}}",
        "x".repeat(1_100_000)
    );
    let response = post(huge.into_bytes()).await.unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("larger than 1048576 bytes"),
        "{body}"
    );
    server.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn events_and_products_are_checked_by_the_import_rules() {
    for_each_engine(|store, engine| async move {
        seed(&store).await;
        let (server, key) = started(&store).await;
        let api = Api { server: &server, key };
        let products = json!({"products": [
            {"sku": "SHOE-1", "name": "Trail shoe", "url": "https://shop.example.com/p/1",
             "price": "89.90", "currency": "EUR", "category": "Shoes"}
        ]});
        let (status, body) = api.post("/api/products", products).await;
        assert_eq!((status.as_u16(), body.clone()), (200, json!({"inserted": 1, "updated": 0})), "{engine}");
        let (status, body) = api.post("/api/products", json!({"products": [{"sku": "X", "name": "x", "url": "ftp://x", "price": "1", "currency": "EUR", "category": "c"}]})).await;
        assert_eq!(status, 422, "{engine}");
        assert!(field_errors(&body).contains("products[0].url"), "{body}");

        let events = json!({"events": [
            {"event_id": "e-1", "email": "ada@example.com", "kind": "purchase", "sku": "SHOE-1",
             "amount": "89.90", "occurred_at": "2024-06-01T12:00:00Z"}
        ]});
        let (status, body) = api.post("/api/events", events.clone()).await;
        assert_eq!((status.as_u16(), body), (200, json!({"inserted": 1, "skipped": 0})), "{engine}");
        let (status, body) = api.post("/api/events", events).await;
        assert_eq!((status.as_u16(), body), (200, json!({"inserted": 0, "skipped": 1})), "{engine}: retry is harmless");
        let (status, body) = api.post("/api/events", json!({"events": [
            {"email": "stranger@example.com", "kind": "view", "occurred_at": 1700000000}
        ]})).await;
        assert_eq!(status, 422, "{engine}");
        assert!(body["errors"]["events[0].email"][0].as_str().unwrap().contains("unknown recipient"), "{body}");
        let (_, export) = api.get("/api/recipients/ada@example.com/export").await;
        assert_eq!(export["events"][0]["sku"], "SHOE-1", "{engine}: {export}");
        assert_eq!(export["events"][0]["amount_cents"], 8990);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn segments_are_checked_counted_and_stored() {
    for_each_engine(|store, engine| async move {
        let mut us = support::recipient("ada@example.com", "Ada", &["news"]);
        us.country = Some("US".into());
        let mut de = support::recipient("grace@example.org", "Grace", &["news"]);
        de.country = Some("DE".into());
        store.upsert_recipients(&[us, de]).await.unwrap();
        let (server, key) = started(&store).await;
        let api = Api {
            server: &server,
            key,
        };
        let expression = json!({"expression": "country in [\"US\"]"});
        let (status, body) = api.post("/api/segments/check", expression.clone()).await;
        assert_eq!(status, 200, "{engine}: {body}");
        assert_eq!(
            body["count"],
            json!({"matching": 1, "eligible": 1, "excluded_by_suppression": 0, "excluded_by_status": 0, "excluded_by_consent": 0}),
            "{engine}"
        );
        assert_eq!(body["sample"], json!(["ada@example.com"]));
        let (status, body) = api
            .post(
                "/api/segments/check",
                json!({"expression": "1=1; DROP TABLE recipients"}),
            )
            .await;
        assert_eq!(status, 422, "{engine}: {body}");
        assert!(field_errors(&body).contains("expression"), "{body}");

        let (status, body) = api
            .call(Method::PUT, "/api/segments/americans", Some(expression))
            .await;
        assert_eq!(status, 200, "{engine}: {body}");
        assert_eq!(body["segment"]["name"], "americans");
        let (status, body) = api.get("/api/segments/americans").await;
        assert_eq!(
            (status.as_u16(), &body["count"]["matching"]),
            (200, &json!(1)),
            "{engine}: {body}"
        );
        let (status, _) = api.get("/api/segments/martians").await;
        assert_eq!(status, 404, "{engine}");
        server.stop().await;
    })
    .await;
}

async fn bare_template(store: &Store) {
    store
        .upsert_template(&NewTemplate {
            name: "bare".into(),
            subject: "Hi".into(),
            preheader: None,
            html: "<p>No way out</p>".into(),
            text: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn campaigns_move_through_their_states_and_refuse_what_they_cannot_do() {
    for_each_engine(|store, engine| async move {
        http::template(&store).await;
        bare_template(&store).await;
        let (server, key) = started(&store).await;
        let api = Api { server: &server, key };
        let campaign = json!({
            "name": "summer", "template": "spring", "topic": "news",
            "from_email": "news@shop.example.com", "from_name": "Shop",
            "send_at": "2999-01-01T00:00:00Z", "utm": {"utm_source": "mailcast"}
        });
        let (status, body) = api.post("/api/campaigns", campaign.clone()).await;
        assert_eq!(status, 201, "{engine}: {body}");
        assert_eq!((body["status"].as_str(), body["settings"]["utm"]["utm_source"].as_str()), (Some("draft"), Some("mailcast")));
        let id = body["id"].as_i64().unwrap();
        let (status, body) = api.post("/api/campaigns", campaign).await;
        assert_eq!(status, 409, "{engine}: {body}");

        let (status, body) = api.post("/api/campaigns", json!({"name": "x", "template": "nope", "from_email": "nobody"})).await;
        assert_eq!(status, 422, "{engine}");
        assert_eq!(field_errors(&body), BTreeSet::from(["from_email".into(), "template".into()]), "{body}");
        let (status, body) = api.post("/api/campaigns", json!({"name": "y", "template": "bare", "from_email": "a@shop.example.com"})).await;
        assert_eq!(status, 422, "{engine}: a marketing template needs an unsubscribe link");
        assert!(field_errors(&body).contains("template"), "{body}");
        let (status, body) = api.post("/api/campaigns", json!({"name": "z", "template": "spring", "from_email": "a@shop.example.com", "colour": "red"})).await;
        assert_eq!(status, 422, "{engine}");
        assert!(field_errors(&body).contains("colour"), "{body}");
        let timing = json!({"name": "t", "template": "spring", "from_email": "a@shop.example.com",
                            "local_send_time": "2026-12-08T09:00+01:00", "quiet_hours": "9pm-8am"});
        let (status, body) = api.post("/api/campaigns", timing).await;
        assert_eq!(status, 422, "{engine}: {body}");
        assert_eq!(field_errors(&body), BTreeSet::from(["local_send_time".into(), "quiet_hours".into()]), "{body}");
        let local = json!({"name": "nine", "template": "spring", "topic": "news", "from_email": "a@shop.example.com",
                           "local_send_time": "2999-12-08T09:00", "quiet_hours": "off"});
        let (status, body) = api.post("/api/campaigns", local).await;
        assert_eq!(status, 201, "{engine}: {body}");
        assert_eq!(body["settings"]["local_send_time"], "2999-12-08T09:00", "{engine}");
        assert_eq!(body["send_at"], mailcast::time::parse_timestamp("2999-12-07T19:00:00Z").unwrap(), "{engine}: first at UTC+14");

        let step = |action: &'static str| {
            let path = format!("/api/campaigns/{id}/{action}");
            let api = &api;
            async move { api.post(&path, json!({})).await }
        };
        let (status, body) = step("pause").await;
        assert_eq!(status, 409, "{engine}: a draft cannot be paused: {body}");
        for (action, expected) in [("schedule", "scheduled"), ("pause", "paused"), ("resume", "scheduled"), ("cancel", "cancelled")] {
            let (status, body) = step(action).await;
            assert_eq!((status.as_u16(), body["status"].as_str()), (200, Some(expected)), "{engine}: {action}: {body}");
        }
        assert_eq!(step("resume").await.0, 409, "{engine}: a cancelled campaign stays cancelled");
        assert_eq!(step("schedule").await.0, 409, "{engine}");

        assert_eq!(api.get("/api/campaigns/999999").await.0, 404, "{engine}");
        assert_eq!(api.post("/api/campaigns/999999/schedule", json!({})).await.0, 404, "{engine}");
        assert_eq!(api.get("/api/campaigns/summer").await.0, 400, "{engine}");
        let (status, body) = api.get(&format!("/api/campaigns/{id}")).await;
        assert_eq!((status.as_u16(), body["deliveries"]["pending"].as_i64()), (200, Some(0)), "{engine}: {body}");
        server.stop().await;
    })
    .await;
}

fn eml_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .count()
}

async fn wait_for(store: &Store, campaign_id: i64, status: CampaignStatus) {
    support::campaign::wait_for_status(store, campaign_id, status, Duration::from_secs(60)).await
}

#[tokio::test]
async fn triggered_sends_with_the_same_idempotency_key_send_once() {
    for_each_engine(|store, engine| async move {
        seed(&store).await;
        let (server, key) = started(&store).await;
        let outbox = tempfile::tempdir().unwrap();
        let worker = spawn_worker(outbox_dispatcher(&store, outbox.path(), &server.base).await);
        let send = |idempotency_key: Option<&'static str>, body: Value| {
            let mut request = server.client.post(server.url("/api/sends")).bearer_auth(&key).json(&body);
            if let Some(k) = idempotency_key {
                request = request.header("Idempotency-Key", k);
            }
            async move {
                let response = request.send().await.unwrap();
                let replayed = response.headers().get("idempotent-replayed").is_some();
                (response.status().as_u16(), replayed, response.text().await.unwrap())
            }
        };
        let welcome = json!({"template": "spring", "email": "ada@example.com", "from_email": "hello@shop.example.com"});

        let (status, _, body) = send(None, welcome.clone()).await;
        assert_eq!(status, 400, "{engine}: {body}");
        assert!(body.contains("Idempotency-Key"));
        let (status, replayed, first) = send(Some("order-1001"), welcome.clone()).await;
        assert_eq!((status, replayed), (202, false), "{engine}: {first}");
        let (status, replayed, again) = send(Some("order-1001"), welcome.clone()).await;
        assert_eq!((status, replayed), (202, true), "{engine}");
        assert_eq!(again, first, "{engine}: the first answer, again");
        let mut other = welcome.clone();
        other["email"] = json!("grace@example.org");
        let (status, _, body) = send(Some("order-1001"), other).await;
        assert_eq!(status, 422, "{engine}: same key, different request: {body}");
        let (status, _, body) = send(Some("order-1002"), json!({"template": "spring", "email": "nobody@example.com", "from_email": "hello@shop.example.com"})).await;
        assert_eq!(status, 422, "{engine}: {body}");
        assert!(body.contains("upsert the recipient first"), "{body}");

        let send_id = serde_json::from_str::<Value>(&first).unwrap()["send_id"].as_i64().unwrap();
        wait_for(&store, send_id, CampaignStatus::Done).await;
        // Every send is a campaign of its own: none more may appear from here on.
        let campaigns = store.list_campaigns().await.unwrap().len();
        let (status, _, again) = send(Some("order-1001"), welcome.clone()).await;
        assert_eq!((status, again), (202, first.clone()), "{engine}: still the first answer after sending");
        assert_eq!(store.list_campaigns().await.unwrap().len(), campaigns, "{engine}: nothing queued again");
        assert_eq!(eml_count(outbox.path()), 1, "{engine}: one key, one message");

        // A first request with this key still running: the retry is told to wait.
        let caller = store
            .api_key_by_hash(&mailcast::http::hash_api_key(&key))
            .await
            .unwrap()
            .unwrap();
        let canonical = json!({"template": "spring", "email": "grace@example.org", "from_email": "hello@shop.example.com"});
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(canonical.to_string()));
        store.claim_idempotency_key(caller.id, "order-2000", &hash, 86_400).await.unwrap();
        let (status, _, body) = send(Some("order-2000"), canonical).await;
        assert_eq!(status, 409, "{engine}: {body}");
        assert_eq!(store.list_campaigns().await.unwrap().len(), campaigns, "{engine}: nothing queued");

        let api = Api { server: &server, key: key.clone() };
        let (status, body) = api.get(&format!("/api/sends/{send_id}")).await;
        assert_eq!(status, 200, "{engine}");
        assert_eq!((body["campaign_status"].as_str(), body["delivery"]["status"].as_str()), (Some("done"), Some("sent")), "{body}");
        worker.shutdown().await.unwrap();
        assert_eq!(eml_count(outbox.path()), 1, "{engine}: one message in all");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn statistics_count_human_events_with_machine_events_beside_them() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let (server, key) = started(&store).await;
        let keys = server_keys();
        let c = seeded.campaign_id;
        let browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/128.0";
        let hits = [
            (Token::open(c, seeded.ada), browser),
            (Token::open(c, seeded.ada), browser),
            (Token::open(c, seeded.grace), "Mozilla/5.0"),
            (Token::click(c, seeded.ada, seeded.sale_link), browser),
            (
                Token::click(c, seeded.grace, seeded.sale_link),
                "python-requests/2.31",
            ),
        ];
        for (token, agent) in hits {
            let response = server
                .client
                .get(server.token_url(&token, &keys))
                .header("user-agent", agent)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success() || response.status().is_redirection());
        }
        let unsubscribe = format!("/u/{}", Token::unsubscribe(c, seeded.grace).sign(&keys));
        server
            .client
            .post(server.url(&unsubscribe))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        wait_for_events(&store, TrackingKind::Click, 2).await;
        wait_for_events(&store, TrackingKind::Unsubscribe, 1).await;

        let api = Api {
            server: &server,
            key,
        };
        let (status, stats) = api.get(&format!("/api/campaigns/{c}/stats")).await;
        assert_eq!(status, 200, "{engine}: {stats}");
        assert_eq!(
            stats["opens"],
            json!({"unique_human": 1, "unique_machine": 1, "human_events": 2, "machine_events": 1}),
            "{engine}"
        );
        assert_eq!(
            stats["clicks"],
            json!({"unique_human": 1, "unique_machine": 1, "human_events": 1, "machine_events": 1}),
            "{engine}"
        );
        assert_eq!(stats["unsubscribes"], 1);
        assert_eq!(stats["top_links"][0]["url"], seeded.sale_url);
        assert_eq!(
            (
                stats["top_links"][0]["unique_human"].as_i64(),
                stats["top_links"][0]["machine_clicks"].as_i64()
            ),
            (Some(1), Some(1))
        );
        assert_eq!(
            api.get("/api/campaigns/424242/stats").await.0,
            404,
            "{engine}"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_erased_recipient_is_forgotten_and_not_mailed_after_a_reimport() {
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let (server, key) = started(&store).await;
        let api = Api {
            server: &server,
            key,
        };
        let click = server.token_url(
            &Token::click(seeded.campaign_id, seeded.ada, seeded.sale_link),
            &server_keys(),
        );
        server.client.get(click).send().await.unwrap();
        wait_for_events(&store, TrackingKind::Click, 1).await;

        let (status, body) = api
            .call(Method::DELETE, "/api/recipients/ada@example.com", None)
            .await;
        assert_eq!(status, 200, "{engine}: {body}");
        assert_eq!(
            api.get("/api/recipients/ada@example.com/export").await.0,
            404,
            "{engine}"
        );
        assert_eq!(
            api.call(Method::DELETE, "/api/recipients/ada@example.com", None)
                .await
                .0,
            404
        );
        assert!(
            store
                .tracking_events(seeded.campaign_id)
                .await
                .unwrap()
                .is_empty(),
            "{engine}: events erased"
        );
        let ada = EmailAddress::parse("ada@example.com").unwrap();
        assert!(store.is_suppressed(&ada).await.unwrap(), "{engine}");

        let (status, body) = api
            .post(
                "/api/recipients",
                json!({"email": "ada@example.com", "first_name": "Ada", "topics": ["news"]}),
            )
            .await;
        assert_eq!(
            (status.as_u16(), &body["inserted"]),
            (200, &json!(1)),
            "{engine}: {body}"
        );
        let (_, export) = api.get("/api/recipients/ada@example.com/export").await;
        assert_eq!(
            export["suppression"]["reason"], "erased on request",
            "{engine}: {export}"
        );

        let template_id = store.template_by_name("spring").await.unwrap().unwrap().id;
        let campaign_id = store
            .create_campaign(&NewCampaign {
                name: "after erasure".into(),
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
            .unwrap();
        let outbox = tempfile::tempdir().unwrap();
        let dispatcher = outbox_dispatcher(&store, outbox.path(), &server.base).await;
        schedule_campaign(&store, &dispatcher.queue, campaign_id)
            .await
            .unwrap();
        let worker = spawn_worker(dispatcher);
        wait_for(&store, campaign_id, CampaignStatus::Done).await;
        worker.shutdown().await.unwrap();
        let counts = store.ledger_counts(campaign_id).await.unwrap();
        assert_eq!(
            (counts.total(), counts.sent),
            (1, 1),
            "{engine}: only Grace: {counts:?}"
        );
        assert_eq!(eml_count(outbox.path()), 1, "{engine}");
        server.stop().await;
    })
    .await;
}

/// Every column, in every table, that can hold a recipient's id or personal data:
/// `recipient_id`, `ip`, `user_agent`, `data` and campaign `settings` (a triggered
/// send's data). Read from the schema, so tables added later are checked too.
async fn personal_columns(store: &Store) -> Vec<(String, String)> {
    const NAMES: &str = "('recipient_id', 'ip', 'user_agent', 'data', 'settings')";
    match store.db() {
        Db::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND p.name IN {NAMES}"
        )))
        .fetch_all(pool)
        .await
        .unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND column_name IN {NAMES}"
        )))
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

/// `table.column` for each column holding `id` or text containing any of `markers`.
async fn columns_mentioning(store: &Store, id: i64, markers: &[&str]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (table, column) in personal_columns(store).await {
        for marker in markers.iter().map(|m| format!("%{m}%")) {
            let sql = format!(
                "SELECT COUNT(*) FROM \"{table}\"
                 WHERE CAST(\"{column}\" AS TEXT) = $1 AND '{column}' = 'recipient_id'
                    OR CAST(\"{column}\" AS TEXT) LIKE $2"
            );
            let (n,): (i64,) = match store.db() {
                Db::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .bind(&marker)
                    .fetch_one(pool)
                    .await
                    .unwrap(),
                Db::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .bind(&marker)
                    .fetch_one(pool)
                    .await
                    .unwrap(),
            };
            if n > 0 {
                found.insert(format!("{table}.{column}"));
            }
        }
    }
    found
}

/// GETs every link as `agent`: they answer as before (a pixel, a redirect).
async fn hit(server: &TestServer, links: &[String], agent: &str, engine: &str) {
    for link in links {
        let response = server
            .client
            .get(link)
            .header("user-agent", agent)
            .send()
            .await
            .unwrap();
        assert!(response.status().as_u16() < 400, "{engine}: {link}");
    }
}

#[tokio::test]
async fn erasure_leaves_nothing_personal_even_when_old_links_are_used_afterwards() {
    const AGENT: &str = "Mozilla/5.0 (AdasOwnLaptop)";
    const ORDER: &str = "ORDER-AL-1815";
    for_each_engine(|store, engine| async move {
        let seeded = seed(&store).await;
        let (server, key) = started(&store).await;
        let api = Api {
            server: &server,
            key: key.clone(),
        };
        let outbox = tempfile::tempdir().unwrap();
        let worker = spawn_worker(outbox_dispatcher(&store, outbox.path(), &server.base).await);
        let response = server
            .client
            .post(server.url("/api/sends"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "erasure-1")
            .json(&json!({"template": "spring", "email": "ada@example.com",
                          "from_email": "hello@shop.example.com", "data": {"order": ORDER}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{engine}");
        let send_id = response.json::<Value>().await.unwrap()["send_id"]
            .as_i64()
            .unwrap();
        wait_for(&store, send_id, CampaignStatus::Done).await;
        worker.shutdown().await.unwrap();

        let keys = server_keys();
        let old_links = [
            server.token_url(&Token::open(seeded.campaign_id, seeded.ada), &keys),
            server.token_url(&Token::open(send_id, seeded.ada), &keys),
            server.token_url(
                &Token::click(seeded.campaign_id, seeded.ada, seeded.sale_link),
                &keys,
            ),
        ];
        hit(&server, &old_links, AGENT, engine).await;
        wait_for_events(&store, TrackingKind::Open, 2).await;
        wait_for_events(&store, TrackingKind::Click, 1).await;
        let before = columns_mentioning(&store, seeded.ada, &[AGENT, ORDER]).await;
        for expected in [
            "tracking_events.user_agent",
            "tracking_events.recipient_id",
            "deliveries.recipient_id",
            "consents.recipient_id",
            "campaigns.settings",
        ] {
            assert!(
                before.contains(expected),
                "{engine}: {expected} not in {before:?}"
            );
        }

        let (status, body) = api
            .call(Method::DELETE, "/api/recipients/ada@example.com", None)
            .await;
        assert_eq!(status, 200, "{engine}: {body}");
        hit(&server, &old_links, AGENT, engine).await;
        server.stop().await; // every queued event is written (or dropped) by now
        let after = columns_mentioning(&store, seeded.ada, &[AGENT, ORDER]).await;
        assert!(after.is_empty(), "{engine}: still about Ada: {after:?}");
        let send = store.campaign(send_id).await.unwrap();
        assert!(
            send.settings.data.is_empty(),
            "{engine}: {:?}",
            send.settings
        );
    })
    .await;
}

#[tokio::test]
async fn the_api_refuses_nul_and_invisible_characters_and_takes_topics_either_way() {
    for_each_engine(|store, engine| async move {
        seed(&store).await;
        let (server, key) = started(&store).await;
        let api = Api {
            server: &server,
            key,
        };
        for (body, field) in [
            (json!({"email": "n@example.com", "first_name": "N\u{0}"}), "first_name"),
            (json!({"email": "n@example.com", "attributes": {"a": ["\u{0}"]}}), "attributes.a[0]"),
            (json!({"email": "n@example.com", "topics": "news;\u{0}"}), "topics"),
            (json!({"email": "n\u{202E}@example.com"}), "email"),
        ] {
            let (status, answer) = api.post("/api/recipients", body).await;
            assert_eq!(status, 422, "{engine}: {answer}");
            assert_eq!(field_errors(&answer), BTreeSet::from([field.to_string()]), "{engine}: {answer}");
        }
        let (status, answer) = api
            .post(
                "/api/recipients/batch",
                json!({"recipients": [{"email": "m@example.com"}, {"email": "o@example.com", "city": "\u{0}"}]}),
            )
            .await;
        assert_eq!(status, 422, "{engine}: {answer}");
        assert!(field_errors(&answer).contains("recipients[1].city"), "{engine}: {answer}");

        let (status, answer) = api
            .post(
                "/api/recipients",
                json!({"email": "jose\u{301}@ex\u{e4}mple.com", "topics": "news; offers"}),
            )
            .await;
        assert_eq!(status, 200, "{engine}: {answer}");
        assert_eq!(answer["consents_added"], 2, "{engine}: {answer}");
        let (status, export) = api.get("/api/recipients/jos\u{e9}@xn--exmple-cua.com/export").await;
        assert_eq!(status, 200, "{engine}: {export}");
        assert_eq!(export["recipient"]["email"], "jos\u{e9}@xn--exmple-cua.com", "{engine}");
        server.stop().await;
    })
    .await;
}

const WELCOME: &str = r#"
name = "welcome"
from = { email = "hello@shop.example.com" }
trigger = { recipient_created = true }

[[step]]
id = "hello"
send = { template = "welcome-note", topic = "news" }
"#;

#[tokio::test]
async fn automations_are_stored_versioned_paused_and_read_back_over_the_api() {
    for_each_engine(async |store, engine| {
        support::automation::store_template(&store, "welcome-note", support::automation::CART_HTML)
            .await;
        let reader = support::recipient("reader@example.com", "Reader", &["news"]);
        store.upsert_recipients(&[reader]).await.unwrap();
        let (server, key) = started(&store).await;
        let api = Api {
            server: &server,
            key,
        };
        let put = async |source: &str| {
            let body = json!({ "definition": source });
            api.call(Method::PUT, "/api/automations/welcome", Some(body))
                .await
        };
        let (status, body) = put(WELCOME).await;
        assert_eq!(
            (status.as_u16(), &body["version"], &body["changed"]),
            (200, &json!(1), &json!(true)),
            "{engine}: {body}"
        );
        let (_, body) = put(WELCOME).await;
        assert_eq!(
            body["changed"],
            json!(false),
            "{engine}: the same file again"
        );
        let edited = WELCOME.replace("id = \"hello\"", "id = \"hi\"");
        let (_, body) = put(&edited).await;
        assert_eq!(body["version"], json!(2), "{engine}: {body}");

        let broken = WELCOME
            .replace("welcome-note", "welcome-nope")
            .replace("recipient_created = true", "event = \"purchse\"");
        let (status, body) = put(&broken).await;
        assert_eq!(status, 422, "{engine}: {body}");
        let problems = body["errors"]["definition"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            problems.len(),
            2,
            "{engine}: one message per problem: {body}"
        );
        let text = body["errors"]["definition"].to_string();
        assert!(
            text.contains("purchse") && text.contains("welcome-nope"),
            "{engine}: {text}"
        );
        let (status, body) = api
            .call(
                Method::PUT,
                "/api/automations/other",
                Some(json!({ "definition": WELCOME })),
            )
            .await;
        assert_eq!(
            status, 422,
            "{engine}: the path names another automation: {body}"
        );

        let (status, body) = api.post("/api/automations/welcome/pause", json!({})).await;
        assert_eq!(
            (status.as_u16(), &body["status"]),
            (200, &json!("paused")),
            "{engine}: {body}"
        );
        let (_, body) = api.get("/api/automations/welcome").await;
        assert_eq!(
            body["version"],
            json!(2),
            "{engine}: a refused definition changed nothing"
        );
        assert_eq!(
            body["definition"]["steps"][0]["id"],
            json!("hi"),
            "{engine}: {body}"
        );
        assert_eq!(body["stats"]["entered"], json!(0), "{engine}");
        let (_, body) = api.post("/api/automations/welcome/resume", json!({})).await;
        assert_eq!(body["status"], json!("active"), "{engine}");
        let (status, body) = api.get("/api/automations/welcome/stats").await;
        assert_eq!(
            (status.as_u16(), &body["active"]),
            (200, &json!(0)),
            "{engine}: {body}"
        );
        let (_, list) = api.get("/api/automations").await;
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{engine}: {list}");
        let (status, _) = api.get("/api/automations/nobody").await;
        assert_eq!(status, 404, "{engine}");
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_experiment_with_bad_parts_is_refused_field_by_field_and_a_good_one_is_created() {
    for_each_engine(|store, engine| async move {
        http::template(&store).await;
        let (server, key) = started(&store).await;
        let api = Api { server: &server, key };
        let campaign = |experiment: Value| {
            json!({"name": "ab", "template": "spring", "topic": "news",
                   "from_email": "news@shop.example.com", "experiment": experiment})
        };
        let bad = campaign(json!({
            "variants": [{"subject": "Winter sale"}, {"subject": "Last chance", "template": "missing"}],
            "test_share": "80%", "holdout": "30%", "metric": "likes"
        }));
        let (status, body) = api.post("/api/campaigns", bad).await;
        assert_eq!(status, 422, "{engine}: {body}");
        assert_eq!(
            field_errors(&body),
            BTreeSet::from([
                "experiment.variants[1].template".into(),
                "experiment.holdout".into(),
                "experiment.metric".into()
            ]),
            "{engine}: {body}"
        );
        let (status, body) = api.post("/api/campaigns", campaign(json!({"variants": [{"subject": "Only one"}]}))).await;
        assert_eq!(status, 422, "{engine}: {body}");
        assert!(field_errors(&body).contains("experiment.variants"), "{engine}: {body}");
        assert!(store.list_campaigns().await.unwrap().is_empty(), "{engine}: nothing created");

        let good = campaign(json!({
            "variants": [{"subject": "Winter sale"}, {"subject": "Last chance", "template": "spring"}],
            "test_share": "20%", "wait": "2h", "metric": "revenue", "holdout": "5%"
        }));
        let (status, body) = api.post("/api/campaigns", good).await;
        assert_eq!(status, 201, "{engine}: {body}");
        let experiment = &body["settings"]["experiment"];
        assert_eq!((experiment["test_share"].as_i64(), experiment["holdout"].as_i64(), experiment["wait_seconds"].as_i64()), (Some(2_000), Some(500), Some(7_200)), "{engine}: {body}");
        let id = body["id"].as_i64().unwrap();
        let (status, stats) = api.get(&format!("/api/campaigns/{id}/stats")).await;
        assert_eq!(status, 200, "{engine}: {stats}");
        assert_eq!(stats["experiment"]["mode"], "test_then_winner", "{engine}: {stats}");
        let csv = server.client.get(server.url(&format!("/api/campaigns/{id}/stats?format=csv"))).bearer_auth(&api.key).send().await.unwrap();
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8", "{engine}");
        assert!(csv.text().await.unwrap().starts_with("campaign,variant,segment,delivered,"), "{engine}");
    })
    .await;
}
