//! Agreement with a labelled corpus: `DIR/mail/*` and `DIR/labels.tsv` (one row per file
//! and failed recipient: file, recipient, class, status, reason; `-` for none).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{Bounce, BounceClass, classify};

/// The line-ending convention messages are converted to before they are classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LineEnding {
    Lf,
    Crlf,
    Cr,
}

impl LineEnding {
    /// `raw` (LF, CRLF or mixed) rewritten with this convention.
    pub fn apply(self, raw: &[u8]) -> Vec<u8> {
        let lf = super::mime::normalise_line_endings(raw);
        let eol: &[u8] = match self {
            LineEnding::Lf => return lf.into_owned(),
            LineEnding::Crlf => b"\r\n",
            LineEnding::Cr => b"\r",
        };
        let mut out = Vec::with_capacity(lf.len() + lf.len() / 40);
        for (i, line) in lf.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.extend_from_slice(eol);
            }
            out.extend_from_slice(line);
        }
        out
    }
}

/// Sisimai's stand-in for "the report names no recipient".
const NO_RECIPIENT_PLACEHOLDER: &str = "undisclosed-recipient-in-headers@libsisimai.org.invalid";

#[derive(Debug, Clone)]
struct Label {
    file: String,
    recipient: Option<String>,
    class: BounceClass,
    /// Status and finer reason, shown with a disagreement.
    detail: String,
}

/// A label row the classifier does not agree with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub file: String,
    pub expected_class: BounceClass,
    pub expected_recipient: Option<String>,
    pub got_class: BounceClass,
    pub got_recipient: Option<String>,
    /// The label's status and reason.
    pub expected_detail: String,
    /// The status and diagnostic the classifier read.
    pub got_detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub messages: usize,
    pub rows: usize,
    pub class_agreed: usize,
    pub recipient_agreed: usize,
    /// (expected, got) → rows.
    pub confusion: BTreeMap<(BounceClass, BounceClass), usize>,
    pub disagreements: Vec<Disagreement>,
    /// Rows the reference could not read (class `none`, no recipient): not scored,
    /// since they hold no reading to agree with; counted by what the classifier found.
    pub unread_by_reference: BTreeMap<BounceClass, usize>,
    /// Agreement over every row, the unread ones included.
    pub all_rows: usize,
    pub all_class_agreed: usize,
    pub all_recipient_agreed: usize,
    /// Messages classified in the timing loop, and how long it took.
    pub timed_messages: usize,
    pub elapsed: Duration,
}

impl Evaluation {
    pub fn class_rate(&self) -> f64 {
        percent(self.class_agreed, self.rows)
    }

    pub fn recipient_rate(&self) -> f64 {
        percent(self.recipient_agreed, self.rows)
    }

    pub fn messages_per_second(&self) -> f64 {
        self.timed_messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The report `mailcast bounces evaluate` prints.
    pub fn render(&self) -> String {
        let unread: usize = self.unread_by_reference.values().sum();
        let mut out = format!(
            "messages: {}, labelled rows: {}, scored (the reference read them): {}\n\
             class agreement: {:.1} % ({}/{})\nrecipient agreement: {:.1} % ({}/{})\n",
            self.messages,
            self.all_rows,
            self.rows,
            self.class_rate(),
            self.class_agreed,
            self.rows,
            self.recipient_rate(),
            self.recipient_agreed,
            self.rows
        );
        out.push_str(&format!(
            "over all rows: class {:.1} % ({}/{}), recipient {:.1} % ({}/{})\n",
            percent(self.all_class_agreed, self.all_rows),
            self.all_class_agreed,
            self.all_rows,
            percent(self.all_recipient_agreed, self.all_rows),
            self.all_recipient_agreed,
            self.all_rows
        ));
        let found: Vec<String> = self
            .unread_by_reference
            .iter()
            .map(|(class, n)| format!("{class} {n}"))
            .collect();
        out.push_str(&format!(
            "rows the reference could not read: {unread} (read here as: {})\n",
            found.join(", ")
        ));
        out.push_str(&format!(
            "throughput: {:.0} messages/s ({} messages in {:.3} s)\n",
            self.messages_per_second(),
            self.timed_messages,
            self.elapsed.as_secs_f64()
        ));
        out.push_str("\nconfusion (expected -> got: rows)\n");
        for ((expected, got), n) in &self.confusion {
            let mark = if expected == got { "" } else { "  *" };
            out.push_str(&format!("  {expected:>9} -> {got:<9} {n:>4}{mark}\n"));
        }
        out.push_str(&format!("\ndisagreements ({})\n", self.disagreements.len()));
        for d in &self.disagreements {
            out.push_str(&format!(
                "  {}\texpected {} {} ({})\tgot {} {}\n      {}\n",
                d.file,
                d.expected_class,
                d.expected_recipient.as_deref().unwrap_or("-"),
                d.expected_detail,
                d.got_class,
                d.got_recipient.as_deref().unwrap_or("-"),
                d.got_detail,
            ));
        }
        out
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Classifies every message of `dir/mail` (`repeat` times, for the timing) and compares
/// the results with `dir/labels.tsv`.
pub fn evaluate_dir(dir: &Path, ending: LineEnding, repeat: usize) -> anyhow::Result<Evaluation> {
    let labels = read_labels(&dir.join("labels.tsv"))?;
    let messages = read_messages(&dir.join("mail"), ending)?;
    let started = Instant::now();
    for _ in 1..repeat.max(1) {
        for (_, raw) in &messages {
            std::hint::black_box(classify(raw));
        }
    }
    let results: BTreeMap<&str, Vec<Bounce>> = messages
        .iter()
        .map(|(file, raw)| (file.as_str(), classify(raw)))
        .collect();
    let elapsed = started.elapsed();
    let mut evaluation = Evaluation {
        messages: messages.len(),
        timed_messages: messages.len() * repeat.max(1),
        elapsed,
        ..Evaluation::default()
    };
    let mut by_file: BTreeMap<&str, Vec<&Label>> = BTreeMap::new();
    for label in &labels {
        by_file.entry(label.file.as_str()).or_default().push(label);
    }
    for (file, rows) in by_file {
        let got = results.get(file).map(Vec::as_slice).unwrap_or(&[]);
        for (index, label) in rows.into_iter().enumerate() {
            score(&mut evaluation, label, index, got);
        }
    }
    Ok(evaluation)
}

fn score(evaluation: &mut Evaluation, label: &Label, index: usize, got: &[Bounce]) {
    let same_recipient = |b: &&Bounce| match (&label.recipient, &b.recipient) {
        (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
        (None, None) => true,
        _ => false,
    };
    let matched = got.iter().find(same_recipient);
    let compared = matched.or_else(|| got.get(index)).or_else(|| got.first());
    let got_class = compared.map_or(BounceClass::NotABounce, |b| b.class);
    let class_ok = got_class == label.class;
    evaluation.all_rows += 1;
    evaluation.all_class_agreed += usize::from(class_ok);
    evaluation.all_recipient_agreed += usize::from(matched.is_some());
    if label.class == BounceClass::NotABounce && label.recipient.is_none() {
        *evaluation.unread_by_reference.entry(got_class).or_default() += 1;
    } else {
        evaluation.rows += 1;
        evaluation.class_agreed += usize::from(class_ok);
        evaluation.recipient_agreed += usize::from(matched.is_some());
    }
    *evaluation
        .confusion
        .entry((label.class, got_class))
        .or_default() += 1;
    if !class_ok || matched.is_none() {
        evaluation.disagreements.push(Disagreement {
            file: label.file.clone(),
            expected_class: label.class,
            expected_recipient: label.recipient.clone(),
            got_class,
            got_recipient: compared.and_then(|b| b.recipient.clone()),
            expected_detail: label.detail.clone(),
            got_detail: compared.map(detail).unwrap_or_default(),
        });
    }
}

fn detail(bounce: &Bounce) -> String {
    let diagnostic: String = bounce
        .diagnostic
        .as_deref()
        .unwrap_or("-")
        .chars()
        .take(200)
        .collect();
    format!("{} {}", bounce.status.as_deref().unwrap_or("-"), diagnostic)
}

fn read_labels(path: &Path) -> anyhow::Result<Vec<Label>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the labels {}", path.display()))?;
    let mut labels = Vec::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let columns: Vec<&str> = line.split('\t').collect();
        let [file, recipient, class, ..] = columns[..] else {
            anyhow::bail!(
                "{} line {}: expected file, recipient and class",
                path.display(),
                number + 1
            );
        };
        let class = BounceClass::parse(class).with_context(|| {
            format!(
                "{} line {}: unknown class '{class}'",
                path.display(),
                number + 1
            )
        })?;
        let recipient = Some(recipient)
            .filter(|r| *r != "-" && !r.eq_ignore_ascii_case(NO_RECIPIENT_PLACEHOLDER))
            .map(str::to_string);
        labels.push(Label {
            file: file.to_string(),
            recipient,
            class,
            detail: columns[3..].join(" "),
        });
    }
    Ok(labels)
}

fn read_messages(dir: &Path, ending: LineEnding) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut messages = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        let raw =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        messages.push((name, ending.apply(&raw)));
    }
    messages.sort();
    Ok(messages)
}
