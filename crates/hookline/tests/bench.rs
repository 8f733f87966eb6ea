//! `hookline bench` in its short mode, run as the real binary: the JSON figures are all there and make sense,
//! the chart is an SVG with its three panels, and no progress line is drawn when stderr is not a terminal.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{TempDir, binary};

#[test]
fn a_short_bench_reports_sane_figures_and_writes_a_chart() {
    let dir = TempDir::new("bench");
    let chart = dir.path().join("bench.svg");
    let output = Command::new(binary())
        .args(["bench", "--events", "500", "--endpoints", "2", "--json", "--chart"])
        .arg(&chart)
        .output()
        .expect("hookline runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {stdout}"));
    let number = |key: &str| report[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {report}"));

    assert_eq!(report["deliveries"], 1000, "500 events × 2 endpoints: {report}");
    for key in [
        "deliveries_per_sec",
        "accepted_per_sec",
        "raw_ceiling_per_sec",
        "ratio_to_ceiling",
        "cpu_seconds_per_1000_deliveries",
        "peak_rss_bytes",
    ] {
        assert!(number(key) > 0.0, "{key} should be positive: {report}");
    }
    let (p50, p90, p99, max) = (number("p50_ms"), number("p90_ms"), number("p99_ms"), number("max_ms"));
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "percentiles out of order: {report}");
    assert!(number("ratio_to_ceiling") < 1.5, "the server outran the raw ceiling by far: {report}");
    assert!(number("peak_rss_bytes") > 1e6, "{report}");
    assert!(number("signatures_checked") >= 1.0 && number("signature_failures") == 0.0, "{report}");
    // stderr is a pipe here, not a terminal: no progress line is drawn on it.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains('█') && !stderr.contains("setting up"), "a progress line on a pipe: {stderr}");

    let svg = std::fs::read_to_string(&chart).expect("the chart was written");
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"), "{svg}");
    for element in [
        r#"class="delivered""#,
        r#"class="accepted""#,
        r#"class="latency-cdf""#,
        r#"class="rss""#,
        "Throughput",
        "latency",
    ] {
        assert!(svg.contains(element), "the chart has no {element}");
    }
    assert_eq!(svg.matches('<').count(), svg.matches('>').count(), "unbalanced tags");
}

#[test]
fn several_nodes_need_a_shared_database() {
    let output =
        Command::new(binary()).args(["bench", "--events", "10", "--nodes", "2"]).output().expect("hookline runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("the following required arguments were not provided") && stderr.contains("--database"),
        "{stderr}"
    );
    let output = Command::new(binary())
        .args(["bench", "--events", "10", "--nodes", "2", "--database", "sqlite://somewhere"])
        .output()
        .expect("hookline runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--nodes 2 needs a shared database: give --database postgres://"), "{stderr}");
}

#[tokio::test]
async fn a_short_bench_on_two_postgresql_nodes_delivers_everything() {
    let Some(database) = support::postgres_database().await else { return };
    let output = tokio::process::Command::new(binary())
        .args(["bench", "--events", "400", "--endpoints", "2", "--nodes", "2", "--json", "--database", &database.url])
        .output()
        .await
        .expect("hookline runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {stdout}"));
    assert_eq!(report["deliveries"], 800, "{report}");
    assert!(report["deliveries_per_sec"].as_f64().is_some_and(|rate| rate > 0.0), "{report}");
    // The bench deletes its tenant: the database holds nothing of the run afterwards.
    assert_eq!(database.query("SELECT COUNT(*) FROM events").await, ["0"]);
}

#[tokio::test]
async fn a_soak_on_postgresql_counts_postgresql_s_disk_writes_and_the_database_s_size() {
    let Some(database) = support::postgres_database().await else { return };
    let args = ["bench", "--duration", "3s", "--rate", "100", "--json", "--database", &database.url];
    let output = tokio::process::Command::new(binary()).args(args).output().await.expect("hookline runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {stdout}"));
    let soak = &report["soak"];
    // PostgreSQL's own processes write the database, and its statistics count them: every commit writes WAL.
    assert_eq!(soak["written_by"], "by PostgreSQL, server-wide: WAL and data pages", "{soak}");
    let written = soak["written_bytes_per_delivery"].as_f64().unwrap_or_else(|| panic!("no figure: {soak}"));
    assert!(written > 100.0, "{soak}");
    let samples = soak["samples"].as_array().unwrap();
    assert!(!samples.is_empty(), "{soak}");
    for sample in samples {
        // PostgreSQL keeps its own log; the database's size is what it reports (an empty one is a few MB).
        assert!(sample["wal_bytes"].is_null(), "{sample}");
        assert!(sample["db_bytes"].as_u64().is_some_and(|bytes| bytes > 1_000_000), "{sample}");
        assert!(sample["rss_bytes"].as_u64().is_some_and(|bytes| bytes > 0), "{sample}");
    }
}

#[tokio::test]
async fn bad_options_and_an_unreachable_server_get_a_clear_error() {
    let unreachable = support::closed_port_url().await;
    let cases: [(&[&str], &str); 10] = [
        (&["--nodes", "0", "--database", "sqlite://unused"], "--nodes must be at least 1"),
        (&["--events", "0"], "--events, --endpoints and --concurrency must each be at least 1"),
        (&["--rate", "0.000001"], "invalid --rate 0.000001; expected 0.01 to 1000000 events per second"),
        (&["--rate", "1000000000000"], "invalid --rate 1000000000000; expected 0.01 to 1000000 events per second"),
        (&["--payload-bytes", "99999999999"], "invalid --payload-bytes 99999999999; expected 1 to 16777216 (16 MiB)"),
        (&["--payload-bytes", "0"], "invalid --payload-bytes 0; expected 1 to 16777216 (16 MiB)"),
        (&["--duration", "0s", "--rate", "10"], "invalid --duration 0s; a soak runs for 1s or more"),
        (&["--retention", "0s"], "invalid --retention 0s; a server keeps events a minute (1m) or more"),
        (&["--max-wal-bytes", "10"], "invalid --max-wal-bytes 10; expected 1048576 (1 MiB) to 1099511627776 (1 TiB)"),
        (&["--server", &unreachable, "--key", "hka_x"], "could not create the bench's tenant on"),
    ];
    for (flags, message) in cases {
        let output =
            tokio::process::Command::new(binary()).arg("bench").args(flags).output().await.expect("hookline runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?}");
        assert!(stderr.contains(message) && !stderr.contains("panicked"), "{flags:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_short_soak_samples_every_window_and_keeps_the_wal_under_its_bound() {
    let output = tokio::process::Command::new(binary())
        .args([
            "bench",
            "--duration",
            "3s",
            "--rate",
            "100",
            "--retention",
            "1m",
            "--max-wal-bytes",
            "4194304",
            "--json",
        ])
        .output()
        .await
        .expect("hookline runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {stdout}"));
    assert_eq!(report["events"], 300, "{report}");
    assert_eq!(report["deliveries"], 300, "{report}");
    let soak = &report["soak"];
    assert_eq!(soak["max_wal_bytes"], 4194304, "{soak}");
    assert!(soak["wal_peak_bytes"].as_u64().is_some_and(|peak| peak <= 4194304), "{soak}");
    assert!(soak["written_bytes_per_delivery"].as_f64().is_some_and(|bytes| bytes > 0.0), "{soak}");
    assert_eq!(soak["written_by"], "by the server's process (write_bytes)", "{soak}");
    let samples = soak["samples"].as_array().expect("samples");
    assert!(samples.len() >= 3, "a window a second: {soak}");
    for sample in samples {
        for field in ["deliveries_per_sec", "p50_ms", "p99_ms", "rss_bytes", "wal_bytes", "db_bytes"] {
            assert!(sample[field].is_number(), "{field} in {sample}");
        }
    }
}
