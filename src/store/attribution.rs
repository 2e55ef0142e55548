//! What purchases a campaign earned: each purchase goes to the campaign whose link the
//! recipient last clicked as a person (machine clicks never count) within the window
//! before it. Computed from the events and clicks whenever asked, so the same events
//! give the same figures whatever order they arrived in.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::render::RenderedWith;

/// How long after a human click a purchase is still the campaign's.
pub const ATTRIBUTION_WINDOW_SECONDS: i64 = 5 * 86_400;

/// Orders and revenue attributed to a campaign (or a segment of it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Attributed {
    pub orders: i64,
    pub revenue_cents: i64,
    /// Of `orders`, those attributed by view-through (no human click).
    pub view_through_orders: i64,
}

/// Purchases of a product the message recommended, by its position and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecommendationCredit {
    /// 1 for the first product shown.
    pub position: usize,
    pub reason: &'static str,
    pub orders: i64,
    pub revenue_cents: i64,
}

/// One attributed purchase and the record of the message it is attributed to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct AttributedPurchase {
    pub recipient_id: i64,
    pub product_id: Option<i64>,
    pub amount_cents: i64,
    pub rendered_with: Option<String>,
    pub variant: Option<i64>,
    /// Through a message delivered but not clicked (view-through).
    pub viewed: bool,
}

/// How purchases are attributed to a campaign: its click window and, when on, its
/// view-through window (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Windows {
    pub click: i64,
    pub view_through: Option<i64>,
}

impl Windows {
    pub fn of(settings: &super::CampaignSettings) -> Windows {
        Windows {
            click: settings.attribution_window(),
            view_through: settings.view_through_window,
        }
    }
}

/// When a delivery reached the receiving server.
const DELIVERED_AT: &str = "COALESCE(d.handed_at, d.sent_at)";
const DELIVERED: &str = "d.status IN ('sent', 'bounced', 'unknown')";

/// The purchases attributed to campaign `$1`: `scope` restricts the recipients
/// (`d.recipient_id …`, its parameters from `$2`). A purchase is the campaign's when
/// the recipient's last human click within the click window before it was on this
/// campaign's message; with view-through on, also when no human click falls in that
/// window and the last message delivered to them within the view-through window before
/// it was this campaign's. The windows are whole seconds from the campaign's settings.
pub(super) fn attributed_sql(scope: &str, windows: Windows) -> String {
    let click = windows.click;
    let last_click = |purchase: &str| {
        format!(
            "SELECT t.campaign_id FROM tracking_events t
             WHERE t.recipient_id = {purchase}.recipient_id AND t.kind = 'click'
               AND t.verdict = 'human' AND t.occurred_at <= {purchase}.occurred_at
               AND t.occurred_at >= {purchase}.occurred_at - {click}
             ORDER BY t.occurred_at DESC, t.campaign_id DESC
             LIMIT 1"
        )
    };
    let clicked = format!(
        "SELECT d.recipient_id, e.product_id, COALESCE(e.amount_cents, 0) AS amount_cents,
                d.rendered_with, d.variant, FALSE AS viewed
         FROM deliveries d
         JOIN events e ON e.recipient_id = d.recipient_id AND e.kind = 'purchase'
         WHERE d.campaign_id = $1{scope}
           AND EXISTS (SELECT 1 FROM tracking_events c
                       WHERE c.campaign_id = $1 AND c.kind = 'click' AND c.verdict = 'human'
                         AND c.recipient_id = d.recipient_id)
           AND ({}) = $1",
        last_click("e")
    );
    let Some(view) = windows.view_through else {
        return clicked;
    };
    format!(
        "{clicked}
         UNION ALL
         SELECT d.recipient_id, e.product_id, COALESCE(e.amount_cents, 0) AS amount_cents,
                d.rendered_with, d.variant, TRUE AS viewed
         FROM deliveries d
         JOIN events e ON e.recipient_id = d.recipient_id AND e.kind = 'purchase'
         WHERE d.campaign_id = $1{scope} AND {DELIVERED}
           AND {DELIVERED_AT} <= e.occurred_at AND {DELIVERED_AT} >= e.occurred_at - {view}
           AND NOT EXISTS ({})
           AND (SELECT d.campaign_id FROM deliveries d
                WHERE d.recipient_id = e.recipient_id AND {DELIVERED}
                  AND {DELIVERED_AT} <= e.occurred_at
                ORDER BY {DELIVERED_AT} DESC, d.campaign_id DESC
                LIMIT 1) = $1",
        last_click("e")
    )
}

pub(super) fn totals(purchases: &[AttributedPurchase]) -> Attributed {
    Attributed {
        orders: purchases.len() as i64,
        revenue_cents: purchases.iter().map(|p| p.amount_cents).sum(),
        view_through_orders: purchases.iter().filter(|p| p.viewed).count() as i64,
    }
}

/// Attributed purchases of products the message recommended, by position and reason.
pub(super) fn by_recommendation(purchases: &[AttributedPurchase]) -> Vec<RecommendationCredit> {
    let mut credits: BTreeMap<(usize, &'static str), (i64, i64)> = BTreeMap::new();
    for purchase in purchases {
        let (Some(product), Some(text)) = (purchase.product_id, &purchase.rendered_with) else {
            continue;
        };
        let Ok(record) = RenderedWith::decode(text) else {
            continue;
        };
        let shown = record
            .recommendations
            .iter()
            .position(|(id, _)| *id == product);
        if let Some(index) = shown {
            let entry = credits
                .entry((index + 1, record.recommendations[index].1.kind()))
                .or_default();
            entry.0 += 1;
            entry.1 += purchase.amount_cents;
        }
    }
    credits
        .into_iter()
        .map(
            |((position, reason), (orders, revenue_cents))| RecommendationCredit {
                position,
                reason,
                orders,
                revenue_cents,
            },
        )
        .collect()
}
