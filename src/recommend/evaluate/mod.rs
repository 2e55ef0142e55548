//! Offline evaluation: hold out each buyer's last purchase, train on everything
//! else, and count how often the held-out product is among the top N.
//!
//! The model is trained once, in the same single pass that splits the data, on all
//! interactions minus the held-out ones (other recipients' later interactions
//! included), with `now` = the latest interaction in the store. Each recipient is
//! then scored on their interactions strictly before the held-out purchase, with
//! recency measured at the purchase time. Both recommenders drop products the
//! recipient had bought and products out of stock today.
//!
//! Unlike [`Recommender::build`], an evaluation keeps every buyer's pre-purchase
//! history in memory until the end: it is an offline tool.

mod baseline;
mod fixtures;
mod holdout;

pub use fixtures::{evaluate_fixtures, import_fixtures};

use super::build::{Builder, for_each_recipient};
use super::catalogue::Catalogue;
use super::model::Recommender;
use super::{RecommendError, RecommendOptions};
use crate::store::Store;
use baseline::PopularityBaseline;
use holdout::{Case, split_last_purchase};

/// Hit-rate@`k` of the recommender and of the popularity baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// N in hit-rate@N.
    pub k: usize,
    /// Buyers evaluated: one held-out purchase each.
    pub buyers: usize,
    pub model_hits: usize,
    pub baseline_hits: usize,
    /// The model's `now`: the latest interaction in the store (unix seconds).
    pub now: i64,
}

impl Evaluation {
    pub fn model_hit_rate(&self) -> f64 {
        rate(self.model_hits, self.buyers)
    }

    pub fn baseline_hit_rate(&self) -> f64 {
        rate(self.baseline_hits, self.buyers)
    }
}

fn rate(hits: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        hits as f64 / of as f64
    }
}

/// Evaluates on the store's events and catalogue; `options.count` is N.
pub async fn evaluate(
    store: &Store,
    options: &RecommendOptions,
) -> Result<Evaluation, RecommendError> {
    options.validate()?;
    let now = store
        .latest_interaction_at()
        .await?
        .ok_or(RecommendError::NoPurchases)?;
    let catalogue = Catalogue::new(store.products().await?);
    let mut builder = Builder::new(catalogue.clone(), options.clone(), now);
    let mut baseline = PopularityBaseline::default();
    let mut cases: Vec<Case> = Vec::new();
    for_each_recipient(store.behaviour(now), |_, interactions| {
        let split = split_last_purchase(interactions);
        builder.add(&split.training);
        baseline.add(&split.training);
        cases.extend(split.case);
    })
    .await?;
    if cases.is_empty() {
        return Err(RecommendError::NoPurchases);
    }
    let model = builder.finish();
    let ranking = baseline.ranking(&catalogue);
    let k = options.count;
    Ok(Evaluation {
        k,
        buyers: cases.len(),
        model_hits: count_hits(&cases, |case| model_ids(&model, case, k)),
        baseline_hits: count_hits(&cases, |case| {
            baseline::recommend(&ranking, &catalogue, &case.history, k)
        }),
        now,
    })
}

fn model_ids(model: &Recommender, case: &Case, k: usize) -> Vec<i64> {
    model
        .picks(&case.history, case.at, k)
        .into_iter()
        .map(|pick| model.catalogue.product(pick.index).id)
        .collect()
}

fn count_hits(cases: &[Case], recommend: impl Fn(&Case) -> Vec<i64>) -> usize {
    cases
        .iter()
        .filter(|case| recommend(case).contains(&case.product_id))
        .count()
}
