//! Campaign statistics from the ledger and the tracking events, and the whole-store
//! delivery totals `/metrics` reports.

use serde::Serialize;

use super::attribution::{self, Attributed, RecommendationCredit, VariantAttribution, Windows};
use super::{
    LedgerCounts, SqlFilter, Store, StoreError, bind_filter, built, on_pool, with_sort_memory,
};
use crate::domain::CampaignStatus;

/// Events of one kind for one campaign: unique recipients and raw events, human and
/// machine apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Engagement {
    pub unique_human: i64,
    pub unique_machine: i64,
    pub human_events: i64,
    pub machine_events: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LinkStats {
    pub link_id: i64,
    /// None when the event names a link the campaign's table does not hold.
    pub url: Option<String>,
    pub unique_human: i64,
    pub human_clicks: i64,
    pub machine_clicks: i64,
}

/// The same counts for the recipients of one of the campaign's declared segments
/// (membership as the segment matches now).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentStats {
    pub segment: String,
    pub audience: i64,
    pub ledger: LedgerCounts,
    pub waiting: super::Waiting,
    /// Purchases attributed to the campaign (see `store::attribution`).
    pub attributed: Attributed,
    pub bounces: i64,
    /// Received bounces and complaints about these recipients' messages.
    pub feedback: super::Feedback,
    pub hard_bounce_rate: f64,
    pub soft_bounce_rate: f64,
    pub complaint_rate: f64,
    pub opens: Engagement,
    pub clicks: Engagement,
    pub unsubscribes: i64,
    pub click_through_rate: f64,
    pub open_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignStats {
    pub campaign_id: i64,
    pub name: String,
    pub status: CampaignStatus,
    /// Deliveries in the ledger.
    pub audience: i64,
    pub ledger: LedgerCounts,
    /// Deferred for local send times, quiet hours or the frequency cap, and skipped by
    /// the cap.
    pub waiting: super::Waiting,
    /// Purchases attributed to the campaign: the recipient's last human click within
    /// the window before each was on this campaign's message.
    pub attributed: Attributed,
    /// Attributed purchases of products the message recommended, by position and
    /// reason.
    pub recommendations: Vec<RecommendationCredit>,
    /// Per position and reason: shown, clicked as a person, bought (empty when the
    /// campaign's templates show no recommendations).
    pub recommendation_performance: Vec<super::RecommendationPerformance>,
    /// Hard bounces: failed deliveries whose address went on the suppression list as
    /// a bounce, and deliveries a bounce reported after they were sent (`bounced`).
    pub bounces: i64,
    /// What received bounces and complaints said, with their rates per delivered message.
    pub feedback: super::Feedback,
    pub hard_bounce_rate: f64,
    pub soft_bounce_rate: f64,
    pub complaint_rate: f64,
    pub opens: Engagement,
    pub clicks: Engagement,
    /// Recipients who unsubscribed through this campaign's link.
    pub unsubscribes: i64,
    /// Unique human clicks per sent message.
    pub click_through_rate: f64,
    /// Unique human opens per sent message.
    pub open_rate: f64,
    pub top_links: Vec<LinkStats>,
    /// Per declared segment, when the caller asked for them.
    pub segments: Vec<SegmentStats>,
    /// Variants, the judgement, results per variant and segment, uplift.
    pub experiment: Option<ExperimentReport>,
    /// The click attribution window and the view-through window (seconds; None: off).
    pub attribution_window: i64,
    pub view_through_window: Option<i64>,
}

impl Engagement {
    /// Adds one (verdict, events, unique recipients) row of a grouped count; the groups
    /// added share no recipient.
    fn add(&mut self, verdict: &str, events: i64, unique: i64) {
        if verdict == "human" {
            self.human_events += events;
            self.unique_human += unique;
        } else {
            self.machine_events += events;
            self.unique_machine += unique;
        }
    }
}

const TOP_LINKS: i64 = 10;

/// Which deliveries and events a count covers: a campaign's, optionally only those of
/// the recipients a segment filter matches.
struct Scope<'a> {
    campaign_id: i64,
    filter: Option<&'a SqlFilter>,
    windows: Windows,
}

impl Scope<'_> {
    /// `AND {column} IN (…)` restricting to the segment, its placeholders after `$1`.
    fn restrict(&self, column: &str) -> String {
        match self.filter {
            Some(filter) => format!(
                " AND {column} IN (SELECT r.id FROM recipients r WHERE ({}))",
                filter.shifted(1)
            ),
            None => String::new(),
        }
    }
}

/// Binds `$1` (the campaign) and the scope's filter parameters.
macro_rules! bind_scope {
    ($query:expr, $scope:expr) => {{
        let query = $query.bind($scope.campaign_id);
        match $scope.filter {
            Some(filter) => bind_filter!(query, filter),
            None => query,
        }
    }};
}

#[path = "experiment_stats.rs"]
mod experiment_stats;
#[path = "stats_csv.rs"]
mod stats_csv;
pub use experiment_stats::{ExperimentReport, JudgementView, VariantDefinition, VariantStats};
pub use stats_csv::stats_csv;

/// Counts both a campaign and a segment of it report.
struct Counts {
    ledger: LedgerCounts,
    /// Deliveries per (variant, ledger state).
    by_variant: Vec<(Option<i64>, String, i64)>,
    waiting: super::Waiting,
    purchases: Vec<VariantAttribution>,
    bounces: i64,
    feedback: super::Feedback,
    opens: Engagement,
    clicks: Engagement,
    unsubscribes: i64,
    engaged: Vec<Engaged>,
}

/// One row of a scope's engagement: variant, kind, verdict, events, unique recipients.
type Engaged = (Option<i64>, String, String, i64, i64);

/// Opens, clicks and unique unsubscribers over every variant.
fn totals_of(engaged: &[Engaged]) -> (Engagement, Engagement, i64) {
    let (mut opens, mut clicks) = (Engagement::default(), Engagement::default());
    let mut unsubscribes = 0;
    for (_, kind, verdict, events, unique) in engaged {
        let slot = match kind.as_str() {
            "open" => &mut opens,
            "click" => &mut clicks,
            _ => {
                unsubscribes += unique;
                continue;
            }
        };
        slot.add(verdict, *events, *unique);
    }
    (opens, clicks, unsubscribes)
}

impl Counts {
    fn rate(&self, n: i64) -> f64 {
        if self.ledger.sent > 0 {
            n as f64 / self.ledger.sent as f64
        } else {
            0.0
        }
    }
}

impl Store {
    /// A campaign's statistics with a breakdown per declared segment, as the API and
    /// `mailcast campaign stats` show them. Segment membership is evaluated now, not as
    /// it was when the campaign was sent; a declared segment that no longer compiles
    /// (deleted, changed) is left out and logged.
    pub async fn campaign_statistics(&self, campaign_id: i64) -> Result<CampaignStats, StoreError> {
        let campaign = self.campaign(campaign_id).await?;
        let now = crate::time::now();
        let mut segments: Vec<(String, SqlFilter)> = Vec::new();
        for name in &campaign.settings.declared_segments {
            match crate::segment::compile_named(self, name, now).await {
                Ok(filter) => segments.push((name.clone(), filter)),
                Err(error) => {
                    tracing::warn!(campaign_id, segment = %name, %error, "declared segment left out of the statistics");
                }
            }
        }
        self.campaign_stats(campaign_id, &segments).await
    }

    /// A campaign's statistics, with one breakdown per `(name, filter)` in `segments`.
    pub async fn campaign_stats(
        &self,
        campaign_id: i64,
        segments: &[(String, SqlFilter)],
    ) -> Result<CampaignStats, StoreError> {
        let campaign = self.campaign(campaign_id).await?;
        let windows = Windows::of(&campaign.settings);
        let whole = Scope {
            campaign_id,
            filter: None,
            windows,
        };
        let experiment = campaign.settings.experiment.as_ref();
        let (counts, recommended, top_links, mut report) = tokio::try_join!(
            self.counts(&whole),
            self.recommendation_figures(&campaign, windows),
            self.top_links(campaign_id),
            self.experiment_figures(campaign_id, experiment, windows.click),
        )?;
        let (recommendations, recommendation_performance) = recommended;
        let mut variant_rows = Vec::new();
        if experiment.is_some() {
            variant_rows = experiment_stats::variant_rows(None, &counts);
        }
        let mut breakdown = Vec::with_capacity(segments.len());
        for (name, filter) in segments {
            let scope = Scope {
                campaign_id,
                filter: Some(filter),
                windows,
            };
            let c = self.counts(&scope).await?;
            if experiment.is_some() {
                variant_rows.extend(experiment_stats::variant_rows(Some(name), &c));
            }
            breakdown.push(SegmentStats {
                segment: name.clone(),
                audience: c.ledger.total(),
                click_through_rate: c.rate(c.clicks.unique_human),
                open_rate: c.rate(c.opens.unique_human),
                attributed: attribution::totals(&c.purchases),
                ledger: c.ledger,
                waiting: c.waiting,
                bounces: c.bounces,
                feedback: c.feedback,
                hard_bounce_rate: c.feedback.hard_rate(),
                soft_bounce_rate: c.feedback.soft_rate(),
                complaint_rate: c.feedback.complaint_rate(),
                opens: c.opens,
                clicks: c.clicks,
                unsubscribes: c.unsubscribes,
            });
        }
        let feedback = counts.feedback;
        if let Some(report) = report.as_mut() {
            report.results = variant_rows;
        }
        Ok(CampaignStats {
            experiment: report,
            attribution_window: windows.click,
            view_through_window: windows.view_through,
            campaign_id,
            name: campaign.name,
            status: campaign.status,
            audience: counts.ledger.total(),
            click_through_rate: counts.rate(counts.clicks.unique_human),
            open_rate: counts.rate(counts.opens.unique_human),
            ledger: counts.ledger,
            waiting: counts.waiting,
            attributed: attribution::totals(&counts.purchases),
            recommendations,
            recommendation_performance,
            bounces: counts.bounces,
            feedback,
            hard_bounce_rate: feedback.hard_rate(),
            soft_bounce_rate: feedback.soft_rate(),
            complaint_rate: feedback.complaint_rate(),
            opens: counts.opens,
            clicks: counts.clicks,
            unsubscribes: counts.unsubscribes,
            top_links,
            segments: breakdown,
        })
    }

    /// Purchases of recommended products by position and reason (as the records of the
    /// messages say), and each slot's performance (empty when the campaign's templates
    /// show no recommendations).
    async fn recommendation_figures(
        &self,
        campaign: &super::Campaign,
        windows: Windows,
    ) -> Result<
        (
            Vec<RecommendationCredit>,
            Vec<super::RecommendationPerformance>,
        ),
        StoreError,
    > {
        let credited = self.credited(campaign.id, windows).await?;
        let recommendations = attribution::by_recommendation(&credited);
        let performance = match self.shows_recommendations(campaign).await? {
            true => {
                self.recommendation_performance(campaign.id, &recommendations)
                    .await?
            }
            false => Vec::new(),
        };
        Ok((recommendations, performance))
    }

    /// The experiment's report without its per-variant rows (None without one).
    async fn experiment_figures(
        &self,
        campaign_id: i64,
        experiment: Option<&crate::experiment::Experiment>,
        window: i64,
    ) -> Result<Option<ExperimentReport>, StoreError> {
        match experiment {
            Some(e) => Ok(Some(self.experiment_report(campaign_id, e, window).await?)),
            None => Ok(None),
        }
    }

    /// Whether the campaign's template, or a variant's, shows recommendations.
    async fn shows_recommendations(&self, campaign: &super::Campaign) -> Result<bool, StoreError> {
        let variants = campaign
            .settings
            .experiment
            .iter()
            .flat_map(|e| &e.variants);
        let mut templates = vec![campaign.template_id];
        templates.extend(variants.filter_map(|v| v.template_id));
        for id in templates {
            if self.template(id).await?.html.contains("recommendations") {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The scope's figures, read at once over several connections (each statement
    /// uses one core of the database server).
    async fn counts(&self, scope: &Scope<'_>) -> Result<Counts, StoreError> {
        let (engaged, by_variant, waiting, purchases, failed_as_bounces, mut feedback) = tokio::try_join!(
            self.engagement(scope),
            self.scoped_ledger(scope),
            self.scoped_waiting(scope),
            self.attributed(scope),
            self.failed_as_bounces(scope),
            self.feedback_counted(scope, false),
        )?;
        let (opens, clicks, unsubscribes) = totals_of(&engaged);
        let ledger = ledger_from(by_variant.iter().map(|(_, s, n)| (s.as_str(), *n)));
        feedback.delivered = ledger.sent + ledger.bounced;
        Ok(Counts {
            ledger,
            by_variant,
            waiting,
            purchases,
            bounces: ledger.bounced + failed_as_bounces,
            feedback,
            opens,
            clicks,
            unsubscribes,
            engaged,
        })
    }

    async fn attributed(&self, scope: &Scope<'_>) -> Result<Vec<VariantAttribution>, StoreError> {
        let sql = attribution::by_variant_sql(&scope.restrict("p.recipient_id"), scope.windows);
        Ok(with_sort_memory!(self, conn =>
            bind_scope!(sqlx::query_as(built(&sql)), scope).fetch_all(conn).await?))
    }

    /// The campaign's attributed purchases of a product, with the record of the message
    /// each is attributed to (for the recommendations' credit).
    async fn credited(
        &self,
        campaign_id: i64,
        windows: Windows,
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let sql = attribution::credited_sql(windows);
        Ok(with_sort_memory!(self, conn =>
            sqlx::query_as(built(&sql)).bind(campaign_id).fetch_all(conn).await?))
    }

    /// A campaign's deliveries waiting for their local time, quiet hours or the cap, and
    /// those the cap skipped.
    pub async fn waiting(&self, campaign_id: i64) -> Result<super::Waiting, StoreError> {
        let scope = Scope {
            campaign_id,
            filter: None,
            windows: Windows::of(&Default::default()),
        };
        self.scoped_waiting(&scope).await
    }

    async fn scoped_waiting(&self, scope: &Scope<'_>) -> Result<super::Waiting, StoreError> {
        let sql = format!(
            "{} AND d.campaign_id = $1{}",
            super::waiting::WAITING,
            scope.restrict("d.recipient_id")
        );
        Ok(on_pool!(self, pool =>
            bind_scope!(sqlx::query_as(built(&sql)), scope).fetch_one(pool).await)?)
    }

    /// The scope's deliveries per (variant, ledger state): one read serves the ledger's
    /// counts and the variants' delivered counts.
    async fn scoped_ledger(
        &self,
        scope: &Scope<'_>,
    ) -> Result<Vec<(Option<i64>, String, i64)>, StoreError> {
        let sql = format!(
            "SELECT d.variant, d.status, COUNT(*) FROM deliveries d WHERE d.campaign_id = $1{}
             GROUP BY d.variant, d.status",
            scope.restrict("d.recipient_id")
        );
        Ok(on_pool!(self, pool =>
            bind_scope!(sqlx::query_as(built(&sql)), scope).fetch_all(pool).await)?)
    }

    /// Engagement per variant (None outside experiments), kind and verdict: events and
    /// unique recipients. One read serves the campaign's totals and its variants' rows.
    /// A whole campaign's are kept summed (`engagement_totals`); a segment's are summed
    /// from its recipients' rows.
    async fn engagement(&self, scope: &Scope<'_>) -> Result<Vec<Engaged>, StoreError> {
        let sql = match scope.filter {
            None => "SELECT NULLIF(e.variant, -1), e.kind, e.verdict, e.events, e.recipients
                     FROM engagement_totals e WHERE e.campaign_id = $1 AND e.recipients > 0"
                .to_string(),
            Some(_) => format!(
                "SELECT e.variant, e.kind, e.verdict, CAST(SUM(e.events) AS BIGINT), COUNT(*)
                 FROM recipient_engagement e WHERE e.campaign_id = $1{}
                 GROUP BY e.variant, e.kind, e.verdict",
                scope.restrict("e.recipient_id")
            ),
        };
        Ok(on_pool!(self, pool =>
            bind_scope!(sqlx::query_as(built(&sql)), scope).fetch_all(pool).await)?)
    }

    /// Failed deliveries whose address went on the suppression list as a bounce (the
    /// `bounced` ones are in the ledger's counts).
    async fn failed_as_bounces(&self, scope: &Scope<'_>) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM deliveries d JOIN recipients rr ON rr.id = d.recipient_id
             WHERE d.campaign_id = $1 AND d.status = 'failed'
               AND EXISTS (SELECT 1 FROM suppressions s
                           WHERE s.email_hash = rr.email_hash AND s.reason LIKE 'bounce%'){}",
            scope.restrict("d.recipient_id")
        );
        let (n,): (i64,) = on_pool!(self, pool =>
            bind_scope!(sqlx::query_as(built(&sql)), scope).fetch_one(pool).await)?;
        Ok(n)
    }

    /// Hard bounces, soft bounces and complaints received about a campaign's messages.
    pub async fn feedback(&self, campaign_id: i64) -> Result<super::Feedback, StoreError> {
        let scope = Scope {
            campaign_id,
            filter: None,
            windows: Windows::of(&Default::default()),
        };
        self.scoped_feedback(&scope).await
    }

    /// A campaign's feedback for everyone it was sent to (`None`) and for each of
    /// `segments`.
    pub async fn feedback_by_segment(
        &self,
        campaign_id: i64,
        segments: &[(String, SqlFilter)],
    ) -> Result<Vec<(Option<String>, super::Feedback)>, StoreError> {
        let mut all = vec![(None, self.feedback(campaign_id).await?)];
        for (name, filter) in segments {
            let scope = Scope {
                campaign_id,
                filter: Some(filter),
                windows: Windows::of(&Default::default()),
            };
            all.push((Some(name.clone()), self.scoped_feedback(&scope).await?));
        }
        Ok(all)
    }

    async fn scoped_feedback(&self, scope: &Scope<'_>) -> Result<super::Feedback, StoreError> {
        self.feedback_counted(scope, true).await
    }

    /// As `scoped_feedback`; without `count_delivered`, `delivered` is left 0.
    async fn feedback_counted(
        &self,
        scope: &Scope<'_>,
        count_delivered: bool,
    ) -> Result<super::Feedback, StoreError> {
        let sql = super::bounces::feedback_sql(&scope.restrict("d.recipient_id"), count_delivered);
        Ok(on_pool!(self, pool =>
            bind_scope!(sqlx::query_as(built(&sql)), scope).fetch_one(pool).await)?)
    }

    async fn top_links(&self, campaign_id: i64) -> Result<Vec<LinkStats>, StoreError> {
        let sql = "SELECT c.link_id, l.url,
                          CAST(COALESCE(SUM(CASE WHEN c.verdict = 'human' THEN c.recipients END), 0)
                               AS BIGINT) AS unique_human,
                          CAST(COALESCE(SUM(CASE WHEN c.verdict = 'human' THEN c.events END), 0)
                               AS BIGINT) AS human_clicks,
                          CAST(COALESCE(SUM(CASE WHEN c.verdict = 'machine' THEN c.events END), 0)
                               AS BIGINT) AS machine_clicks
                   FROM link_totals c
                   LEFT JOIN links l ON l.campaign_id = $1 AND l.link_id = c.link_id
                   WHERE c.campaign_id = $1 AND c.recipients > 0
                   GROUP BY c.link_id, l.url
                   ORDER BY unique_human DESC, human_clicks DESC, machine_clicks DESC, c.link_id
                   LIMIT $2";
        Ok(on_pool!(self, pool =>
            sqlx::query_as(sql).bind(campaign_id).bind(TOP_LINKS).fetch_all(pool).await)?)
    }

    /// Deliveries of every campaign by ledger state.
    pub async fn delivery_totals(&self) -> Result<LedgerCounts, StoreError> {
        let sql = "SELECT status, COUNT(*) FROM deliveries GROUP BY status";
        let rows: Vec<(String, i64)> =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(ledger_from(rows.iter().map(|(s, n)| (s.as_str(), *n))))
    }
}

/// Counts per ledger state; a state may come more than once (once per variant).
fn ledger_from<'a>(rows: impl Iterator<Item = (&'a str, i64)>) -> LedgerCounts {
    let mut counts = LedgerCounts::default();
    for (status, n) in rows {
        let slot = match status {
            "pending" => &mut counts.pending,
            "sending" => &mut counts.sending,
            "sent" => &mut counts.sent,
            "deferred" => &mut counts.deferred,
            "failed" => &mut counts.failed,
            "suppressed" => &mut counts.suppressed,
            "unknown" => &mut counts.unknown,
            "bounced" => &mut counts.bounced,
            _ => continue,
        };
        *slot += n;
    }
    counts
}
