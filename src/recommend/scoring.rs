//! Personal scores. A candidate collects, per product the recipient engaged with
//! (weight w, all weights summing to W):
//!
//! - `w/W × similarity` from each engaged product it co-occurs with;
//! - `OWN_WEIGHT × w/W` when it is itself a product they viewed or put in the cart
//!   (bought products are never recommended);
//! - `CATEGORY_WEIGHT × share × p`: the share of the recipient's weight in the
//!   candidate's category times the candidate's popularity relative to its
//!   category's best seller (a prior, so similar products the crowd prefers win).
//!
//! The reason shown is the recipient's own view or cart add of the product when
//! there is one; otherwise the signal with the largest total for that product,
//! named by its largest single contribution (the engaged product that co-occurs
//! most, or the category). The weights were chosen on
//! a data set generated with another seed than the fixtures (EVALUATION.md).

use super::index_hash::IndexMap;
use super::model::Recommender;
use super::weights::Engagement;
use crate::store::BehaviourKind;

/// Weight of the recipient's own views and cart adds of a product.
const OWN_WEIGHT: f64 = 0.5;
/// Weight of the category popularity prior.
const CATEGORY_WEIGHT: f64 = 1.0;
/// Products per category the prior considers, most popular first.
const CATEGORY_DEPTH: usize = 50;

/// Why a product was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// Co-occurs with a product the recipient engaged with (`bought`: someone bought
    /// both, otherwise they were only viewed together).
    Together { with: usize, bought: bool },
    /// The recipient's own view or cart add.
    Own(BehaviourKind),
    /// Popular in this category (the recipient's favourite, or the candidate's).
    Category(usize),
    /// Popular overall.
    Trending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pick {
    pub index: usize,
    pub why: Why,
}

impl Why {
    const OWN: usize = 1;

    /// Which of the three signals this is (see the module documentation).
    fn signal(self) -> usize {
        match self {
            Why::Together { .. } => 0,
            Why::Own(_) => Why::OWN,
            Why::Category(_) | Why::Trending => 2,
        }
    }
}

/// One signal's total for a candidate, and its largest single contribution.
#[derive(Debug, Clone, Copy)]
struct Signal {
    total: f64,
    best: f64,
    why: Why,
}

#[derive(Debug, Clone, Copy, Default)]
struct Candidate {
    score: f64,
    signals: [Option<Signal>; 3],
}

impl Candidate {
    fn add(&mut self, amount: f64, why: Why) {
        self.score += amount;
        let slot = &mut self.signals[why.signal()];
        let signal = slot.get_or_insert(Signal {
            total: 0.0,
            best: 0.0,
            why,
        });
        signal.total += amount;
        if amount > signal.best {
            signal.best = amount;
            signal.why = why;
        }
    }

    /// The recipient's own view or cart add when there is one (the most specific
    /// explanation); otherwise the signal that contributed most, named by its
    /// largest contribution (ties: co-occurrence first).
    fn why(&self) -> Why {
        if let Some(own) = self.signals[Why::OWN] {
            return own.why;
        }
        let mut strongest: Option<Signal> = None;
        for signal in self.signals.iter().flatten() {
            if strongest.is_none_or(|s| signal.total > s.total) {
                strongest = Some(*signal);
            }
        }
        strongest.map_or(Why::Trending, |s| s.why)
    }
}

#[derive(Default)]
struct Scores(IndexMap<usize, Candidate>);

impl Scores {
    fn add(&mut self, index: usize, amount: f64, why: Why) {
        if amount > 0.0 {
            self.0.entry(index).or_default().add(amount, why);
        }
    }

    /// Best first; ties in catalogue order.
    fn ranked(self) -> Vec<Pick> {
        let mut all: Vec<(usize, Candidate)> = self.0.into_iter().collect();
        all.sort_by(|(a, x), (b, y)| y.score.total_cmp(&x.score).then(a.cmp(b)));
        all.into_iter()
            .map(|(index, c)| Pick {
                index,
                why: c.why(),
            })
            .collect()
    }
}

/// Every product with a positive personal score, best first, not yet filtered.
pub(crate) fn personal_picks(model: &Recommender, engaged: &[Engagement]) -> Vec<Pick> {
    let total: f64 = engaged.iter().map(|e| e.weight).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let mut scores = Scores::default();
    for e in engaged {
        let share = e.weight / total;
        add_neighbours(model, &mut scores, e.index, share);
        scores.add(e.index, OWN_WEIGHT * share, Why::Own(e.kind));
    }
    add_category_prior(model, &mut scores, engaged, total);
    scores.ranked()
}

fn add_neighbours(model: &Recommender, scores: &mut Scores, index: usize, share: f64) {
    for n in &model.neighbours[index] {
        let why = Why::Together {
            with: index,
            bought: n.bought_together,
        };
        scores.add(n.index as usize, share * n.similarity, why);
    }
}

fn add_category_prior(
    model: &Recommender,
    scores: &mut Scores,
    engaged: &[Engagement],
    total: f64,
) {
    let catalogue = &model.catalogue;
    let mut shares = vec![0.0_f64; catalogue.category_count()];
    for e in engaged {
        shares[catalogue.category_of(e.index)] += e.weight / total;
    }
    for (category, &share) in shares.iter().enumerate() {
        if share <= 0.0 {
            continue;
        }
        for &index in model.popularity.by_category[category]
            .iter()
            .take(CATEGORY_DEPTH)
        {
            let prior = model.popularity.within_category[index];
            scores.add(
                index,
                CATEGORY_WEIGHT * share * prior,
                Why::Category(category),
            );
        }
    }
}
