use std::time::Duration;

/// Postfix-like backoff for deferred deliveries: the first retry after `first`,
/// doubling up to `max`, giving up once `lifetime` has passed since the delivery was
/// queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
    pub lifetime: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_secs(300),
            max: Duration::from_secs(4000),
            lifetime: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// When to try again after attempt number `attempts` (1-based) failed
    /// temporarily, or None when the delivery should give up.
    pub fn next_attempt(&self, attempts: i64, queued_at: i64, now: i64) -> Option<i64> {
        let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
        let delay = self
            .first
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max);
        let at = now + delay.as_secs().max(1) as i64;
        (at - queued_at <= self.lifetime.as_secs() as i64).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_doubling_up_to_the_cap_then_gives_up() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.next_attempt(1, 0, 0), Some(300));
        assert_eq!(policy.next_attempt(2, 0, 0), Some(600));
        assert_eq!(policy.next_attempt(4, 0, 0), Some(2400));
        assert_eq!(policy.next_attempt(5, 0, 0), Some(4000));
        assert_eq!(policy.next_attempt(50, 0, 0), Some(4000));
        let three_days = 3 * 24 * 3600;
        assert_eq!(policy.next_attempt(9, 0, three_days - 100), None);
    }
}
