//! Purchases attributed to the campaign whose link the recipient last clicked as a
//! person within five days: window edges, the last click winning, machine clicks and
//! purchases without a click, whatever order the events arrived in; and purchases of
//! recommended products credited to their position and reason.

use std::collections::HashMap;

use mailcast::domain::EmailAddress;
use mailcast::store::{
    ATTRIBUTION_WINDOW_SECONDS, Attributed, Campaign, CampaignStats, Claim, DeliveryOutcome,
    Engagement, Handing, NewEvent, NewProduct, NewTrackingEvent, RecommendationCredit, SqlFilter,
    SqlParam, Store, StoredClick, TrackingKind, Verdict,
};

use crate::support::campaign::{HTML, create, draft};
use crate::support::{for_each_engine, recipient};

const T: i64 = 1_780_000_000;

#[tokio::test]
async fn purchases_go_to_the_last_human_click_within_five_days() {
    for_each_engine(|store, engine| async move {
        let people = ["edge", "late", "both", "noclick", "scanned"];
        let id = add_people(&store, &people).await;
        let (shoe, bag) = products(&store).await;
        let x = campaign(&store, "x").await;
        let y = campaign(&store, "y").await;
        // x recommended the shoe first (bought with the bag) to everyone.
        let record = format!("1;{};digest;;{shoe}b{bag},{bag}t;", x.template_id);
        send(&store, &x, &record).await;
        send(&store, &y, "1;1;digest;;;").await;

        // Purchases arrive before the clicks that lead to them: the order of arrival
        // changes nothing.
        let purchase = |who: &str, product: i64, cents: i64, at: i64| NewEvent {
            external_id: Some(format!("{who}-{at}")),
            recipient_id: id[who],
            kind: "purchase".into(),
            product_id: Some(product),
            amount_cents: Some(cents),
            occurred_at: at,
            properties: serde_json::Map::new(),
        };
        let window = ATTRIBUTION_WINDOW_SECONDS;
        store
            .insert_events(&[
                purchase("edge", shoe, 1_000, T + window),
                purchase("late", shoe, 2_000, T + window + 1),
                purchase("both", bag, 700, T + 200),
                purchase("noclick", shoe, 3_000, T + 10),
                purchase("scanned", bag, 500, T + 60),
            ])
            .await
            .unwrap();
        let click = |who: &str, campaign: &Campaign, at: i64, verdict: Verdict| {
            click_on(campaign, id[who], at, verdict)
        };
        store
            .insert_tracking_events(&[
                click("edge", &x, T, Verdict::Human),
                click("late", &x, T, Verdict::Human),
                click("both", &x, T, Verdict::Human),
                click("both", &y, T + 100, Verdict::Human),
                click("scanned", &x, T, Verdict::Human),
                click("scanned", &y, T + 50, Verdict::Machine),
            ])
            .await
            .unwrap();

        let of_x = store.campaign_statistics(x.id).await.unwrap();
        assert_eq!(
            of_x.attributed,
            Attributed {
                orders: 2,
                revenue_cents: 1_500,
                view_through_orders: 0,
            },
            "{engine}: edge (exactly five days) and scanned (machine click on y ignored)"
        );
        assert_eq!(
            of_x.recommendations,
            [
                RecommendationCredit {
                    position: 1,
                    reason: "bought_with",
                    orders: 1,
                    revenue_cents: 1_000
                },
                RecommendationCredit {
                    position: 2,
                    reason: "trending",
                    orders: 1,
                    revenue_cents: 500
                },
            ],
            "{engine}"
        );
        let of_y = store.campaign_statistics(y.id).await.unwrap();
        assert_eq!(
            of_y.attributed,
            Attributed {
                orders: 1,
                revenue_cents: 700,
                view_through_orders: 0,
            },
            "{engine}: both clicked x, then y: y's"
        );
    })
    .await;
}

/// A click on link 1 of `campaign`; a machine's is a scanner's.
fn click_on(campaign: &Campaign, recipient_id: i64, at: i64, verdict: Verdict) -> NewTrackingEvent {
    NewTrackingEvent {
        kind: TrackingKind::Click,
        campaign_id: campaign.id,
        recipient_id,
        link_id: Some(1),
        occurred_at: at,
        ip: None,
        user_agent: None,
        verdict,
        reason: (verdict == Verdict::Machine).then(|| "scanner".into()),
    }
}

/// Top links as (link, unique human, human clicks, machine clicks).
fn link_rows(stats: &CampaignStats) -> Vec<(i64, i64, i64, i64)> {
    stats
        .top_links
        .iter()
        .map(|l| (l.link_id, l.unique_human, l.human_clicks, l.machine_clicks))
        .collect()
}

/// `people` as recipients `NAME@example.com` subscribed to news, by name → id.
async fn add_people(store: &Store, people: &[&str]) -> HashMap<String, i64> {
    let batch: Vec<_> = people
        .iter()
        .map(|p| recipient(&format!("{p}@example.com"), "P", &["news"]))
        .collect();
    store.upsert_recipients(&batch).await.unwrap();
    let mut ids = HashMap::new();
    for p in people {
        let email = EmailAddress::parse(&format!("{p}@example.com")).unwrap();
        let found = store.recipient_by_email(&email).await.unwrap().unwrap();
        ids.insert(p.to_string(), found.id);
    }
    ids
}

async fn products(store: &Store) -> (i64, i64) {
    let product = |sku: &str| NewProduct {
        sku: sku.into(),
        name: sku.into(),
        url: format!("https://shop.example.com/{sku}"),
        image_url: None,
        price_cents: 1_000,
        currency: "EUR".into(),
        category: "things".into(),
        in_stock: true,
    };
    store
        .upsert_products(&[product("SHOE"), product("BAG")])
        .await
        .unwrap();
    let ids = store.product_ids(&["SHOE", "BAG"]).await.unwrap();
    (ids["SHOE"], ids["BAG"])
}

async fn campaign(store: &Store, name: &str) -> Campaign {
    create(store, draft(store, name, "news", HTML).await).await
}

/// Every recipient's message of `campaign` handed over with `record`, then sent.
async fn send(store: &Store, campaign: &Campaign, record: &str) {
    let everyone = SqlFilter {
        sql: "r.email LIKE $1".into(),
        params: vec![SqlParam::Text("%@example.com".into())],
    };
    send_with(store, campaign, &everyone, record).await;
}

/// The message of `campaign` to those `filter` matches, handed over and sent.
async fn send_to(store: &Store, campaign: &Campaign, filter: &SqlFilter) {
    send_with(store, campaign, filter, "1;1;digest;;;").await;
}

async fn send_with(store: &Store, campaign: &Campaign, filter: &SqlFilter, record: &str) {
    store.freeze_audience(campaign, filter).await.unwrap();
    let claimed = store
        .claim(&Claim {
            campaign_id: campaign.id,
            worker: "w".into(),
            limit: 100,
            lease_seconds: 300,
            after_id: 0,
            due: mailcast::time::now(),
            cap: None,
        })
        .await
        .unwrap();
    let handing: Vec<Handing> = claimed
        .iter()
        .map(|d| Handing {
            delivery_id: d.delivery_id,
            rendered_with: record.into(),
        })
        .collect();
    store.write_ledger("w", &[], &handing).await.unwrap();
    let sent: Vec<DeliveryOutcome> = claimed
        .iter()
        .map(|d| DeliveryOutcome::Sent {
            delivery_id: d.delivery_id,
            message_id: format!("<{}@example.com>", d.delivery_id),
        })
        .collect();
    store.record_outcomes("w", &sent).await.unwrap();
}

#[tokio::test]
async fn a_campaign_window_and_view_through_attribute_what_no_click_explains() {
    for_each_engine(|store, engine| async move {
        let people = ["inside", "outside", "viewed", "viewed_late", "both_sent"];
        let id = add_people(&store, &people).await;
        let (shoe, _) = products(&store).await;
        let mut draft_x = draft(&store, "x", "news", HTML).await;
        draft_x.settings.attribution_window = Some(2 * 86_400);
        draft_x.settings.view_through_window = Some(86_400);
        let x = create(&store, draft_x).await;
        let before = mailcast::time::now();
        send(&store, &x, "1;1;digest;;;").await;
        let after = mailcast::time::now();
        // y reaches only both_sent, after x did.
        let y = campaign(&store, "y").await;
        let only = SqlFilter {
            sql: "r.email = $1".into(),
            params: vec![SqlParam::Text("both_sent@example.com".into())],
        };
        send_to(&store, &y, &only).await;

        let purchase = |who: &str, cents: i64, at: i64| NewEvent {
            external_id: Some(format!("{who}-{at}")),
            recipient_id: id[who],
            kind: "purchase".into(),
            product_id: Some(shoe),
            amount_cents: Some(cents),
            occurred_at: at,
            properties: serde_json::Map::new(),
        };
        let two_days = 2 * 86_400;
        // Purchases are stored before the clicks that explain them.
        store
            .insert_events(&[
                purchase("inside", 100, T + two_days),
                purchase("outside", 200, T + two_days + 1),
                purchase("viewed", 400, after + 3_600),
                purchase("viewed_late", 800, before + 86_400 + 120),
                purchase("both_sent", 1_600, after + 3_600),
            ])
            .await
            .unwrap();
        let click = |who: &str| click_on(&x, id[who], T, Verdict::Human);
        store
            .insert_tracking_events(&[click("inside"), click("outside")])
            .await
            .unwrap();

        let of_x = store.campaign_statistics(x.id).await.unwrap();
        assert_eq!(
            of_x.attributed,
            Attributed {
                orders: 2,
                revenue_cents: 500,
                view_through_orders: 1,
            },
            "{engine}: inside (exactly two days after the click) and viewed (delivered an hour before); \
             not outside, viewed_late (over a day after delivery) or both_sent (y reached them last)"
        );
        assert_eq!((of_x.attribution_window, of_x.view_through_window), (two_days, Some(86_400)), "{engine}");
        let of_y = store.campaign_statistics(y.id).await.unwrap();
        assert_eq!(of_y.attributed, Attributed::default(), "{engine}: y has no view-through");
    })
    .await;
}

/// Attribution and engagement are kept as touches arrive: a click stored after the
/// purchase it led to takes the purchase, and found to be a scanner's later gives it
/// back; the engagement and link counts move with it.
#[tokio::test]
async fn late_clicks_and_late_verdicts_change_what_was_kept() {
    for_each_engine(|store, engine| async move {
        let people = ["scanned"];
        let id = add_people(&store, &people).await;
        let (shoe, _) = products(&store).await;
        let x = campaign(&store, "x").await;
        let only = |who: &str| SqlFilter {
            sql: "r.email = $1".into(),
            params: vec![SqlParam::Text(format!("{who}@example.com"))],
        };
        send_to(&store, &x, &only("scanned")).await;
        let purchase = |who: &str, at: i64| NewEvent {
            external_id: Some(format!("{who}-{at}")),
            recipient_id: id[who],
            kind: "purchase".into(),
            product_id: Some(shoe),
            amount_cents: Some(900),
            occurred_at: at,
            properties: serde_json::Map::new(),
        };
        store
            .insert_events(&[purchase("scanned", T + 60)])
            .await
            .unwrap();
        let click = click_on(&x, id["scanned"], T, Verdict::Human);
        store
            .insert_tracking_events(&[click.clone(), click])
            .await
            .unwrap();
        let before = store.campaign_statistics(x.id).await.unwrap();
        assert_eq!(before.attributed.orders, 1, "{engine}: the human click's");
        assert_eq!(
            before.clicks,
            Engagement {
                unique_human: 1,
                unique_machine: 0,
                human_events: 2,
                machine_events: 0
            },
            "{engine}"
        );

        let stored = StoredClick {
            campaign_id: x.id,
            recipient_id: id["scanned"],
            link_id: Some(1),
            occurred_at: T,
            verdict: Verdict::Human,
        };
        assert_eq!(
            store.mark_machine(&[stored], "scanner").await.unwrap(),
            2,
            "{engine}"
        );
        let after = store.campaign_statistics(x.id).await.unwrap();
        assert_eq!(
            after.attributed,
            Attributed::default(),
            "{engine}: no human click left"
        );
        assert_eq!(
            after.clicks,
            Engagement {
                unique_human: 0,
                unique_machine: 1,
                human_events: 0,
                machine_events: 2
            },
            "{engine}"
        );
        let link = link_rows(&after);
        assert_eq!(
            link,
            [(1, 0, 0, 2)],
            "{engine}: the link's clicks moved too"
        );
    })
    .await;
}

/// The campaign's kept totals (engagement, links, attribution) lose an erased
/// recipient's share and keep everyone else's.
#[tokio::test]
async fn erasing_a_recipient_takes_them_out_of_the_kept_totals() {
    for_each_engine(|store, engine| async move {
        let people = ["kept", "erased"];
        let id = add_people(&store, &people).await;
        let (shoe, _) = products(&store).await;
        let x = campaign(&store, "x").await;
        send(&store, &x, "1;1;digest;;;").await;
        let click = |who: &str, verdict: Verdict| click_on(&x, id[who], T, verdict);
        store
            .insert_tracking_events(&[
                click("kept", Verdict::Human),
                click("erased", Verdict::Human),
                click("erased", Verdict::Human),
                click("erased", Verdict::Machine),
            ])
            .await
            .unwrap();
        let purchase = |who: &str, cents: i64| NewEvent {
            external_id: Some(format!("{who}-order")),
            recipient_id: id[who],
            kind: "purchase".into(),
            product_id: Some(shoe),
            amount_cents: Some(cents),
            occurred_at: T + 60,
            properties: serde_json::Map::new(),
        };
        store
            .insert_events(&[purchase("kept", 500), purchase("erased", 700)])
            .await
            .unwrap();
        let before = store.campaign_statistics(x.id).await.unwrap();
        assert_eq!(
            (before.clicks.unique_human, before.clicks.human_events),
            (2, 3),
            "{engine}"
        );
        assert_eq!(before.attributed.revenue_cents, 1_200, "{engine}");
        let reach = store.human_reach(x.id).await.unwrap();
        assert_eq!(
            (reach.opened, reach.clicked),
            (0, 2),
            "{engine}: the campaigns list's"
        );

        let erased = EmailAddress::parse("erased@example.com").unwrap();
        assert!(store.erase_recipient(&erased).await.unwrap(), "{engine}");
        let after = store.campaign_statistics(x.id).await.unwrap();
        assert_eq!(
            after.clicks,
            Engagement {
                unique_human: 1,
                unique_machine: 0,
                human_events: 1,
                machine_events: 0
            },
            "{engine}"
        );
        let links = link_rows(&after);
        assert_eq!(links, [(1, 1, 1, 0)], "{engine}");
        let reach = store.human_reach(x.id).await.unwrap();
        assert_eq!(
            (reach.opened, reach.clicked),
            (0, 1),
            "{engine}: the campaigns list's"
        );
        assert_eq!(
            after.attributed,
            Attributed {
                orders: 1,
                revenue_cents: 500,
                view_through_orders: 0
            },
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn recommendation_slots_show_how_often_they_were_shown_clicked_and_bought() {
    for_each_engine(|store, engine| async move {
        let people = ["ann", "bob", "cy"];
        let id = add_people(&store, &people).await;
        let (shoe, bag) = products(&store).await;
        let html = HTML.replace(
            "</body>",
            r#"{% for p in recommendations %}<a href="{{ p.url }}">{{ p.name }}</a>{% endfor %}</body>"#,
        );
        let recs = create(&store, draft(&store, "recs", "news", &html).await).await;
        // Everyone was shown the shoe first (bought with the bag) and the bag second
        // (trending).
        send(&store, &recs, &format!("1;{};digest;;{shoe}b{bag},{bag}t;", recs.template_id)).await;
        let click = |who: &str, url: &str, verdict: Verdict| NewTrackingEvent {
            kind: TrackingKind::Click,
            campaign_id: recs.id,
            recipient_id: id[who],
            link_id: Some(mailcast::links::link_id(url)),
            occurred_at: T,
            ip: None,
            user_agent: None,
            verdict,
            reason: None,
        };
        let shoe_url = "https://shop.example.com/SHOE";
        let bag_url = "https://shop.example.com/BAG";
        store
            .insert_tracking_events(&[
                click("ann", shoe_url, Verdict::Human),
                click("bob", shoe_url, Verdict::Human),
                click("cy", bag_url, Verdict::Machine),
            ])
            .await
            .unwrap();
        store
            .insert_events(&[NewEvent {
                external_id: Some("ann-shoe".into()),
                recipient_id: id["ann"],
                kind: "purchase".into(),
                product_id: Some(shoe),
                amount_cents: Some(1_000),
                occurred_at: T + 60,
                properties: serde_json::Map::new(),
            }])
            .await
            .unwrap();
        let stats = store.campaign_statistics(recs.id).await.unwrap();
        let slots: Vec<(usize, &str, i64, i64, i64)> = stats
            .recommendation_performance
            .iter()
            .map(|s| (s.position, s.reason, s.shown, s.clicked, s.orders))
            .collect();
        assert_eq!(
            slots,
            [(1, "bought_with", 3, 2, 1), (2, "trending", 3, 0, 0)],
            "{engine}: cy's click on the bag was a scanner's"
        );
    })
    .await;
}
