//! A relay that cannot be reached is reported once per interval, with how many sends
//! found it down since the last report, instead of once per message: a relay down for
//! five minutes under a 2,000-recipient campaign was 1,831 identical lines.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often an unreachable relay is reported while it stays down.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(60);

pub(super) struct UnreachableReports {
    every: Duration,
    state: Mutex<Unreported>,
}

#[derive(Default)]
struct Unreported {
    last_report: Option<Instant>,
    failures: u64,
}

impl UnreachableReports {
    pub(super) fn new(every: Duration) -> Self {
        UnreachableReports {
            every,
            state: Mutex::new(Unreported::default()),
        }
    }

    /// Counts one failed connection at `now`. Returns the number of failures to report
    /// when a report is due (the first failure, then at most one per interval).
    pub(super) fn failed(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.failures += 1;
        let due = state
            .last_report
            .is_none_or(|last| now.duration_since(last) >= self.every);
        if !due {
            return None;
        }
        state.last_report = Some(now);
        Some(std::mem::take(&mut state.failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_first_failure_then_one_count_per_interval() {
        let reports = UnreachableReports::new(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(reports.failed(start), Some(1));
        for second in 1..60 {
            assert_eq!(reports.failed(start + Duration::from_secs(second)), None);
        }
        assert_eq!(reports.failed(start + Duration::from_secs(60)), Some(60));
        assert_eq!(reports.failed(start + Duration::from_secs(61)), None);
        assert_eq!(reports.failed(start + Duration::from_secs(125)), Some(2));
    }
}
