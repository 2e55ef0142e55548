//! The same store behaviour on both engines: SQLite always, PostgreSQL whenever
//! `TEST_DATABASE_URL` is set.

use crate::support;

use std::collections::HashSet;

use mailcast::domain::{CampaignKind, CampaignStatus, DeliveryStatus, EmailAddress};
use mailcast::store::{
    Campaign, CampaignSettings, Claim, ClaimedDelivery, Db, DeliveryOutcome, ExpiredLeases,
    Handing, LEDGER_LOCK, NewCampaign, NewEvent, NewProduct, NewTemplate, SqlFilter, SqlParam,
    Store,
};
use support::{for_each_engine, recipient};

async fn template(store: &Store) -> i64 {
    let template = NewTemplate {
        name: "t".into(),
        subject: "Hi {{ recipient.first_name }}".into(),
        preheader: None,
        html: "<p>Hi</p><a href=\"{{ unsubscribe_url }}\">unsubscribe</a>".into(),
        text: None,
    };
    store.upsert_template(&template).await.unwrap()
}

async fn campaign(store: &Store, name: &str, topic: Option<&str>) -> Campaign {
    campaign_of_kind(store, name, CampaignKind::Marketing, topic).await
}

/// Receipts: transactional, sent from the orders address.
/// `count` recipients `{prefix}{i}@example.com` (first name the prefix in capitals)
/// and a campaign `name` addressed to all of them, its audience frozen.
async fn frozen_campaign(store: &Store, name: &str, prefix: &str, count: usize) -> Campaign {
    let first_name = prefix.to_uppercase();
    let batch: Vec<_> = (0..count)
        .map(|i| recipient(&format!("{prefix}{i}@example.com"), &first_name, &[]))
        .collect();
    store.upsert_recipients(&batch).await.unwrap();
    let campaign = campaign(store, name, None).await;
    store
        .freeze_audience(&campaign, &SqlFilter::all())
        .await
        .unwrap();
    campaign
}

async fn transactional(store: &Store, name: &str, topic: Option<&str>) -> Campaign {
    campaign_of_kind(store, name, CampaignKind::Transactional, topic).await
}

async fn campaign_of_kind(
    store: &Store,
    name: &str,
    kind: CampaignKind,
    topic: Option<&str>,
) -> Campaign {
    let template_id = template(store).await;
    let from_email = match kind {
        CampaignKind::Transactional => "orders@shop.example.com",
        CampaignKind::Marketing => "news@shop.example.com",
    };
    let id = store
        .create_campaign(&NewCampaign {
            name: name.into(),
            kind,
            template_id,
            segment_id: None,
            topic: topic.map(str::to_string),
            from_name: "Shop".into(),
            from_email: from_email.into(),
            reply_to: None,
            send_at: None,
            settings: CampaignSettings::default(),
        })
        .await
        .unwrap();
    store.campaign(id).await.unwrap()
}

fn claim(campaign_id: i64, worker: &str, limit: i64) -> Claim {
    Claim {
        campaign_id,
        worker: worker.into(),
        limit,
        lease_seconds: 300,
        after_id: 0,
        due: mailcast::time::now(),
        cap: None,
    }
}

#[tokio::test]
async fn recipients_are_unique_regardless_of_case_and_updates_merge_attributes() {
    for_each_engine(|store, engine| async move {
        let mut first = recipient("Anna@Example.com", "Anna", &["newsletter"]);
        first.attributes.insert("age".into(), 31.into());
        let counts = store.upsert_recipients(&[first]).await.unwrap();
        assert_eq!((counts.inserted, counts.updated), (1, 0), "{engine}");

        let mut again = recipient("anna@EXAMPLE.com", "Anna-Lena", &[]);
        again.first_name = None;
        again.attributes.insert("tier".into(), "gold".into());
        let counts = store.upsert_recipients(&[again]).await.unwrap();
        assert_eq!((counts.inserted, counts.updated), (0, 1), "{engine}");

        assert_eq!(store.count_recipients().await.unwrap(), 1, "{engine}");
        let stored = store
            .recipient_by_email(&EmailAddress::parse("ANNA@example.com").unwrap())
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(
            stored.first_name.as_deref(),
            Some("Anna"),
            "{engine}: kept name"
        );
        assert_eq!(stored.attributes.0["age"], 31, "{engine}");
        assert_eq!(stored.attributes.0["tier"], "gold", "{engine}");
    })
    .await;
}

#[tokio::test]
async fn an_import_never_resubscribes_someone_who_opted_out() {
    for_each_engine(|store, engine| async move {
        store
            .upsert_recipients(&[recipient("bo@example.com", "Bo", &["newsletter"])])
            .await
            .unwrap();
        let bo = store
            .recipient_by_email(&EmailAddress::parse("bo@example.com").unwrap())
            .await
            .unwrap()
            .unwrap();
        store
            .unsubscribe(bo.id, Some("newsletter"), "link")
            .await
            .unwrap();
        store
            .upsert_recipients(&[recipient("bo@example.com", "Bo", &["newsletter"])])
            .await
            .unwrap();
        assert!(
            store.subscribed_topics(bo.id).await.unwrap().is_empty(),
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn products_upsert_by_sku_and_events_are_idempotent_by_external_id() {
    for_each_engine(|store, engine| async move {
        let product = NewProduct {
            sku: "SKU-1".into(),
            name: "Trail shoe".into(),
            url: "https://shop.example.com/p/SKU-1".into(),
            image_url: None,
            price_cents: 8999,
            currency: "USD".into(),
            category: "shoes".into(),
            in_stock: true,
        };
        let counts = store
            .upsert_products(std::slice::from_ref(&product))
            .await
            .unwrap();
        assert_eq!((counts.inserted, counts.updated), (1, 0), "{engine}");
        let counts = store
            .upsert_products(&[NewProduct {
                in_stock: false,
                ..product
            }])
            .await
            .unwrap();
        assert_eq!((counts.inserted, counts.updated), (0, 1), "{engine}");
        let products = store.products().await.unwrap();
        assert!(!products[0].in_stock, "{engine}");

        store
            .upsert_recipients(&[recipient("cy@example.com", "Cy", &[])])
            .await
            .unwrap();
        let ids = store.recipient_ids(&["cy@example.com"]).await.unwrap();
        let event = NewEvent {
            external_id: Some("ev-1".into()),
            recipient_id: ids["cy@example.com"],
            kind: "purchase".into(),
            product_id: Some(products[0].id),
            amount_cents: Some(8999),
            occurred_at: 1_700_000_000,
            properties: serde_json::Map::new(),
        };
        assert_eq!(
            store
                .insert_events(std::slice::from_ref(&event))
                .await
                .unwrap(),
            1,
            "{engine}"
        );
        assert_eq!(store.insert_events(&[event]).await.unwrap(), 0, "{engine}");
        assert_eq!(store.count_events().await.unwrap(), 1, "{engine}");
    })
    .await;
}

#[tokio::test]
async fn the_audience_is_frozen_once_and_excludes_opt_outs_and_suppressions() {
    for_each_engine(|store, engine| async move {
        store
            .upsert_recipients(&[
                recipient("a@example.com", "A", &["newsletter"]),
                recipient("b@example.com", "B", &["newsletter"]),
                recipient("c@example.com", "C", &["promotions"]),
                recipient("d@example.com", "D", &["newsletter"]),
                recipient("e@example.com", "E", &["newsletter"]),
            ])
            .await
            .unwrap();
        store
            .suppress(&EmailAddress::parse("D@example.com").unwrap(), "bounce")
            .await
            .unwrap();
        let e = store.recipient_ids(&["e@example.com"]).await.unwrap()["e@example.com"];
        store.unsubscribe(e, None, "link").await.unwrap();

        let campaign = campaign(&store, "c1", Some("newsletter")).await;
        let frozen = store
            .freeze_audience(&campaign, &SqlFilter::all())
            .await
            .unwrap();
        assert_eq!(frozen, 2, "{engine}: a and b only");
        let again = store
            .freeze_audience(&campaign, &SqlFilter::all())
            .await
            .unwrap();
        assert_eq!(again, 0, "{engine}: nobody twice");
        assert_eq!(
            store.ledger_counts(campaign.id).await.unwrap().pending,
            2,
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_segment_filter_with_bound_parameters_narrows_the_audience() {
    for_each_engine(|store, engine| async move {
        let mut us = recipient("us@example.com", "U", &[]);
        us.country = Some("US".into());
        let mut de = recipient("de@example.com", "D", &[]);
        de.country = Some("DE".into());
        store.upsert_recipients(&[us, de]).await.unwrap();
        let campaign = campaign(&store, "c2", None).await;
        let filter = SqlFilter {
            sql: "r.country = $1".into(),
            params: vec![SqlParam::Text("DE".into())],
        };
        assert_eq!(
            store.freeze_audience(&campaign, &filter).await.unwrap(),
            1,
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_claims_never_lease_one_delivery_twice() {
    for_each_engine(|store, engine| async move {
        let campaign = frozen_campaign(&store, "c3", "r", 300).await;

        let claimers = (0..4).map(|w| {
            let store = store.clone();
            let id = campaign.id;
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store.claim(&claim(id, &format!("w{w}"), 25)).await.unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|d| d.delivery_id));
                }
            })
        });
        let mut seen = HashSet::new();
        for claimer in claimers {
            for id in claimer.await.unwrap() {
                assert!(seen.insert(id), "{engine}: delivery {id} claimed twice");
            }
        }
        assert_eq!(seen.len(), 300, "{engine}");
        assert_eq!(
            store.ledger_counts(campaign.id).await.unwrap().sending,
            300,
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn outcomes_are_recorded_and_expired_leases_become_unknown_only_when_handed_to_smtp() {
    for_each_engine(|store, engine| async move {
        let campaign = frozen_campaign(&store, "c4", "o", 5).await;
        let claimed = store.claim(&claim(campaign.id, "w1", 4)).await.unwrap();
        assert_eq!(claimed.len(), 4, "{engine}");
        let id = |i: usize| claimed[i].delivery_id;
        let outcomes = [
            DeliveryOutcome::Sent {
                delivery_id: id(0),
                message_id: "<m0@x>".into(),
            },
            DeliveryOutcome::Failed {
                delivery_id: id(1),
                reason: "550 5.1.1".into(),
            },
            DeliveryOutcome::Deferred {
                delivery_id: id(2),
                retry_at: 0,
                reason: "421".into(),
            },
        ];
        store.record_outcomes("w1", &outcomes).await.unwrap();
        // Another worker's record for a delivery it does not hold changes nothing.
        store
            .record_outcomes(
                "w2",
                &[DeliveryOutcome::Sent {
                    delivery_id: id(3),
                    message_id: "<x>".into(),
                }],
            )
            .await
            .unwrap();

        let mut short = claim(campaign.id, "w3", 10);
        short.lease_seconds = -1; // already expired
        let reclaimed = store.claim(&short).await.unwrap();
        let reclaimed: HashSet<i64> = reclaimed.iter().map(|d| d.delivery_id).collect();
        assert!(
            reclaimed.contains(&id(2)),
            "{engine}: the due deferred delivery is claimable"
        );
        assert!(
            !reclaimed.contains(&id(3)),
            "{engine}: a leased delivery is not"
        );
        assert_eq!(
            reclaimed.len(),
            2,
            "{engine}: the retry and the fifth delivery"
        );
        let fifth = *reclaimed.iter().find(|d| **d != id(2)).unwrap();
        // w3 handed the fifth to SMTP; another worker cannot mark what w3 holds.
        assert_eq!(
            store
                .write_ledger("w1", &[], &[handing(fifth)])
                .await
                .unwrap(),
            Vec::<i64>::new(),
            "{engine}"
        );
        assert_eq!(
            store
                .write_ledger("w3", &[], &[handing(fifth)])
                .await
                .unwrap(),
            [fifth],
            "{engine}"
        );
        assert_eq!(
            store.expire_leases().await.unwrap(),
            ExpiredLeases {
                unknown: 1,
                returned: 1
            },
            "{engine}: w3's handed delivery is unknown, the retry it never handed goes back"
        );

        let counts = store.ledger_counts(campaign.id).await.unwrap();
        assert_eq!(
            (
                counts.sent,
                counts.failed,
                counts.unknown,
                counts.sending,
                counts.deferred
            ),
            (1, 1, 1, 1, 1),
            "{engine}: {counts:?}"
        );
        let again = store.claim(&claim(campaign.id, "w4", 10)).await.unwrap();
        let again: Vec<i64> = again.iter().map(|d| d.delivery_id).collect();
        assert_eq!(
            again,
            [id(2)],
            "{engine}: the retry is claimable again, unknown never is"
        );
    })
    .await;
}

#[tokio::test]
async fn a_claim_starts_above_its_bound_and_still_finds_what_lies_below() {
    for_each_engine(|store, engine| async move {
        let campaign = frozen_campaign(&store, "c-bound", "b", 5).await;
        let ids = |claimed: &[ClaimedDelivery]| -> Vec<i64> {
            claimed.iter().map(|d| d.delivery_id).collect()
        };
        let first = ids(&store.claim(&claim(campaign.id, "w1", 2)).await.unwrap());
        store.release_claims("w1", &first[..1]).await.unwrap();

        let above = Claim {
            after_id: first[1],
            ..claim(campaign.id, "w1", 2)
        };
        let second = ids(&store.claim(&above).await.unwrap());
        assert!(
            second.iter().all(|id| *id > first[1]),
            "{engine}: {second:?} lie above {}",
            first[1]
        );
        assert_eq!(second.len(), 2, "{engine}");

        let third = ids(&store.claim(&Claim { limit: 10, ..above }).await.unwrap());
        assert_eq!(
            third.len(),
            2,
            "{engine}: the last one above the bound, then the released one below it"
        );
        assert!(third.contains(&first[0]), "{engine}: {third:?}");
        let counts = store.ledger_counts(campaign.id).await.unwrap();
        assert_eq!(counts.pending, 0, "{engine}: {counts:?}");
    })
    .await;
}

#[tokio::test]
async fn released_claims_are_claimable_again_as_they_were() {
    for_each_engine(|store, engine| async move {
        let campaign = frozen_campaign(&store, "c-release", "r", 4).await;
        let first = store.claim(&claim(campaign.id, "w1", 2)).await.unwrap();
        store
            .record_outcomes(
                "w1",
                &[DeliveryOutcome::Deferred {
                    delivery_id: first[0].delivery_id,
                    retry_at: 0,
                    reason: "421".into(),
                }],
            )
            .await
            .unwrap();
        let held = store.claim(&claim(campaign.id, "w1", 10)).await.unwrap();
        assert_eq!(held.len(), 3, "{engine}: the due retry and two pending");
        let ids: Vec<i64> = held.iter().map(|d| d.delivery_id).collect();

        assert_eq!(
            store.release_claims("w2", &ids).await.unwrap(),
            0,
            "{engine}: another worker cannot release them"
        );
        assert_eq!(store.release_claims("w1", &ids).await.unwrap(), 3);
        let counts = store.ledger_counts(campaign.id).await.unwrap();
        assert_eq!(
            (counts.pending, counts.deferred, counts.sending),
            (2, 1, 1),
            "{engine}: {counts:?}"
        );
        let again = store.claim(&claim(campaign.id, "w2", 10)).await.unwrap();
        let mut again: Vec<(i64, i64)> =
            again.iter().map(|d| (d.delivery_id, d.attempts)).collect();
        again.sort();
        let mut expected: Vec<(i64, i64)> =
            held.iter().map(|d| (d.delivery_id, d.attempts)).collect();
        expected.sort();
        assert_eq!(
            again, expected,
            "{engine}: same rows, no attempt counted for the release"
        );
    })
    .await;
}

#[tokio::test]
async fn campaign_transitions_only_from_the_allowed_states() {
    for_each_engine(|store, engine| async move {
        let campaign = campaign(&store, "c5", None).await;
        let moved = store
            .transition_campaign(
                campaign.id,
                &[CampaignStatus::Scheduled],
                CampaignStatus::Running,
            )
            .await
            .unwrap();
        assert!(!moved, "{engine}: a draft does not start running");
        for (from, to) in [
            (CampaignStatus::Draft, CampaignStatus::Scheduled),
            (CampaignStatus::Scheduled, CampaignStatus::Running),
            (CampaignStatus::Running, CampaignStatus::Done),
        ] {
            assert!(
                store
                    .transition_campaign(campaign.id, &[from], to)
                    .await
                    .unwrap(),
                "{engine}"
            );
        }
        let done = store.campaign(campaign.id).await.unwrap();
        assert_eq!(done.status, CampaignStatus::Done, "{engine}");
        assert!(
            done.started_at.is_some() && done.finished_at.is_some(),
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn tracked_links_are_stored_once_per_campaign() {
    for_each_engine(|store, engine| async move {
        let campaign = campaign(&store, "c6", None).await;
        let links = vec![(7, "https://shop.example.com/a".to_string())];
        store.store_links(campaign.id, &links).await.unwrap();
        store.store_links(campaign.id, &links).await.unwrap();
        assert_eq!(
            store.link_url(campaign.id, 7).await.unwrap().as_deref(),
            Some("https://shop.example.com/a"),
            "{engine}"
        );
        assert_eq!(
            store.link_url(campaign.id, 8).await.unwrap(),
            None,
            "{engine}"
        );
    })
    .await;
}

#[tokio::test]
async fn transactional_messages_ignore_opt_outs_but_never_the_suppression_list() {
    for_each_engine(|store, engine| async move {
        store
            .upsert_recipients(&[
                recipient("optout@example.com", "O", &["newsletter"]),
                recipient("bounced@example.com", "B", &["newsletter"]),
                recipient("noconsent@example.com", "N", &[]),
            ])
            .await
            .unwrap();
        let ids = store.recipient_ids(&["optout@example.com"]).await.unwrap();
        store
            .unsubscribe(ids["optout@example.com"], None, "link")
            .await
            .unwrap();
        store
            .suppress(
                &EmailAddress::parse("bounced@example.com").unwrap(),
                "bounce: 5.1.1",
            )
            .await
            .unwrap();
        let transactional = transactional(&store, "receipt", Some("newsletter")).await;
        let frozen = store
            .freeze_audience(&transactional, &SqlFilter::all())
            .await
            .unwrap();
        assert_eq!(
            frozen, 2,
            "{engine}: the opted-out and unconsented get receipts; the bounced not"
        );
        let marketing = campaign(&store, "promo", Some("newsletter")).await;
        let frozen = store
            .freeze_audience(&marketing, &SqlFilter::all())
            .await
            .unwrap();
        assert_eq!(frozen, 0, "{engine}: nobody may get marketing");
    })
    .await;
}

/// Every combination of status, suppression and topic consent, frozen into a marketing
/// campaign without topic, one with a topic and a transactional one: exactly the
/// recipients the eligibility rule allows get a delivery.
#[tokio::test]
async fn the_freeze_applies_the_eligibility_rule_to_every_kind_of_recipient() {
    for_each_engine(|store, engine| async move {
        let statuses = ["active", "unsubscribed", "bounced", "erased"];
        let consents = ["subscribed", "unsubscribed", "none"];
        let mut people = Vec::new();
        for status in statuses {
            for suppressed in [false, true] {
                for consent in consents {
                    let email = format!("{status}-{suppressed}-{consent}@example.com");
                    let topics: &[&str] = if consent == "none" {
                        &["promotions"]
                    } else {
                        &["newsletter"]
                    };
                    store
                        .upsert_recipients(&[recipient(&email, "P", topics)])
                        .await
                        .unwrap();
                    let id = store.recipient_ids(&[email.as_str()]).await.unwrap()[&email];
                    if consent == "unsubscribed" {
                        store
                            .unsubscribe(id, Some("newsletter"), "test")
                            .await
                            .unwrap();
                    }
                    if suppressed {
                        let address = EmailAddress::parse(&email).unwrap();
                        store.suppress(&address, "test").await.unwrap();
                    }
                    // Statuses set last: unsubscribing from a topic leaves them alone.
                    set_status(&store, id, status).await;
                    people.push((email, status, suppressed, consent));
                }
            }
        }

        let receipts = transactional(&store, "receipts", Some("newsletter")).await;
        let cases = [
            (campaign(&store, "everyone", None).await, "marketing"),
            (
                campaign(&store, "news", Some("newsletter")).await,
                "marketing+topic",
            ),
            (receipts, "transactional"),
        ];
        for (campaign, kind) in cases {
            store
                .freeze_audience(&campaign, &SqlFilter::all())
                .await
                .unwrap();
            let frozen: HashSet<String> = store
                .deliveries_in(campaign.id, &[DeliveryStatus::Pending])
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.email)
                .collect();
            let expected: HashSet<String> = people
                .iter()
                .filter(|(_, status, suppressed, consent)| {
                    let allowed = match kind {
                        "transactional" => !matches!(*status, "bounced" | "erased"),
                        "marketing" => *status == "active",
                        _ => *status == "active" && *consent == "subscribed",
                    };
                    allowed && !suppressed
                })
                .map(|(email, ..)| email.clone())
                .collect();
            assert_eq!(frozen, expected, "{engine}: {kind}");
        }
    })
    .await;
}

/// Erasure removes the recipient's deliveries itself (the PostgreSQL ledger has no
/// foreign keys): nothing dangles, the erased address is not claimed, and a later
/// freeze or triggered send does not bring it back.
#[tokio::test]
async fn an_erased_recipient_leaves_no_delivery_and_is_not_mailed() {
    for_each_engine(|store, engine| async move {
        store
            .upsert_recipients(&[
                recipient("gone@example.com", "G", &["newsletter"]),
                recipient("stays@example.com", "S", &["newsletter"]),
            ])
            .await
            .unwrap();
        let gone = store.recipient_ids(&["gone@example.com"]).await.unwrap()["gone@example.com"];
        let campaign = campaign(&store, "c1", Some("newsletter")).await;
        let frozen = store
            .freeze_audience(&campaign, &SqlFilter::all())
            .await
            .unwrap();
        assert_eq!(frozen, 2, "{engine}");

        let address = EmailAddress::parse("gone@example.com").unwrap();
        assert!(store.erase_recipient(&address).await.unwrap(), "{engine}");
        assert_eq!(
            deliveries_of(&store, gone).await,
            0,
            "{engine}: no dangling row"
        );
        assert_eq!(
            store.ledger_counts(campaign.id).await.unwrap().pending,
            1,
            "{engine}"
        );
        let claimed = store.claim(&claim(campaign.id, "w1", 10)).await.unwrap();
        let emails: Vec<&str> = claimed.iter().map(|d| d.recipient.email.as_str()).collect();
        assert_eq!(emails, ["stays@example.com"], "{engine}");

        let later = campaign_named(&store, "c2").await;
        assert_eq!(
            store
                .freeze_audience(&later, &SqlFilter::all())
                .await
                .unwrap(),
            1,
            "{engine}"
        );
        let added = store.add_delivery(later.id, gone).await;
        assert!(!matches!(added, Ok(true)), "{engine}: {added:?}");
        assert_eq!(deliveries_of(&store, gone).await, 0, "{engine}");
    })
    .await;
}

/// A recipient's earlier data is kept when it changes (so a sent message can be shown
/// as it was rendered), not when an import repeats it, and goes with an erasure.
#[tokio::test]
async fn earlier_recipient_data_is_kept_on_change_and_erased_with_the_recipient() {
    for_each_engine(|store, engine| async move {
        let mut ada = recipient("ada@example.com", "Ada", &["newsletter"]);
        ada.attributes
            .insert("tier".into(), serde_json::json!("gold"));
        store.upsert_recipients(&[ada.clone()]).await.unwrap();
        store.upsert_recipients(&[ada.clone()]).await.unwrap();
        let id = store.recipient_ids(&["ada@example.com"]).await.unwrap()["ada@example.com"];
        let versions = store.recipient_versions(id).await.unwrap();
        assert_eq!(
            versions.len(),
            1,
            "{engine}: an unchanged import keeps nothing"
        );

        ada.country = Some("NZ".into());
        ada.attributes
            .insert("tier".into(), serde_json::json!("silver"));
        store.upsert_recipients(&[ada]).await.unwrap();
        let versions = store.recipient_versions(id).await.unwrap();
        let seen: Vec<(Option<&str>, &serde_json::Value)> = versions
            .iter()
            .map(|r| (r.country.as_deref(), &r.attributes.0["tier"]))
            .collect();
        assert_eq!(
            seen,
            [
                (Some("NZ"), &serde_json::json!("silver")),
                (None, &serde_json::json!("gold"))
            ],
            "{engine}: now, then before"
        );

        let address = EmailAddress::parse("ada@example.com").unwrap();
        assert!(store.erase_recipient(&address).await.unwrap(), "{engine}");
        assert_eq!(
            rows_of(&store, "recipient_versions", id).await,
            0,
            "{engine}"
        );
    })
    .await;
}

/// PostgreSQL: an erasure that starts while a freeze is still inserting waits for it,
/// then removes what it inserted for the erased recipient.
#[tokio::test]
async fn an_erasure_during_a_freeze_still_leaves_no_delivery() {
    let Some(db) = support::TestDb::postgres().await else {
        eprintln!("TEST_DATABASE_URL unset: test skipped");
        return;
    };
    let store = db.store.clone();
    store
        .upsert_recipients(&[recipient("gone@example.com", "G", &[])])
        .await
        .unwrap();
    let gone = store.recipient_ids(&["gone@example.com"]).await.unwrap()["gone@example.com"];
    let campaign = campaign(&store, "c1", None).await;
    let Db::Postgres(pool) = store.db() else {
        unreachable!("a PostgreSQL store")
    };
    // A freeze in flight: holds the ledger lock shared, has inserted, not committed.
    let mut freeze = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(LEDGER_LOCK)
        .execute(&mut *freeze)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO deliveries (campaign_id, recipient_id, status, created_at, updated_at)
         VALUES ($1, $2, 'pending', 0, 0)",
    )
    .bind(campaign.id)
    .bind(gone)
    .execute(&mut *freeze)
    .await
    .unwrap();

    let erasing = {
        let store = store.clone();
        tokio::spawn(async move {
            let address = EmailAddress::parse("gone@example.com").unwrap();
            store.erase_recipient(&address).await.unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!erasing.is_finished(), "the erasure waits for the freeze");
    freeze.commit().await.unwrap();
    assert!(erasing.await.unwrap());
    assert_eq!(deliveries_of(&store, gone).await, 0, "no dangling row");
    db.drop_database().await;
}

async fn deliveries_of(store: &Store, recipient_id: i64) -> i64 {
    rows_of(store, "deliveries", recipient_id).await
}

async fn rows_of(store: &Store, table: &str, recipient_id: i64) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE recipient_id = $1");
    let sql = sqlx::AssertSqlSafe(sql);
    let (n,): (i64,) = match store.db() {
        Db::Sqlite(pool) => sqlx::query_as(sql)
            .bind(recipient_id)
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sql)
            .bind(recipient_id)
            .fetch_one(pool)
            .await
            .unwrap(),
    };
    n
}

async fn campaign_named(store: &Store, name: &str) -> Campaign {
    campaign(store, name, Some("newsletter")).await
}

async fn set_status(store: &Store, recipient_id: i64, status: &str) {
    let sql = "UPDATE recipients SET status = $1 WHERE id = $2";
    match store.db() {
        Db::Sqlite(pool) => sqlx::query(sql)
            .bind(status)
            .bind(recipient_id)
            .execute(pool)
            .await
            .map(|_| ()),
        Db::Postgres(pool) => sqlx::query(sql)
            .bind(status)
            .bind(recipient_id)
            .execute(pool)
            .await
            .map(|_| ()),
    }
    .unwrap();
}

/// SQLite migration 0006 rebuilds `recipients` with AUTOINCREMENT: rows, consents (and
/// their ON DELETE CASCADE) survive, and no id an erased recipient may have held is
/// handed out again.
#[tokio::test]
async fn sqlite_recipients_rebuild_keeps_data_and_never_reuses_an_erased_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("before-0006.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.dangerous_set_table_name("mailcast_migrations");
    migrator.run_to(5, &pool).await.unwrap();
    let a = EmailAddress::parse("a@example.com").unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO recipients (id, email, email_key, email_hash, created_at, updated_at)
         VALUES (1, 'a@example.com', 'a@example.com', '{}', 0, 0),
                (2, 'b@example.com', 'b@example.com', 'hash-b', 0, 0);
         INSERT INTO topics (id, name) VALUES (1, 'news');
         INSERT INTO consents VALUES (1, 1, 'subscribed', 'test', 0), (2, 1, 'subscribed', 'test', 0);
         -- Ids 3 and 4 were erased: only their hash-only suppressions are left.
         INSERT INTO suppressions (email_hash, email, reason, created_at)
         VALUES ('hash-3', NULL, 'erased on request', 0), ('hash-4', NULL, 'erased on request', 0);",
        a.hash()
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open(&path.to_string_lossy()).await.unwrap();
    assert_eq!(store.subscribed_topics(1).await.unwrap(), ["news"]);
    assert_eq!(store.subscribed_topics(2).await.unwrap(), ["news"]);
    store
        .upsert_recipients(&[recipient("c@example.com", "C", &["news"])])
        .await
        .unwrap();
    let c = EmailAddress::parse("c@example.com").unwrap();
    let c_id = store.recipient_by_email(&c).await.unwrap().unwrap().id;
    assert!(c_id > 4, "id {c_id} may be an erased recipient's");

    assert!(store.erase_recipient(&a).await.unwrap());
    assert!(
        store.subscribed_topics(1).await.unwrap().is_empty(),
        "consents cascade"
    );
    let Db::Sqlite(pool) = store.db() else {
        unreachable!()
    };
    let broken: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'recipients'
         AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let names: Vec<&str> = indexes.iter().map(|(n,)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "recipients_country",
            "recipients_created_at",
            "recipients_email_hash"
        ]
    );
    store.close().await;
}

#[tokio::test]
async fn a_test_database_is_dropped_even_when_its_test_panics() {
    let Some(kept) = support::TestDb::postgres().await else {
        eprintln!("TEST_DATABASE_URL unset: skipped");
        return;
    };
    let url = kept.url.clone();
    drop(kept);
    assert!(
        Store::connect(&url).await.is_err(),
        "dropped without drop_database(): {url} is gone"
    );

    let panicking = support::TestDb::postgres().await.unwrap();
    let url = panicking.url.clone();
    let test = tokio::spawn(async move {
        let _db = panicking;
        panic!("a failing test");
    });
    assert!(test.await.unwrap_err().is_panic());
    assert!(
        Store::connect(&url).await.is_err(),
        "{url} is gone after its test panicked"
    );
}

fn handing(delivery_id: i64) -> Handing {
    Handing {
        delivery_id,
        rendered_with: "1;1;digest;;;".into(),
    }
}
