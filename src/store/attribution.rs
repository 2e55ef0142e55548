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
    pub product_id: Option<i64>,
    pub amount_cents: i64,
    pub rendered_with: Option<String>,
}

/// The purchases attributed to campaign `$1`: `scope` restricts the recipients
/// (`d.recipient_id …`, its parameters from `$2`).
pub(super) fn attributed_sql(scope: &str) -> String {
    format!(
        "SELECT e.product_id, COALESCE(e.amount_cents, 0) AS amount_cents, d.rendered_with
         FROM deliveries d
         JOIN events e ON e.recipient_id = d.recipient_id AND e.kind = 'purchase'
         WHERE d.campaign_id = $1{scope}
           AND EXISTS (SELECT 1 FROM tracking_events c
                       WHERE c.campaign_id = $1 AND c.kind = 'click' AND c.verdict = 'human'
                         AND c.recipient_id = d.recipient_id)
           AND (SELECT t.campaign_id FROM tracking_events t
                WHERE t.recipient_id = e.recipient_id AND t.kind = 'click'
                  AND t.verdict = 'human' AND t.occurred_at <= e.occurred_at
                  AND t.occurred_at >= e.occurred_at - {ATTRIBUTION_WINDOW_SECONDS}
                ORDER BY t.occurred_at DESC, t.campaign_id DESC
                LIMIT 1) = $1"
    )
}

pub(super) fn totals(purchases: &[AttributedPurchase]) -> Attributed {
    Attributed {
        orders: purchases.len() as i64,
        revenue_cents: purchases.iter().map(|p| p.amount_cents).sum(),
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
