//! The winner rule for A/B/n campaign experiments, with a stated error rate.
//!
//! Picking "the highest raw rate after the wait" declares a winner every time, even
//! when the variants are identical, so about (k−1)/k of those winners are noise. Here
//! the leader (highest mean) wins only if it beats every other variant in a
//! one-sided z-test at α/k. If all variants are truly equal, a winner can only be
//! declared when one of the k possible leaders clears its tests, and each does so
//! with probability at most α/k, so the chance of any false winner is at most
//! α = [`FALSE_WINNER_RATE`] (a union bound; for k = 2 it is exactly the two-sided
//! test at α). Rates use the pooled two-proportion z; revenue uses Welch's standard
//! error. The normal CDF and quantile are written here so the rule needs no
//! numerical crate.
//!
//! Only human events belong in the samples: link-scanner clicks and image-proxy
//! opens are what make the naive rule pick false winners (see `super::simulate`).

use serde::Serialize;

/// The family-wise probability of declaring a winner when all variants are equal.
pub const FALSE_WINNER_RATE: f64 = 0.05;

/// Below this many recipients in any arm the normal approximation is not trusted.
const MIN_RECIPIENTS: u64 = 100;

/// Below this many events over all arms a rate comparison is mostly noise, and the
/// pooled z's normal approximation breaks down.
const MIN_EVENTS: f64 = 10.0;

/// Φ⁻¹(0.975): the multiplier for the 95% intervals shown per arm.
const Z_95: f64 = 1.959_963_984_540_054;

/// What the experiment is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    HumanClicks,
    HumanOpens,
    Conversions,
    RevenuePerRecipient,
}

impl Metric {
    const ALL: [Metric; 4] = [
        Metric::HumanClicks,
        Metric::HumanOpens,
        Metric::Conversions,
        Metric::RevenuePerRecipient,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::HumanClicks => "clicks",
            Metric::HumanOpens => "opens",
            Metric::Conversions => "conversions",
            Metric::RevenuePerRecipient => "revenue",
        }
    }

    /// Accepts the names from [`Metric::name`], ignoring ASCII case and surrounding
    /// blanks.
    pub fn parse(text: &str) -> Result<Metric, String> {
        let wanted = text.trim();
        Metric::ALL
            .into_iter()
            .find(|metric| metric.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                format!("unknown metric `{text}`: one of {}", names.join(", "))
            })
    }

    /// Whether the metric is a share of recipients (0/1 per recipient) rather than
    /// an amount.
    pub fn is_rate(self) -> bool {
        self != Metric::RevenuePerRecipient
    }
}

/// What one variant's recipients did. For a rate metric `total` = recipients with the event
/// (unique) and `total_squares` = the same number; for revenue, `total` = sum of revenue per recipient
/// (in currency units, f64) and `total_squares` = sum of squared revenue per recipient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ArmSample {
    pub recipients: u64,
    pub total: f64,
    pub total_squares: f64,
}

impl ArmSample {
    /// A rate sample: a 0/1 outcome per recipient, so Σx² = Σx.
    pub fn rate(successes: u64, recipients: u64) -> ArmSample {
        let total = successes as f64;
        ArmSample {
            recipients,
            total,
            total_squares: total,
        }
    }

    /// The mean per recipient; 0 for an empty arm, so "nothing sent yet" never
    /// shows as NaN.
    pub fn mean(&self) -> f64 {
        if self.recipients == 0 {
            0.0
        } else {
            self.total / self.recipients as f64
        }
    }

    /// The sample variance (n − 1 denominator); 0 when it cannot be estimated.
    /// Clamped at 0 because Σx² − (Σx)²/n can round below zero.
    fn variance(&self) -> f64 {
        if self.recipients < 2 {
            return 0.0;
        }
        let n = self.recipients as f64;
        ((self.total_squares - self.total * self.total / n) / (n - 1.0)).max(0.0)
    }
}

/// One variant as reported: its mean and a 95% interval around it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmResult {
    pub variant: usize,
    pub recipients: u64,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Winner { variant: usize },
    NoSignificantWinner { reason: String },
}

/// The full verdict, with the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    pub metric: Metric,
    /// One sentence naming the rule and its α.
    pub rule: String,
    pub arms: Vec<ArmResult>,
    /// The variant with the highest mean (ties: lowest index).
    pub leader: usize,
    /// The leader's z against each variant; `None` for the leader itself and where
    /// no z can be computed (an empty arm, zero standard error).
    pub z_scores: Vec<Option<f64>>,
    /// The z the leader had to reach against every other variant.
    pub threshold: f64,
    pub decision: Decision,
}

/// Judges an experiment whose arms are indexed by variant (normally 2..=5 of them).
/// Never panics and never yields a NaN z: inputs too small or degenerate to test
/// give [`Decision::NoSignificantWinner`] with the reason.
pub fn judge(metric: Metric, arms: &[ArmSample]) -> Judgement {
    let leader = leader_of(arms);
    let threshold = threshold_for(arms.len());
    let z_scores: Vec<Option<f64>> = arms
        .iter()
        .enumerate()
        .map(|(j, arm)| {
            let lead = arms.get(leader).filter(|_| j != leader)?;
            z_score(metric, lead, arm)
        })
        .collect();
    let decision = match refusal(metric, arms) {
        Some(reason) => Decision::NoSignificantWinner { reason },
        None => verdict(leader, &z_scores, threshold),
    };
    Judgement {
        metric,
        rule: rule_text(metric, arms.len()),
        arms: arms
            .iter()
            .enumerate()
            .map(|(variant, arm)| arm_result(metric, variant, arm))
            .collect(),
        leader,
        z_scores,
        threshold,
        decision,
    }
}

/// The naive rule peers use: the highest raw mean wins, always (ties: lowest index).
pub fn naive_winner(arms: &[ArmSample]) -> usize {
    leader_of(arms)
}

/// The highest mean, ties to the lowest index; 0 for no arms.
fn leader_of(arms: &[ArmSample]) -> usize {
    let mut leader: Option<(usize, f64)> = None;
    for (variant, arm) in arms.iter().enumerate() {
        let mean = arm.mean();
        // A strict `>` keeps the lowest index on ties; a NaN leader is replaced so an
        // invalid first arm cannot shadow the rest.
        if leader.is_none_or(|(_, best)| mean > best || best.is_nan()) {
            leader = Some((variant, mean));
        }
    }
    leader.map_or(0, |(variant, _)| variant)
}

/// c = Φ⁻¹(1 − α/k): the Bonferroni split of α over the k possible winners.
fn threshold_for(arms: usize) -> f64 {
    normal_quantile(1.0 - FALSE_WINNER_RATE / arms.max(1) as f64)
}

fn rule_text(metric: Metric, arms: usize) -> String {
    let test = if metric.is_rate() {
        "two-proportion z-test"
    } else {
        "Welch z-test"
    };
    let k = arms.max(1);
    format!(
        "leader beats every other variant in a one-sided {test} at alpha/k = {} \
         (k = {k}, family-wise false-winner rate <= {}%)",
        decimal(FALSE_WINNER_RATE / k as f64),
        decimal(FALSE_WINNER_RATE * 100.0),
    )
}

/// At most four decimals, without trailing zeros ("0.025", "0.0167", "5").
fn decimal(value: f64) -> String {
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Why the arms cannot be tested at all, if they cannot.
fn refusal(metric: Metric, arms: &[ArmSample]) -> Option<String> {
    if arms.len() < 2 {
        return Some(format!(
            "only {} variant(s): a test needs at least 2",
            arms.len()
        ));
    }
    if let Some(reason) = arms
        .iter()
        .enumerate()
        .find_map(|(variant, arm)| invalid(metric, variant, arm))
    {
        return Some(reason);
    }
    if let Some((variant, arm)) = arms
        .iter()
        .enumerate()
        .find(|(_, arm)| arm.recipients < MIN_RECIPIENTS)
    {
        return Some(format!(
            "variant {} has only {} recipients; every variant needs at least {MIN_RECIPIENTS}",
            label(variant),
            arm.recipients
        ));
    }
    if metric.is_rate() {
        let events: f64 = arms.iter().map(|arm| arm.total).sum();
        if events < MIN_EVENTS {
            return Some(format!(
                "only {events} {} across all variants; at least {MIN_EVENTS} are needed",
                metric.name()
            ));
        }
    }
    None
}

/// Inputs no test can use: non-finite sums, or a rate outside 0..=recipients.
fn invalid(metric: Metric, variant: usize, arm: &ArmSample) -> Option<String> {
    if !arm.total.is_finite() || !arm.total_squares.is_finite() {
        return Some(format!(
            "variant {} has a non-finite total ({}, squares {})",
            label(variant),
            arm.total,
            arm.total_squares
        ));
    }
    let out_of_range = if metric.is_rate() {
        arm.total < 0.0 || arm.total > arm.recipients as f64
    } else {
        arm.total_squares < 0.0
    };
    out_of_range.then(|| {
        format!(
            "variant {} has impossible {} figures: total {}, squares {}, recipients {}",
            label(variant),
            metric.name(),
            arm.total,
            arm.total_squares,
            arm.recipients
        )
    })
}

/// The leader wins only if its weakest comparison still reaches the threshold.
fn verdict(leader: usize, z_scores: &[Option<f64>], threshold: f64) -> Decision {
    let mut weakest: Option<(usize, f64)> = None;
    for (variant, z) in z_scores.iter().enumerate() {
        if variant == leader {
            continue;
        }
        let Some(z) = *z else {
            return no_winner(format!(
                "variants {} and {} show no variation to compare (zero standard error)",
                label(leader),
                label(variant)
            ));
        };
        if weakest.is_none_or(|(_, lowest)| z < lowest) {
            weakest = Some((variant, z));
        }
    }
    match weakest {
        Some((variant, z)) if z < threshold => no_winner(format!(
            "variant {} leads, but its lead over variant {} has z = {z:.2}, \
             below the {threshold:.2} needed",
            label(leader),
            label(variant)
        )),
        Some(_) => Decision::Winner { variant: leader },
        None => no_winner("no other variant to compare against".to_string()),
    }
}

/// Variants as people name them: A, B, …
fn label(variant: usize) -> char {
    char::from(b'A' + variant.min(25) as u8)
}

fn no_winner(reason: String) -> Decision {
    Decision::NoSignificantWinner { reason }
}

/// The one-sided z of (leader − other); `None` where the standard error is zero or
/// undefined, so callers never see NaN or infinity.
fn z_score(metric: Metric, leader: &ArmSample, other: &ArmSample) -> Option<f64> {
    let se = if metric.is_rate() {
        pooled_se(leader, other)?
    } else {
        welch_se(leader, other)?
    };
    let z = (leader.mean() - other.mean()) / se;
    (se.is_finite() && se > 0.0 && z.is_finite()).then_some(z)
}

/// The two-proportion standard error under the null (both rates equal, so pooled).
fn pooled_se(a: &ArmSample, b: &ArmSample) -> Option<f64> {
    if a.recipients == 0 || b.recipients == 0 {
        return None;
    }
    let (na, nb) = (a.recipients as f64, b.recipients as f64);
    let pooled = (a.total + b.total) / (na + nb);
    Some((pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt())
}

/// Welch's standard error: revenue variances differ between arms, so no pooling.
fn welch_se(a: &ArmSample, b: &ArmSample) -> Option<f64> {
    if a.recipients < 2 || b.recipients < 2 {
        return None;
    }
    let (na, nb) = (a.recipients as f64, b.recipients as f64);
    Some((a.variance() / na + b.variance() / nb).sqrt())
}

fn arm_result(metric: Metric, variant: usize, arm: &ArmSample) -> ArmResult {
    let (low, high) = if metric.is_rate() {
        wilson_interval(arm)
    } else {
        normal_interval(arm)
    };
    ArmResult {
        variant,
        recipients: arm.recipients,
        value: arm.mean(),
        low,
        high,
    }
}

/// The Wilson score interval: unlike mean ± 1.96·SE it stays inside [0, 1] and
/// is sensible at small rates; an empty arm says nothing, so [0, 1].
fn wilson_interval(arm: &ArmSample) -> (f64, f64) {
    if arm.recipients == 0 {
        return (0.0, 1.0);
    }
    let n = arm.recipients as f64;
    let p = arm.mean().clamp(0.0, 1.0);
    let z2 = Z_95 * Z_95;
    let scale = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / scale;
    let half = Z_95 / scale * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// mean ± 1.96·s/√n; collapses to the mean with fewer than 2 recipients, where no
/// spread can be estimated (the guards refuse such arms anyway).
fn normal_interval(arm: &ArmSample) -> (f64, f64) {
    let mean = arm.mean();
    if arm.recipients < 2 {
        return (mean, mean);
    }
    let half = Z_95 * (arm.variance() / arm.recipients as f64).sqrt();
    (mean - half, mean + half)
}

/// Φ(x), the standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    // Computing the smaller tail directly keeps full relative accuracy far out.
    let tail = normal_tail(x.abs());
    if x > 0.0 { 1.0 - tail } else { tail }
}

/// P(Z > t) for t ≥ 0, to about 1e-14 relative accuracy up to t ≈ 10 (further
/// out, the rounding of t² alone costs more). Below 2.5: Hart's
/// double-precision rational approximation as given by West (2005, "Better
/// approximations to cumulative normal functions"). From 2.5 on, where that
/// rational loses relative accuracy, Laplace's continued fraction for the Mills
/// ratio, which 60 terms bring to full precision there.
fn normal_tail(t: f64) -> f64 {
    if t > 37.0 {
        return 0.0;
    }
    let gauss = (-t * t / 2.0).exp();
    if t >= 2.5 {
        // φ(t) / (t + 1/(t + 2/(t + 3/(t + …)))), evaluated from the inside out.
        let fraction = (1..=60).rev().fold(t, |inner, k| t + f64::from(k) / inner);
        return gauss / fraction / (2.0 * std::f64::consts::PI).sqrt();
    }
    let numerator = polynomial(
        t,
        &[
            220.206_867_912_376,
            221.213_596_169_931,
            112.079_291_497_871,
            33.912_866_078_383,
            6.373_962_203_531_65,
            0.700_383_064_443_688,
            3.526_249_659_989_11e-2,
        ],
    );
    let denominator = polynomial(
        t,
        &[
            440.413_735_824_752,
            793.826_512_519_948,
            637.333_633_378_831,
            296.564_248_779_674,
            86.780_732_202_946_1,
            16.064_177_579_207,
            1.755_667_163_182_64,
            8.838_834_764_831_84e-2,
        ],
    );
    gauss * numerator / denominator
}

/// Σ coefficients[i]·xⁱ by Horner's rule (lowest order first).
fn polynomial(x: f64, coefficients: &[f64]) -> f64 {
    coefficients.iter().rev().fold(0.0, |sum, c| sum * x + c)
}

/// Φ⁻¹(p): Acklam's rational approximation (relative error ~1e-9) polished by one
/// Halley step against [`normal_cdf`], which brings it to ~1e-15. ±∞ at 0 and 1;
/// NaN outside [0, 1].
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let x = acklam(p);
    let error = normal_cdf(x) - p;
    let step = error * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - step / (1.0 + x * step / 2.0)
}

/// Acklam's three-region approximation of Φ⁻¹ for 0 < p < 1.
fn acklam(p: f64) -> f64 {
    const A: [f64; 6] = [
        2.506_628_277_459_239,
        -30.664_798_066_147_16,
        138.357_751_867_269,
        -275.928_510_446_968_7,
        220.946_098_424_520_5,
        -39.696_830_286_653_76,
    ];
    const B: [f64; 6] = [
        1.0,
        -13.280_681_552_885_72,
        66.801_311_887_719_72,
        -155.698_979_859_886_6,
        161.585_836_858_040_9,
        -54.476_098_798_224_06,
    ];
    const C: [f64; 6] = [
        2.938_163_982_698_783,
        4.374_664_141_464_968,
        -2.549_732_539_343_734,
        -2.400_758_277_161_838,
        -0.322_396_458_041_136_5,
        -7.784_894_002_430_293e-3,
    ];
    const D: [f64; 5] = [
        1.0,
        3.754_408_661_907_416,
        2.445_134_137_142_996,
        0.322_467_129_070_039_8,
        7.784_695_709_041_462e-3,
    ];
    const P_LOW: f64 = 0.024_25;
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        polynomial(q, &C) / polynomial(q, &D)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        q * polynomial(r, &A) / polynomial(r, &B)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -polynomial(q, &C) / polynomial(q, &D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    fn reason(judgement: &Judgement) -> &str {
        match &judgement.decision {
            Decision::NoSignificantWinner { reason } => reason,
            Decision::Winner { variant } => panic!("unexpected winner {variant}"),
        }
    }

    /// A revenue arm with the given mean and sample standard deviation.
    fn revenue(recipients: u64, mean: f64, sd: f64) -> ArmSample {
        let n = recipients as f64;
        ArmSample {
            recipients,
            total: n * mean,
            total_squares: (n - 1.0) * sd * sd + n * mean * mean,
        }
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        close(normal_cdf(1.96), 0.975_002, 1e-6);
        close(normal_cdf(1.96), 0.975_002_104_851_779_5, 1e-14);
        close(normal_cdf(0.0), 0.5, 1e-15);
        close(normal_cdf(-1.0), 0.158_655_253_931_457_07, 1e-14);
        close(normal_cdf(3.0), 0.998_650_101_968_369_9, 1e-14);
        close(normal_cdf(-2.5), 0.006_209_665_325_776_159, 1e-15);
        // Far tails: relative accuracy, which 1 − Φ(|x|) would lose.
        close(normal_cdf(-5.0) / 2.866_515_718_791_94e-7, 1.0, 1e-13);
        close(normal_cdf(-3.0) / 1.349_898_031_630_094_5e-3, 1.0, 1e-13);
        close(normal_cdf(-8.5) / 9.479_534_822_203_3e-18, 1.0, 1e-13);
        assert_eq!(normal_cdf(-40.0), 0.0);
        assert_eq!(normal_cdf(40.0), 1.0);
        assert!(normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn normal_quantile_matches_known_values() {
        close(normal_quantile(0.975), 1.959_964, 1e-6);
        close(normal_quantile(0.99), 2.326_348, 1e-6);
        close(normal_quantile(0.975), 1.959_963_984_540_053_6, 1e-12);
        close(normal_quantile(0.99), 2.326_347_874_040_840_8, 1e-12);
        close(normal_quantile(0.01), -2.326_347_874_040_840_8, 1e-12);
        close(normal_quantile(1e-10), -6.361_340_902_404_056, 1e-9);
        close(normal_quantile(0.5), 0.0, 1e-15);
        // Both sides of Acklam's region boundaries.
        close(normal_quantile(0.024_25), -1.972_961_051_311_884_5, 1e-12);
        close(normal_quantile(0.975_75), 1.972_961_051_311_884_7, 1e-12);
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(1.5).is_nan());
        assert!(normal_quantile(f64::NAN).is_nan());
    }

    #[test]
    fn quantile_inverts_cdf() {
        for p in [1e-6, 0.001, 0.02, 0.3, 0.5, 0.7, 0.98, 0.999] {
            close(normal_cdf(normal_quantile(p)), p, 1e-14);
        }
    }

    #[test]
    fn clear_winner_is_declared() {
        let arms = [ArmSample::rate(300, 10_000), ArmSample::rate(420, 10_000)];
        let judgement = judge(Metric::HumanClicks, &arms);
        assert_eq!(judgement.decision, Decision::Winner { variant: 1 });
        assert_eq!(judgement.leader, 1);
        assert_eq!(judgement.z_scores[1], None);
        let z = judgement.z_scores[0].expect("z against variant 0");
        // Pooled p̂ = 0.036: z = 0.012 / sqrt(0.036 · 0.964 · 2/10 000).
        close(
            z,
            0.012 / (0.036 * 0.964 * 2.0 / 10_000.0_f64).sqrt(),
            1e-12,
        );
        assert!(z > judgement.threshold);
        let arm = &judgement.arms[1];
        close(arm.value, 0.042, 1e-15);
        assert!(arm.low < 0.042 && 0.042 < arm.high);
    }

    #[test]
    fn equal_arms_have_no_winner() {
        let arms = [ArmSample::rate(300, 10_000); 3];
        let judgement = judge(Metric::HumanClicks, &arms);
        assert_eq!(judgement.leader, 0, "ties go to the lowest index");
        assert_eq!(judgement.z_scores, vec![None, Some(0.0), Some(0.0)]);
        assert!(reason(&judgement).contains("z = 0.00"));
    }

    #[test]
    fn small_effect_on_small_sample_has_no_winner() {
        // 3.0% against 3.6% is a real 20% lift, but 1 000 recipients per arm
        // cannot tell it from noise (z ≈ 0.75).
        let arms = [ArmSample::rate(30, 1_000), ArmSample::rate(36, 1_000)];
        let judgement = judge(Metric::HumanClicks, &arms);
        assert_eq!(judgement.leader, 1);
        assert!(reason(&judgement).contains("variant B leads"));
        // The naive rule calls it anyway.
        assert_eq!(naive_winner(&arms), 1);
    }

    #[test]
    fn threshold_is_split_over_the_arms() {
        let two = judge(Metric::HumanClicks, &[ArmSample::rate(300, 10_000); 2]);
        close(two.threshold, 1.959_964, 1e-6);
        let three = judge(Metric::HumanClicks, &[ArmSample::rate(300, 10_000); 3]);
        close(three.threshold, normal_quantile(1.0 - 0.05 / 3.0), 1e-15);
        close(three.threshold, 2.128_045_234_184_984, 1e-12);
        assert!(two.rule.contains("alpha/k = 0.025 (k = 2"), "{}", two.rule);
        assert!(two.rule.contains("<= 5%"), "{}", two.rule);
        assert!(
            three.rule.contains("alpha/k = 0.0167 (k = 3"),
            "{}",
            three.rule
        );
    }

    #[test]
    fn every_comparison_must_clear_the_threshold() {
        // Variant 2 beats variant 0 clearly but not variant 1.
        let arms = [
            ArmSample::rate(300, 10_000),
            ArmSample::rate(400, 10_000),
            ArmSample::rate(420, 10_000),
        ];
        let judgement = judge(Metric::HumanClicks, &arms);
        assert_eq!(judgement.leader, 2);
        assert!(judgement.z_scores[0].is_some_and(|z| z > judgement.threshold));
        assert!(reason(&judgement).contains("over variant B"));
    }

    #[test]
    fn tiny_arms_are_refused_with_the_figure() {
        let arms = [ArmSample::rate(5, 50), ArmSample::rate(40, 10_000)];
        let judgement = judge(Metric::HumanClicks, &arms);
        assert!(reason(&judgement).contains("variant A has only 50 recipients"));
        assert!(judgement.z_scores.iter().flatten().all(|z| z.is_finite()));
    }

    #[test]
    fn empty_and_eventless_arms_give_reasons_not_nan() {
        let empty = judge(Metric::HumanClicks, &[ArmSample::rate(0, 0); 2]);
        assert!(reason(&empty).contains("only 0 recipients"));
        assert_eq!(empty.z_scores, vec![None, None]);
        assert!(empty.arms.iter().all(|arm| !arm.value.is_nan()));

        let silent = judge(Metric::Conversions, &[ArmSample::rate(0, 5_000); 2]);
        assert!(reason(&silent).contains("only 0 conversions"), "{silent:?}");
        assert_eq!(silent.z_scores, vec![None, None]);
        assert!(
            silent
                .arms
                .iter()
                .all(|arm| arm.low < 1e-15 && arm.high > 0.0)
        );

        let few = judge(
            Metric::HumanOpens,
            &[ArmSample::rate(1, 5_000), ArmSample::rate(8, 5_000)],
        );
        assert!(reason(&few).contains("only 9 opens"), "{few:?}");
    }

    #[test]
    fn zero_standard_error_is_no_winner() {
        let all = judge(Metric::HumanOpens, &[ArmSample::rate(500, 500); 2]);
        assert!(reason(&all).contains("zero standard error"), "{all:?}");
        let flat = judge(Metric::RevenuePerRecipient, &[revenue(1_000, 2.0, 0.0); 2]);
        assert!(reason(&flat).contains("zero standard error"), "{flat:?}");
    }

    #[test]
    fn fewer_than_two_arms_is_no_winner() {
        let one = judge(Metric::HumanClicks, &[ArmSample::rate(300, 10_000)]);
        assert!(reason(&one).contains("only 1 variant"));
        assert_eq!(one.z_scores, vec![None]);
        assert!(one.threshold.is_finite());
        let none = judge(Metric::HumanClicks, &[]);
        assert!(reason(&none).contains("only 0 variant"));
        assert_eq!(naive_winner(&[]), 0);
    }

    #[test]
    fn impossible_rates_are_refused() {
        let arms = [ArmSample::rate(300, 200), ArmSample::rate(30, 1_000)];
        let judgement = judge(Metric::HumanClicks, &arms);
        assert!(reason(&judgement).contains("impossible clicks figures"));
    }

    #[test]
    fn revenue_uses_welch() {
        // Unequal spreads and sizes: Welch keeps each arm's own variance.
        let arms = [revenue(2_000, 2.0, 4.0), revenue(1_000, 2.6, 10.0)];
        let judgement = judge(Metric::RevenuePerRecipient, &arms);
        assert_eq!(judgement.leader, 1);
        let z = judgement.z_scores[0].expect("z against variant 0");
        close(z, 0.6 / (16.0 / 2_000.0 + 100.0 / 1_000.0_f64).sqrt(), 1e-9);
        assert!(reason(&judgement).contains("z = 1.83"), "{judgement:?}");
        assert!(judgement.rule.contains("Welch"));
        let arm = &judgement.arms[1];
        close(arm.high - arm.value, Z_95 * 10.0 / 1_000.0_f64.sqrt(), 1e-9);

        let clear = [revenue(5_000, 2.0, 4.0), revenue(5_000, 2.6, 10.0)];
        let judgement = judge(Metric::RevenuePerRecipient, &clear);
        assert_eq!(judgement.decision, Decision::Winner { variant: 1 });
    }

    #[test]
    fn metric_names_round_trip() {
        for metric in Metric::ALL {
            assert_eq!(Metric::parse(metric.name()), Ok(metric));
        }
        assert_eq!(Metric::parse(" Clicks "), Ok(Metric::HumanClicks));
        assert!(!Metric::RevenuePerRecipient.is_rate());
        assert!(Metric::Conversions.is_rate());
        assert_eq!(
            Metric::parse("ctr"),
            Err("unknown metric `ctr`: one of clicks, opens, conversions, revenue".to_string())
        );
    }
}
