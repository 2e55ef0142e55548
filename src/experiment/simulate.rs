//! A seeded Monte Carlo comparison of the sound winner rule (`super::judge::judge`)
//! with the naive "highest raw rate wins" rule that peers use.
//!
//! Each run draws every variant's clicks exactly (binomial counts, no normal
//! approximation): human clickers at the variant's true rate, plus machine clicks
//! from recipients behind link scanners that click every link. The sound rule sees
//! unique human clickers only; the naive rule sees unique recipients with any click.
//! Counting, over many runs, how often each rule declares a winner, the truly best
//! variant, or a wrong one shows the sound rule's false-winner rate staying near its
//! stated 5% while the naive rule crowns noise and scanners. The generator is
//! SplitMix64 so a seed reproduces a report exactly, with no `rand` dependency.

use serde::Serialize;

use super::judge::{self, ArmSample, Decision, Metric};

/// One experiment setting to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// The true human click rate of each variant.
    pub human_rates: Vec<f64>,
    /// Recipients per variant.
    pub per_arm: u64,
    /// Share of each variant's recipients behind a link scanner that clicks every
    /// link (a machine click, which the sound rule never sees and the naive rule
    /// counts). Missing entries mean no scanners.
    pub scanner_share: Vec<f64>,
    /// Probability that any recipient not behind a scanner gets a stray machine
    /// click (bots sampling links), equally in every variant; 0 turns it off.
    pub machine_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulationConfig {
    pub runs: u32,
    pub seed: u64,
}

/// How one rule fared over the runs of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleOutcome {
    pub winners_declared: u32,
    /// Winners that were the variant with the strictly highest human rate.
    pub best_declared: u32,
    /// Winners that were not (every winner, when no variant is best).
    pub wrong_declared: u32,
    pub runs: u32,
    /// Winners declared per variant.
    pub picks: Vec<u32>,
}

impl RuleOutcome {
    fn new(variants: usize) -> RuleOutcome {
        RuleOutcome {
            winners_declared: 0,
            best_declared: 0,
            wrong_declared: 0,
            runs: 0,
            picks: vec![0; variants],
        }
    }

    fn record(&mut self, winner: Option<usize>, best: Option<usize>) {
        self.runs += 1;
        let Some(winner) = winner else { return };
        self.winners_declared += 1;
        if let Some(picks) = self.picks.get_mut(winner) {
            *picks += 1;
        }
        if best == Some(winner) {
            self.best_declared += 1;
        } else {
            self.wrong_declared += 1;
        }
    }

    pub fn share_declared(&self) -> f64 {
        self.share(self.winners_declared)
    }

    pub fn share_best(&self) -> f64 {
        self.share(self.best_declared)
    }

    pub fn share_wrong(&self) -> f64 {
        self.share(self.wrong_declared)
    }

    /// The share of runs in which `variant` was declared the winner.
    pub fn share_picked(&self, variant: usize) -> f64 {
        self.share(self.picks.get(variant).copied().unwrap_or(0))
    }

    fn share(&self, count: u32) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            f64::from(count) / f64::from(self.runs)
        }
    }
}

/// A scenario's settings beside both rules' outcomes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub human_rates: Vec<f64>,
    pub per_arm: u64,
    pub scanner_share: Vec<f64>,
    pub machine_rate: f64,
    pub sound: RuleOutcome,
    pub naive: RuleOutcome,
}

/// Simulates `config.runs` experiments of `scenario`; the same seed gives the same
/// report.
pub fn run(scenario: &Scenario, config: &SimulationConfig) -> ScenarioReport {
    let mut rng = SplitMix64(config.seed);
    let variants = scenario.human_rates.len();
    let best = best_variant(&scenario.human_rates);
    let mut sound = RuleOutcome::new(variants);
    let mut naive = RuleOutcome::new(variants);
    for _ in 0..config.runs {
        let draws: Vec<ArmDraw> = (0..variants)
            .map(|variant| draw_arm(&mut rng, scenario, variant))
            .collect();
        let human: Vec<ArmSample> = draws
            .iter()
            .map(|draw| ArmSample::rate(draw.human, scenario.per_arm))
            .collect();
        let any: Vec<ArmSample> = draws
            .iter()
            .map(|draw| ArmSample::rate(draw.any, scenario.per_arm))
            .collect();
        sound.record(sound_winner(&human), best);
        naive.record((!any.is_empty()).then(|| judge::naive_winner(&any)), best);
    }
    ScenarioReport {
        name: scenario.name.clone(),
        human_rates: scenario.human_rates.clone(),
        per_arm: scenario.per_arm,
        scanner_share: scenario.scanner_share.clone(),
        machine_rate: scenario.machine_rate,
        sound,
        naive,
    }
}

fn sound_winner(human: &[ArmSample]) -> Option<usize> {
    match judge::judge(Metric::HumanClicks, human).decision {
        Decision::Winner { variant } => Some(variant),
        Decision::NoSignificantWinner { .. } => None,
    }
}

/// The variant with the strictly highest rate; `None` when the top is shared.
fn best_variant(rates: &[f64]) -> Option<usize> {
    let top = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut at_top = rates.iter().enumerate().filter(|(_, rate)| **rate == top);
    let (variant, _) = at_top.next()?;
    at_top.next().is_none().then_some(variant)
}

/// The settings every report shows: 3% baseline click rate, a 20% relative lift
/// where one variant is better, and 10% of one variant behind link scanners.
pub fn standard_scenarios(per_arm: u64) -> Vec<Scenario> {
    vec![
        scenario("equal", &[0.03, 0.03], &[0.0, 0.0], per_arm),
        scenario("equal, scanners on B", &[0.03, 0.03], &[0.0, 0.1], per_arm),
        scenario("better B", &[0.03, 0.036], &[0.0, 0.0], per_arm),
        scenario(
            "better A, scanners on B",
            &[0.036, 0.03],
            &[0.0, 0.1],
            per_arm,
        ),
        scenario("equal, 4 variants", &[0.03; 4], &[0.0; 4], per_arm),
        scenario(
            "better B, 3 variants",
            &[0.03, 0.036, 0.03],
            &[0.0; 3],
            per_arm,
        ),
    ]
}

fn scenario(name: &str, human_rates: &[f64], scanner_share: &[f64], per_arm: u64) -> Scenario {
    Scenario {
        name: name.to_string(),
        human_rates: human_rates.to_vec(),
        per_arm,
        scanner_share: scanner_share.to_vec(),
        machine_rate: 0.0,
    }
}

/// A plain-text table: one line per scenario per rule.
pub fn report_text(reports: &[ScenarioReport]) -> String {
    let width = reports
        .iter()
        .map(|report| report.name.chars().count())
        .chain(["scenario".len()])
        .max()
        .unwrap_or(0);
    let mut text = format!(
        "{:width$}  rule   per arm   runs  declared  best wins   wrong\n",
        "scenario"
    );
    for report in reports {
        let has_best = best_variant(&report.human_rates).is_some();
        for (rule, outcome) in [("sound", &report.sound), ("naive", &report.naive)] {
            let best = if has_best {
                percent(outcome.share_best())
            } else {
                "n/a".to_string()
            };
            text.push_str(&format!(
                "{:width$}  {rule}  {:>7}  {:>5}  {:>8}  {best:>9}  {:>6}\n",
                report.name,
                report.per_arm,
                outcome.runs,
                percent(outcome.share_declared()),
                percent(outcome.share_wrong()),
            ));
        }
    }
    text
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// One variant's clicks in one run.
struct ArmDraw {
    /// Unique recipients with a human click.
    human: u64,
    /// Unique recipients with any click, human or machine.
    any: u64,
}

/// Splits the variant's recipients into scanned and clear, then draws human
/// clickers in both and stray machine clicks among the clear non-clickers; the
/// per-recipient events are independent, so these binomial counts are exact.
fn draw_arm(rng: &mut SplitMix64, scenario: &Scenario, variant: usize) -> ArmDraw {
    let n = scenario.per_arm;
    let rate = scenario.human_rates.get(variant).copied().unwrap_or(0.0);
    let share = scenario.scanner_share.get(variant).copied().unwrap_or(0.0);
    let scanned = binomial(rng, n, share);
    let human_scanned = binomial(rng, scanned, rate);
    let human_clear = binomial(rng, n - scanned, rate);
    let machine_only = binomial(rng, n - scanned - human_clear, scenario.machine_rate);
    ArmDraw {
        human: human_scanned + human_clear,
        any: scanned + human_clear + machine_only,
    }
}

/// An exact Binomial(n, p) draw. Successes are found by geometric jumps over the
/// failures between them, so the cost is ~n·min(p, 1 − p) logarithms rather than
/// n Bernoulli draws. p outside [0, 1] (or NaN) is clamped; NaN counts as 0.
fn binomial(rng: &mut SplitMix64, n: u64, p: f64) -> u64 {
    if p.is_nan() || p <= 0.0 {
        0
    } else if p >= 1.0 {
        n
    } else if p > 0.5 {
        n - sparse_binomial(rng, n, 1.0 - p)
    } else {
        sparse_binomial(rng, n, p)
    }
}

/// For 0 < p ≤ 0.5: the failures before each success are Geometric(p), drawn by
/// inversion as ⌊ln U / ln(1 − p)⌋ (P(gap ≥ g) = (1 − p)^g exactly); successes are
/// counted until the trials run out.
fn sparse_binomial(rng: &mut SplitMix64, n: u64, p: f64) -> u64 {
    // ln_1p keeps ln(1 − p) accurate for tiny p.
    let log_q = (-p).ln_1p();
    let mut successes = 0;
    let mut trials: u64 = 0;
    loop {
        // `as` saturates, so an astronomically long gap just ends the count.
        let gap = (rng.unit_open().ln() / log_q).floor() as u64;
        trials = trials.saturating_add(gap).saturating_add(1);
        if trials > n {
            return successes;
        }
        successes += 1;
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough for
/// simulation; every 64-bit seed is valid.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1] in steps of 2⁻⁵³: never 0, so its logarithm is finite.
    fn unit_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNS: u32 = 400;

    fn simulate(name: &str, runs: u32) -> ScenarioReport {
        let scenario = standard_scenarios(10_000)
            .into_iter()
            .find(|scenario| scenario.name == name)
            .unwrap_or_else(|| panic!("no standard scenario `{name}`"));
        run(&scenario, &SimulationConfig { runs, seed: 7 })
    }

    #[test]
    fn splitmix_matches_reference_output() {
        // The first outputs for seed 1234567 of the reference C implementation.
        let mut rng = SplitMix64(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(rng.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn binomial_has_the_right_mean_and_variance() {
        let mut rng = SplitMix64(1);
        for (n, p) in [(10_000, 0.03), (1_000, 0.9), (200, 0.5)] {
            let draws: Vec<f64> = (0..4_000)
                .map(|_| binomial(&mut rng, n, p) as f64)
                .collect();
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            let variance =
                draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (draws.len() - 1) as f64;
            let (expected_mean, expected_variance) = (n as f64 * p, n as f64 * p * (1.0 - p));
            // ~5 standard errors of the mean and of the variance.
            assert!(
                (mean - expected_mean).abs() < 5.0 * (expected_variance / 4_000.0).sqrt(),
                "Binomial({n}, {p}) mean {mean}"
            );
            assert!(
                (variance / expected_variance - 1.0).abs() < 5.0 * (2.0 / 4_000.0_f64).sqrt(),
                "Binomial({n}, {p}) variance {variance}"
            );
        }
    }

    #[test]
    fn binomial_edges() {
        let mut rng = SplitMix64(1);
        assert_eq!(binomial(&mut rng, 500, 0.0), 0);
        assert_eq!(binomial(&mut rng, 500, -1.0), 0);
        assert_eq!(binomial(&mut rng, 500, f64::NAN), 0);
        assert_eq!(binomial(&mut rng, 500, 1.0), 500);
        assert_eq!(binomial(&mut rng, 0, 0.3), 0);
        assert!(binomial(&mut rng, 500, 1e-300) <= 500);
        assert!(binomial(&mut rng, 500, 1.0 - 1e-12) <= 500);
    }

    #[test]
    fn equal_arms_sound_rule_keeps_its_error_rate() {
        let report = simulate("equal", RUNS);
        assert!(report.sound.share_wrong() <= 0.08, "{report:?}");
        assert_eq!(report.sound.best_declared, 0);
        assert_eq!(report.naive.share_declared(), 1.0);
        assert_eq!(report.naive.share_wrong(), 1.0);
    }

    #[test]
    fn four_equal_arms_keep_the_family_wise_rate() {
        let report = simulate("equal, 4 variants", RUNS);
        assert!(report.sound.share_wrong() <= 0.08, "{report:?}");
        assert_eq!(report.naive.share_declared(), 1.0);
    }

    #[test]
    fn scanners_fool_only_the_naive_rule() {
        let report = simulate("equal, scanners on B", RUNS);
        assert!(report.naive.share_picked(1) > 0.95, "{report:?}");
        assert!(report.sound.share_picked(1) <= 0.05, "{report:?}");
    }

    #[test]
    fn sound_rule_has_the_expected_power() {
        let report = simulate("better B", RUNS);
        let power = report.sound.share_best();
        assert!((0.55..=0.80).contains(&power), "{report:?}");
        assert!(report.sound.share_wrong() <= 0.01, "{report:?}");
    }

    #[test]
    fn scanners_on_the_worse_arm_mislead_the_naive_rule() {
        let report = simulate("better A, scanners on B", RUNS);
        assert!(report.naive.share_wrong() > 0.95, "{report:?}");
        assert!(report.sound.share_best() > 0.5, "{report:?}");
        assert!(report.sound.share_wrong() <= 0.01, "{report:?}");
    }

    #[test]
    fn same_seed_same_report() {
        let scenario = &standard_scenarios(2_000)[1];
        let config = SimulationConfig { runs: 50, seed: 99 };
        assert_eq!(run(scenario, &config), run(scenario, &config));
        let other = run(
            scenario,
            &SimulationConfig {
                runs: 50,
                seed: 100,
            },
        );
        assert_ne!(run(scenario, &config).sound, other.sound);
    }

    #[test]
    fn best_variant_needs_a_strict_maximum() {
        assert_eq!(best_variant(&[0.03, 0.036]), Some(1));
        assert_eq!(best_variant(&[0.03, 0.03]), None);
        assert_eq!(best_variant(&[0.036, 0.036, 0.03]), None);
        assert_eq!(best_variant(&[]), None);
    }

    #[test]
    fn machine_clicks_reach_only_the_naive_count() {
        let scenario = Scenario {
            name: "bots".to_string(),
            human_rates: vec![0.0, 0.0],
            per_arm: 1_000,
            scanner_share: vec![0.0],
            machine_rate: 0.5,
        };
        let report = run(&scenario, &SimulationConfig { runs: 20, seed: 3 });
        assert_eq!(report.sound.winners_declared, 0);
        assert_eq!(report.naive.winners_declared, 20);
    }

    #[test]
    fn report_text_has_a_line_per_rule() {
        let reports: Vec<ScenarioReport> = standard_scenarios(1_000)
            .iter()
            .map(|scenario| run(scenario, &SimulationConfig { runs: 10, seed: 1 }))
            .collect();
        let text = report_text(&reports);
        assert_eq!(text.lines().count(), 1 + 2 * reports.len());
        assert!(text.contains("equal, scanners on B"));
        assert!(text.lines().nth(1).is_some_and(|line| line.contains("n/a")));
    }
}
