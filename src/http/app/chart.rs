//! Dashboard charts as plain SVG strings, drawn on the server: no JavaScript. Colours
//! come from the page's stylesheet through `class` attributes (the CSP allows no inline
//! styles), and every piece of text is escaped. Templates insert the result with
//! `| safe`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::DateTime;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

/// One line of a [`line_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// (bucket start in unix seconds, count)
    pub points: Vec<(i64, f64)>,
    /// CSS class of the line and its legend swatch (`human`, `machine`, …).
    pub class: &'static str,
}

impl Series {
    /// A series without points yet.
    pub fn new(label: impl Into<String>, class: &'static str) -> Series {
        Series {
            label: label.into(),
            points: Vec::new(),
            class,
        }
    }
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 36.0;
const TOP: f64 = 32.0;
const BOTTOM: f64 = 28.0;
const MAX_X_LABELS: usize = 6;

const FUNNEL_ROW: f64 = 28.0;
const FUNNEL_PAD: f64 = 8.0;
const FUNNEL_LABEL_WIDTH: f64 = 150.0;
const FUNNEL_BAR_MAX: f64 = 380.0;
const FUNNEL_LABEL_CHARS: usize = 24;
const EMPTY_HEIGHT: f64 = 80.0;

/// [`zero_filled`] leaves longer runs alone rather than allocate for a bad bucket size.
const MAX_FILLED_BUCKETS: i64 = 5000;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The bucket size for a timeline from `first` to `last` (unix seconds): an hour for
/// spans under three days, six hours under fourteen days, otherwise a day.
pub fn timeline_bucket_seconds(first: i64, last: i64) -> i64 {
    let span = last.saturating_sub(first);
    if span < 3 * DAY {
        HOUR
    } else if span < 14 * DAY {
        6 * HOUR
    } else {
        DAY
    }
}

/// `points` with a zero at every empty bucket between the first and the last, so a
/// line drops to zero over a quiet stretch instead of bridging it. The points must sit
/// on multiples of `bucket_seconds`, as `Store::engagement_timeline` gives them.
pub fn zero_filled(points: &[(i64, f64)], bucket_seconds: i64) -> Vec<(i64, f64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|&(x, _)| x);
    let (Some(&(first, _)), Some(&(last, _))) = (sorted.first(), sorted.last()) else {
        return sorted;
    };
    if bucket_seconds <= 0 || last.saturating_sub(first) / bucket_seconds > MAX_FILLED_BUCKETS {
        return sorted;
    }
    let known: HashMap<i64, f64> = sorted.into_iter().collect();
    (first..=last)
        .step_by(bucket_seconds as usize)
        .map(|x| (x, known.get(&x).copied().unwrap_or(0.0)))
        .collect()
}

/// A line chart of counts over time, one `<polyline>` per series, with round y ticks,
/// UTC date (or date and hour) labels under the x axis and a legend above the plot.
pub fn line_chart(series: &[Series], title: &str) -> String {
    let Some(frame) = Frame::of(series) else {
        return no_data(title, HEIGHT);
    };
    let mut svg = svg_start(title, HEIGHT);
    grid(&mut svg, &frame);
    x_labels(&mut svg, &frame, series);
    axes(&mut svg);
    for one in series {
        line(&mut svg, &frame, one);
    }
    legend(&mut svg, series);
    svg.push_str("</svg>");
    svg
}

/// A funnel: one horizontal bar per step, its width relative to the largest count,
/// with the step's label and its count (and, after the first, its share of the first).
pub fn bar_funnel(steps: &[(String, i64)], title: &str) -> String {
    let Some((_, first)) = steps.first() else {
        return no_data(title, EMPTY_HEIGHT);
    };
    let widest = steps.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let height = 2.0 * FUNNEL_PAD + FUNNEL_ROW * steps.len() as f64;
    let mut svg = svg_start(title, height);
    for (row, (label, count)) in steps.iter().enumerate() {
        let share = (row > 0).then_some(*first);
        funnel_bar(&mut svg, row, label, *count, widest, share);
    }
    svg.push_str("</svg>");
    svg
}

/// The data's extent and where it lands in the plot area.
struct Frame {
    x_min: i64,
    x_max: i64,
    ticks: Vec<i64>,
}

impl Frame {
    /// None when no series has a point.
    fn of(series: &[Series]) -> Option<Frame> {
        let points = || series.iter().flat_map(|s| &s.points);
        let x_min = points().map(|&(x, _)| x).min()?;
        let x_max = points().map(|&(x, _)| x).max()?;
        let y_max = points().map(|&(_, y)| y).fold(0.0, f64::max);
        Some(Frame {
            x_min,
            x_max,
            ticks: y_ticks(y_max),
        })
    }

    fn x(&self, t: i64) -> f64 {
        let width = WIDTH - LEFT - RIGHT;
        if self.x_max == self.x_min {
            return LEFT + width / 2.0;
        }
        LEFT + width * (t - self.x_min) as f64 / (self.x_max - self.x_min) as f64
    }

    fn y(&self, value: f64) -> f64 {
        let top = *self.ticks.last().expect("y_ticks gives at least three") as f64;
        HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * value.max(0.0) / top
    }
}

/// Round tick values from 0 up to at least `max`: three to five of them, a step of
/// 1, 2 or 5 times a power of ten apart.
fn y_ticks(max: f64) -> Vec<i64> {
    let step = nice_step(max);
    let intervals = ((max / step as f64).ceil() as i64).clamp(2, 4);
    (0..=intervals).map(|i| i.saturating_mul(step)).collect()
}

/// The smallest step of 1, 2 or 5 times a power of ten (at least 1) that covers `max`
/// in four intervals.
fn nice_step(max: f64) -> i64 {
    let raw = max / 4.0;
    let mut magnitude: i64 = 1;
    while let Some(next) = magnitude.checked_mul(10).filter(|&n| n as f64 <= raw) {
        magnitude = next;
    }
    let residual = raw / magnitude as f64;
    let factor = match residual {
        r if r <= 1.0 => 1,
        r if r <= 2.0 => 2,
        r if r <= 5.0 => 5,
        _ => 10,
    };
    magnitude.saturating_mul(factor)
}

/// `<svg …><title …>`, labelled by its title through an id unique in the process.
fn svg_start(title: &str, height: f64) -> String {
    let id = format!("chart-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="{id}" viewBox="0 0 {WIDTH} {height}" width="100%" font-size="11"><title id="{id}">{}</title>"#,
        text(title)
    )
}

fn no_data(title: &str, height: f64) -> String {
    let mut svg = svg_start(title, height);
    let _ = write!(
        svg,
        r#"<text class="empty" x="{}" y="{}" text-anchor="middle">No data yet</text></svg>"#,
        WIDTH / 2.0,
        height / 2.0
    );
    svg
}

/// Horizontal gridlines with their values left of the y axis.
fn grid(svg: &mut String, frame: &Frame) {
    let right = WIDTH - RIGHT;
    for &tick in &frame.ticks {
        let y = frame.y(tick as f64);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{right}" y2="{y:.1}"/><text class="tick y-tick" x="{}" y="{:.1}" text-anchor="end">{tick}</text>"#,
            LEFT - 6.0,
            y + 4.0
        );
    }
}

fn axes(svg: &mut String) {
    let (bottom, right) = (HEIGHT - BOTTOM, WIDTH - RIGHT);
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/><line class="axis" x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>"#
    );
}

/// Dates under the x axis at up to [`MAX_X_LABELS`] of the buckets; with the hour
/// when the buckets are shorter than a day.
fn x_labels(svg: &mut String, frame: &Frame, series: &[Series]) {
    let mut xs: Vec<i64> = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|&(x, _)| x)
        .collect();
    xs.sort_unstable();
    xs.dedup();
    let with_time = xs.iter().any(|x| x.rem_euclid(DAY) != 0);
    let y = HEIGHT - BOTTOM + 16.0;
    for x in spread(&xs, MAX_X_LABELS) {
        let _ = write!(
            svg,
            r#"<text class="tick x-tick" x="{:.1}" y="{y}" text-anchor="middle">{}</text>"#,
            frame.x(x),
            text(&date_label(x, with_time))
        );
    }
}

/// At most `n` (at least 2) of `xs`, the first and the last among them, evenly apart.
fn spread(xs: &[i64], n: usize) -> Vec<i64> {
    if xs.len() <= n {
        return xs.to_vec();
    }
    (0..n).map(|i| xs[i * (xs.len() - 1) / (n - 1)]).collect()
}

fn date_label(t: i64, with_time: bool) -> String {
    let Some(at) = DateTime::from_timestamp(t, 0) else {
        return t.to_string();
    };
    let format = if with_time { "%-d %b %H:%M" } else { "%-d %b" };
    at.format(format).to_string()
}

/// The series' polyline, and a dot when it has a single point (a one-point polyline
/// draws nothing).
fn line(svg: &mut String, frame: &Frame, series: &Series) {
    let mut points = series.points.clone();
    points.sort_by_key(|&(x, _)| x);
    let coordinates: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", frame.x(x), frame.y(y)))
        .collect();
    let class = attr(series.class);
    let _ = write!(
        svg,
        r#"<polyline class="series {class}" fill="none" points="{}"/>"#,
        coordinates.join(" ")
    );
    if let [(x, y)] = points[..] {
        let _ = write!(
            svg,
            r#"<circle class="series point {class}" cx="{:.1}" cy="{:.1}" r="3"/>"#,
            frame.x(x),
            frame.y(y)
        );
    }
}

/// A swatch and the label of each series, in a row above the plot.
fn legend(svg: &mut String, series: &[Series]) {
    let mut x = LEFT;
    for one in series {
        let _ = write!(
            svg,
            r#"<line class="series swatch {}" x1="{x}" y1="12" x2="{}" y2="12"/><text class="legend" x="{}" y="16">{}</text>"#,
            attr(one.class),
            x + 16.0,
            x + 20.0,
            text(&one.label)
        );
        x += 36.0 + 7.0 * one.label.chars().count() as f64;
    }
}

/// One funnel row; `share_of` is the first step's count, for the rows after it.
fn funnel_bar(
    svg: &mut String,
    row: usize,
    label: &str,
    count: i64,
    widest: i64,
    share_of: Option<i64>,
) {
    let top = FUNNEL_PAD + FUNNEL_ROW * row as f64;
    let width = FUNNEL_BAR_MAX * count.max(0) as f64 / widest as f64;
    let baseline = top + FUNNEL_ROW / 2.0 + 4.0;
    let _ = write!(
        svg,
        r#"<text class="funnel-label" x="{}" y="{baseline}" text-anchor="end">{}</text><rect class="funnel-bar" x="{FUNNEL_LABEL_WIDTH}" y="{}" width="{width:.1}" height="{}"/><text class="funnel-count" x="{:.1}" y="{baseline}">{}</text>"#,
        FUNNEL_LABEL_WIDTH - 8.0,
        text(&shortened(label, FUNNEL_LABEL_CHARS)),
        top + 4.0,
        FUNNEL_ROW - 8.0,
        FUNNEL_LABEL_WIDTH + width + 6.0,
        count_text(count, share_of)
    );
}

fn count_text(count: i64, share_of: Option<i64>) -> String {
    match share_of {
        Some(first) if first > 0 => {
            let percent = (100.0 * count as f64 / first as f64).round();
            format!("{count} ({percent}%)")
        }
        _ => count.to_string(),
    }
}

/// `label` cut to `max` characters, an ellipsis marking the cut.
fn shortened(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_owned();
    }
    let mut cut: String = label.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-05 00:00:00 UTC.
    const MARCH_5: i64 = 1_709_596_800;

    /// Each `<tag …>` of `svg`: its opening tag (without the `>`) and what follows it.
    fn elements<'a>(svg: &'a str, tag: &str) -> Vec<(&'a str, &'a str)> {
        let open = format!("<{tag} ");
        svg.match_indices(&open)
            .map(|(at, _)| {
                let end = at + svg[at..].find('>').expect("tag ends");
                (&svg[at..end], &svg[end + 1..])
            })
            .collect()
    }

    fn attribute<'a>(element: &'a str, name: &str) -> Option<&'a str> {
        let key = format!(" {name}=\"");
        let start = element.find(&key)? + key.len();
        Some(&element[start..start + element[start..].find('"')?])
    }

    /// The value of attribute `name` in every `<tag …>` of `svg`, in order.
    fn attributes<'a>(svg: &'a str, tag: &str, name: &str) -> Vec<&'a str> {
        elements(svg, tag)
            .into_iter()
            .filter_map(|(element, _)| attribute(element, name))
            .collect()
    }

    /// The content of every `<text …>` one of whose classes is `class`.
    fn texts<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
        elements(svg, "text")
            .into_iter()
            .filter(|(element, _)| {
                attribute(element, "class").is_some_and(|c| c.split(' ').any(|c| c == class))
            })
            .map(|(_, rest)| &rest[..rest.find("</text>").expect("text ends")])
            .collect()
    }

    fn series(label: &str, class: &'static str, points: &[(i64, f64)]) -> Series {
        Series {
            points: points.to_vec(),
            ..Series::new(label, class)
        }
    }

    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 1, "{svg}");
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(
            svg.matches("<title").count(),
            svg.matches("</title>").count()
        );
        assert!(!svg.contains("style="), "no inline styles: {svg}");
        let labelled_by = attributes(svg, "svg", "aria-labelledby");
        assert_eq!(attributes(svg, "title", "id"), labelled_by, "{svg}");
        assert_eq!(attributes(svg, "svg", "role"), ["img"]);
    }

    #[test]
    fn one_polyline_per_series_with_a_point_per_bucket() {
        let hours = |n: i64| MARCH_5 + n * HOUR;
        let svg = line_chart(
            &[
                series(
                    "Human",
                    "human",
                    &[(hours(0), 1.0), (hours(1), 5.0), (hours(2), 3.0)],
                ),
                series("Machine", "machine", &[(hours(0), 2.0), (hours(2), 0.0)]),
            ],
            "Opens",
        );
        assert_well_formed(&svg);
        assert_eq!(
            attributes(&svg, "polyline", "class"),
            ["series human", "series machine"]
        );
        let counts: Vec<usize> = attributes(&svg, "polyline", "points")
            .iter()
            .map(|p| p.split_whitespace().count())
            .collect();
        assert_eq!(counts, [3, 2]);
        assert_eq!(texts(&svg, "legend"), ["Human", "Machine"]);
        assert_eq!(
            texts(&svg, "x-tick"),
            ["5 Mar 00:00", "5 Mar 01:00", "5 Mar 02:00"]
        );
    }

    #[test]
    fn points_span_the_plot_and_the_top_tick() {
        let svg = line_chart(
            &[series(
                "Clicks",
                "human",
                &[
                    (MARCH_5 + DAY, 8.0),
                    (MARCH_5, 0.0),
                    (MARCH_5 + 2 * DAY, 4.0),
                ],
            )],
            "Clicks",
        );
        assert_eq!(texts(&svg, "y-tick"), ["0", "2", "4", "6", "8"]);
        let middle = (HEIGHT - BOTTOM + TOP) / 2.0;
        let expected = format!(
            "{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
            LEFT,
            HEIGHT - BOTTOM,
            (LEFT + WIDTH - RIGHT) / 2.0,
            TOP,
            WIDTH - RIGHT,
            middle
        );
        assert_eq!(attributes(&svg, "polyline", "points"), [expected.as_str()]);
        assert_eq!(texts(&svg, "x-tick"), ["5 Mar", "6 Mar", "7 Mar"]);
    }

    #[test]
    fn a_lone_point_is_drawn_as_a_dot() {
        let svg = line_chart(&[series("Opens", "human", &[(MARCH_5, 3.0)])], "Opens");
        assert_well_formed(&svg);
        let x = format!("{:.1}", (LEFT + WIDTH - RIGHT) / 2.0);
        assert_eq!(attributes(&svg, "circle", "cx"), [x.as_str()]);
    }

    #[test]
    fn at_most_six_dates_under_the_axis() {
        let points: Vec<(i64, f64)> = (0..48).map(|h| (MARCH_5 + h * HOUR, 1.0)).collect();
        let svg = line_chart(&[series("Opens", "human", &points)], "Opens");
        let labels = texts(&svg, "x-tick");
        assert_eq!(labels.len(), 6, "{labels:?}");
        assert_eq!(labels.first(), Some(&"5 Mar 00:00"));
        assert_eq!(labels.last(), Some(&"6 Mar 23:00"));
    }

    #[test]
    fn labels_and_titles_are_escaped() {
        let svg = line_chart(
            &[series(
                "<script>alert(1)</script>",
                "human",
                &[(MARCH_5, 1.0)],
            )],
            "Opens & \"clicks\" <b>",
        );
        assert_well_formed(&svg);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert_eq!(
            texts(&svg, "legend"),
            ["&lt;script&gt;alert(1)&lt;/script&gt;"]
        );
        assert!(
            svg.contains(">Opens &amp; \"clicks\" &lt;b&gt;</title>"),
            "{svg}"
        );

        let funnel = bar_funnel(&[("<script>".into(), 3)], "<i>Funnel</i>");
        assert_well_formed(&funnel);
        assert_eq!(texts(&funnel, "funnel-label"), ["&lt;script&gt;"]);
        assert!(!funnel.contains("<i>"), "{funnel}");
    }

    #[test]
    fn empty_input_says_so() {
        for svg in [
            line_chart(&[], "Opens"),
            line_chart(&[series("Opens", "human", &[])], "Opens"),
            bar_funnel(&[], "Funnel"),
        ] {
            assert_well_formed(&svg);
            assert_eq!(texts(&svg, "empty"), ["No data yet"]);
            assert!(!svg.contains("<polyline"), "{svg}");
            assert!(!svg.contains("<rect"), "{svg}");
        }
    }

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        assert_eq!(y_ticks(0.0), [0, 1, 2]);
        assert_eq!(y_ticks(1.0), [0, 1, 2]);
        assert_eq!(y_ticks(7.0), [0, 2, 4, 6, 8]);
        assert_eq!(y_ticks(100.0), [0, 50, 100]);
        assert_eq!(y_ticks(1234.0), [0, 500, 1000, 1500]);
        for max in [0.5, 3.0, 9.0, 11.0, 99.0, 101.0, 4_321.0, 987_654.0] {
            let ticks = y_ticks(max);
            let step = ticks[1];
            assert!((3..=5).contains(&ticks.len()), "{max}: {ticks:?}");
            assert!(*ticks.last().unwrap() as f64 >= max, "{max}: {ticks:?}");
            let mut leading = step;
            while leading % 10 == 0 {
                leading /= 10;
            }
            assert!([1, 2, 5].contains(&leading), "{max}: {ticks:?}");
            assert!(ticks.windows(2).all(|w| w[1] - w[0] == step), "{ticks:?}");
        }
    }

    #[test]
    fn funnel_bars_are_relative_to_the_widest() {
        let steps = [
            ("Entered".to_string(), 200),
            ("Sent".to_string(), 100),
            ("Opened".to_string(), 50),
        ];
        let svg = bar_funnel(&steps, "Funnel");
        assert_well_formed(&svg);
        assert_eq!(
            attributes(&svg, "rect", "width"),
            ["380.0", "190.0", "95.0"]
        );
        assert_eq!(texts(&svg, "funnel-label"), ["Entered", "Sent", "Opened"]);
        assert_eq!(
            texts(&svg, "funnel-count"),
            ["200", "100 (50%)", "50 (25%)"]
        );
    }

    #[test]
    fn long_funnel_labels_are_cut() {
        let svg = bar_funnel(&[("a".repeat(30), 1)], "Funnel");
        assert_eq!(
            texts(&svg, "funnel-label"),
            [format!("{}…", "a".repeat(23))]
        );
    }

    #[test]
    fn bucket_size_follows_the_span() {
        assert_eq!(timeline_bucket_seconds(0, 3 * DAY - 1), HOUR);
        assert_eq!(timeline_bucket_seconds(0, 3 * DAY), 6 * HOUR);
        assert_eq!(timeline_bucket_seconds(0, 14 * DAY - 1), 6 * HOUR);
        assert_eq!(timeline_bucket_seconds(0, 14 * DAY), DAY);
        assert_eq!(timeline_bucket_seconds(DAY, 0), HOUR);
    }

    #[test]
    fn empty_buckets_become_zeros() {
        let filled = zero_filled(&[(3 * HOUR, 2.0), (0, 1.0)], HOUR);
        assert_eq!(
            filled,
            [(0, 1.0), (HOUR, 0.0), (2 * HOUR, 0.0), (3 * HOUR, 2.0)]
        );
        assert!(zero_filled(&[], HOUR).is_empty());
    }
}
