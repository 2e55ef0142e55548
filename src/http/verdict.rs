//! Machine or human: every open and click gets a verdict and, for machines, a reason.
//! Nothing is dropped; statistics count human events and show machine events beside
//! them.
//!
//! Two stages. [`request_verdict`] runs in the request, on what the request alone
//! shows (method, user agent, address, the honeypot link). [`TimingRules`] run in the
//! event writer, a batch at a time, on what needs the store: a click within seconds of
//! the message being sent, and clicks on several links of one message within a second
//! or two (a scanner following every link).

use std::net::IpAddr;
use std::time::Duration;

pub use crate::links::{HONEYPOT_LINK_ID, honeypot_token};
use crate::store::{NewTrackingEvent, StoredClick, TrackingKind, Verdict};

/// What the request shows about its sender.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub head: bool,
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

/// User-agent fragments (lower case) of image proxies, security scanners and link
/// checkers, with the reason stored for them.
const AGENTS: &[(&str, &str)] = &[
    ("googleimageproxy", "Google image proxy"),
    ("ggpht.com", "Google image proxy"),
    ("yahoomailproxy", "Yahoo mail image proxy"),
    ("barracuda", "security scanner (Barracuda)"),
    ("mimecast", "security scanner (Mimecast)"),
    ("proofpoint", "security scanner (Proofpoint)"),
    ("urldefense", "security scanner (Proofpoint URL Defense)"),
    ("messagelabs", "security scanner (Symantec MessageLabs)"),
    ("symantec", "security scanner (Symantec)"),
    ("trendmicro", "security scanner (Trend Micro)"),
    ("forcepoint", "security scanner (Forcepoint)"),
    ("fortiguard", "security scanner (Fortinet)"),
    ("sophos", "security scanner (Sophos)"),
    ("ironport", "security scanner (Cisco IronPort)"),
    ("zscaler", "security scanner (Zscaler)"),
    ("safelinks", "security scanner (Microsoft Safe Links)"),
    (
        "microsoft office existence discovery",
        "link checker (Microsoft Office)",
    ),
    ("linkchecker", "link checker"),
    ("link checker", "link checker"),
    ("headlesschrome", "headless browser"),
    ("phantomjs", "headless browser"),
    ("python-requests", "script (python-requests)"),
    ("python-urllib", "script (python-urllib)"),
    ("go-http-client", "script (Go http client)"),
    ("curl/", "script (curl)"),
    ("wget/", "script (wget)"),
    ("okhttp", "script (okhttp)"),
    ("libwww-perl", "script (libwww-perl)"),
    ("java/", "script (Java)"),
    ("slackbot", "link preview (Slack)"),
    ("facebookexternalhit", "link preview (Facebook)"),
    ("whatsapp", "link preview (WhatsApp)"),
    ("skypeuripreview", "link preview (Skype)"),
    ("discordbot", "link preview (Discord)"),
    ("bot/", "crawler"),
    ("bot;", "crawler"),
    ("crawler", "crawler"),
    ("spider", "crawler"),
];

/// Apple Mail Privacy Protection fetches images with this bare agent.
const APPLE_PROXY_AGENT: &str = "Mozilla/5.0";

/// The verdict on what the request alone shows.
pub fn request_verdict(
    kind: TrackingKind,
    link_id: Option<i64>,
    facts: &RequestFacts,
) -> (Verdict, Option<String>) {
    match machine_reason(kind, link_id, facts) {
        Some(reason) => (Verdict::Machine, Some(reason)),
        None => (Verdict::Human, None),
    }
}

fn machine_reason(
    kind: TrackingKind,
    link_id: Option<i64>,
    facts: &RequestFacts,
) -> Option<String> {
    if kind == TrackingKind::Unsubscribe {
        // Mail providers post one-click unsubscribes on the person's behalf: always
        // a person's decision, whatever agent carries it.
        return None;
    }
    if kind == TrackingKind::Click && link_id == Some(HONEYPOT_LINK_ID) {
        return Some("followed the hidden honeypot link".into());
    }
    if facts.head {
        return Some("HEAD request (link checker)".into());
    }
    let agent = facts.user_agent.as_deref().map(str::trim).unwrap_or("");
    if agent.is_empty() {
        return Some("no user agent".into());
    }
    if agent == APPLE_PROXY_AGENT {
        return Some("Apple Mail Privacy Protection (bare Mozilla/5.0 agent)".into());
    }
    let lower = agent.to_ascii_lowercase();
    if let Some((_, reason)) = AGENTS.iter().find(|(needle, _)| lower.contains(needle)) {
        return Some((*reason).into());
    }
    facts.ip.and_then(network_reason).map(str::to_string)
}

/// Networks whose addresses fetch on behalf of mail providers, not people.
fn network_reason(ip: IpAddr) -> Option<&'static str> {
    let IpAddr::V4(v4) = ip else {
        return None;
    };
    let [a, b, c, _] = v4.octets();
    match (a, b) {
        (17, _) => Some("Apple network (Mail Privacy Protection)"),
        (66, 102) if c < 16 => Some("Google network (image proxy)"),
        (66, 249) if (80..96).contains(&c) => Some("Google network (image proxy)"),
        (74, 125) => Some("Google network (image proxy)"),
        _ => None,
    }
}

/// Verdicts that need the store, applied by the event writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimingRules {
    /// A click sooner than this after the message was sent is a scanner's.
    pub click_after_send: Duration,
    /// Clicks on two or more links of one message within this span are a scanner's.
    pub burst: Duration,
}

impl Default for TimingRules {
    fn default() -> Self {
        TimingRules {
            click_after_send: Duration::from_secs(10),
            burst: Duration::from_secs(2),
        }
    }
}

impl TimingRules {
    /// Marks clicks that came too soon after their message was sent. `sent_at` maps
    /// (campaign, recipient) to the send time.
    pub fn apply_send_delay(
        &self,
        events: &mut [NewTrackingEvent],
        sent_at: &std::collections::HashMap<(i64, i64), i64>,
    ) {
        let limit = self.click_after_send.as_secs() as i64;
        for event in events.iter_mut().filter(|e| is_human_click(e)) {
            let Some(&sent) = sent_at.get(&(event.campaign_id, event.recipient_id)) else {
                continue;
            };
            let after = event.occurred_at - sent;
            if after < limit {
                event.verdict = Verdict::Machine;
                event.reason = Some(format!(
                    "clicked {}s after the message was sent (scanner)",
                    after.max(0)
                ));
            }
        }
    }

    /// Marks clicks that belong to a burst over several links of one message, in the
    /// batch and among `stored` clicks (clicks of the same messages stored before).
    /// Returns the stored human clicks that the burst shows to be a machine's too.
    pub fn apply_bursts(
        &self,
        events: &mut [NewTrackingEvent],
        stored: &[StoredClick],
    ) -> Vec<StoredClick> {
        let window = self.burst.as_secs() as i64;
        let batch: Vec<(usize, StoredClick)> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == TrackingKind::Click)
            .map(|(i, e)| (i, StoredClick::of(e)))
            .collect();
        let clicks: Vec<&StoredClick> = stored.iter().chain(batch.iter().map(|(_, c)| c)).collect();
        let in_burst = clicks_in_bursts(&clicks, window);
        let (stored_marks, batch_marks) = in_burst.split_at(stored.len());
        for ((index, _), _) in batch.iter().zip(batch_marks).filter(|(_, marked)| **marked) {
            let event = &mut events[*index];
            if event.verdict == Verdict::Human {
                event.verdict = Verdict::Machine;
                event.reason = Some(burst_reason(window));
            }
        }
        stored
            .iter()
            .zip(stored_marks)
            .filter(|(click, marked)| **marked && click.verdict == Verdict::Human)
            .map(|(click, _)| *click)
            .collect()
    }
}

/// For each click: whether a click of the same message on another link lies within
/// `window` seconds of it. Sorted by message and time, so one pass per message however
/// many clicks it has.
fn clicks_in_bursts(clicks: &[&StoredClick], window: i64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..clicks.len()).collect();
    order.sort_unstable_by_key(|&i| {
        (
            clicks[i].campaign_id,
            clicks[i].recipient_id,
            clicks[i].occurred_at,
        )
    });
    let mut marks = vec![false; clicks.len()];
    for message in order.chunk_by(|&a, &b| same_message(clicks[a], clicks[b])) {
        mark_bursts(message, clicks, window, &mut marks);
    }
    marks
}

fn same_message(a: &StoredClick, b: &StoredClick) -> bool {
    (a.campaign_id, a.recipient_id) == (b.campaign_id, b.recipient_id)
}

/// One message's clicks, `message` in time order: a click is in a burst unless every
/// click within `window` of it is on its own link.
fn mark_bursts(message: &[usize], clicks: &[&StoredClick], window: i64, marks: &mut [bool]) {
    if message.len() < 2 {
        return;
    }
    let at = |k: usize| clicks[message[k]].occurred_at;
    let link = |k: usize| clicks[message[k]].link_id;
    // run_start[k]: where the run of equal links that ends at position k starts.
    let mut run_start = vec![0; message.len()];
    for k in 1..message.len() {
        run_start[k] = if link(k) == link(k - 1) {
            run_start[k - 1]
        } else {
            k
        };
    }
    let (mut lo, mut hi) = (0, 0);
    for k in 0..message.len() {
        while at(k) - at(lo) > window {
            lo += 1;
        }
        while hi + 1 < message.len() && at(hi + 1) - at(k) <= window {
            hi += 1;
        }
        marks[message[k]] = run_start[hi] > lo;
    }
}

pub(crate) fn burst_reason(window: i64) -> String {
    format!("several links of one message clicked within {window}s (scanner)")
}

fn is_human_click(event: &NewTrackingEvent) -> bool {
    event.kind == TrackingKind::Click && event.verdict == Verdict::Human
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn facts(agent: &str) -> RequestFacts {
        RequestFacts {
            head: false,
            user_agent: Some(agent.into()),
            ip: None,
        }
    }

    const BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15";

    #[test]
    fn a_browser_is_human() {
        let (verdict, reason) = request_verdict(TrackingKind::Click, Some(1), &facts(BROWSER));
        assert_eq!((verdict, reason), (Verdict::Human, None));
    }

    #[test]
    fn proxies_scanners_and_head_requests_are_machines_with_a_reason() {
        let google = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
        for (facts, expected) in [
            (facts(google), "Google image proxy"),
            (facts("Mozilla/5.0"), "Apple Mail Privacy Protection"),
            (facts("Barracuda Sentinel (EE)"), "Barracuda"),
            (facts(""), "no user agent"),
            (
                RequestFacts {
                    head: true,
                    ..facts(BROWSER)
                },
                "HEAD request",
            ),
            (
                RequestFacts {
                    ip: Some("17.58.1.2".parse().unwrap()),
                    ..facts(BROWSER)
                },
                "Apple network",
            ),
        ] {
            let (verdict, reason) = request_verdict(TrackingKind::Open, None, &facts);
            assert_eq!(verdict, Verdict::Machine, "{facts:?}");
            assert!(reason.as_deref().unwrap().contains(expected), "{reason:?}");
        }
    }

    #[test]
    fn the_honeypot_link_is_a_machine_whatever_the_agent() {
        let (verdict, reason) =
            request_verdict(TrackingKind::Click, Some(HONEYPOT_LINK_ID), &facts(BROWSER));
        assert_eq!(verdict, Verdict::Machine);
        assert!(reason.unwrap().contains("honeypot"));
    }

    pub(in crate::http) fn click(recipient_id: i64, link_id: i64, at: i64) -> NewTrackingEvent {
        NewTrackingEvent {
            kind: TrackingKind::Click,
            campaign_id: 1,
            recipient_id,
            link_id: Some(link_id),
            occurred_at: at,
            ip: None,
            user_agent: None,
            verdict: Verdict::Human,
            reason: None,
        }
    }

    #[test]
    fn a_click_seconds_after_sending_is_a_scanner() {
        let rules = TimingRules::default();
        let mut events = vec![click(1, 5, 1003), click(2, 5, 1100)];
        let sent = [((1, 1), 1000), ((1, 2), 1000)].into_iter().collect();
        rules.apply_send_delay(&mut events, &sent);
        assert_eq!(events[0].verdict, Verdict::Machine);
        assert!(events[0].reason.as_deref().unwrap().contains("3s after"));
        assert_eq!(events[1].verdict, Verdict::Human);
    }

    #[test]
    fn several_links_clicked_at_once_are_a_scanner_and_revise_stored_clicks() {
        let rules = TimingRules::default();
        let stored = [StoredClick {
            campaign_id: 1,
            recipient_id: 1,
            link_id: Some(7),
            occurred_at: 500,
            verdict: Verdict::Human,
        }];
        let mut events = vec![
            click(1, 8, 501),
            click(1, 9, 501),
            click(2, 8, 501),
            click(2, 8, 600),
        ];
        let revised = rules.apply_bursts(&mut events, &stored);
        assert_eq!(revised, stored.to_vec());
        assert_eq!(events[0].verdict, Verdict::Machine);
        assert_eq!(events[1].verdict, Verdict::Machine);
        assert_eq!(
            events[2].verdict,
            Verdict::Human,
            "one link twice is not a burst"
        );
        assert_eq!(events[3].verdict, Verdict::Human);
    }

    #[test]
    fn a_burst_needs_another_link_within_the_window() {
        let rules = TimingRules::default();
        let machine = StoredClick {
            campaign_id: 1,
            recipient_id: 1,
            link_id: Some(7),
            occurred_at: 100,
            verdict: Verdict::Machine,
        };
        // Same link many times, then another link just out of reach of the first
        // clicks but within reach of the last ones.
        let mut events = vec![
            click(1, 7, 101),
            click(1, 7, 104),
            click(1, 7, 105),
            click(1, 8, 107),
            click(1, 9, 120),
        ];
        let revised = rules.apply_bursts(&mut events, &[machine]);
        assert!(revised.is_empty(), "a machine click is not revised again");
        let verdicts: Vec<Verdict> = events.iter().map(|e| e.verdict).collect();
        use Verdict::{Human, Machine};
        assert_eq!(verdicts, [Human, Human, Machine, Machine, Human]);
    }
}
