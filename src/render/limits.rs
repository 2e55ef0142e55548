//! Bounds on rendering one message: bytes written, wall time, and the elements `range()`
//! may produce. A template runs with recipient data for every message, so a runaway
//! loop must end as a render failure of that message, not as a hung or exhausted worker.
//!
//! Tera has no hook per instruction, so the budget is checked where rendering comes out
//! to us: every write to the output, every escaped value (also inside `{% set %}`
//! captures), every `range()` call, and once more after each part. A loop that writes
//! nothing and iterates no `range()` only walks data the recipient already holds.

use std::cell::Cell;
use std::io::Write;
use std::time::{Duration, Instant};

use tera::{Kwargs, State, TeraResult};

use super::RenderError;

/// Environment variables that set the limits (see README, "Render limits").
pub const MAX_BYTES_VAR: &str = "MAILCAST_RENDER_MAX_BYTES";
pub const TIMEOUT_MS_VAR: &str = "MAILCAST_RENDER_TIMEOUT_MS";
pub const MAX_RANGE_VAR: &str = "MAILCAST_RENDER_MAX_RANGE";

/// How much one message may cost to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    /// Bytes of subject, preheader, HTML and text together.
    pub max_output_bytes: usize,
    /// Wall time for all parts together.
    pub max_time: Duration,
    /// Elements all `range()` calls together may produce: bounds loops that write
    /// nothing (three nested `range(end=100000)` would otherwise run 10^15 times).
    pub max_range_items: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            max_output_bytes: 1_000_000,
            max_time: Duration::from_secs(2),
            max_range_items: 10_000,
        }
    }
}

impl RenderLimits {
    /// The defaults, each replaced by its environment variable when set.
    pub fn from_env() -> Result<Self, RenderError> {
        Self::from_vars(|var| std::env::var(var).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, RenderError> {
        let defaults = RenderLimits::default();
        let number = |name: &str| parse_number(name, var(name));
        Ok(RenderLimits {
            max_output_bytes: number(MAX_BYTES_VAR)?
                .map_or(defaults.max_output_bytes, |n| n as usize),
            max_time: number(TIMEOUT_MS_VAR)?.map_or(defaults.max_time, Duration::from_millis),
            max_range_items: number(MAX_RANGE_VAR)?
                .map_or(defaults.max_range_items, |n| n as usize),
        })
    }
}

fn parse_number(var: &str, text: Option<String>) -> Result<Option<u64>, RenderError> {
    let Some(text) = text else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(RenderError::Settings(format!(
            "{var}={text:?} is not a whole number above 0"
        ))),
    }
}

/// The limit a message crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Output(usize),
    Time(Duration),
    Range(usize),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Output(bytes) => {
                write!(
                    f,
                    "output limit of {bytes} bytes per message ({MAX_BYTES_VAR})"
                )
            }
            Limit::Time(time) => write!(
                f,
                "time limit of {} ms per message ({TIMEOUT_MS_VAR})",
                time.as_millis()
            ),
            Limit::Range(items) => write!(
                f,
                "loop limit of {items} range() elements per message ({MAX_RANGE_VAR})"
            ),
        }
    }
}

/// What one message has spent so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    limits: RenderLimits,
    deadline: Instant,
    written: usize,
    range_items: usize,
    /// Writes and escapes since the clock was last read.
    unclocked: u32,
    crossed: Option<Limit>,
}

/// The clock is read on every this many writes or escapes: reading it on each would
/// cost a message about as many clock reads as it has printed values.
const WRITES_PER_CLOCK_READ: u32 = 16;

impl Budget {
    pub fn start(limits: RenderLimits) -> Self {
        Budget {
            limits,
            deadline: Instant::now() + limits.max_time,
            written: 0,
            range_items: 0,
            unclocked: 0,
            crossed: None,
        }
    }

    /// Runs `render` with this budget in force on this thread; returns the limit
    /// crossed, if any, along with its result.
    pub fn spend<T>(&mut self, render: impl FnOnce() -> T) -> (T, Option<Limit>) {
        ACTIVE.set(Some(*self));
        let result = render();
        if let Some(spent) = ACTIVE.take() {
            *self = spent;
        }
        if self.crossed.is_none() && Instant::now() > self.deadline {
            self.crossed = Some(Limit::Time(self.limits.max_time));
        }
        (result, self.crossed)
    }

    /// Reads the clock every [`WRITES_PER_CLOCK_READ`] calls.
    fn tick(&mut self) -> Result<(), Limit> {
        self.unclocked += 1;
        if self.unclocked < WRITES_PER_CLOCK_READ {
            return Ok(());
        }
        self.check_time()
    }

    fn check_time(&mut self) -> Result<(), Limit> {
        self.unclocked = 0;
        if Instant::now() > self.deadline {
            return self.cross(Limit::Time(self.limits.max_time));
        }
        Ok(())
    }

    fn charge_output(&mut self, bytes: usize) -> Result<(), Limit> {
        self.written += bytes;
        if self.written > self.limits.max_output_bytes {
            return self.cross(Limit::Output(self.limits.max_output_bytes));
        }
        self.tick()
    }

    fn charge_range(&mut self, items: usize) -> Result<(), Limit> {
        self.range_items = self.range_items.saturating_add(items);
        if self.range_items > self.limits.max_range_items {
            return self.cross(Limit::Range(self.limits.max_range_items));
        }
        self.check_time()
    }

    fn cross(&mut self, limit: Limit) -> Result<(), Limit> {
        self.crossed.get_or_insert(limit);
        Err(limit)
    }
}

thread_local! {
    /// The budget of the message this thread is rendering: Tera calls our writer,
    /// escape function and `range()` without a way to pass it along.
    static ACTIVE: Cell<Option<Budget>> = const { Cell::new(None) };
}

/// Applies `charge` to the active budget; no budget (outside a render) spends nothing.
fn with_active(charge: impl FnOnce(&mut Budget) -> Result<(), Limit>) -> Result<(), Limit> {
    let Some(mut budget) = ACTIVE.get() else {
        return Ok(());
    };
    let result = charge(&mut budget);
    ACTIVE.set(Some(budget));
    result
}

/// For the escape function: fails once the message is past its time.
pub(crate) fn check_time() -> std::io::Result<()> {
    with_active(Budget::tick).map_err(io_error)
}

fn io_error(limit: Limit) -> std::io::Error {
    std::io::Error::other(limit.to_string())
}

/// The output of one part, refusing bytes past the message's limit.
pub(crate) struct LimitedWriter<'a>(pub &'a mut Vec<u8>);

impl Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        with_active(|budget| budget.charge_output(buf.len())).map_err(io_error)?;
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Tera's `range(start=0, end, step_by=1)`, charging its length to the budget before
/// building it.
pub(crate) fn range(kwargs: Kwargs, _: &State) -> TeraResult<Vec<i128>> {
    let start = kwargs.get::<i128>("start")?.unwrap_or_default();
    let end = kwargs.must_get::<i128>("end")?;
    let step = kwargs.get::<i128>("step_by")?.unwrap_or(1);
    let len = range_len(start, end, step).map_err(tera::Error::message)?;
    with_active(|budget| budget.charge_range(len))
        .map_err(|limit| tera::Error::message(format!("range() stopped: {limit}")))?;
    Ok((0..len as i128).map(|i| start + i * step).collect())
}

fn range_len(start: i128, end: i128, step: i128) -> Result<usize, String> {
    if step == 0 {
        return Err("range() was called with step_by=0".to_string());
    }
    if start > end && step > 0 {
        return Err("range() was called with start greater than end".to_string());
    }
    if step < 0 && start <= end {
        return Ok(0);
    }
    let (span, stride) = if step > 0 {
        (end.checked_sub(start), step)
    } else {
        (
            start.checked_sub(end),
            step.checked_neg().unwrap_or(i128::MAX),
        )
    };
    let overflow = || "range() arguments overflow".to_string();
    let span = span.filter(|s| *s >= 0).ok_or_else(overflow)?;
    let len = span.checked_add(stride - 1).ok_or_else(overflow)? / stride;
    usize::try_from(len).map_err(|_| format!("range() would produce {len} elements"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: usize, ms: u64, range: usize) -> RenderLimits {
        RenderLimits {
            max_output_bytes: bytes,
            max_time: Duration::from_millis(ms),
            max_range_items: range,
        }
    }

    #[test]
    fn range_lengths_match_teras() {
        assert_eq!(range_len(0, 5, 1), Ok(5));
        assert_eq!(range_len(0, 5, 2), Ok(3));
        assert_eq!(range_len(5, 0, -2), Ok(3));
        assert_eq!(range_len(3, 3, 1), Ok(0));
        assert_eq!(range_len(0, 5, -1), Ok(0));
        assert!(range_len(5, 0, 1).is_err());
        assert!(range_len(0, 5, 0).is_err());
        assert!(range_len(i128::MIN, i128::MAX, 1).is_err());
    }

    #[test]
    fn output_past_the_limit_is_refused_and_remembered() {
        let mut budget = Budget::start(limits(10, 60_000, 100));
        let mut out = Vec::new();
        let (result, crossed) = budget.spend(|| {
            let mut writer = LimitedWriter(&mut out);
            writer.write_all(b"0123456789")?;
            writer.write_all(b"x")
        });
        assert!(result.is_err());
        assert_eq!(crossed, Some(Limit::Output(10)));
        assert_eq!(out, b"0123456789");
    }

    #[test]
    fn range_elements_are_counted_over_calls_and_parts() {
        let mut budget = Budget::start(limits(1000, 60_000, 10));
        let (first, _) = budget.spend(|| with_active(|b| b.charge_range(6)));
        assert!(first.is_ok());
        let (second, crossed) = budget.spend(|| with_active(|b| b.charge_range(6)));
        assert_eq!(second, Err(Limit::Range(10)));
        assert_eq!(crossed, Some(Limit::Range(10)));
    }

    #[test]
    fn time_is_checked_after_each_part_even_without_writes() {
        let mut budget = Budget::start(limits(1000, 0, 10));
        std::thread::sleep(Duration::from_millis(2));
        let (_, crossed) = budget.spend(|| ());
        assert_eq!(crossed, Some(Limit::Time(Duration::ZERO)));
    }

    #[test]
    fn nothing_is_charged_outside_a_render() {
        let mut out = Vec::new();
        LimitedWriter(&mut out).write_all(&[0; 64]).unwrap();
        assert!(check_time().is_ok());
    }

    #[test]
    fn settings_replace_defaults_and_bad_values_are_named() {
        let set = |name: &str, value: &str| {
            let (name, value) = (name.to_string(), value.to_string());
            move |var: &str| (var == name).then(|| value.clone())
        };
        let limits = RenderLimits::from_vars(set(TIMEOUT_MS_VAR, "250")).unwrap();
        assert_eq!(limits.max_time, Duration::from_millis(250));
        assert_eq!(
            limits.max_output_bytes,
            RenderLimits::default().max_output_bytes
        );
        for bad in ["0", "-1", "2s", ""] {
            let error = RenderLimits::from_vars(set(MAX_BYTES_VAR, bad)).unwrap_err();
            assert!(error.to_string().contains(MAX_BYTES_VAR), "{error}");
        }
    }

    #[test]
    fn limits_name_their_setting() {
        assert!(Limit::Output(5).to_string().contains(MAX_BYTES_VAR));
        assert!(
            Limit::Time(Duration::from_secs(2))
                .to_string()
                .contains("2000 ms")
        );
        assert!(Limit::Range(5).to_string().contains(MAX_RANGE_VAR));
    }
}
