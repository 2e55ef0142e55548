//! Sending pace: a global rate, and per recipient domain a concurrency cap and a
//! rate. A domain that answers 421 or 4.7.x slows down by itself; the others do not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Limits for one recipient domain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DomainLimit {
    pub concurrency: usize,
    /// Messages per second; None for no pace of its own.
    pub per_second: Option<f64>,
}

impl DomainLimit {
    pub const UNLIMITED: DomainLimit = DomainLimit {
        concurrency: 1024,
        per_second: None,
    };

    /// `8/50` (8 at once, 50 per second) or `8` (8 at once, any pace).
    pub fn parse(text: &str) -> Result<DomainLimit, String> {
        let (concurrency, rate) = match text.split_once('/') {
            Some((c, r)) => (c, Some(r)),
            None => (text, None),
        };
        let concurrency: usize = concurrency
            .trim()
            .parse()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| format!("'{text}': concurrency must be a whole number above 0"))?;
        let per_second = rate
            .map(|r| r.trim().parse::<f64>().ok().filter(|r| *r > 0.0))
            .map(|r| r.ok_or_else(|| format!("'{text}': rate must be a number above 0")))
            .transpose()?;
        Ok(DomainLimit {
            concurrency,
            per_second,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct ThrottleSettings {
    /// Messages per second over all domains.
    pub global_per_second: Option<f64>,
    /// Per lower-case domain; domains not listed are only paced after a slow-down.
    pub domains: HashMap<String, DomainLimit>,
}

/// Spaces events at least `interval` apart (a GCRA-like pacer).
struct Pacer {
    base: Option<Duration>,
    interval: Option<Duration>,
    next: Instant,
}

impl Pacer {
    fn new(per_second: Option<f64>) -> Pacer {
        let base = per_second.map(|r| Duration::from_secs_f64(1.0 / r));
        Pacer {
            base,
            interval: base,
            next: Instant::now(),
        }
    }

    /// The moment the caller may go; reserves it.
    fn reserve(&mut self) -> Instant {
        let now = Instant::now();
        let Some(interval) = self.interval else {
            return now;
        };
        let slot = self.next.max(now);
        self.next = slot + interval;
        slot
    }

    /// Halves the pace (at most one message every `MAX_INTERVAL`).
    fn slow_down(&mut self) {
        let current = self.interval.unwrap_or(Duration::from_millis(100));
        self.interval = Some((current * 2).min(MAX_INTERVAL));
    }

    /// Creeps back toward the configured pace after a success.
    fn recover(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let faster = interval.mul_f64(0.9);
        self.interval = match self.base {
            Some(base) if faster <= base => Some(base),
            None if faster < Duration::from_millis(10) => None,
            _ => Some(faster),
        };
    }
}

const MAX_INTERVAL: Duration = Duration::from_secs(60);

struct DomainGate {
    permits: Arc<Semaphore>,
    pacer: Mutex<Pacer>,
}

pub struct Throttle {
    settings: ThrottleSettings,
    global: Mutex<Pacer>,
    domains: Mutex<HashMap<String, Arc<DomainGate>>>,
}

/// Held while one message is being handed over.
pub struct Permit {
    _domain: OwnedSemaphorePermit,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Throttle {
        Throttle {
            global: Mutex::new(Pacer::new(settings.global_per_second)),
            settings,
            domains: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a message to `domain` may go.
    pub async fn acquire(&self, domain: &str) -> Permit {
        let gate = self.gate(domain);
        let permit = gate
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("throttle semaphores are never closed");
        let domain_slot = gate.pacer.lock().expect("pacer lock").reserve();
        tokio::time::sleep_until(domain_slot).await;
        let global_slot = self.global.lock().expect("pacer lock").reserve();
        tokio::time::sleep_until(global_slot).await;
        Permit { _domain: permit }
    }

    /// The domain pushed back (421, 4.7.x): halve its pace.
    pub fn slow_down(&self, domain: &str) {
        self.gate(domain)
            .pacer
            .lock()
            .expect("pacer lock")
            .slow_down();
        tracing::warn!(domain, "receiving domain asked us to slow down");
    }

    pub fn succeeded(&self, domain: &str) {
        self.gate(domain)
            .pacer
            .lock()
            .expect("pacer lock")
            .recover();
    }

    /// Current spacing between messages to `domain`, if it is paced.
    pub fn interval(&self, domain: &str) -> Option<Duration> {
        self.gate(domain).pacer.lock().expect("pacer lock").interval
    }

    fn gate(&self, domain: &str) -> Arc<DomainGate> {
        let key = domain.to_ascii_lowercase();
        let mut domains = self.domains.lock().expect("domain map lock");
        domains
            .entry(key.clone())
            .or_insert_with(|| {
                let limit = self
                    .settings
                    .domains
                    .get(&key)
                    .copied()
                    .unwrap_or(DomainLimit::UNLIMITED);
                Arc::new(DomainGate {
                    permits: Arc::new(Semaphore::new(limit.concurrency.max(1))),
                    pacer: Mutex::new(Pacer::new(limit.per_second)),
                })
            })
            .clone()
    }
}

/// A reply that means "you are sending too fast": 421, or enhanced code 4.7.x.
pub fn is_slow_down(reason: &str) -> bool {
    reason.contains("(421)")
        || super::enhanced_code(reason).is_some_and(|code| code.starts_with("4.7."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_domain_limits() {
        assert_eq!(
            DomainLimit::parse("8/50"),
            Ok(DomainLimit {
                concurrency: 8,
                per_second: Some(50.0)
            })
        );
        assert_eq!(DomainLimit::parse("4").unwrap().per_second, None);
        assert!(
            DomainLimit::parse("0/5")
                .unwrap_err()
                .contains("concurrency")
        );
        assert!(DomainLimit::parse("2/fast").unwrap_err().contains("rate"));
    }

    #[test]
    fn recognises_slow_down_replies() {
        assert!(is_slow_down(
            "transient error (421): 4.7.0 too many connections"
        ));
        assert!(is_slow_down("transient error (450): 4.7.1 rate limited"));
        assert!(!is_slow_down("transient error (451): 4.3.0 try later"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_domain_is_spaced_and_a_slowed_domain_does_not_slow_the_others() {
        let mut domains = HashMap::new();
        domains.insert(
            "gmail.com".to_string(),
            DomainLimit {
                concurrency: 2,
                per_second: Some(10.0),
            },
        );
        let throttle = Throttle::new(ThrottleSettings {
            global_per_second: None,
            domains,
        });
        let start = Instant::now();
        for _ in 0..5 {
            drop(throttle.acquire("Gmail.com").await);
        }
        assert!(
            start.elapsed() >= Duration::from_millis(400),
            "{:?}",
            start.elapsed()
        );

        throttle.slow_down("outlook.com");
        throttle.slow_down("outlook.com");
        assert_eq!(
            throttle.interval("outlook.com"),
            Some(Duration::from_millis(400))
        );
        assert_eq!(throttle.interval("example.org"), None);
        let other = Instant::now();
        for _ in 0..20 {
            drop(throttle.acquire("example.org").await);
        }
        assert!(
            other.elapsed() < Duration::from_millis(1),
            "unslowed domain waited"
        );
        for _ in 0..50 {
            throttle.succeeded("outlook.com");
        }
        assert_eq!(throttle.interval("outlook.com"), None, "recovers fully");
    }

    #[tokio::test(start_paused = true)]
    async fn the_domain_concurrency_cap_holds() {
        let mut domains = HashMap::new();
        domains.insert(
            "gmail.com".to_string(),
            DomainLimit {
                concurrency: 1,
                per_second: None,
            },
        );
        let throttle = Arc::new(Throttle::new(ThrottleSettings {
            global_per_second: None,
            domains,
        }));
        let held = throttle.acquire("gmail.com").await;
        let waiting = tokio::spawn({
            let throttle = throttle.clone();
            async move { drop(throttle.acquire("gmail.com").await) }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !waiting.is_finished(),
            "a second message went while one was in flight"
        );
        drop(held);
        waiting.await.unwrap();
    }
}
