//! The bench's figures, and the two ways it prints them: a table for people, `--json` for scripts.

use serde_json::{Value, json};

/// Publish→delivery latency, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn of_histogram(histogram: &hdrhistogram::Histogram<u64>) -> Latency {
        let at = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
        Latency { p50: at(0.50), p90: at(0.90), p99: at(0.99), max: histogram.max() as f64 / 1000.0 }
    }

    pub fn of(sorted_us: &[u64]) -> Latency {
        use super::measure::percentile_ms;
        Latency {
            p50: percentile_ms(sorted_us, 0.50),
            p90: percentile_ms(sorted_us, 0.90),
            p99: percentile_ms(sorted_us, 0.99),
            max: percentile_ms(sorted_us, 1.0),
        }
    }
}

/// The slow-endpoint scenario: the fast endpoints' throughput is the headline; this is the slow one's.
#[derive(Clone, Copy, Debug)]
pub struct SlowEndpoint {
    pub answer_ms: u64,
    pub delivered: u64,
    pub per_sec: f64,
    pub p50_ms: f64,
}

/// The backlog scenario: the queue that built up while the sink held every request, and how fast it drained.
#[derive(Clone, Copy, Debug)]
pub struct Backlog {
    pub queued: u64,
    pub drain_seconds: f64,
    pub drain_per_sec: f64,
}

#[derive(Clone, Debug)]
pub struct Figures {
    pub scenario: &'static str,
    pub server: String,
    pub events: u64,
    pub endpoints: u64,
    pub concurrency: u64,
    /// The publish rate asked for (`--rate`), if any.
    pub rate: Option<f64>,
    pub payload_bytes: usize,
    /// Deliveries the headline rate counts (the fast endpoints' in the slow-endpoint scenario).
    pub deliveries: u64,
    /// From the first publish to the last counted delivery.
    pub elapsed_seconds: f64,
    pub accepted_per_sec: f64,
    pub deliveries_per_sec: f64,
    pub raw_ceiling_per_sec: f64,
    pub raw_concurrency: u64,
    pub latency: Latency,
    pub server_cpu_seconds: Option<f64>,
    pub cpu_scope: &'static str,
    pub load_cpu_seconds: Option<f64>,
    /// Every delivery answered while the CPU was measured, the slow endpoint's included.
    pub cpu_deliveries: u64,
    pub peak_rss_bytes: Option<u64>,
    pub rss_scope: &'static str,
    pub signatures_checked: u64,
    pub signature_failures: u64,
    pub slow_endpoint: Option<SlowEndpoint>,
    pub backlog: Option<Backlog>,
    pub soak: Option<super::soak::SoakFigures>,
}

impl Figures {
    pub fn ratio(&self, per_sec: f64) -> f64 {
        if self.raw_ceiling_per_sec > 0.0 { per_sec / self.raw_ceiling_per_sec } else { 0.0 }
    }

    pub fn cpu_seconds_per_1000_deliveries(&self) -> Option<f64> {
        let cpu = self.server_cpu_seconds?;
        (self.cpu_deliveries > 0).then(|| cpu / self.cpu_deliveries as f64 * 1000.0)
    }

    pub fn json(&self) -> Value {
        let mut report = json!({
            "scenario": self.scenario,
            "server": self.server,
            "events": self.events,
            "endpoints": self.endpoints,
            "concurrency": self.concurrency,
            "rate_per_sec": self.rate,
            "payload_bytes": self.payload_bytes,
            "deliveries": self.deliveries,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "accepted_per_sec": self.accepted_per_sec.round(),
            "deliveries_per_sec": self.deliveries_per_sec.round(),
            "raw_ceiling_per_sec": self.raw_ceiling_per_sec.round(),
            "raw_ceiling_concurrency": self.raw_concurrency,
            "ratio_to_ceiling": round(self.ratio(self.deliveries_per_sec), 4),
            "accepted_ratio_to_ceiling": round(self.ratio(self.accepted_per_sec), 4),
            "p50_ms": round(self.latency.p50, 3),
            "p90_ms": round(self.latency.p90, 3),
            "p99_ms": round(self.latency.p99, 3),
            "max_ms": round(self.latency.max, 3),
            "server_cpu_seconds": self.server_cpu_seconds.map(|seconds| round(seconds, 2)),
            "cpu_seconds_per_1000_deliveries": self.cpu_seconds_per_1000_deliveries().map(|seconds| round(seconds, 4)),
            "cpu_scope": self.cpu_scope,
            "load_cpu_seconds": self.load_cpu_seconds.map(|seconds| round(seconds, 2)),
            "peak_rss_bytes": self.peak_rss_bytes,
            "rss_scope": self.rss_scope,
            "signatures_checked": self.signatures_checked,
            "signature_failures": self.signature_failures,
        });
        if let Some(slow) = self.slow_endpoint {
            report["fast_deliveries_per_sec"] = json!(self.deliveries_per_sec.round());
            report["slow_endpoint"] = json!({
                "answer_ms": slow.answer_ms,
                "delivered": slow.delivered,
                "deliveries_per_sec": slow.per_sec.round(),
                "p50_ms": round(slow.p50_ms, 3),
            });
        }
        if let Some(backlog) = self.backlog {
            report["backlog"] = json!({
                "queued_deliveries": backlog.queued,
                "drain_seconds": round(backlog.drain_seconds, 3),
                "drain_per_sec": backlog.drain_per_sec.round(),
                "drain_ratio_to_ceiling": round(self.ratio(backlog.drain_per_sec), 4),
            });
        }
        if let Some(soak) = &self.soak {
            report["soak"] = soak.json();
        }
        report
    }

    pub fn table(&self) -> String {
        let mut lines = vec![
            format!(
                "hookline bench, {}: {} events × {} endpoint{}{}, {} publisher{}{}, {} B payloads",
                self.scenario,
                thousands(self.events),
                self.endpoints,
                if self.endpoints == 1 { "" } else { "s" },
                if self.slow_endpoint.is_some() { " + 1 slow" } else { "" },
                self.concurrency,
                if self.concurrency == 1 { "" } else { "s" },
                self.rate.map(|rate| format!(" at {rate} events/s")).unwrap_or_default(),
                self.payload_bytes
            ),
            format!("server: {}", self.server),
            String::new(),
            format!("{:<22}{:>23}", "", "× ceiling"),
        ];
        let mut rate = |label: &str, per_sec: f64, note: String| {
            lines.push(format!(
                "{label:<22}{:>10} /s  {:>8.3}  {note}",
                thousands(per_sec.round() as u64),
                self.ratio(per_sec)
            ));
        };
        rate(
            "raw ceiling",
            self.raw_ceiling_per_sec,
            format!("same client straight to the sink, {} connections", self.raw_concurrency),
        );
        let delivered_label = if self.slow_endpoint.is_some() { "fast endpoints" } else { "deliveries" };
        rate(
            delivered_label,
            self.deliveries_per_sec,
            format!(
                "{} deliveries, first publish to last delivery in {:.2} s",
                thousands(self.deliveries),
                self.elapsed_seconds
            ),
        );
        rate("accepted", self.accepted_per_sec, "events answered 202 (on disk)".to_owned());
        if let Some(backlog) = self.backlog {
            rate(
                "backlog drain",
                backlog.drain_per_sec,
                format!(
                    "{} queued deliveries drained in {:.2} s once the sink came up",
                    thousands(backlog.queued),
                    backlog.drain_seconds
                ),
            );
        }
        if let Some(slow) = self.slow_endpoint {
            rate(
                "slow endpoint",
                slow.per_sec,
                format!(
                    "answers after {} ms: {} delivered by then, p50 {:.1} ms",
                    slow.answer_ms,
                    thousands(slow.delivered),
                    slow.p50_ms
                ),
            );
        }
        lines.push(String::new());
        let latency = self.latency;
        lines.push(format!(
            "{:<22}p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
            "publish→delivery", latency.p50, latency.p90, latency.p99, latency.max
        ));
        match (self.server_cpu_seconds, self.cpu_seconds_per_1000_deliveries()) {
            (Some(total), Some(per_1000)) => lines.push(format!(
                "{:<22}{per_1000:.3} s per 1,000 deliveries ({total:.2} s in all; {})",
                "server CPU", self.cpu_scope
            )),
            _ => lines.push(format!("{:<22}{}", "server CPU", self.cpu_scope)),
        }
        if let Some(load) = self.load_cpu_seconds {
            lines.push(format!("{:<22}{load:.2} s (sink and publishers)", "load CPU"));
        }
        match self.peak_rss_bytes {
            Some(bytes) => lines.push(format!("{:<22}{:.1} MB ({})", "peak RSS", bytes as f64 / 1e6, self.rss_scope)),
            None => lines.push(format!("{:<22}{}", "peak RSS", self.rss_scope)),
        }
        lines.push(format!(
            "{:<22}{} checked, {} failed",
            "signatures",
            thousands(self.signatures_checked),
            self.signature_failures
        ));
        if let Some(soak) = &self.soak {
            lines.push(String::new());
            for (label, value) in soak.lines() {
                lines.push(format!("{label:<22}{value}"));
            }
        }
        lines.join("\n")
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// `12345678` → `12,345,678`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        for (value, expected) in
            [(0, "0"), (999, "999"), (1000, "1,000"), (123_456, "123,456"), (1_234_567, "1,234,567")]
        {
            assert_eq!(thousands(value), expected);
        }
    }
}
