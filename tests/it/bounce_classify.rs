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
