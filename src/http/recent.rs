//! What the event writer remembers between batches, so that classifying a batch needs
//! no query for clicks already seen: the clicks of the last seconds, by message, and
//! the send times already looked up.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::store::{NewTrackingEvent, StoredClick, TrackingKind, Verdict};

/// Clicks a little older than the burst window are kept too: a handler stamps its
/// event before it waits for room in a full queue, so events arrive somewhat out of
/// order.
const LATE_ARRIVAL: i64 = 10;

/// A (campaign, recipient) pair: one message.
type Message = (i64, i64);

/// The clicks stored in the last seconds, by message.
pub(crate) struct RecentClicks {
    keep: i64,
    by_message: HashMap<Message, Vec<StoredClick>>,
    /// Messages in the order their clicks were stored, to forget old clicks.
    arrivals: VecDeque<(i64, Message)>,
    newest: i64,
}

impl RecentClicks {
    pub fn new(burst: Duration) -> Self {
        RecentClicks {
            keep: burst.as_secs() as i64 + LATE_ARRIVAL,
            by_message: HashMap::new(),
            arrivals: VecDeque::new(),
            newest: i64::MIN,
        }
    }

    /// The remembered clicks of the messages that `events` click in.
    pub fn of_messages(&self, events: &[NewTrackingEvent]) -> Vec<StoredClick> {
        let mut messages: Vec<Message> = events
            .iter()
            .filter(|e| e.kind == TrackingKind::Click)
            .map(|e| (e.campaign_id, e.recipient_id))
            .filter(|m| self.by_message.contains_key(m))
            .collect();
        messages.sort_unstable();
        messages.dedup();
        messages
            .iter()
            .flat_map(|m| self.by_message[m].iter().copied())
            .collect()
    }

    /// Remembers the clicks of a stored batch and forgets those too old to matter.
    pub fn stored(&mut self, events: &[NewTrackingEvent]) {
        for event in events.iter().filter(|e| e.kind == TrackingKind::Click) {
            let message = (event.campaign_id, event.recipient_id);
            self.by_message
                .entry(message)
                .or_default()
                .push(StoredClick::of(event));
            self.arrivals.push_back((event.occurred_at, message));
            self.newest = self.newest.max(event.occurred_at);
        }
        self.forget_before(self.newest.saturating_sub(self.keep));
    }

    /// Stored clicks now known to be a machine's.
    pub fn revised(&mut self, clicks: &[StoredClick]) {
        for click in clicks {
            let message = (click.campaign_id, click.recipient_id);
            let Some(remembered) = self.by_message.get_mut(&message) else {
                continue;
            };
            for same in remembered
                .iter_mut()
                .filter(|c| (c.link_id, c.occurred_at) == (click.link_id, click.occurred_at))
            {
                same.verdict = Verdict::Machine;
            }
        }
    }

    fn forget_before(&mut self, cutoff: i64) {
        while let Some(&(at, message)) = self.arrivals.front() {
            if at >= cutoff {
                break;
            }
            self.arrivals.pop_front();
            if let Some(clicks) = self.by_message.get_mut(&message) {
                clicks.retain(|c| c.occurred_at >= cutoff);
                if clicks.is_empty() {
                    self.by_message.remove(&message);
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_message.values().map(Vec::len).sum()
    }
}

/// Send times already looked up. A message's send time never changes once recorded,
/// so it is kept (up to a bound); a message not yet recorded as sent is looked up
/// again each time, since it may be recorded any moment.
#[derive(Default)]
pub(crate) struct SentTimes {
    known: HashMap<Message, i64>,
}

const SENT_TIMES_LIMIT: usize = 500_000;

impl SentTimes {
    /// The send times known for `messages`, and the messages to look up.
    pub fn split(&self, messages: &[Message]) -> (HashMap<Message, i64>, Vec<Message>) {
        let mut known = HashMap::new();
        let mut unknown = Vec::new();
        for message in messages {
            match self.known.get(message) {
                Some(&at) => {
                    known.insert(*message, at);
                }
                None => unknown.push(*message),
            }
        }
        (known, unknown)
    }

    pub fn remember(&mut self, found: &HashMap<Message, i64>) {
        if self.known.len() + found.len() > SENT_TIMES_LIMIT {
            self.known.clear();
        }
        self.known.extend(found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::verdict::tests::click;

    #[test]
    fn remembers_recent_clicks_by_message_and_forgets_old_ones() {
        let mut recent = RecentClicks::new(Duration::from_secs(2));
        recent.stored(&[click(1, 5, 100), click(2, 5, 100)]);
        let of_one = recent.of_messages(&[click(1, 6, 101)]);
        assert_eq!(of_one.len(), 1);
        assert_eq!((of_one[0].recipient_id, of_one[0].link_id), (1, Some(5)));
        assert!(recent.of_messages(&[click(3, 6, 101)]).is_empty());

        recent.stored(&[click(3, 5, 100 + 2 + LATE_ARRIVAL + 1)]);
        assert_eq!(recent.len(), 1, "clicks at 100 are past the window");
        assert!(recent.of_messages(&[click(1, 6, 115)]).is_empty());
    }

    #[test]
    fn revised_clicks_are_remembered_as_machine() {
        let mut recent = RecentClicks::new(Duration::from_secs(2));
        recent.stored(&[click(1, 5, 100)]);
        let stored = recent.of_messages(&[click(1, 6, 100)]);
        recent.revised(&stored);
        assert_eq!(
            recent.of_messages(&[click(1, 6, 100)])[0].verdict,
            Verdict::Machine
        );
    }

    #[test]
    fn known_send_times_are_not_looked_up_again() {
        let mut sent = SentTimes::default();
        sent.remember(&[((1, 1), 50)].into_iter().collect());
        let (known, unknown) = sent.split(&[(1, 1), (1, 2)]);
        assert_eq!(known.get(&(1, 1)), Some(&50));
        assert_eq!(unknown, vec![(1, 2)]);
    }
}
