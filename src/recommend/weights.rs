//! How much one recipient's interactions say about each product: the strongest
//! interaction per product (purchase > cart add > view), fading with age.

use super::catalogue::Catalogue;
use super::index_hash::IndexSet;
use crate::store::{BehaviourKind, Interaction};

/// Weight of each kind of interaction before recency decay.
pub(crate) fn kind_weight(kind: BehaviourKind) -> f64 {
    match kind {
        BehaviourKind::Purchase => 1.0,
        BehaviourKind::CartAdd => 0.5,
        BehaviourKind::View => 0.25,
    }
}

/// At most this many products of one recipient take part in co-occurrence and
/// scoring (the strongest ones): bounds the work for a recipient who looked at
/// everything.
pub(crate) const MAX_ENGAGEMENTS: usize = 50;

/// Exponential decay with a half-life.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decay {
    rate_per_second: f64,
}

impl Decay {
    pub fn from_half_life_days(days: f64) -> Decay {
        Decay {
            rate_per_second: std::f64::consts::LN_2 / (days * 86_400.0),
        }
    }

    /// 1 at `now` (or later), 0.5 one half-life before.
    pub fn factor(&self, at: i64, now: i64) -> f64 {
        let age = now.saturating_sub(at).max(0) as f64;
        (-age * self.rate_per_second).exp()
    }
}

/// One recipient's engagement with one product.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Engagement {
    pub index: usize,
    /// The strongest decayed interaction weight.
    pub weight: f64,
    /// The strongest kind of interaction, whatever its age.
    pub kind: BehaviourKind,
}

/// Engagements with catalogue products, by product index; the [`MAX_ENGAGEMENTS`]
/// strongest when there are more.
pub(crate) fn engagements(
    interactions: &[Interaction],
    catalogue: &Catalogue,
    decay: &Decay,
    now: i64,
) -> Vec<Engagement> {
    let mut all: Vec<Engagement> = interactions
        .iter()
        .filter_map(|interaction| {
            let index = catalogue.index_of(interaction.product_id)?;
            let weight = kind_weight(interaction.kind) * decay.factor(interaction.at, now);
            Some(Engagement {
                index,
                weight,
                kind: interaction.kind,
            })
        })
        .collect();
    all.sort_unstable_by_key(|e| e.index);
    all.dedup_by(|next, kept| {
        let same = next.index == kept.index;
        if same {
            kept.weight = kept.weight.max(next.weight);
            kept.kind = kept.kind.max(next.kind);
        }
        same
    });
    strongest(all)
}

fn strongest(mut list: Vec<Engagement>) -> Vec<Engagement> {
    if list.len() > MAX_ENGAGEMENTS {
        list.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.index.cmp(&b.index)));
        list.truncate(MAX_ENGAGEMENTS);
        list.sort_by_key(|e| e.index);
    }
    list
}

/// Indices of every catalogue product the recipient ever bought.
pub(crate) fn bought(interactions: &[Interaction], catalogue: &Catalogue) -> IndexSet<usize> {
    interactions
        .iter()
        .filter(|i| i.kind == BehaviourKind::Purchase)
        .filter_map(|i| catalogue.index_of(i.product_id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_halves_every_half_life() {
        let decay = Decay::from_half_life_days(30.0);
        let now = 1_000_000_000;
        assert!((decay.factor(now, now) - 1.0).abs() < 1e-12);
        assert!((decay.factor(now - 30 * 86_400, now) - 0.5).abs() < 1e-9);
        assert!((decay.factor(now + 10, now) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn purchase_outweighs_cart_add_outweighs_view() {
        use BehaviourKind::*;
        assert!(kind_weight(Purchase) > kind_weight(CartAdd));
        assert!(kind_weight(CartAdd) > kind_weight(View));
    }
}
