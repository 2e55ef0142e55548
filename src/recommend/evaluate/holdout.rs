//! Splitting one recipient's interactions into training data and a held-out last
//! purchase.

use crate::store::{BehaviourKind, Interaction, RecipientHistory};

/// The view and cart add that led to a purchase belong to it: a message sent
/// before the purchase could not have known them. Interactions with the purchased
/// product in this window before the purchase are held out with it.
pub(crate) const PURCHASE_SESSION_SECONDS: i64 = 3_600;

/// A held-out purchase and what the recipient had done before it.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub product_id: i64,
    pub at: i64,
    /// Interactions strictly before the purchase, minus its session.
    pub history: RecipientHistory,
}

#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub training: Vec<Interaction>,
    pub case: Option<Case>,
}

/// Holds out the recipient's last purchase (interactions arrive oldest first) and
/// its session; everything else is training data.
pub(crate) fn split_last_purchase(interactions: &[Interaction]) -> Split {
    let Some(last) = interactions
        .iter()
        .rev()
        .find(|i| i.kind == BehaviourKind::Purchase)
        .copied()
    else {
        return Split {
            training: interactions.to_vec(),
            case: None,
        };
    };
    let held_out = |i: &Interaction| {
        i.product_id == last.product_id
            && i.at <= last.at
            && i.at >= last.at - PURCHASE_SESSION_SECONDS
    };
    let training: Vec<Interaction> = interactions
        .iter()
        .filter(|i| !held_out(i))
        .copied()
        .collect();
    let before: Vec<Interaction> = training
        .iter()
        .filter(|i| i.at < last.at)
        .copied()
        .collect();
    Split {
        training,
        case: Some(Case {
            product_id: last.product_id,
            at: last.at,
            history: RecipientHistory::new(before),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BehaviourKind::*;

    fn i(product_id: i64, kind: BehaviourKind, at: i64) -> Interaction {
        Interaction {
            product_id,
            kind,
            at,
        }
    }

    #[test]
    fn holds_out_the_last_purchase_with_its_session() {
        let events = [
            i(1, View, 0),
            i(1, Purchase, 100),
            i(3, View, 2_000),
            i(2, View, 5_000),
            i(3, View, 9_000),
            i(3, CartAdd, 9_500),
            i(3, Purchase, 10_000),
            i(2, View, 20_000),
        ];
        let split = split_last_purchase(&events);
        let case = split.case.expect("a buyer");
        assert_eq!((case.product_id, case.at), (3, 10_000));
        let before: Vec<i64> = case.history.interactions.iter().map(|i| i.at).collect();
        assert_eq!(
            before,
            vec![0, 100, 2_000, 5_000],
            "the session (9 000, 9 500) is out"
        );
        let training: Vec<i64> = split.training.iter().map(|i| i.at).collect();
        assert_eq!(training, vec![0, 100, 2_000, 5_000, 20_000]);
    }

    #[test]
    fn non_buyers_are_training_data_only() {
        let events = [i(1, View, 0), i(2, CartAdd, 10)];
        let split = split_last_purchase(&events);
        assert!(split.case.is_none());
        assert_eq!(split.training.len(), 2);
    }
}
