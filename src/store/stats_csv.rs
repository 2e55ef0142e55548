//! A campaign's results as CSV: one row for the whole campaign, one per declared
//! segment, and one per variant (and per variant within each segment) when it has an
//! experiment. Money in currency units with two decimals.

use super::CampaignStats;

const HEADER: [&str; 14] = [
    "campaign",
    "variant",
    "segment",
    "delivered",
    "unique_human_opens",
    "unique_machine_opens",
    "unique_human_clicks",
    "unique_machine_clicks",
    "conversions",
    "orders",
    "revenue",
    "revenue_per_recipient",
    "unsubscribes",
    "bounces",
];

/// One CSV row's cells after the campaign's name.
struct Row {
    variant: String,
    segment: String,
    delivered: i64,
    opens: super::Engagement,
    clicks: super::Engagement,
    conversions: Option<i64>,
    orders: i64,
    revenue_cents: i64,
    unsubscribes: Option<i64>,
    bounces: Option<i64>,
}

pub fn stats_csv(stats: &CampaignStats) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut write = |row: Row| {
        let per_recipient = match row.delivered {
            0 => 0.0,
            n => row.revenue_cents as f64 / 100.0 / n as f64,
        };
        let optional = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        let cells = [
            stats.name.clone(),
            row.variant,
            row.segment,
            row.delivered.to_string(),
            row.opens.unique_human.to_string(),
            row.opens.unique_machine.to_string(),
            row.clicks.unique_human.to_string(),
            row.clicks.unique_machine.to_string(),
            optional(row.conversions),
            row.orders.to_string(),
            format!("{:.2}", row.revenue_cents as f64 / 100.0),
            format!("{per_recipient:.4}"),
            optional(row.unsubscribes),
            optional(row.bounces),
        ];
        writer.write_record(cells).expect("writing to memory");
    };
    write(Row {
        variant: String::new(),
        segment: String::new(),
        delivered: stats.ledger.sent + stats.ledger.bounced + stats.ledger.unknown,
        opens: stats.opens,
        clicks: stats.clicks,
        conversions: None,
        orders: stats.attributed.orders,
        revenue_cents: stats.attributed.revenue_cents,
        unsubscribes: Some(stats.unsubscribes),
        bounces: Some(stats.bounces),
    });
    for segment in &stats.segments {
        write(Row {
            variant: String::new(),
            segment: segment.segment.clone(),
            delivered: segment.ledger.sent + segment.ledger.bounced + segment.ledger.unknown,
            opens: segment.opens,
            clicks: segment.clicks,
            conversions: None,
            orders: segment.attributed.orders,
            revenue_cents: segment.attributed.revenue_cents,
            unsubscribes: Some(segment.unsubscribes),
            bounces: Some(segment.bounces),
        });
    }
    for variant in stats.experiment.iter().flat_map(|e| &e.results) {
        write(Row {
            variant: variant.variant.clone(),
            segment: variant.segment.clone().unwrap_or_default(),
            delivered: variant.delivered,
            opens: variant.opens,
            clicks: variant.clicks,
            conversions: Some(variant.conversions),
            orders: variant.orders,
            revenue_cents: variant.revenue_cents,
            unsubscribes: None,
            bounces: None,
        });
    }
    let mut out = String::new();
    let body = String::from_utf8(writer.into_inner().expect("in memory")).expect("UTF-8 cells");
    out.push_str(&HEADER.join(","));
    out.push('\n');
    out.push_str(&body);
    out
}
