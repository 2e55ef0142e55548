//! Counters for `/metrics`, in the Prometheus text format (version 0.0.4).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{LedgerCounts, TrackingKind, Verdict, Waiting};

#[derive(Default)]
pub(crate) struct Metrics {
    /// route → status → requests answered.
    requests: RwLock<HashMap<String, HashMap<u16, AtomicU64>>>,
    /// [kind][verdict] → events stored.
    events: [[AtomicU64; 2]; 3],
    write_failures: AtomicU64,
    /// Bounce and complaint rates of the campaigns being watched.
    pub feedback: super::feedback_metrics::FeedbackCache,
}

/// What a scrape reads from elsewhere at scrape time.
pub(crate) struct Snapshot {
    pub events_queued: usize,
    pub store_up: bool,
    pub deliveries: Option<LedgerCounts>,
    pub waiting: Option<Waiting>,
    pub feedback: Option<std::sync::Arc<Vec<super::feedback_metrics::FeedbackRow>>>,
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16) {
        if let Some(counter) = self
            .requests
            .read()
            .expect("metrics lock")
            .get(route)
            .and_then(|by_status| by_status.get(&status))
        {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut requests = self.requests.write().expect("metrics lock");
        requests
            .entry(route.to_string())
            .or_default()
            .entry(status)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn event_written(&self, kind: TrackingKind, verdict: Verdict) {
        self.events[kind_index(kind)][verdict_index(verdict)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn write_failed(&self) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut out = String::with_capacity(4096);
        self.render_requests(&mut out);
        self.render_events(&mut out, snapshot);
        render_store(&mut out, snapshot);
        out
    }

    fn render_requests(&self, out: &mut String) {
        header(
            out,
            "mailcast_http_requests_total",
            "counter",
            "HTTP requests answered, by route and status.",
        );
        let requests = self.requests.read().expect("metrics lock");
        let mut rows: Vec<(&String, u16, u64)> = requests
            .iter()
            .flat_map(|(route, by_status)| {
                by_status
                    .iter()
                    .map(move |(status, n)| (route, *status, n.load(Ordering::Relaxed)))
            })
            .collect();
        rows.sort();
        for (route, status, n) in rows {
            let _ = writeln!(
                out,
                "mailcast_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
    }

    fn render_events(&self, out: &mut String, snapshot: &Snapshot) {
        header(
            out,
            "mailcast_tracking_events_written_total",
            "counter",
            "Tracking events stored, by kind and verdict.",
        );
        for kind in TrackingKind::ALL {
            for verdict in [Verdict::Human, Verdict::Machine] {
                let n =
                    self.events[kind_index(kind)][verdict_index(verdict)].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "mailcast_tracking_events_written_total{{kind=\"{}\",verdict=\"{}\"}} {n}",
                    kind.as_str(),
                    verdict.as_str()
                );
            }
        }
        header(
            out,
            "mailcast_tracking_events_queued",
            "gauge",
            "Tracking events waiting for the writer.",
        );
        let _ = writeln!(
            out,
            "mailcast_tracking_events_queued {}",
            snapshot.events_queued
        );
        header(
            out,
            "mailcast_tracking_write_failures_total",
            "counter",
            "Failed attempts to store a batch of tracking events.",
        );
        let failures = self.write_failures.load(Ordering::Relaxed);
        let _ = writeln!(out, "mailcast_tracking_write_failures_total {failures}");
    }
}

fn render_store(out: &mut String, snapshot: &Snapshot) {
    header(
        out,
        "mailcast_store_up",
        "gauge",
        "1 when the store answered this scrape.",
    );
    let _ = writeln!(out, "mailcast_store_up {}", u8::from(snapshot.store_up));
    let Some(counts) = snapshot.deliveries else {
        return;
    };
    header(
        out,
        "mailcast_delivery_queue_depth",
        "gauge",
        "Deliveries waiting to be sent: pending plus deferred.",
    );
    let _ = writeln!(
        out,
        "mailcast_delivery_queue_depth {}",
        counts.pending + counts.deferred
    );
    header(
        out,
        "mailcast_deliveries",
        "gauge",
        "Deliveries in the ledger by state (sends by outcome).",
    );
    for (status, n) in [
        ("pending", counts.pending),
        ("sending", counts.sending),
        ("sent", counts.sent),
        ("deferred", counts.deferred),
        ("failed", counts.failed),
        ("suppressed", counts.suppressed),
        ("unknown", counts.unknown),
        ("bounced", counts.bounced),
    ] {
        let _ = writeln!(out, "mailcast_deliveries{{status=\"{status}\"}} {n}");
    }
    render_waiting(out, snapshot);
    if let Some(rows) = &snapshot.feedback {
        super::feedback_metrics::render(out, rows);
    }
}

fn render_waiting(out: &mut String, snapshot: &Snapshot) {
    let Some(waiting) = snapshot.waiting else {
        return;
    };
    header(
        out,
        "mailcast_deliveries_waiting",
        "gauge",
        "Deferred deliveries waiting for their local send time, quiet hours or the frequency cap.",
    );
    for (reason, n) in [
        ("local_time", waiting.local_time),
        ("quiet_hours", waiting.quiet_hours),
        ("frequency_cap", waiting.capped_deferred),
    ] {
        let _ = writeln!(
            out,
            "mailcast_deliveries_waiting{{reason=\"{reason}\"}} {n}"
        );
    }
    header(
        out,
        "mailcast_deliveries_capped",
        "gauge",
        "Deliveries the frequency cap skipped (suppressed).",
    );
    let _ = writeln!(out, "mailcast_deliveries_capped {}", waiting.capped_skipped);
}

pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escape backslash, double quote and line feed.
pub(super) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn kind_index(kind: TrackingKind) -> usize {
    match kind {
        TrackingKind::Open => 0,
        TrackingKind::Click => 1,
        TrackingKind::Unsubscribe => 2,
    }
}

fn verdict_index(verdict: Verdict) -> usize {
    match verdict {
        Verdict::Human => 0,
        Verdict::Machine => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_label() {
        let metrics = Metrics::default();
        metrics.request("/c/{token}", 302);
        metrics.request("/c/{token}", 302);
        metrics.request("/c/{token}", 404);
        metrics.event_written(TrackingKind::Click, Verdict::Machine);
        let text = metrics.render(&Snapshot {
            events_queued: 3,
            store_up: true,
            deliveries: Some(LedgerCounts {
                pending: 4,
                deferred: 1,
                sent: 9,
                ..LedgerCounts::default()
            }),
            waiting: Some(Waiting {
                quiet_hours: 2,
                capped_skipped: 1,
                ..Waiting::default()
            }),
            feedback: None,
        });
        for line in [
            "mailcast_http_requests_total{route=\"/c/{token}\",status=\"302\"} 2",
            "mailcast_http_requests_total{route=\"/c/{token}\",status=\"404\"} 1",
            "mailcast_tracking_events_written_total{kind=\"click\",verdict=\"machine\"} 1",
            "mailcast_tracking_events_queued 3",
            "mailcast_delivery_queue_depth 5",
            "mailcast_deliveries{status=\"sent\"} 9",
            "mailcast_deliveries_waiting{reason=\"quiet_hours\"} 2",
            "mailcast_deliveries_capped 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
