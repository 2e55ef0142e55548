//! The popularity baseline: the most purchased products in the training data
//! (plain counts), minus what the recipient bought and what is out of stock.

use std::collections::HashMap;

use super::super::catalogue::Catalogue;
use super::super::weights;
use crate::store::{BehaviourKind, Interaction, RecipientHistory};

#[derive(Debug, Default)]
pub(crate) struct PopularityBaseline {
    purchases: HashMap<i64, u64>,
}

impl PopularityBaseline {
    pub fn add(&mut self, interactions: &[Interaction]) {
        for i in interactions
            .iter()
            .filter(|i| i.kind == BehaviourKind::Purchase)
        {
            *self.purchases.entry(i.product_id).or_default() += 1;
        }
    }

    /// Catalogue indices, most purchased first (ties: catalogue order).
    pub fn ranking(&self, catalogue: &Catalogue) -> Vec<usize> {
        let count = |index: usize| {
            let id = catalogue.product(index).id;
            self.purchases.get(&id).copied().unwrap_or(0)
        };
        let mut ranked: Vec<usize> = (0..catalogue.len()).collect();
        ranked.sort_by(|&a, &b| count(b).cmp(&count(a)).then(a.cmp(&b)));
        ranked
    }
}

/// The top `n` of `ranking` that the recipient may be offered.
pub(crate) fn recommend(
    ranking: &[usize],
    catalogue: &Catalogue,
    history: &RecipientHistory,
    n: usize,
) -> Vec<i64> {
    let bought = weights::bought(&history.interactions, catalogue);
    ranking
        .iter()
        .copied()
        .filter(|&index| catalogue.in_stock(index) && !bought.contains(&index))
        .take(n)
        .map(|index| catalogue.product(index).id)
        .collect()
}
