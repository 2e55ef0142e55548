//! An experiment's results: per variant (and per variant within each declared
//! segment) what was delivered, human and machine engagement, conversions and revenue;
//! the stored judgement; and the uplift against the holdout.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Engagement;
use super::attribution::VariantAttribution;
use crate::experiment::design::percent;
use crate::experiment::uplift::Uplift;
use crate::experiment::{Experiment, Variant};
use crate::store::experiments::is_delivered;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    /// `test_then_winner` or `split`.
    pub mode: &'static str,
    pub metric: String,
    pub variants: Vec<VariantDefinition>,
    pub test_share: Option<String>,
    pub holdout: String,
    pub wait_seconds: i64,
    pub holdout_recipients: i64,
    /// Recipients still waiting for the winner.
    pub waiting_for_winner: i64,
    pub judgement: Option<JudgementView>,
    /// Per variant, then per variant within each declared segment.
    pub results: Vec<VariantStats>,
    /// The mailed against the holdout (None without a holdout).
    pub uplift: Option<Uplift>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantDefinition {
    pub variant: String,
    #[serde(flatten)]
    pub changes: Variant,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgementView {
    pub judged_at: i64,
    /// None: no significant winner (the default, A, went to the rest).
    pub winner: Option<String>,
    pub sent_to_rest: String,
    /// Rates, intervals, the rule and the decision (`experiment::judge::Judgement`).
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantStats {
    pub variant: String,
    /// None for the whole audience, else a declared segment's name.
    pub segment: Option<String>,
    pub delivered: i64,
    pub opens: Engagement,
    pub clicks: Engagement,
    pub open_rate: f64,
    pub click_rate: f64,
    /// Recipients with an attributed purchase.
    pub conversions: i64,
    pub orders: i64,
    pub revenue_cents: i64,
    /// Attributed revenue per delivered message, in currency units.
    pub revenue_per_recipient: f64,
}

impl VariantStats {
    fn new(variant: i64, segment: Option<&str>) -> VariantStats {
        VariantStats {
            variant: Experiment::label(variant.max(0) as usize),
            segment: segment.map(str::to_string),
            delivered: 0,
            opens: Engagement::default(),
            clicks: Engagement::default(),
            open_rate: 0.0,
            click_rate: 0.0,
            conversions: 0,
            orders: 0,
            revenue_cents: 0,
            revenue_per_recipient: 0.0,
        }
    }

    fn finish(mut self) -> VariantStats {
        if self.delivered > 0 {
            let delivered = self.delivered as f64;
            self.open_rate = self.opens.unique_human as f64 / delivered;
            self.click_rate = self.clicks.unique_human as f64 / delivered;
            self.revenue_per_recipient = self.revenue_cents as f64 / 100.0 / delivered;
        }
        self
    }
}

impl Store {
    /// The experiment's figures apart from the per-variant rows (`results` is left
    /// empty for [`variant_rows`]).
    pub(super) async fn experiment_report(
        &self,
        campaign_id: i64,
        experiment: &Experiment,
        window: i64,
    ) -> Result<ExperimentReport, StoreError> {
        let judgement = self.judgement(campaign_id).await?.map(|j| JudgementView {
            judged_at: j.judged_at,
            winner: j.winner.map(|w| Experiment::label(w as usize)),
            sent_to_rest: Experiment::label(j.sent_variant as usize),
            detail: serde_json::from_str(&j.judgement).unwrap_or_default(),
        });
        let parts = self
            .experiment_parts(campaign_id, judgement.is_some())
            .await?;
        let uplift = match (
            experiment.holdout,
            self.experiment_started_at(campaign_id).await?,
        ) {
            (0, _) | (_, None) => None,
            (_, Some(from)) => {
                let until = from + window;
                let (mailed, held) = self.uplift_groups(campaign_id, from, until).await?;
                Uplift::of(mailed, held, from, until)
            }
        };
        Ok(ExperimentReport {
            mode: if experiment.picks_a_winner() {
                "test_then_winner"
            } else {
                "split"
            },
            metric: experiment.metric.clone(),
            variants: experiment
                .variants
                .iter()
                .enumerate()
                .map(|(i, v)| VariantDefinition {
                    variant: Experiment::label(i),
                    changes: v.clone(),
                })
                .collect(),
            test_share: experiment.test_share.map(percent),
            holdout: percent(experiment.holdout),
            wait_seconds: experiment.wait_seconds,
            holdout_recipients: parts.holdout,
            waiting_for_winner: parts.waiting,
            judgement,
            results: Vec::new(),
            uplift,
        })
    }
}

/// One row per variant of the scope's deliveries; `counts` are the scope's.
pub(super) fn variant_rows(segment: Option<&str>, counts: &super::Counts) -> Vec<VariantStats> {
    let mut rows: BTreeMap<i64, VariantStats> = BTreeMap::new();
    for (variant, status, n) in &counts.by_variant {
        let (Some(variant), true) = (variant, is_delivered(status)) else {
            continue;
        };
        rows.entry(*variant)
            .or_insert_with(|| VariantStats::new(*variant, segment))
            .delivered += n;
    }
    for (variant, kind, verdict, events, unique) in &counts.engaged {
        let (Some(variant), "open" | "click") = (variant, kind.as_str()) else {
            continue;
        };
        let row = rows
            .entry(*variant)
            .or_insert_with(|| VariantStats::new(*variant, segment));
        let slot = if kind == "open" {
            &mut row.opens
        } else {
            &mut row.clicks
        };
        slot.add(verdict, *events, *unique);
    }
    add_purchases(&mut rows, segment, &counts.purchases);
    rows.into_values().map(VariantStats::finish).collect()
}

fn add_purchases(
    rows: &mut BTreeMap<i64, VariantStats>,
    segment: Option<&str>,
    attributed: &[VariantAttribution],
) {
    for a in attributed {
        let Some(variant) = a.variant else {
            continue;
        };
        let row = rows
            .entry(variant)
            .or_insert_with(|| VariantStats::new(variant, segment));
        row.orders += a.orders;
        row.revenue_cents += a.revenue_cents;
        row.conversions += a.converted;
    }
}
