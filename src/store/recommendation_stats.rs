//! How a campaign's recommended products did, by position and reason: how often each
//! slot was shown, how many recipients clicked the product it showed (as people), and
//! the purchases of it attributed to the campaign. The "popular" reasons (`trending`,
//! `popular_in_category`) are the fallback a recipient without history gets, so the
//! personal reasons are read against them.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::attribution::RecommendationCredit;
use super::experiments::DELIVERED_STATES;
use super::{Store, StoreError, built, on_pool};
use crate::render::RenderedWith;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecommendationPerformance {
    /// 1 for the first product shown.
    pub position: usize,
    pub reason: &'static str,
    /// Delivered messages that showed a product in this slot for this reason.
    pub shown: i64,
    /// Of them, recipients who clicked that product's link as a person.
    pub clicked: i64,
    pub click_rate: f64,
    /// Attributed purchases of the product shown.
    pub orders: i64,
    pub revenue_cents: i64,
    /// Orders per message shown.
    pub purchase_rate: f64,
}

type Slot = (usize, &'static str);

impl Store {
    /// Per (position, reason) of the recommendations the campaign's delivered messages
    /// showed; `credits` are the attributed purchases by slot. Empty when no message
    /// recorded a recommendation.
    pub(super) async fn recommendation_performance(
        &self,
        campaign_id: i64,
        credits: &[RecommendationCredit],
    ) -> Result<Vec<RecommendationPerformance>, StoreError> {
        let shown = self.shown_slots(campaign_id).await?;
        if shown.is_empty() {
            return Ok(Vec::new());
        }
        let clicked = self.clicked_slots(campaign_id, &shown).await?;
        let mut slots: BTreeMap<Slot, RecommendationPerformance> = BTreeMap::new();
        for records in shown.values() {
            for (slot, _) in records {
                slots.entry(*slot).or_insert_with(|| empty(*slot)).shown += 1;
            }
        }
        for (slot, n) in clicked {
            slots.entry(slot).or_insert_with(|| empty(slot)).clicked = n;
        }
        for credit in credits {
            let slot = (credit.position, credit.reason);
            let row = slots.entry(slot).or_insert_with(|| empty(slot));
            (row.orders, row.revenue_cents) = (credit.orders, credit.revenue_cents);
        }
        Ok(slots.into_values().map(rates).collect())
    }

    /// Each delivered recipient's shown products: ((position, reason), product).
    async fn shown_slots(
        &self,
        campaign_id: i64,
    ) -> Result<HashMap<i64, Vec<(Slot, i64)>>, StoreError> {
        let sql = format!(
            "SELECT recipient_id, rendered_with FROM deliveries
             WHERE campaign_id = $1 AND rendered_with IS NOT NULL
               AND status IN {DELIVERED_STATES}"
        );
        let rows: Vec<(i64, String)> = on_pool!(self, pool =>
            sqlx::query_as(built(&sql)).bind(campaign_id).fetch_all(pool).await)?;
        let mut shown = HashMap::new();
        for (recipient, text) in rows {
            let Ok(record) = RenderedWith::decode(&text) else {
                continue;
            };
            let slots: Vec<(Slot, i64)> = record
                .recommendations
                .iter()
                .enumerate()
                .map(|(index, (product, because))| ((index + 1, because.kind()), *product))
                .collect();
            if !slots.is_empty() {
                shown.insert(recipient, slots);
            }
        }
        Ok(shown)
    }

    /// Unique human clickers per slot: a click on the link of the product the slot
    /// showed that recipient (links are identified by their URL, as rendered).
    async fn clicked_slots(
        &self,
        campaign_id: i64,
        shown: &HashMap<i64, Vec<(Slot, i64)>>,
    ) -> Result<HashMap<Slot, i64>, StoreError> {
        let sql = "SELECT DISTINCT recipient_id, link_id FROM tracking_events
                   WHERE campaign_id = $1 AND kind = 'click' AND verdict = 'human'
                     AND link_id IS NOT NULL";
        let clicks: Vec<(i64, i64)> = on_pool!(self, pool =>
            sqlx::query_as(sql).bind(campaign_id).fetch_all(pool).await)?;
        let products: HashSet<i64> = shown.values().flatten().map(|(_, p)| *p).collect();
        let products: Vec<i64> = products.into_iter().collect();
        let link_of: HashMap<i64, i64> = self
            .products_by_id(&products)
            .await?
            .into_iter()
            .map(|(id, product)| (id, crate::links::link_id(&product.url)))
            .collect();
        let mut clicked: HashMap<Slot, i64> = HashMap::new();
        let clicks: HashSet<(i64, i64)> = clicks.into_iter().collect();
        for (recipient, slots) in shown {
            for (slot, product) in slots {
                let link = link_of.get(product);
                if link.is_some_and(|link| clicks.contains(&(*recipient, *link))) {
                    *clicked.entry(*slot).or_default() += 1;
                }
            }
        }
        Ok(clicked)
    }
}

fn empty((position, reason): Slot) -> RecommendationPerformance {
    RecommendationPerformance {
        position,
        reason,
        shown: 0,
        clicked: 0,
        click_rate: 0.0,
        orders: 0,
        revenue_cents: 0,
        purchase_rate: 0.0,
    }
}

fn rates(mut row: RecommendationPerformance) -> RecommendationPerformance {
    if row.shown > 0 {
        row.click_rate = row.clicked as f64 / row.shown as f64;
        row.purchase_rate = row.orders as f64 / row.shown as f64;
    }
    row
}
