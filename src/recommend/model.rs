//! The built model: read-only, `Send + Sync`, shared by every rendering task.

use super::RecommendOptions;
use super::catalogue::Catalogue;
use super::index_hash::IndexSet;
use super::scoring::{Pick, Why, personal_picks};
use super::weights::{self, Decay};
use crate::render::{Because, Recommendation};
use crate::store::{BehaviourKind, Product, RecipientHistory};

/// A product similar to another one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Neighbour {
    pub index: u32,
    /// Cosine similarity of the two products' recency-weighted engagement vectors.
    pub similarity: f64,
    /// At least one recipient bought both.
    pub bought_together: bool,
}

impl Neighbour {
    pub fn new(index: u32, similarity: f64, bought_together: bool) -> Neighbour {
        Neighbour {
            index,
            similarity,
            bought_together,
        }
    }
}

/// Recency-weighted engagement per product, and the rankings derived from it.
#[derive(Debug, Clone)]
pub(crate) struct Popularity {
    /// Product indices, most popular first (ties: catalogue order).
    pub overall: Vec<usize>,
    /// The same ranking within each category.
    pub by_category: Vec<Vec<usize>>,
    /// Popularity relative to the most popular product of its category (0..=1).
    pub within_category: Vec<f64>,
}

impl Popularity {
    pub fn new(catalogue: &Catalogue, engagement: Vec<f64>) -> Popularity {
        let mut overall: Vec<usize> = (0..catalogue.len()).collect();
        overall.sort_by(|&a, &b| engagement[b].total_cmp(&engagement[a]).then(a.cmp(&b)));
        let mut by_category = vec![Vec::new(); catalogue.category_count()];
        for &index in &overall {
            by_category[catalogue.category_of(index)].push(index);
        }
        let within_category = (0..catalogue.len())
            .map(|index| {
                let top = by_category[catalogue.category_of(index)][0];
                match engagement[top] {
                    max if max > 0.0 => engagement[index] / max,
                    _ => 0.0,
                }
            })
            .collect();
        Popularity {
            overall,
            by_category,
            within_category,
        }
    }
}

/// Item-to-item recommendations from co-occurrence, with popularity fallbacks.
///
/// Build it once per campaign ([`Recommender::build`]), share it through `Arc`, and
/// call [`Recommender::for_recipient`] per recipient with the history from
/// [`Store::histories`](crate::store::Store::histories).
#[derive(Debug, Clone)]
pub struct Recommender {
    pub(crate) catalogue: Catalogue,
    pub(crate) options: RecommendOptions,
    pub(crate) decay: Decay,
    now: i64,
    pub(crate) neighbours: Vec<Vec<Neighbour>>,
    pub(crate) popularity: Popularity,
    recipients: u64,
}

impl Recommender {
    pub(crate) fn new(
        catalogue: Catalogue,
        options: RecommendOptions,
        now: i64,
        neighbours: Vec<Vec<Neighbour>>,
        popularity: Popularity,
        recipients: u64,
    ) -> Recommender {
        Recommender {
            decay: Decay::from_half_life_days(options.half_life_days),
            catalogue,
            options,
            now,
            neighbours,
            popularity,
            recipients,
        }
    }

    /// The moment the model was built for (unix seconds).
    pub fn now(&self) -> i64 {
        self.now
    }

    pub fn options(&self) -> &RecommendOptions {
        &self.options
    }

    /// Recipients with at least one interaction the model learnt from.
    pub fn recipients_seen(&self) -> u64 {
        self.recipients
    }

    /// Up to `n` in-stock products the recipient has not bought, best first, each
    /// with the reason it was chosen. Fewer than `n` only when the catalogue has
    /// fewer eligible products.
    pub fn for_recipient(&self, history: &RecipientHistory, n: usize) -> Vec<Recommendation> {
        self.for_recipient_at(history, self.now, n)
    }

    /// As [`Recommender::for_recipient`], weighting the recipient's own history by
    /// its age at `now` (the evaluation scores each held-out purchase at its time).
    pub fn for_recipient_at(
        &self,
        history: &RecipientHistory,
        now: i64,
        n: usize,
    ) -> Vec<Recommendation> {
        self.picks(history, now, n)
            .into_iter()
            .map(|pick| {
                let product = self.catalogue.product(pick.index);
                let because = self.because(pick.why);
                let with = match pick.why {
                    Why::Together { with, .. } => Some(self.catalogue.product(with)),
                    _ => None,
                };
                Recommendation {
                    reason: because.text(product, with),
                    product: product.clone(),
                    because,
                }
            })
            .collect()
    }

    /// The recipient's abandoned cart: in-stock products added within
    /// `cart_window_days` of the model's `now` and not bought since, latest first.
    pub fn cart(&self, history: &RecipientHistory) -> Vec<Product> {
        self.cart_at(history, self.now)
    }

    /// As [`Recommender::cart`], as of `now`.
    pub fn cart_at(&self, history: &RecipientHistory, now: i64) -> Vec<Product> {
        let window = self.options.cart_window_days.saturating_mul(86_400);
        history
            .cart_product_ids(now, window)
            .into_iter()
            .filter_map(|id| self.catalogue.index_of(id))
            .filter(|&index| self.catalogue.in_stock(index))
            .map(|index| self.catalogue.product(index).clone())
            .collect()
    }

    pub(crate) fn picks(&self, history: &RecipientHistory, now: i64, n: usize) -> Vec<Pick> {
        let interactions = &history.interactions;
        let engaged = weights::engagements(interactions, &self.catalogue, &self.decay, now);
        let bought = weights::bought(interactions, &self.catalogue);
        let eligible = |index: usize| self.catalogue.in_stock(index) && !bought.contains(&index);
        let mut picks: Vec<Pick> = personal_picks(self, &engaged)
            .into_iter()
            .filter(|pick| eligible(pick.index))
            .take(n)
            .collect();
        let mut chosen: IndexSet<usize> = picks.iter().map(|p| p.index).collect();
        let favourite = favourite_category(&self.catalogue, &engaged);
        if let Some(category) = favourite {
            let ranked = &self.popularity.by_category[category];
            fill(
                &mut picks,
                &mut chosen,
                n,
                ranked,
                &eligible,
                Why::Category(category),
            );
        }
        fill(
            &mut picks,
            &mut chosen,
            n,
            &self.popularity.overall,
            &eligible,
            Why::Trending,
        );
        picks
    }

    fn because(&self, why: Why) -> Because {
        let id = |index: usize| self.catalogue.product(index).id;
        match why {
            Why::Together { with, bought: true } => Because::BoughtWith(id(with)),
            Why::Together {
                with,
                bought: false,
            } => Because::ViewedWith(id(with)),
            Why::Own(BehaviourKind::CartAdd) => Because::InCart,
            Why::Own(_) => Because::Viewed,
            Why::Category(_) => Because::PopularInCategory,
            Why::Trending => Because::Trending,
        }
    }
}

/// Tops `picks` up to `n` from `ranked`, skipping ineligible and chosen products.
fn fill(
    picks: &mut Vec<Pick>,
    chosen: &mut IndexSet<usize>,
    n: usize,
    ranked: &[usize],
    eligible: &dyn Fn(usize) -> bool,
    why: Why,
) {
    for &index in ranked {
        if picks.len() >= n {
            return;
        }
        if eligible(index) && chosen.insert(index) {
            picks.push(Pick { index, why });
        }
    }
}

/// The category holding most of the recipient's engagement weight.
fn favourite_category(catalogue: &Catalogue, engaged: &[weights::Engagement]) -> Option<usize> {
    let mut totals = vec![0.0_f64; catalogue.category_count()];
    for e in engaged {
        totals[catalogue.category_of(e.index)] += e.weight;
    }
    let (category, total) = totals
        .iter()
        .enumerate()
        .max_by(|(a, x), (b, y)| x.total_cmp(y).then(b.cmp(a)))?;
    (*total > 0.0).then_some(category)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommender_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Recommender>();
    }
}
