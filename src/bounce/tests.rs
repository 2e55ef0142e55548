//! Classification tests on messages written for the project (tests/fixtures/bounces),
//! one per format the classifier reads, in every line-ending convention.

use super::*;

mod plain_reports;
mod reference;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/bounces/",
            $name
        ))
    };
}

const FIXTURES: &[(&str, &[u8])] = &[
    ("dsn-hard", fixture!("dsn-hard.eml")),
    ("dsn-soft", fixture!("dsn-soft.eml")),
    ("dsn-delivered", fixture!("dsn-delivered.eml")),
    ("arf-complaint", fixture!("arf-complaint.eml")),
    ("autoreply", fixture!("autoreply.eml")),
    ("exim", fixture!("exim.eml")),
    ("qmail", fixture!("qmail.eml")),
    ("sendmail", fixture!("sendmail.eml")),
    ("exchange", fixture!("exchange.eml")),
    ("gmail", fixture!("gmail.eml")),
    ("ses", fixture!("ses.eml")),
    ("not-a-bounce", fixture!("not-a-bounce.eml")),
];

fn raw(name: &str) -> &'static [u8] {
    FIXTURES.iter().find(|(n, _)| *n == name).unwrap().1
}

/// (class, recipient, status) of each bounce.
fn summary(bounces: &[Bounce]) -> Vec<(BounceClass, Option<&str>, Option<&str>)> {
    bounces
        .iter()
        .map(|b| (b.class, b.recipient.as_deref(), b.status.as_deref()))
        .collect()
}

fn one(name: &str) -> Bounce {
    let bounces = classify(raw(name));
    assert_eq!(bounces.len(), 1, "{name}: {bounces:?}");
    bounces.into_iter().next().unwrap()
}

#[test]
fn standard_dsn_user_unknown_is_hard_and_names_the_original() {
    let report = parse(raw("dsn-hard"));
    assert_eq!(
        summary(&report.bounces),
        vec![(BounceClass::Hard, Some("nobody@reader.test"), Some("5.1.1"))]
    );
    let bounce = &report.bounces[0];
    assert!(
        bounce
            .diagnostic
            .as_deref()
            .unwrap()
            .contains("User unknown")
    );
    assert_eq!(bounce.message_id.as_deref(), Some("spring-1@sender.test"));
    assert_eq!(
        bounce.return_path.as_deref(),
        Some("bounces+d42@sender.test")
    );
    assert_eq!(report.original.to.as_deref(), Some("nobody@reader.test"));
}

#[test]
fn dsn_with_a_full_mailbox_and_a_delay_is_two_soft_bounces() {
    let report = parse(raw("dsn-soft"));
    assert_eq!(
        summary(&report.bounces),
        vec![
            (BounceClass::Soft, Some("full@reader.test"), Some("5.2.2")),
            (BounceClass::Soft, Some("later@reader.test"), Some("4.4.1")),
        ]
    );
    assert_eq!(
        report.original.message_id.as_deref(),
        Some("spring-2@sender.test")
    );
}

#[test]
fn success_dsn_is_delivered() {
    let bounce = one("dsn-delivered");
    assert_eq!(bounce.class, BounceClass::Delivered);
    assert_eq!(bounce.recipient.as_deref(), Some("happy@reader.test"));
}

#[test]
fn feedback_report_is_a_complaint_by_its_original_recipient() {
    let bounce = one("arf-complaint");
    assert_eq!(bounce.class, BounceClass::Complaint);
    assert_eq!(bounce.recipient.as_deref(), Some("annoyed@isp.test"));
    assert_eq!(bounce.message_id.as_deref(), Some("sale-9@sender.test"));
}

#[test]
fn out_of_office_is_an_autoreply_from_its_sender() {
    let bounce = one("autoreply");
    assert_eq!(bounce.class, BounceClass::AutoReply);
    assert_eq!(bounce.recipient.as_deref(), Some("anna@reader.test"));
}

#[test]
fn exim_text_report_is_read() {
    let report = parse(raw("exim"));
    assert_eq!(
        summary(&report.bounces),
        vec![(BounceClass::Hard, Some("gone@reader.test"), Some("5.1.1"))]
    );
    assert_eq!(
        report.original.message_id.as_deref(),
        Some("spring-3@sender.test")
    );
}

#[test]
fn qmail_full_mailbox_is_soft() {
    let bounce = one("qmail");
    assert_eq!(bounce.class, BounceClass::Soft);
    assert_eq!(bounce.recipient.as_deref(), Some("stuffed@reader.test"));
    assert_eq!(bounce.status.as_deref(), Some("5.2.2"));
}

#[test]
fn sendmail_spam_rejection_is_soft() {
    let bounce = one("sendmail");
    assert_eq!(bounce.class, BounceClass::Soft);
    assert_eq!(bounce.recipient.as_deref(), Some("blocked@reader.test"));
}

#[test]
fn exchange_unknown_address_is_hard() {
    let bounce = one("exchange");
    assert_eq!(bounce.class, BounceClass::Hard);
    assert_eq!(
        bounce.recipient.as_deref(),
        Some("left.company@corp.reader.test")
    );
}

#[test]
fn gmail_account_that_does_not_exist_is_hard() {
    let bounce = one("gmail");
    assert_eq!(bounce.class, BounceClass::Hard);
    assert_eq!(bounce.recipient.as_deref(), Some("typo@reader.test"));
    assert_eq!(bounce.status.as_deref(), Some("5.1.1"));
}

#[test]
fn ses_json_notification_is_read() {
    let bounce = one("ses");
    assert_eq!(bounce.class, BounceClass::Hard);
    assert_eq!(bounce.recipient.as_deref(), Some("missing@reader.test"));
}

#[test]
fn a_reply_is_not_a_bounce() {
    let bounce = one("not-a-bounce");
    assert_eq!(bounce.class, BounceClass::NotABounce);
    assert_eq!(bounce.recipient, None);
}

#[test]
fn every_fixture_reads_the_same_in_every_line_ending() {
    for (name, raw) in FIXTURES {
        let lf = classify(raw);
        for ending in [LineEnding::Crlf, LineEnding::Cr] {
            assert_eq!(classify(&ending.apply(raw)), lf, "{name} with {ending:?}");
        }
    }
}

#[test]
fn empty_and_headerless_input_is_not_a_bounce() {
    for raw in [
        &b""[..],
        b"\r\r\n\n",
        b"no headers at all",
        &[0xff, 0xfe, 0x00],
    ] {
        let bounces = classify(raw);
        assert_eq!(bounces.len(), 1);
        assert_eq!(bounces[0].class, BounceClass::NotABounce);
    }
}

/// Every prefix of every fixture, and copies with bytes overwritten at pseudo-random
/// places, classify without panicking and give at least one entry.
#[test]
fn truncated_and_damaged_messages_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (_, raw) in FIXTURES {
        for end in (0..raw.len()).step_by(7) {
            assert!(!classify(&raw[..end]).is_empty());
        }
        for _ in 0..50 {
            let mut damaged = raw.to_vec();
            for _ in 0..8 {
                let at = (next() as usize) % damaged.len();
                damaged[at] = next() as u8;
            }
            assert!(!classify(&damaged).is_empty());
        }
    }
}

mod property {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_bytes_classify_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
            prop_assert!(!classify(&raw).is_empty());
        }

        #[test]
        fn header_shaped_noise_classifies_without_panic(
            lines in proptest::collection::vec("[A-Za-z-]{0,12}:[ -~]{0,40}(\r\n|\n|\r)", 0..30),
            body in "[ -~\r\n]{0,400}",
        ) {
            let raw = format!("{}\n{}", lines.concat(), body);
            prop_assert!(!classify(raw.as_bytes()).is_empty());
        }
    }
}
