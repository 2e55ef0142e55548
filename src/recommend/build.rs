//! One pass over the event stream: per recipient, the products they engaged with
//! feed a sparse co-occurrence table (at most products² entries) and popularity
//! counts; nothing else outlives the recipient.

use futures::stream::{BoxStream, TryStreamExt};

use super::catalogue::Catalogue;
use super::index_hash::IndexMap;
use super::model::{Neighbour, Popularity, Recommender};
use super::weights::{Decay, Engagement, engagements};
use super::{RecommendError, RecommendOptions};
use crate::store::{BehaviourKind, Interaction, Store, StoreError};

/// Neighbours kept per product, most similar first.
const MAX_NEIGHBOURS: usize = 50;

#[derive(Debug, Clone, Copy, Default)]
struct Pair {
    /// Σ over recipients of the product of both engagement weights.
    weight: f64,
    /// Recipients who bought both.
    buyers: u32,
}

/// Accumulates co-occurrence and popularity one recipient at a time.
pub(crate) struct Builder {
    catalogue: Catalogue,
    options: RecommendOptions,
    decay: Decay,
    now: i64,
    /// Σ weight² per product: the cosine denominator.
    norms: Vec<f64>,
    /// Σ weight per product: recency-weighted engagement.
    popularity: Vec<f64>,
    /// Keyed by (lower index, higher index).
    pairs: IndexMap<(u32, u32), Pair>,
    recipients: u64,
}

impl Builder {
    pub fn new(catalogue: Catalogue, options: RecommendOptions, now: i64) -> Builder {
        let n = catalogue.len();
        Builder {
            decay: Decay::from_half_life_days(options.half_life_days),
            catalogue,
            options,
            now,
            norms: vec![0.0; n],
            popularity: vec![0.0; n],
            pairs: IndexMap::default(),
            recipients: 0,
        }
    }

    /// Adds one recipient's interactions (any order).
    pub fn add(&mut self, interactions: &[Interaction]) {
        let engaged = engagements(interactions, &self.catalogue, &self.decay, self.now);
        if engaged.is_empty() {
            return;
        }
        self.recipients += 1;
        for e in &engaged {
            self.norms[e.index] += e.weight * e.weight;
            self.popularity[e.index] += e.weight;
        }
        for (k, a) in engaged.iter().enumerate() {
            for b in &engaged[k + 1..] {
                self.add_pair(a, b);
            }
        }
    }

    fn add_pair(&mut self, a: &Engagement, b: &Engagement) {
        let key = (a.index as u32, b.index as u32);
        let pair = self.pairs.entry(key).or_default();
        pair.weight += a.weight * b.weight;
        if a.kind == BehaviourKind::Purchase && b.kind == BehaviourKind::Purchase {
            pair.buyers += 1;
        }
    }

    pub fn finish(self) -> Recommender {
        let neighbours = self.neighbours();
        let popularity = Popularity::new(&self.catalogue, self.popularity);
        Recommender::new(
            self.catalogue,
            self.options,
            self.now,
            neighbours,
            popularity,
            self.recipients,
        )
    }

    /// Cosine similarity of every co-occurring pair, as sorted neighbour lists.
    fn neighbours(&self) -> Vec<Vec<Neighbour>> {
        let mut lists: Vec<Vec<Neighbour>> = vec![Vec::new(); self.catalogue.len()];
        for (&(a, b), pair) in &self.pairs {
            let denominator = (self.norms[a as usize] * self.norms[b as usize]).sqrt();
            if pair.weight <= 0.0 || denominator <= 0.0 {
                continue;
            }
            let similarity = pair.weight / denominator;
            let bought_together = pair.buyers > 0;
            lists[a as usize].push(Neighbour::new(b, similarity, bought_together));
            lists[b as usize].push(Neighbour::new(a, similarity, bought_together));
        }
        for list in &mut lists {
            list.sort_by(|x, y| {
                y.similarity
                    .total_cmp(&x.similarity)
                    .then(x.index.cmp(&y.index))
            });
            list.truncate(MAX_NEIGHBOURS);
        }
        lists
    }
}

/// Calls `each` with every recipient's interactions in turn. The stream must be
/// ordered by recipient; only one recipient's interactions are held at a time.
/// Returns how many recipients were seen.
pub(crate) async fn for_each_recipient<F>(
    mut stream: BoxStream<'_, Result<(i64, Interaction), StoreError>>,
    mut each: F,
) -> Result<u64, StoreError>
where
    F: FnMut(i64, &[Interaction]),
{
    let mut current: Option<i64> = None;
    let mut buffer: Vec<Interaction> = Vec::new();
    let mut seen = 0;
    while let Some((recipient_id, interaction)) = stream.try_next().await? {
        if current != Some(recipient_id) {
            if let Some(previous) = current {
                each(previous, &buffer);
                seen += 1;
            }
            buffer.clear();
            current = Some(recipient_id);
        }
        buffer.push(interaction);
    }
    if let Some(last) = current {
        each(last, &buffer);
        seen += 1;
    }
    Ok(seen)
}

impl Recommender {
    /// Builds the model from every interaction up to `now` and the current
    /// catalogue, with default options: one streaming query over the events.
    pub async fn build(store: &Store, now: i64) -> Result<Recommender, RecommendError> {
        Recommender::build_with(store, now, RecommendOptions::default()).await
    }

    pub async fn build_with(
        store: &Store,
        now: i64,
        options: RecommendOptions,
    ) -> Result<Recommender, RecommendError> {
        options.validate()?;
        let catalogue = Catalogue::new(store.products().await?);
        let mut builder = Builder::new(catalogue, options, now);
        for_each_recipient(store.behaviour(now), |_, interactions| {
            builder.add(interactions)
        })
        .await?;
        Ok(builder.finish())
    }
}
