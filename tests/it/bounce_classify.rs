//! Bounce classification against the labelled corpus in ../shared/bounces (real bounces
//! from many servers, labels by Sisimai), whatever the line endings. The target is 97 %
//! agreement on class and on recipient (src/bounce/EVALUATION.md explains each row that
//! disagrees). The corpus lies outside the repository: skipped, saying so, where a
//! checkout has no ../shared beside it.

use std::path::{Path, PathBuf};

use mailcast::bounce::{LineEnding, evaluate_dir};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/bounces");
    if dir.join("labels.tsv").is_file() {
        return Some(dir);
    }
    eprintln!("skipped: no bounce corpus at {}", dir.display());
    None
}

#[test]
fn agreement_with_the_reference_holds_in_every_line_ending() {
    let Some(dir) = corpus() else { return };
    for ending in [LineEnding::Lf, LineEnding::Crlf, LineEnding::Cr] {
        let evaluation = evaluate_dir(&dir, ending, 1).unwrap();
        let report = evaluation.render();
        assert!(
            evaluation.rows > 300,
            "{ending:?}: too few labelled rows\n{report}"
        );
        assert!(
            evaluation.class_rate() >= 97.0,
            "{ending:?}: class agreement {:.1} %\n{report}",
            evaluation.class_rate()
        );
        assert!(
            evaluation.recipient_rate() >= 97.0,
            "{ending:?}: recipient agreement {:.1} %\n{report}",
            evaluation.recipient_rate()
        );
    }
}

#[test]
fn line_endings_do_not_change_a_single_result() {
    let Some(dir) = corpus() else { return };
    let lf = evaluate_dir(&dir, LineEnding::Lf, 1).unwrap();
    for ending in [LineEnding::Crlf, LineEnding::Cr] {
        let other = evaluate_dir(&dir, ending, 1).unwrap();
        assert_eq!(other.disagreements, lf.disagreements, "{ending:?}");
    }
}

/// Real bounces from other projects' public test mail, labelled by the same reference
/// (fixtures/bounces-unseen/README.md). The rules were tuned on its disagreements.
fn unseen() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bounces-unseen")
}

/// Real bounces set aside before that tuning and measured once after it
/// (fixtures/bounces-holdout/README.md); the rules were then aligned with the reference's
/// own (its reason lists, their order, its code table), so it is tuned on too.
fn holdout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bounces-holdout")
}

/// Real bounces from yet other projects' test mail (fixtures/bounces-fresh/README.md),
/// collected and labelled while nobody ran the classifier on them, and measured once
/// after the rules were aligned with the reference's: the figure for mail the rules were
/// not written from.
fn fresh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bounces-fresh")
}

// Measured once, 2026-12-08, the first 32 messages: class 96.7 % (29/30), recipient 100 %;
// then the 11 added after them, once, over all 43: class 97.4 % (38/39), recipient 100 %
// (39/39), the same in LF, CRLF and CR. The floors are the latter rounded down.
const FRESH_CLASS_FLOOR: f64 = 97.0;
const FRESH_RECIPIENT_FLOOR: f64 = 100.0;

// Measured at 92.1 % class (140/152) and 92.8 % recipient (141/152) before any rule
// looked at this set; now 98.0 % (149/152) and 99.3 % (151/152) after tuning on it, the
// same in LF, CRLF and CR. The floors are the latter rounded down.
const UNSEEN_CLASS_FLOOR: f64 = 98.0;
const UNSEEN_RECIPIENT_FLOOR: f64 = 99.0;

// Measured once, after the tuning above: class 94.1 % (112/119), recipient 98.3 %
// (117/119). After the rules were aligned with the reference's: class 99.2 % (118/119),
// recipient 98.3 % (117/119), the same in LF, CRLF and CR. The floors are the latter
// rounded down.
const HOLDOUT_CLASS_FLOOR: f64 = 99.0;
const HOLDOUT_RECIPIENT_FLOOR: f64 = 98.0;

fn holds_its_floors(dir: &Path, min_rows: usize, class_floor: f64, recipient_floor: f64) {
    for ending in [LineEnding::Lf, LineEnding::Crlf, LineEnding::Cr] {
        let evaluation = evaluate_dir(dir, ending, 1).unwrap();
        let report = evaluation.render();
        assert!(
            evaluation.rows >= min_rows,
            "{ending:?}: too few scored rows\n{report}"
        );
        assert!(
            evaluation.class_rate() >= class_floor,
            "{ending:?}: class agreement {:.1} %\n{report}",
            evaluation.class_rate()
        );
        assert!(
            evaluation.recipient_rate() >= recipient_floor,
            "{ending:?}: recipient agreement {:.1} %\n{report}",
            evaluation.recipient_rate()
        );
    }
}

fn reads_the_same_in_every_line_ending(dir: &Path, min_messages: usize) {
    let lf = evaluate_dir(dir, LineEnding::Lf, 1).unwrap();
    assert!(lf.messages >= min_messages, "{}", lf.render());
    for ending in [LineEnding::Crlf, LineEnding::Cr] {
        let other = evaluate_dir(dir, ending, 1).unwrap();
        assert_eq!(other.disagreements, lf.disagreements, "{ending:?}");
        assert_eq!(other.class_agreed, lf.class_agreed, "{ending:?}");
    }
}

#[test]
fn agreement_on_mail_tuned_on_after_the_fact_holds_its_floor_in_every_line_ending() {
    holds_its_floors(&unseen(), 150, UNSEEN_CLASS_FLOOR, UNSEEN_RECIPIENT_FLOOR);
}

#[test]
fn line_endings_do_not_change_a_single_result_on_the_unseen_set() {
    reads_the_same_in_every_line_ending(&unseen(), 165);
}

#[test]
fn agreement_on_the_holdout_aligned_after_the_fact_holds_its_floor_in_every_line_ending() {
    holds_its_floors(
        &holdout(),
        119,
        HOLDOUT_CLASS_FLOOR,
        HOLDOUT_RECIPIENT_FLOOR,
    );
}

#[test]
fn line_endings_do_not_change_a_single_result_on_the_holdout() {
    reads_the_same_in_every_line_ending(&holdout(), 121);
}

#[test]
fn agreement_on_mail_no_rule_was_written_from_holds_its_floor_in_every_line_ending() {
    holds_its_floors(&fresh(), 39, FRESH_CLASS_FLOOR, FRESH_RECIPIENT_FLOOR);
}

#[test]
fn line_endings_do_not_change_a_single_result_on_the_fresh_set() {
    reads_the_same_in_every_line_ending(&fresh(), 43);
}
