//! An experiment as a campaign stores it, and checking one as the CLI and the API
//! describe it: every problem named by its field, nothing created when one is wrong.

use serde::{Deserialize, Serialize};

use super::judge::Metric;

/// Basis points: 10,000 is the whole audience.
pub const WHOLE: u32 = 10_000;
pub const MIN_VARIANTS: usize = 2;
pub const MAX_VARIANTS: usize = 5;
/// How long a test runs before it is judged when the campaign names no wait.
pub const DEFAULT_WAIT_SECONDS: i64 = 4 * 3_600;

/// What a campaign with variants does (kept in its settings, so it needs no migration
/// of the campaigns table).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Experiment {
    pub variants: Vec<Variant>,
    /// Test-then-winner: this share (basis points) of the audience is split across the
    /// variants and the winner goes to the rest after `wait_seconds`. None: a split,
    /// where everyone outside the holdout gets a variant and no winner is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_share: Option<u32>,
    #[serde(default)]
    pub wait_seconds: i64,
    /// `clicks`, `opens`, `conversions` or `revenue` (see [`Metric::parse`]).
    pub metric: String,
    /// Share (basis points) that gets nothing, for uplift.
    #[serde(default)]
    pub holdout: u32,
}

/// What a variant changes; unset fields are the campaign's own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Variant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
    /// A stored template version's id (named by the template's name on input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<i64>,
    /// Unix seconds: this variant's deliveries wait until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<i64>,
}

/// The part of the audience a recipient falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    Holdout,
    /// Waits for the winner (test-then-winner only).
    Rest,
    Variant(usize),
}

impl Experiment {
    pub fn metric(&self) -> Metric {
        Metric::parse(&self.metric).unwrap_or(Metric::HumanClicks)
    }

    pub fn picks_a_winner(&self) -> bool {
        self.test_share.is_some()
    }

    /// `A`, `B`, … as variants are named to people.
    pub fn label(variant: usize) -> String {
        char::from(b'A' + variant.min(25) as u8).to_string()
    }

    /// Where a recipient whose assignment draws are `(bucket, pick)` belongs: the first
    /// `holdout` buckets are held out, the next `test_share` are tested (all of the
    /// rest in a split), and a tested recipient's variant is `pick` modulo the count.
    pub fn arm(&self, bucket: u32, pick: u64) -> Arm {
        if bucket < self.holdout {
            return Arm::Holdout;
        }
        let tested = self.test_share.unwrap_or(WHOLE);
        if bucket - self.holdout >= tested {
            return Arm::Rest;
        }
        Arm::Variant((pick % self.variants.len() as u64) as usize)
    }
}

/// An experiment as written by a person: shares as `20%`, the wait as `4h`, templates
/// by name, send times as RFC 3339.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentInput {
    pub variants: Vec<VariantInput>,
    #[serde(default)]
    pub test_share: Option<String>,
    #[serde(default)]
    pub wait: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default)]
    pub holdout: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    pub subject: Option<String>,
    pub preheader: Option<String>,
    pub from_name: Option<String>,
    pub template: Option<String>,
    pub send_at: Option<String>,
}

/// One problem with an input: the field (`experiment.variants[1].template`) and what
/// is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl VariantInput {
    /// `subject=Winter sale; template=promo-b`, as `--variant` takes it.
    pub fn parse_pairs(text: &str) -> Result<VariantInput, String> {
        let mut variant = VariantInput::default();
        for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!("`{pair}` is not field=value"));
            };
            let value = Some(value.trim().to_string());
            match key.trim() {
                "subject" => variant.subject = value,
                "preheader" => variant.preheader = value,
                "from_name" => variant.from_name = value,
                "template" => variant.template = value,
                "send_at" => variant.send_at = value,
                other => {
                    return Err(format!(
                        "unknown field `{other}`: one of subject, preheader, from_name, template, send_at"
                    ));
                }
            }
        }
        Ok(variant)
    }
}

/// [`check`] with templates looked up in the store; the outer error is the store's.
pub async fn check_in(
    store: &crate::store::Store,
    input: &ExperimentInput,
) -> Result<Result<Experiment, Vec<FieldProblem>>, crate::store::StoreError> {
    let mut known = std::collections::HashMap::new();
    for name in input.variants.iter().filter_map(|v| v.template.as_deref()) {
        let name = name.trim();
        if let Some(template) = store.template_by_name(name).await? {
            known.insert(name.to_string(), template.id);
        }
    }
    Ok(check(input, |name| known.get(name).copied()))
}

/// Checks an input; `template_id` finds a stored template by name. Every problem is
/// reported, each with its field.
pub fn check(
    input: &ExperimentInput,
    template_id: impl Fn(&str) -> Option<i64>,
) -> Result<Experiment, Vec<FieldProblem>> {
    let mut problems = Problems::default();
    let count = input.variants.len();
    if !(MIN_VARIANTS..=MAX_VARIANTS).contains(&count) {
        problems.add(
            "variants",
            format!("{count} variants: an experiment has {MIN_VARIANTS} to {MAX_VARIANTS}"),
        );
    }
    let mut variants = Vec::with_capacity(count);
    for (index, raw) in input.variants.iter().enumerate() {
        match check_variant(raw, &template_id) {
            Ok(variant) => variants.push(variant),
            Err((field, message)) => problems.add(&format!("variants[{index}].{field}"), message),
        }
    }
    let test_share = problems.share("test_share", input.test_share.as_deref());
    let holdout = problems
        .share("holdout", input.holdout.as_deref())
        .unwrap_or(0);
    if test_share == Some(0) {
        problems.add("test_share", "must be more than 0%".into());
    }
    check_shares(&mut problems, test_share, holdout);
    let metric = input.metric.as_deref().unwrap_or("clicks");
    if let Err(message) = Metric::parse(metric) {
        problems.add("metric", message);
    }
    let wait_seconds = wait(&mut problems, input, test_share);
    if !problems.0.is_empty() {
        return Err(problems.0);
    }
    Ok(Experiment {
        variants,
        test_share,
        wait_seconds,
        metric: metric.to_string(),
        holdout,
    })
}

#[derive(Default)]
struct Problems(Vec<FieldProblem>);

impl Problems {
    fn add(&mut self, field: &str, message: String) {
        self.0.push(FieldProblem {
            field: format!("experiment.{field}"),
            message,
        });
    }

    fn share(&mut self, field: &str, text: Option<&str>) -> Option<u32> {
        match parse_share(text?) {
            Ok(share) => Some(share),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }
}

fn check_shares(problems: &mut Problems, test_share: Option<u32>, holdout: u32) {
    let tested = test_share.unwrap_or(WHOLE);
    if holdout < WHOLE && tested + holdout <= WHOLE {
        return;
    }
    let what = match test_share {
        Some(share) => format!(
            "test share {} plus holdout {} is over 100%",
            percent(share),
            percent(holdout)
        ),
        None => format!("holdout {} leaves nobody to mail", percent(holdout)),
    };
    problems.add("holdout", what);
}

/// The test's wait: given, else the default for a test; a split has none.
fn wait(problems: &mut Problems, input: &ExperimentInput, test_share: Option<u32>) -> i64 {
    let Some(text) = input.wait.as_deref() else {
        return if test_share.is_some() {
            DEFAULT_WAIT_SECONDS
        } else {
            0
        };
    };
    if input.test_share.is_none() {
        problems.add(
            "wait",
            "a wait needs a test share (a split sends every variant at once)".into(),
        );
    }
    crate::automation::definition::units::duration(text.trim()).unwrap_or_else(|message| {
        problems.add("wait", message);
        0
    })
}

fn check_variant(
    raw: &VariantInput,
    template_id: &impl Fn(&str) -> Option<i64>,
) -> Result<Variant, (&'static str, String)> {
    let template_id = match raw.template.as_deref().map(str::trim) {
        Some(name) => {
            Some(template_id(name).ok_or(("template", format!("no template named '{name}'")))?)
        }
        None => None,
    };
    let send_at = match raw.send_at.as_deref() {
        Some(text) => Some(crate::time::parse_timestamp(text).map_err(|e| ("send_at", e))?),
        None => None,
    };
    if let Some(subject) = &raw.subject
        && subject.trim().is_empty()
    {
        return Err(("subject", "must not be empty".into()));
    }
    Ok(Variant {
        subject: raw.subject.clone(),
        preheader: raw.preheader.clone(),
        from_name: raw.from_name.clone(),
        template_id,
        send_at,
    })
}

/// `20%`, `20`, `2.5%`: basis points.
pub fn parse_share(text: &str) -> Result<u32, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(value) if (0.0..=100.0).contains(&value) => Ok((value * 100.0).round() as u32),
        _ => Err(format!(
            "`{text}` is not a share: a percentage from 0% to 100%"
        )),
    }
}

/// Basis points as a percentage (`20%`, `2.5%`).
pub fn percent(basis_points: u32) -> String {
    if basis_points.is_multiple_of(100) {
        format!("{}%", basis_points / 100)
    } else {
        format!("{}%", basis_points as f64 / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(variants: usize) -> ExperimentInput {
        ExperimentInput {
            variants: (0..variants)
                .map(|i| VariantInput {
                    subject: Some(format!("subject {i}")),
                    ..VariantInput::default()
                })
                .collect(),
            ..ExperimentInput::default()
        }
    }

    fn known(name: &str) -> Option<i64> {
        (name == "promo").then_some(7)
    }

    fn fields(problems: Vec<FieldProblem>) -> Vec<String> {
        problems.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_split_needs_no_wait_and_a_test_gets_the_default_one() {
        let split = check(&input(2), known).unwrap();
        assert_eq!((split.test_share, split.wait_seconds), (None, 0));
        let mut test = input(3);
        test.test_share = Some("20%".into());
        let test = check(&test, known).unwrap();
        assert_eq!(test.test_share, Some(2_000));
        assert_eq!(test.wait_seconds, DEFAULT_WAIT_SECONDS);
        assert_eq!(test.metric, "clicks");
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let mut bad = input(2);
        bad.variants[1].template = Some("missing".into());
        bad.test_share = Some("80%".into());
        bad.holdout = Some("30%".into());
        bad.metric = Some("likes".into());
        let problems = fields(check(&bad, known).unwrap_err());
        assert_eq!(
            problems,
            [
                "experiment.variants[1].template: no template named 'missing'",
                "experiment.holdout: test share 80% plus holdout 30% is over 100%",
                "experiment.metric: unknown metric `likes`: one of clicks, opens, conversions, revenue",
            ]
        );
    }

    #[test]
    fn variant_counts_outside_two_to_five_are_refused() {
        for n in [0, 1, 6] {
            let problems = fields(check(&input(n), known).unwrap_err());
            assert!(
                problems[0].starts_with("experiment.variants: "),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn variants_read_from_pairs() {
        let v = VariantInput::parse_pairs("subject=Last chance; template=promo").unwrap();
        assert_eq!(v.subject.as_deref(), Some("Last chance"));
        assert_eq!(v.template.as_deref(), Some("promo"));
        let err = VariantInput::parse_pairs("colour=red").unwrap_err();
        assert!(err.starts_with("unknown field `colour`"), "{err}");
        assert!(VariantInput::parse_pairs("subject").is_err());
    }

    #[test]
    fn arms_follow_the_buckets() {
        let mut e = check(&input(2), known).unwrap();
        e.holdout = 500;
        e.test_share = Some(2_000);
        assert_eq!(e.arm(499, 0), Arm::Holdout);
        assert_eq!(e.arm(500, 1), Arm::Variant(1));
        assert_eq!(e.arm(2_499, 2), Arm::Variant(0));
        assert_eq!(e.arm(2_500, 0), Arm::Rest);
        e.test_share = None;
        assert_eq!(e.arm(9_999, 3), Arm::Variant(1));
    }

    #[test]
    fn shares_read_as_percentages() {
        assert_eq!(parse_share("20%"), Ok(2_000));
        assert_eq!(parse_share("2.5%"), Ok(250));
        assert_eq!(parse_share("5"), Ok(500));
        assert!(parse_share("120%").is_err());
        assert!(parse_share("lots").is_err());
        assert_eq!(percent(250), "2.5%");
    }
}
