//! `mailcast campaign stats NAME`: a campaign's results in the terminal.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::store::{CampaignStats, Engagement, ExperimentReport, Feedback, Store};

/// How `campaign stats` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// For reading in a terminal.
    #[default]
    Text,
    /// Everything, as the API's `GET /api/campaigns/{id}/stats` gives it.
    Json,
    /// One row for the campaign, per declared segment, and per variant (× segment).
    Csv,
}

pub async fn run(store: &Store, name: &str, format: StatsFormat) -> anyhow::Result<ExitCode> {
    let campaign = super::campaign::find(store, name).await?;
    let stats = store.campaign_statistics(campaign.id).await?;
    match format {
        StatsFormat::Text => print!("{}", format_stats(&stats)),
        StatsFormat::Json => println!("{}", serde_json::to_string_pretty(&stats)?),
        StatsFormat::Csv => print!("{}", crate::store::stats_csv(&stats)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Hard, soft and complaint counts with their shares of what was delivered.
fn feedback_line(feedback: &Feedback) -> String {
    format!(
        "hard {} ({:.2}% of delivered), soft {} ({:.2}%), complaints {} ({:.2}%)",
        feedback.hard,
        feedback.hard_rate() * 100.0,
        feedback.soft,
        feedback.soft_rate() * 100.0,
        feedback.complaints,
        feedback.complaint_rate() * 100.0
    )
}

/// Human counts first, machine counts beside them.
pub fn format_stats(stats: &CampaignStats) -> String {
    let mut out = String::new();
    let ledger = &stats.ledger;
    let _ = writeln!(
        out,
        "campaign '{}' (id {}) is {}",
        stats.name, stats.campaign_id, stats.status
    );
    let _ = writeln!(
        out,
        "  audience     {:>8}   sent {}, failed {}, unknown {}, suppressed {}, bounces {}, still to send {}",
        stats.audience,
        ledger.sent,
        ledger.failed,
        ledger.unknown,
        ledger.suppressed,
        stats.bounces,
        ledger.pending + ledger.sending + ledger.deferred
    );
    let _ = writeln!(out, "  feedback     {}", feedback_line(&stats.feedback));
    engagement(&mut out, "opens", &stats.opens, stats.open_rate);
    engagement(&mut out, "clicks", &stats.clicks, stats.click_through_rate);
    let _ = writeln!(out, "  unsubscribes {:>8}", stats.unsubscribes);
    let _ = writeln!(
        out,
        "  attributed   {:>8}   orders, revenue {} (last human click within {}{})",
        stats.attributed.orders,
        money(stats.attributed.revenue_cents),
        crate::automation::duration_text(stats.attribution_window),
        match stats.view_through_window {
            Some(window) => format!(
                "; view-through within {}: {} orders",
                crate::automation::duration_text(window),
                stats.attributed.view_through_orders
            ),
            None => String::new(),
        }
    );
    if stats.recommendation_performance.is_empty() {
        for credit in &stats.recommendations {
            let _ = writeln!(
                out,
                "    recommended #{} ({}): {} orders, revenue {}",
                credit.position,
                credit.reason,
                credit.orders,
                money(credit.revenue_cents)
            );
        }
    }
    for slot in &stats.recommendation_performance {
        let _ = writeln!(
            out,
            "    recommended #{} ({}): shown {}, clicked {} ({:.1}%), {} orders ({:.2}% of shown), revenue {}",
            slot.position,
            slot.reason,
            slot.shown,
            slot.clicked,
            slot.click_rate * 100.0,
            slot.orders,
            slot.purchase_rate * 100.0,
            money(slot.revenue_cents)
        );
    }
    for segment in &stats.segments {
        let _ = writeln!(
            out,
            "  segment {:?}: audience {}, sent {}, unique human opens {} (machine {}), clicks {} (machine {}), unsubscribes {}, orders {}, revenue {}",
            segment.segment,
            segment.audience,
            segment.ledger.sent,
            segment.opens.unique_human,
            segment.opens.unique_machine,
            segment.clicks.unique_human,
            segment.clicks.unique_machine,
            segment.unsubscribes,
            segment.attributed.orders,
            money(segment.attributed.revenue_cents)
        );
        let _ = writeln!(out, "    feedback   {}", feedback_line(&segment.feedback));
    }
    if let Some(report) = &stats.experiment {
        experiment(&mut out, report);
    }
    if !stats.top_links.is_empty() {
        let _ = writeln!(out, "  top links (unique human clicks, machine clicks):");
        for link in &stats.top_links {
            let url = link
                .url
                .as_deref()
                .unwrap_or("(link not in the campaign's table)");
            let _ = writeln!(
                out,
                "    {:>6} {:>6}  {url}",
                link.unique_human, link.machine_clicks
            );
        }
    }
    out
}

fn experiment(out: &mut String, report: &ExperimentReport) {
    let shares = match &report.test_share {
        Some(share) => format!(
            "test-then-winner on {share} of the audience, judged after {} on {}",
            crate::automation::duration_text(report.wait_seconds),
            report.metric
        ),
        None => format!("split, measured on {}", report.metric),
    };
    let _ = writeln!(
        out,
        "  experiment   {shares}; holdout {} ({} recipients); waiting for the winner {}",
        report.holdout, report.holdout_recipients, report.waiting_for_winner
    );
    for definition in &report.variants {
        let changes = serde_json::to_string(&definition.changes).unwrap_or_default();
        let _ = writeln!(out, "    variant {}: {changes}", definition.variant);
    }
    match &report.judgement {
        Some(judgement) => {
            let decision = match &judgement.winner {
                Some(winner) => format!("winner {winner}"),
                None => "no significant winner".to_string(),
            };
            let rule = judgement.detail["rule"].as_str().unwrap_or("");
            let _ = writeln!(
                out,
                "    judged {}: {decision}; {} sent to the rest ({rule})",
                crate::time::format_timestamp(judgement.judged_at),
                judgement.sent_to_rest
            );
            if let Some(reason) = judgement.detail["decision"]["reason"].as_str() {
                let _ = writeln!(out, "    {reason}");
            }
        }
        None if report.test_share.is_some() => {
            let _ = writeln!(out, "    not judged yet");
        }
        None => {}
    }
    let _ = writeln!(
        out,
        "    {:<8} {:<20} {:>9} {:>16} {:>16} {:>11} {:>12} {:>9}",
        "VARIANT",
        "SEGMENT",
        "DELIVERED",
        "OPENS (MACHINE)",
        "CLICKS (MACHINE)",
        "CONVERSIONS",
        "REVENUE",
        "PER RCPT"
    );
    for row in &report.results {
        let _ = writeln!(
            out,
            "    {:<8} {:<20} {:>9} {:>16} {:>16} {:>11} {:>12} {:>9.2}",
            row.variant,
            row.segment.as_deref().unwrap_or("(all)"),
            row.delivered,
            format!("{} ({})", row.opens.unique_human, row.opens.unique_machine),
            format!(
                "{} ({})",
                row.clicks.unique_human, row.clicks.unique_machine
            ),
            row.conversions,
            money(row.revenue_cents),
            row.revenue_per_recipient
        );
    }
    if let Some(uplift) = &report.uplift {
        let c = &uplift.conversion_uplift;
        let r = &uplift.revenue_per_recipient_uplift;
        let _ = writeln!(
            out,
            "    uplift against the holdout: conversion {:.2}% vs {:.2}%, {:+.2} points (95% CI {:+.2} to {:+.2}); revenue per recipient {:+.2} (95% CI {:+.2} to {:+.2})",
            uplift.conversion_rate_mailed * 100.0,
            uplift.conversion_rate_holdout * 100.0,
            c.estimate * 100.0,
            c.low * 100.0,
            c.high * 100.0,
            r.estimate,
            r.low,
            r.high
        );
    }
}

/// Cents as units with two decimals (events carry no currency).
fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

fn engagement(out: &mut String, label: &str, counts: &Engagement, rate: f64) {
    let _ = writeln!(
        out,
        "  {label:<12} {:>8}   unique human ({:.1}% of sent); machine: {} recipients, {} events",
        counts.unique_human,
        rate * 100.0,
        counts.unique_machine,
        counts.machine_events
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LedgerCounts, LinkStats};

    #[test]
    fn shows_human_counts_with_machine_counts_beside_them() {
        let stats = CampaignStats {
            campaign_id: 3,
            name: "spring".into(),
            status: crate::domain::CampaignStatus::Done,
            audience: 10,
            ledger: LedgerCounts {
                sent: 8,
                failed: 1,
                suppressed: 1,
                ..LedgerCounts::default()
            },
            waiting: Default::default(),
            attributed: Default::default(),
            attribution_window: 5 * 86_400,
            view_through_window: None,
            experiment: None,
            recommendations: Vec::new(),
            recommendation_performance: Vec::new(),
            feedback: Default::default(),
            hard_bounce_rate: 0.0,
            soft_bounce_rate: 0.0,
            complaint_rate: 0.0,
            bounces: 1,
            opens: Engagement {
                unique_human: 4,
                unique_machine: 2,
                human_events: 5,
                machine_events: 3,
            },
            clicks: Engagement {
                unique_human: 2,
                ..Engagement::default()
            },
            unsubscribes: 1,
            click_through_rate: 0.25,
            open_rate: 0.5,
            top_links: vec![LinkStats {
                link_id: 1,
                url: Some("https://shop.example/sale".into()),
                unique_human: 2,
                human_clicks: 3,
                machine_clicks: 1,
            }],
            segments: Vec::new(),
        };
        let text = format_stats(&stats);
        assert!(text.contains("campaign 'spring' (id 3) is done"), "{text}");
        assert!(
            text.contains("sent 8, failed 1, unknown 0, suppressed 1, bounces 1"),
            "{text}"
        );
        assert!(
            text.contains("4   unique human (50.0% of sent); machine: 2 recipients, 3 events"),
            "{text}"
        );
        assert!(text.contains("2   unique human (25.0% of sent)"), "{text}");
        assert!(text.contains("https://shop.example/sale"), "{text}");
    }
}
