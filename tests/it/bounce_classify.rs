//! Bounce classification against the labelled corpus in ../shared/bounces (real bounces
//! from many servers, labels by Sisimai), whatever the line endings. The target is 97 %
//! agreement on class and on recipient (src/bounce/EVALUATION.md explains each row that
//! disagrees). The corpus lies outside the repository: skipped, saying so, where a
//! checkout has no ../shared beside it.

use std::path::PathBuf;

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

/// Real bounces from other projects' public test mail that the classifier was not tuned
/// on, labelled by the same reference (fixtures/bounces-unseen/README.md).
fn unseen() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bounces-unseen")
}

// The target is 97 % here too. Measured before any rule looked at this set:
// class 92.1 % (140/152), recipient 92.8 % (141/152), the same in LF, CRLF and CR.
// The floors are those figures rounded down, so the set cannot get worse unnoticed.
const UNSEEN_CLASS_FLOOR: f64 = 92.0;
const UNSEEN_RECIPIENT_FLOOR: f64 = 92.0;

#[test]
fn agreement_on_mail_not_tuned_on_holds_its_floor_in_every_line_ending() {
    for ending in [LineEnding::Lf, LineEnding::Crlf, LineEnding::Cr] {
        let evaluation = evaluate_dir(&unseen(), ending, 1).unwrap();
        let report = evaluation.render();
        assert!(
            evaluation.rows > 145,
            "{ending:?}: too few scored rows\n{report}"
        );
        assert!(
            evaluation.class_rate() >= UNSEEN_CLASS_FLOOR,
            "{ending:?}: class agreement {:.1} %\n{report}",
            evaluation.class_rate()
        );
        assert!(
            evaluation.recipient_rate() >= UNSEEN_RECIPIENT_FLOOR,
            "{ending:?}: recipient agreement {:.1} %\n{report}",
            evaluation.recipient_rate()
        );
    }
}

#[test]
fn line_endings_do_not_change_a_single_result_on_mail_not_tuned_on() {
    let lf = evaluate_dir(&unseen(), LineEnding::Lf, 1).unwrap();
    assert!(lf.messages > 160, "{}", lf.render());
    for ending in [LineEnding::Crlf, LineEnding::Cr] {
        let other = evaluate_dir(&unseen(), ending, 1).unwrap();
        assert_eq!(other.disagreements, lf.disagreements, "{ending:?}");
        assert_eq!(other.class_agreed, lf.class_agreed, "{ending:?}");
    }
}
