//! The bounce and complaint rates `/metrics` reports per campaign and per declared
//! segment, for the campaigns whose reputation still moves: sending, paused, or
//! finished within the last week. Read at most once a minute (by the server's clock),
//! since each rate is a count over the campaign's ledger.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::store::{Feedback, Store, StoreError};
use crate::time::Clock;

/// How long a reading serves scrapes.
const FRESH_FOR: i64 = 60;
/// Finished campaigns are reported this long after they finish.
const WATCHED_FOR: i64 = 7 * 86_400;
/// At most this many campaigns (the newest), so the series stay few.
const MAX_CAMPAIGNS: i64 = 50;

/// One campaign's feedback, for everyone (`segment` None) or one declared segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeedbackRow {
    pub campaign_id: i64,
    pub campaign: String,
    pub segment: Option<String>,
    pub feedback: Feedback,
}

/// The last reading and when (server clock) it was taken.
#[derive(Default)]
pub(crate) struct FeedbackCache {
    last: Mutex<Option<(i64, Arc<Vec<FeedbackRow>>)>>,
}

impl FeedbackCache {
    /// The rows, read again when the last reading is a minute old.
    pub async fn rows(
        &self,
        store: &Store,
        clock: &Clock,
    ) -> Result<Arc<Vec<FeedbackRow>>, StoreError> {
        let now = clock.now();
        let mut last = self.last.lock().await;
        if let Some((at, rows)) = last.as_ref()
            && now - at < FRESH_FOR
        {
            return Ok(rows.clone());
        }
        let rows = Arc::new(read(store, now).await?);
        *last = Some((now, rows.clone()));
        Ok(rows)
    }
}

async fn read(store: &Store, now: i64) -> Result<Vec<FeedbackRow>, StoreError> {
    let mut rows = Vec::new();
    for campaign in store
        .campaigns_to_watch(now - WATCHED_FOR, MAX_CAMPAIGNS)
        .await?
    {
        let mut segments = Vec::new();
        for name in &campaign.settings.declared_segments {
            match crate::segment::compile_named(store, name, now).await {
                Ok(filter) => segments.push((name.clone(), filter)),
                Err(error) => tracing::warn!(
                    campaign_id = campaign.id, segment = %name, %error,
                    "metrics: declared segment left out"
                ),
            }
        }
        for (segment, feedback) in store.feedback_by_segment(campaign.id, &segments).await? {
            rows.push(FeedbackRow {
                campaign_id: campaign.id,
                campaign: campaign.name.clone(),
                segment,
                feedback,
            });
        }
    }
    Ok(rows)
}

/// The rows as Prometheus gauges: messages delivered, and the hard, soft and complaint
/// rates per delivered message. `segment=""` is the whole campaign.
pub(crate) fn render(out: &mut String, rows: &[FeedbackRow]) {
    if rows.is_empty() {
        return;
    }
    super::metrics::header(
        out,
        "mailcast_campaign_delivered",
        "gauge",
        "Messages the relay accepted, per campaign and declared segment (segment=\"\": all).",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "mailcast_campaign_delivered{{{}}} {}",
            labels(row),
            row.feedback.delivered
        );
    }
    super::metrics::header(
        out,
        "mailcast_campaign_feedback_rate",
        "gauge",
        "Deliveries a hard bounce, soft bounce or complaint was received about, per delivered message.",
    );
    for row in rows {
        let f = &row.feedback;
        for (class, rate) in [
            ("hard", f.hard_rate()),
            ("soft", f.soft_rate()),
            ("complaint", f.complaint_rate()),
        ] {
            let _ = writeln!(
                out,
                "mailcast_campaign_feedback_rate{{{},class=\"{class}\"}} {rate}",
                labels(row)
            );
        }
    }
}

fn labels(row: &FeedbackRow) -> String {
    format!(
        "campaign_id=\"{}\",campaign=\"{}\",segment=\"{}\"",
        row.campaign_id,
        super::metrics::escape(&row.campaign),
        super::metrics::escape(row.segment.as_deref().unwrap_or(""))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rates_per_campaign_and_segment() {
        let feedback = Feedback {
            delivered: 200,
            hard: 4,
            soft: 2,
            complaints: 1,
        };
        let rows = [
            FeedbackRow {
                campaign_id: 7,
                campaign: "Spring \"sale\"".into(),
                segment: None,
                feedback,
            },
            FeedbackRow {
                campaign_id: 7,
                campaign: "Spring \"sale\"".into(),
                segment: Some("vip".into()),
                feedback: Feedback::default(),
            },
        ];
        let mut out = String::new();
        render(&mut out, &rows);
        for line in [
            r#"mailcast_campaign_delivered{campaign_id="7",campaign="Spring \"sale\"",segment=""} 200"#,
            r#"mailcast_campaign_feedback_rate{campaign_id="7",campaign="Spring \"sale\"",segment="",class="hard"} 0.02"#,
            r#"mailcast_campaign_feedback_rate{campaign_id="7",campaign="Spring \"sale\"",segment="",class="complaint"} 0.005"#,
            r#"mailcast_campaign_feedback_rate{campaign_id="7",campaign="Spring \"sale\"",segment="vip",class="soft"} 0"#,
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing from\n{out}");
        }
    }

    #[test]
    fn nothing_to_watch_writes_nothing() {
        let mut out = String::new();
        render(&mut out, &[]);
        assert!(out.is_empty());
    }
}
