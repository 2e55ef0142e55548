//! Shopping behaviour for recommendations: product views, cart adds and purchases,
//! either streamed for the whole store (ordered by recipient, so a reader holds one
//! recipient at a time) or loaded for a batch of recipients in one query.

use std::collections::HashMap;

use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use super::{Store, StoreError, built, on_pool};

/// The event kinds recommendations learn from, weakest signal first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BehaviourKind {
    View,
    CartAdd,
    Purchase,
}

impl BehaviourKind {
    fn from_code(code: i32) -> BehaviourKind {
        match code {
            2 => BehaviourKind::Purchase,
            1 => BehaviourKind::CartAdd,
            _ => BehaviourKind::View,
        }
    }
}

/// One thing a recipient did with a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interaction {
    pub product_id: i64,
    pub kind: BehaviourKind,
    /// Unix seconds.
    pub at: i64,
}

/// A recipient's interactions with products, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientHistory {
    pub interactions: Vec<Interaction>,
}

impl RecipientHistory {
    pub fn new(mut interactions: Vec<Interaction>) -> RecipientHistory {
        interactions.sort_by_key(|i| i.at);
        RecipientHistory { interactions }
    }

    pub fn has_bought(&self, product_id: i64) -> bool {
        self.interactions
            .iter()
            .any(|i| i.kind == BehaviourKind::Purchase && i.product_id == product_id)
    }

    /// Products added to the cart in `(now - window, now]` and not purchased at or
    /// after that cart add, most recently added first, each once.
    pub fn cart_product_ids(&self, now: i64, window_seconds: i64) -> Vec<i64> {
        let mut cart: Vec<i64> = Vec::new();
        for (position, added) in self.interactions.iter().enumerate().rev() {
            let recent = added.at > now - window_seconds && added.at <= now;
            if added.kind != BehaviourKind::CartAdd || !recent || cart.contains(&added.product_id) {
                continue;
            }
            let bought_since = self.interactions[position..]
                .iter()
                .any(|i| i.kind == BehaviourKind::Purchase && i.product_id == added.product_id);
            if !bought_since {
                cart.push(added.product_id);
            }
        }
        cart
    }
}

#[derive(sqlx::FromRow)]
struct BehaviourRow {
    recipient_id: i64,
    kind: i32,
    product_id: i64,
    occurred_at: i64,
}

impl BehaviourRow {
    fn into_pair(self) -> (i64, Interaction) {
        let interaction = Interaction {
            product_id: self.product_id,
            kind: BehaviourKind::from_code(self.kind),
            at: self.occurred_at,
        };
        (self.recipient_id, interaction)
    }
}

/// Kinds are mapped to small codes in SQL so no string is decoded per row.
macro_rules! select_interactions {
    () => {
        "SELECT recipient_id,
            CASE kind WHEN 'purchase' THEN 2 WHEN 'cart_add' THEN 1 ELSE 0 END AS kind,
            product_id, occurred_at
        FROM events
        WHERE product_id IS NOT NULL AND kind IN ('view', 'cart_add', 'purchase')"
    };
}

const STREAM: &str = concat!(
    select_interactions!(),
    " AND occurred_at <= $1 ORDER BY recipient_id, occurred_at, id"
);

impl Store {
    /// Every interaction up to `until` (unix seconds), ordered by recipient, then
    /// time: one streaming query; rows arrive as the database produces them.
    pub fn behaviour(&self, until: i64) -> BoxStream<'_, Result<(i64, Interaction), StoreError>> {
        on_pool!(self, pool => sqlx::query_as::<_, BehaviourRow>(STREAM)
            .bind(until)
            .fetch(pool)
            .map_ok(BehaviourRow::into_pair)
            .map_err(StoreError::from)
            .boxed())
    }

    /// The histories of a batch of recipients in one query. Every requested id has
    /// an entry (empty when the recipient did nothing).
    pub async fn histories(
        &self,
        recipient_ids: &[i64],
    ) -> Result<HashMap<i64, RecipientHistory>, StoreError> {
        let mut histories: HashMap<i64, RecipientHistory> = recipient_ids
            .iter()
            .map(|&id| (id, RecipientHistory::default()))
            .collect();
        if recipient_ids.is_empty() {
            return Ok(histories);
        }
        let sql = format!(
            "{} AND recipient_id IN ({}) ORDER BY recipient_id, occurred_at, id",
            select_interactions!(),
            self.json_ints(1)
        );
        let json = serde_json::to_string(recipient_ids).expect("integers serialise");
        let rows: Vec<BehaviourRow> = on_pool!(self, pool =>
            sqlx::query_as(built(&sql)).bind(&json).fetch_all(pool).await)?;
        for (recipient_id, interaction) in rows.into_iter().map(BehaviourRow::into_pair) {
            if let Some(history) = histories.get_mut(&recipient_id) {
                history.interactions.push(interaction);
            }
        }
        Ok(histories)
    }

    /// The time of the latest interaction, if any.
    pub async fn latest_interaction_at(&self) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT MAX(occurred_at) FROM events
                   WHERE product_id IS NOT NULL AND kind IN ('view', 'cart_add', 'purchase')";
        let (at,): (Option<i64>,) =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(product_id: i64, kind: BehaviourKind, at: i64) -> Interaction {
        Interaction {
            product_id,
            kind,
            at,
        }
    }

    #[test]
    fn cart_holds_recent_adds_not_bought_since() {
        use BehaviourKind::*;
        let history = RecipientHistory::new(vec![
            at(1, CartAdd, 100),
            at(1, Purchase, 110),
            at(2, CartAdd, 120),
            at(3, Purchase, 90),
            at(3, CartAdd, 130),
            at(4, CartAdd, 10),
            at(2, CartAdd, 140),
        ]);
        assert_eq!(history.cart_product_ids(150, 100), vec![2, 3]);
        assert!(history.has_bought(3));
        assert!(!history.has_bought(2));
    }
}
