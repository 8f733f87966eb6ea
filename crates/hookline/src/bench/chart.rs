//! `--chart FILE.svg`: throughput over time, the latency distribution and the server's memory, written as SVG
//! text by hand (no plotting dependency).

use std::fmt::Write;

use hookline_core::svg::{Panel, escape, nice_ticks};

use super::measure::percentile_ms;

/// What the chart shows; every series starts at the first publish.
pub struct ChartData<'a> {
    pub title: String,
    pub subtitle: String,
    pub bucket_seconds: f64,
    /// Deliveries per bucket (the fast endpoints' in the slow-endpoint scenario).
    pub delivered: &'a [u64],
    /// Events accepted per bucket.
    pub accepted: &'a [u64],
    /// The slow endpoint's deliveries per bucket, in that scenario.
    pub slow: Option<&'a [u64]>,
    /// When the sink came up, in the backlog scenario.
    pub gate_opened_seconds: Option<f64>,
    /// Publish→delivery, microseconds, sorted ascending.
    pub latencies_us: &'a [u64],
    /// (seconds, bytes) samples of the server's resident memory.
    pub memory: &'a [(f64, u64)],
    pub memory_scope: &'a str,
}

const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 230.0;
const PANEL_GAP: f64 = 70.0;
const HEADER: f64 = 70.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const DELIVERED_COLOUR: &str = "#2563eb";
const ACCEPTED_COLOUR: &str = "#9ca3af";
const SLOW_COLOUR: &str = "#ea580c";
const MEMORY_COLOUR: &str = "#059669";

/// A panel of the chart's width, `top` pixels down.
fn panel(top: f64, x_range: (f64, f64), y_range: (f64, f64)) -> Panel {
    Panel { left: LEFT, top, width: WIDTH - LEFT - RIGHT, height: PANEL_HEIGHT, x_range, y_range }
}

/// An SVG document tall enough for `panels` panels, with its title and subtitle.
fn start(panels: u32, title: &str, subtitle: &str) -> String {
    let height = HEADER + f64::from(panels) * (PANEL_HEIGHT + PANEL_GAP);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="26" font-size="17" font-weight="bold">{}</text>"#, escape(title));
    let _ = writeln!(svg, r##"<text x="{LEFT}" y="46" fill="#374151">{}</text>"##, escape(subtitle));
    svg
}

/// Writes the whole chart.
pub fn render(data: &ChartData<'_>) -> String {
    let mut svg = start(3, &data.title, &data.subtitle);
    throughput(&mut svg, data, HEADER + 20.0);
    latency(&mut svg, data, HEADER + 20.0 + PANEL_HEIGHT + PANEL_GAP);
    memory(&mut svg, data, HEADER + 20.0 + 2.0 * (PANEL_HEIGHT + PANEL_GAP));
    svg.push_str("</svg>\n");
    svg
}

/// The time axis the throughput and memory panels share: from the first publish to a round number of seconds
/// past the last bucket or memory sample, with its ticks.
fn time_axis(data: &ChartData<'_>) -> (f64, Vec<(f64, String)>) {
    let buckets = data.delivered.len().max(data.accepted.len()).max(data.slow.map_or(0, <[u64]>::len)).max(1);
    let last_sample = data.memory.last().map_or(0.0, |(at, _)| *at);
    let ticks = nice_ticks((buckets as f64 * data.bucket_seconds).max(last_sample).max(0.1));
    let end = ticks.last().copied().unwrap_or(1.0);
    (end, ticks.into_iter().map(|value| (value, format!("{value} s"))).collect())
}

fn throughput(svg: &mut String, data: &ChartData<'_>, top: f64) {
    let highest =
        data.delivered.iter().chain(data.accepted).chain(data.slow.unwrap_or(&[])).copied().max().unwrap_or(0);
    let y_ticks = nice_ticks(highest.max(1) as f64);
    let (seconds, x_ticks) = time_axis(data);
    let panel = panel(top, (0.0, seconds), (0.0, y_ticks.last().copied().unwrap_or(1.0)));
    let y_labels = y_ticks.iter().map(|&value| (value, super::report::thousands(value as u64))).collect::<Vec<_>>();
    let per = format!("per {} ms", (data.bucket_seconds * 1000.0).round());
    panel.axes(
        svg,
        &format!("Throughput: deliveries and accepted events {per}"),
        "time since the first publish",
        &x_ticks,
        &y_labels,
    );
    let series = |counts: &[u64]| {
        let width = data.bucket_seconds;
        counts
            .iter()
            .enumerate()
            .map(move |(index, &count)| ((index as f64 + 0.5) * width, count as f64))
            .collect::<Vec<_>>()
    };
    panel.polyline(svg, series(data.accepted).into_iter(), ACCEPTED_COLOUR, "accepted");
    panel.polyline(svg, series(data.delivered).into_iter(), DELIVERED_COLOUR, "delivered");
    let mut legend = vec![
        (DELIVERED_COLOUR, if data.slow.is_some() { "delivered (fast endpoints)" } else { "delivered" }),
        (ACCEPTED_COLOUR, "accepted"),
    ];
    if let Some(slow) = data.slow {
        panel.polyline(svg, series(slow).into_iter(), SLOW_COLOUR, "slow");
        legend.push((SLOW_COLOUR, "delivered (slow endpoint)"));
    }
    if let Some(opened) = data.gate_opened_seconds {
        let x = panel.x(opened);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{:.1}" stroke="#111827" stroke-dasharray="4 3"/>"##,
            top + PANEL_HEIGHT
        );
        let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}">sink up</text>"#, x + 4.0, top + 14.0);
    }
    draw_legend(svg, top, &legend);
}

fn latency(svg: &mut String, data: &ChartData<'_>, top: f64) {
    let title = "Publish→delivery latency: share of deliveries within x (log scale)";
    if data.latencies_us.is_empty() {
        let panel = panel(top, (0.0, 1.0), (0.0, 1.0));
        panel.axes(svg, title, "no latency samples", &[], &[]);
        return;
    }
    let lowest = percentile_ms(data.latencies_us, 0.0).max(0.01);
    let highest = percentile_ms(data.latencies_us, 1.0).max(lowest * 10.0);
    let (low_power, high_power) = (lowest.log10().floor() as i32, highest.log10().ceil() as i32);
    let panel = panel(top, (f64::from(low_power), f64::from(high_power)), (0.0, 1.0));
    let x_ticks = (low_power..=high_power)
        .map(|power| (f64::from(power), milliseconds_label(10f64.powi(power))))
        .collect::<Vec<_>>();
    let y_ticks = [0.0, 0.25, 0.5, 0.75, 1.0].map(|share| (share, format!("{:.0}%", share * 100.0)));
    panel.axes(svg, title, "publish→delivery (log scale)", &x_ticks, &y_ticks);
    const STEPS: usize = 400;
    let points = (0..=STEPS).map(|step| {
        let share = step as f64 / STEPS as f64;
        (percentile_ms(data.latencies_us, share).max(lowest).log10(), share)
    });
    panel.polyline(svg, points, DELIVERED_COLOUR, "latency-cdf");
    for (share, name) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")] {
        let value = percentile_ms(data.latencies_us, share);
        let (x, y) = (panel.x(value.max(lowest).log10()), panel.y(share));
        let _ = writeln!(svg, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{DELIVERED_COLOUR}"/>"#);
        let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}">{name} {value:.2} ms</text>"#, x + 7.0, y + 4.0);
    }
}

fn memory(svg: &mut String, data: &ChartData<'_>, top: f64) {
    let title = format!("Resident memory ({})", data.memory_scope);
    let highest = data.memory.iter().map(|(_, bytes)| *bytes as f64 / 1e6).fold(1.0, f64::max);
    let y_ticks = nice_ticks(highest);
    let (seconds, x_ticks) = time_axis(data);
    let panel = panel(top, (0.0, seconds), (0.0, y_ticks.last().copied().unwrap_or(1.0)));
    let y_labels = y_ticks.iter().map(|&value| (value, format!("{value} MB"))).collect::<Vec<_>>();
    panel.axes(svg, &title, "time since the first publish", &x_ticks, &y_labels);
    panel.polyline(svg, data.memory.iter().map(|(at, bytes)| (*at, *bytes as f64 / 1e6)), MEMORY_COLOUR, "rss");
}

fn draw_legend(svg: &mut String, top: f64, entries: &[(&str, &str)]) {
    hookline_core::svg::legend(svg, WIDTH - RIGHT, top, entries);
}

fn milliseconds_label(value: f64) -> String {
    if value >= 1000.0 { format!("{} s", value / 1000.0) } else { format!("{value} ms") }
}

/// A line of a soak panel: its colour, its label and its points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// `--chart` in a soak: four panels over the soak's time, window after window.
pub fn render_soak(title: &str, subtitle: &str, soak: &super::soak::SoakFigures, memory_scope: &str) -> String {
    let mut svg = start(4, title, subtitle);
    let samples = &soak.samples;
    let end = samples.last().map_or(1.0, |sample| sample.seconds).max(1.0);
    let x_ticks: Vec<(f64, String)> = nice_ticks(end).into_iter().map(|value| (value, format!("{value} s"))).collect();
    let seconds = x_ticks.last().map_or(end, |(value, _)| *value);
    let panels: [(&str, &str, Vec<Series<'_>>); 4] = [
        (
            "Deliveries per second",
            "",
            vec![(
                DELIVERED_COLOUR,
                "deliveries/s",
                samples.iter().map(|s| (s.seconds, s.deliveries_per_sec)).collect(),
            )],
        ),
        (
            "Publish→delivery latency, per window",
            " ms",
            vec![
                (DELIVERED_COLOUR, "p50", samples.iter().map(|s| (s.seconds, s.p50_ms)).collect()),
                (SLOW_COLOUR, "p99", samples.iter().map(|s| (s.seconds, s.p99_ms)).collect()),
            ],
        ),
        (
            "Memory and files (MB)",
            " MB",
            vec![
                (MEMORY_COLOUR, "RSS", megabytes(samples.iter().map(|s| (s.seconds, s.rss_bytes)))),
                (SLOW_COLOUR, "WAL", megabytes(samples.iter().map(|s| (s.seconds, s.wal_bytes)))),
                (ACCEPTED_COLOUR, "database", megabytes(samples.iter().map(|s| (s.seconds, s.db_bytes)))),
            ],
        ),
        (
            "Bytes written to disk per delivery (KB)",
            " KB",
            vec![(
                DELIVERED_COLOUR,
                "written/delivery",
                samples.iter().filter_map(|s| s.written_per_delivery.map(|bytes| (s.seconds, bytes / 1e3))).collect(),
            )],
        ),
    ];
    for (index, (panel_title, unit, series)) in panels.iter().enumerate() {
        let top = HEADER + 20.0 + index as f64 * (PANEL_HEIGHT + PANEL_GAP);
        let highest = series.iter().flat_map(|(_, _, points)| points.iter().map(|(_, y)| *y)).fold(1.0, f64::max);
        let y_ticks = nice_ticks(highest);
        let panel = panel(top, (0.0, seconds), (0.0, y_ticks.last().copied().unwrap_or(1.0)));
        let y_labels: Vec<(f64, String)> = y_ticks.iter().map(|&value| (value, format!("{value}{unit}"))).collect();
        let title = match index {
            2 => format!("{panel_title}; RSS of {memory_scope}"),
            3 if !soak.written_by.is_empty() => format!("{panel_title}, {}", soak.written_by),
            _ => (*panel_title).to_owned(),
        };
        panel.axes(&mut svg, &title, "time since the first publish", &x_ticks, &y_labels);
        for (colour, label, points) in series {
            panel.polyline(&mut svg, points.iter().copied(), colour, label);
        }
        let legend: Vec<(&str, &str)> = series.iter().map(|(colour, label, _)| (*colour, *label)).collect();
        draw_legend(&mut svg, top, &legend);
    }
    svg.push_str("</svg>\n");
    svg
}

fn megabytes(points: impl Iterator<Item = (f64, Option<u64>)>) -> Vec<(f64, f64)> {
    points.filter_map(|(at, bytes)| bytes.map(|bytes| (at, bytes as f64 / 1e6))).collect()
}
