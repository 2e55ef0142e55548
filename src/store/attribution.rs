//! What purchases a campaign earned: each purchase goes to the campaign whose link the
//! recipient last clicked as a person (machine clicks never count) within the window
//! before it. Read from facts the store keeps as touches arrive (whatever order they
//! arrive in), so the same events give the same figures.

use std::collections::BTreeMap;

use serde::Serialize;

use super::experiments::DELIVERED_STATES;

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

/// The purchases attributed to campaign `$1`: `scope` restricts the recipients
/// (`d.recipient_id …`, its parameters from `$2`). A purchase is the campaign's when
/// the recipient's last human click at or before it, within the click window, was on
/// this campaign's message; with view-through on, also when no human click falls in
/// that window and the last message delivered to them within the view-through window
/// before it was this campaign's (and still counts as delivered). The windows are whole
/// seconds from the campaign's settings.
///
/// The latest click and delivery before each purchase are kept in `purchase_touches`
/// as touches arrive (migrations 0024/0019), so this reads one row per purchase the
/// campaign may have earned. Recomputed per request from every touch, a 1,000,000
/// recipient campaign with 10,000,000 events took 12–13 s.
pub(super) fn attributed_sql(scope: &str, windows: Windows) -> String {
    format!(
        "SELECT p.recipient_id, p.product_id, p.amount_cents, d.rendered_with, d.variant,
                {viewed} AS viewed
         {from}{scope}",
        viewed = viewed(windows),
        from = attributed_from(windows),
    )
}

/// Per variant of campaign `$1`: recipients with an attributed purchase, and the sum
/// and the sum of squares of their attributed revenue (currency units).
pub(super) fn per_variant_sql(windows: Windows) -> String {
    format!(
        "SELECT b.variant, COUNT(*), SUM(b.units), SUM(b.units * b.units)
         FROM (SELECT d.variant, CAST(SUM(p.amount_cents) AS DOUBLE PRECISION) / 100 AS units
               {from} AND d.variant IS NOT NULL
               GROUP BY d.variant, p.recipient_id) b
         GROUP BY b.variant",
        from = attributed_from(windows),
    )
}

/// `FROM … WHERE …` of the purchases campaign `$1` earned, each joined to its delivery.
fn attributed_from(windows: Windows) -> String {
    let by_click = by_click(windows.click);
    let wins = match windows.view_through {
        None => by_click,
        Some(view) => format!(
            "({by_click}) OR (COALESCE(p.click_at, 0) < p.occurred_at - {click}
               AND p.delivery_campaign = $1 AND p.delivery_at >= p.occurred_at - {view}
               AND d.status IN {DELIVERED_STATES})",
            click = windows.click
        ),
    };
    let candidates = match windows.view_through {
        None => "p.click_campaign = $1",
        Some(_) => "(p.click_campaign = $1 OR p.delivery_campaign = $1)",
    };
    format!(
        "FROM purchase_touches p
         JOIN deliveries d ON d.campaign_id = $1 AND d.recipient_id = p.recipient_id
         WHERE {candidates} AND ({wins})"
    )
}

fn by_click(click: i64) -> String {
    format!("p.click_campaign = $1 AND p.click_at >= p.occurred_at - {click}")
}

/// Whether a purchase was attributed by view-through (no human click explains it).
fn viewed(windows: Windows) -> String {
    match windows.view_through {
        None => "FALSE".to_string(),
        Some(_) => format!(
            "CASE WHEN {} THEN FALSE ELSE TRUE END",
            by_click(windows.click)
        ),
    }
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
