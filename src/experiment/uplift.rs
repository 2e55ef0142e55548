//! Uplift against the holdout: how much more the mailed bought than the people held
//! out, with a 95 % interval. Both groups are counted over the same period (from the
//! send, for the attribution window), whether or not a purchase followed a click, so
//! the difference is what mailing caused.

use serde::Serialize;

use crate::store::GroupOutcome;

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_985;

/// An estimate and its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    fn around(estimate: f64, standard_error: f64) -> Interval {
        Interval {
            estimate,
            low: estimate - Z95 * standard_error,
            high: estimate + Z95 * standard_error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uplift {
    pub mailed: GroupOutcome,
    pub holdout: GroupOutcome,
    /// The period both groups are counted over (unix seconds).
    pub from: i64,
    pub until: i64,
    pub conversion_rate_mailed: f64,
    pub conversion_rate_holdout: f64,
    /// Conversion rate of the mailed minus that of the holdout.
    pub conversion_uplift: Interval,
    /// Revenue per recipient (currency units) of the mailed minus that of the holdout.
    pub revenue_per_recipient_uplift: Interval,
}

impl Uplift {
    /// None when either group is empty.
    pub fn of(
        mailed: GroupOutcome,
        holdout: GroupOutcome,
        from: i64,
        until: i64,
    ) -> Option<Uplift> {
        if mailed.recipients == 0 || holdout.recipients == 0 {
            return None;
        }
        let (p1, p2) = (rate(&mailed), rate(&holdout));
        let (n1, n2) = (mailed.recipients as f64, holdout.recipients as f64);
        let conversion_se = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
        let (m1, v1) = mean_and_variance(&mailed);
        let (m2, v2) = mean_and_variance(&holdout);
        Some(Uplift {
            mailed,
            holdout,
            from,
            until,
            conversion_rate_mailed: p1,
            conversion_rate_holdout: p2,
            conversion_uplift: Interval::around(p1 - p2, conversion_se),
            revenue_per_recipient_uplift: Interval::around(m1 - m2, (v1 / n1 + v2 / n2).sqrt()),
        })
    }
}

fn rate(group: &GroupOutcome) -> f64 {
    group.converted as f64 / group.recipients as f64
}

/// Mean revenue per recipient and its sample variance.
fn mean_and_variance(group: &GroupOutcome) -> (f64, f64) {
    let n = group.recipients as f64;
    let mean = group.revenue / n;
    if group.recipients < 2 {
        return (mean, 0.0);
    }
    let variance = (group.revenue_squares - n * mean * mean) / (n - 1.0);
    (mean, variance.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(recipients: i64, converted: i64, revenue: f64, revenue_squares: f64) -> GroupOutcome {
        GroupOutcome {
            recipients,
            converted,
            revenue,
            revenue_squares,
        }
    }

    #[test]
    fn a_clear_uplift_has_an_interval_above_zero() {
        // 5 % of 10,000 mailed bought for 50 each; 3 % of 1,000 held out did.
        let mailed = group(10_000, 500, 25_000.0, 500.0 * 2_500.0);
        let holdout = group(1_000, 30, 1_500.0, 30.0 * 2_500.0);
        let uplift = Uplift::of(mailed, holdout, 0, 1).unwrap();
        assert!((uplift.conversion_uplift.estimate - 0.02).abs() < 1e-12);
        assert!(uplift.conversion_uplift.low > 0.0, "{uplift:?}");
        assert!((uplift.revenue_per_recipient_uplift.estimate - 1.0).abs() < 1e-9);
        assert!(uplift.revenue_per_recipient_uplift.low > 0.0, "{uplift:?}");
    }

    #[test]
    fn no_difference_has_an_interval_around_zero() {
        let same = group(2_000, 60, 3_000.0, 60.0 * 2_500.0);
        let uplift = Uplift::of(same, same, 0, 1).unwrap();
        assert_eq!(uplift.conversion_uplift.estimate, 0.0);
        assert!(uplift.conversion_uplift.low < 0.0 && uplift.conversion_uplift.high > 0.0);
    }

    #[test]
    fn an_empty_group_has_no_uplift() {
        assert!(Uplift::of(group(10, 1, 1.0, 1.0), group(0, 0, 0.0, 0.0), 0, 1).is_none());
    }
}
