use super::RecommendError;

/// Settings a campaign may change. The model's fixed weights are documented where
/// they are used (`weights.rs`, `scoring.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendOptions {
    /// Products per recipient (N).
    pub count: usize,
    /// An interaction loses half its weight every `half_life_days` before `now`.
    pub half_life_days: f64,
    /// Abandoned cart: cart adds within this many days with no purchase since.
    pub cart_window_days: i64,
}

impl Default for RecommendOptions {
    fn default() -> Self {
        RecommendOptions {
            count: 4,
            half_life_days: 60.0,
            cart_window_days: 14,
        }
    }
}

impl RecommendOptions {
    pub fn validate(&self) -> Result<(), RecommendError> {
        if self.count == 0 {
            return Err(RecommendError::Options("count must be at least 1".into()));
        }
        if !(self.half_life_days.is_finite() && self.half_life_days > 0.0) {
            return Err(RecommendError::Options(
                "half_life_days must be a positive number".into(),
            ));
        }
        if self.cart_window_days <= 0 {
            return Err(RecommendError::Options(
                "cart_window_days must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
