//! The portal's charts: an endpoint's successes and failures per hour, drawn on the server as inline SVG with the
//! panels the bench draws its charts with. People would rather look than read; the numbers are in each bar's
//! tooltip and in the chart's label for those who cannot see it.

use std::fmt::Write;

use hookline_core::health::hour_of;
use hookline_core::svg::{Panel, escape, legend, nice_ticks};
use hookline_core::time::Timestamp;
use hookline_store::HourCount;

const SUCCESS: &str = "#15803d";
const FAILURE: &str = "#b91c1c";
const HOUR_MILLIS: i64 = 3_600_000;

/// Successes and failures in each of the `span` hours that end with the one `now` is in, oldest first; an hour
/// without attempts counts nothing.
fn per_hour(hours: &[HourCount], now: Timestamp, span: usize) -> Vec<(u64, u64)> {
    let current = hour_of(now).unix_millis();
    let mut counts = vec![(0, 0); span];
    for hour in hours {
        let back = (current - hour.hour.unix_millis()).div_euclid(HOUR_MILLIS);
        if let Ok(back) = usize::try_from(back)
            && back < span
        {
            let slot = &mut counts[span - 1 - back];
            slot.0 += hour.successes;
            slot.1 += hour.failures;
        }
    }
    counts
}

/// Successes and failures over the last `span` hours, and what share succeeded ("no attempts" when none).
pub(super) struct Rate {
    pub(super) successes: u64,
    pub(super) failures: u64,
}

impl Rate {
    pub(super) fn over(hours: &[HourCount], now: Timestamp, span: usize) -> Rate {
        let (successes, failures) =
            per_hour(hours, now, span).into_iter().fold((0, 0), |(s, f), (hs, hf)| (s + hs, f + hf));
        Rate { successes, failures }
    }

    pub(super) fn share(&self) -> String {
        let total = self.successes + self.failures;
        if total == 0 {
            return "no attempts".to_owned();
        }
        let share = self.successes as f64 * 100.0 / total as f64;
        // 99.96% is not 100%: only a perfect record shows as one.
        if self.failures > 0 && share > 99.9 { "99.9%".to_owned() } else { format!("{share:.1}%").replace(".0%", "%") }
    }

    fn words(&self) -> String {
        format!("{} succeeded, {} failed", self.successes, self.failures)
    }
}

/// A small chart of the last 24 hours for a list: one bar per hour, failures in red over successes in green.
pub(super) fn sparkline(hours: &[HourCount], now: Timestamp) -> String {
    const WIDTH: f64 = 120.0;
    const HEIGHT: f64 = 28.0;
    let counts = per_hour(hours, now, 24);
    let highest = counts.iter().map(|(s, f)| s + f).max().unwrap_or(0).max(1) as f64;
    let rate = Rate::over(hours, now, 24);
    let mut svg = format!(
        r#"<svg class="spark" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="Last 24 hours: {}">"#,
        rate.words()
    );
    let panel = Panel {
        left: 0.0,
        top: 1.0,
        width: WIDTH,
        height: HEIGHT - 2.0,
        x_range: (0.0, 24.0),
        y_range: (0.0, highest),
    };
    let _ = write!(
        svg,
        r##"<line x1="0" y1="{0:.1}" x2="{WIDTH}" y2="{0:.1}" stroke="#a1a1aa" stroke-width="0.5"/>"##,
        panel.bottom()
    );
    for (index, (successes, failures)) in counts.iter().enumerate() {
        let x = (index as f64 + 0.1, index as f64 + 0.9);
        let (successes, failures) = (*successes as f64, *failures as f64);
        let tip = format!("{} h ago: {successes} succeeded, {failures} failed", 23 - index);
        panel.bar(&mut svg, x, (0.0, successes), SUCCESS, "succeeded", &tip);
        panel.bar(&mut svg, x, (successes, successes + failures), FAILURE, "failed", &tip);
    }
    svg.push_str("</svg>");
    svg
}

/// Successes and failures per hour over the last `span` hours (24 or 168), with axes, ticks and a legend.
pub(super) fn hourly(hours: &[HourCount], now: Timestamp, span: usize, title: &str) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 220.0;
    let counts = per_hour(hours, now, span);
    let highest = counts.iter().map(|(s, f)| s + f).max().unwrap_or(0);
    let y_ticks = nice_ticks(highest.max(1) as f64);
    let top_tick = y_ticks.last().copied().unwrap_or(1.0);
    let rate = Rate::over(hours, now, span);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}: {}" font-family="sans-serif" font-size="11">"#,
        escape(title),
        rate.words()
    );
    let span_f = span as f64;
    let panel = Panel {
        left: 50.0,
        top: 34.0,
        width: WIDTH - 70.0,
        height: 140.0,
        x_range: (0.0, span_f),
        y_range: (0.0, top_tick),
    };
    // Ticks every 6 hours over a day, every day over a week; the right edge is now.
    let step = if span <= 24 { 6 } else { 24 };
    let x_ticks: Vec<(f64, String)> = (0..=span)
        .rev()
        .step_by(step)
        .map(|back| {
            let label = match back {
                0 => "now".to_owned(),
                back if step == 24 => format!("{} d ago", back / 24),
                back => format!("{back} h ago"),
            };
            (span_f - back as f64, label)
        })
        .collect();
    let y_labels: Vec<(f64, String)> = y_ticks.iter().map(|&value| (value, format!("{value}"))).collect();
    panel.axes(&mut svg, title, "", &x_ticks, &y_labels);
    for (index, (successes, failures)) in counts.iter().enumerate() {
        let x = (index as f64 + 0.12, index as f64 + 0.88);
        let (successes, failures) = (*successes as f64, *failures as f64);
        let back = span - 1 - index;
        let tip = format!("{back} h ago: {successes} succeeded, {failures} failed");
        panel.bar(&mut svg, x, (0.0, successes), SUCCESS, "succeeded", &tip);
        panel.bar(&mut svg, x, (successes, successes + failures), FAILURE, "failed", &tip);
    }
    legend(&mut svg, panel.right(), panel.top - 30.0, &[(SUCCESS, "succeeded"), (FAILURE, "failed")]);
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_893_456_000_000 + 30 * 60_000; // half past an hour

    fn hour(back: i64, successes: u64, failures: u64) -> HourCount {
        let hour =
            Timestamp::from_unix_millis(hour_of(Timestamp::from_unix_millis(NOW)).unix_millis() - back * HOUR_MILLIS);
        HourCount { hour, successes, failures }
    }

    #[test]
    fn hours_fall_in_their_slot_and_old_ones_out() {
        let now = Timestamp::from_unix_millis(NOW);
        let counts = per_hour(&[hour(30, 9, 9), hour(23, 1, 2), hour(0, 3, 0)], now, 24);
        assert_eq!(counts.len(), 24);
        assert_eq!((counts[0], counts[23]), ((1, 2), (3, 0)));
        assert_eq!(counts.iter().map(|(s, f)| s + f).sum::<u64>(), 6);
    }

    #[test]
    fn the_rate_says_what_share_succeeded() {
        let now = Timestamp::from_unix_millis(NOW);
        assert_eq!(Rate::over(&[], now, 24).share(), "no attempts");
        assert_eq!(Rate::over(&[hour(1, 3, 1)], now, 24).share(), "75%");
        assert_eq!(Rate::over(&[hour(1, 9999, 1)], now, 24).share(), "99.9%");
        assert_eq!(Rate::over(&[hour(1, 2, 1)], now, 24).share(), "66.7%");
    }

    #[test]
    fn charts_draw_a_bar_per_hour_with_attempts_and_say_it_in_words() {
        let now = Timestamp::from_unix_millis(NOW);
        let spark = sparkline(&[hour(2, 4, 1), hour(0, 2, 0)], now);
        assert_eq!(spark.matches("class=\"succeeded\"").count(), 2);
        assert_eq!(spark.matches("class=\"failed\"").count(), 1);
        assert!(spark.contains("aria-label=\"Last 24 hours: 6 succeeded, 1 failed\""), "{spark}");
        let chart = hourly(&[hour(100, 1, 1)], now, 168, "Last 7 days");
        assert!(chart.contains("7 d ago") && chart.contains("now"), "{chart}");
        assert_eq!(chart.matches("<rect class=\"failed\"").count(), 1);
        let empty = hourly(&[], now, 24, "Last 24 hours");
        assert!(!empty.contains("class=\"succeeded\""), "an empty chart draws only its axes");
        assert!(empty.contains("24 h ago"), "{empty}");
    }
}
