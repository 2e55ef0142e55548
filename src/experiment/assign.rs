//! Which part of an experiment's audience a recipient falls in. The draws come from
//! SHA-256 of (campaign, recipient): every worker, every retry and every build draws
//! the same, and the arms are independent of the order recipients were added in.

use sha2::{Digest, Sha256};

use super::design::{Arm, Experiment, WHOLE};

/// The recipient's arm in the campaign's experiment.
pub fn arm(experiment: &Experiment, campaign_id: i64, recipient_id: i64) -> Arm {
    let (bucket, pick) = draws(campaign_id, recipient_id);
    experiment.arm(bucket, pick)
}

/// A bucket in `0..WHOLE` (holdout, test or rest) and an independent pick (the variant).
pub fn draws(campaign_id: i64, recipient_id: i64) -> (u32, u64) {
    let digest = Sha256::new()
        .chain_update(b"mailcast experiment arm")
        .chain_update(campaign_id.to_be_bytes())
        .chain_update(recipient_id.to_be_bytes())
        .finalize();
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[at..at + 8]);
        u64::from_be_bytes(bytes)
    };
    ((word(0) % u64::from(WHOLE)) as u32, word(8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::design::Variant;

    fn experiment(variants: usize, test_share: Option<u32>, holdout: u32) -> Experiment {
        Experiment {
            variants: vec![Variant::default(); variants],
            test_share,
            wait_seconds: 0,
            metric: "clicks".into(),
            holdout,
        }
    }

    #[test]
    fn the_same_recipient_always_draws_the_same() {
        assert_eq!(draws(7, 42), draws(7, 42));
        assert_ne!(draws(7, 42), draws(8, 42));
    }

    #[test]
    fn arms_take_their_shares_of_consecutive_ids() {
        let e = experiment(3, Some(2_000), 500);
        let mut counts = [0u32; 5];
        for id in 1..=100_000 {
            let slot = match arm(&e, 3, id) {
                Arm::Holdout => 0,
                Arm::Rest => 1,
                Arm::Variant(v) => 2 + v,
            };
            counts[slot] += 1;
        }
        let near = |n: u32, expected: f64| (n as f64 - expected).abs() < expected * 0.05;
        assert!(near(counts[0], 5_000.0), "{counts:?}");
        assert!(near(counts[1], 75_000.0), "{counts:?}");
        for variant in &counts[2..] {
            assert!(near(*variant, 20_000.0 / 3.0), "{counts:?}");
        }
    }
}
