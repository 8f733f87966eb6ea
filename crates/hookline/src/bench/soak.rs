//! `--duration`: the soak mode. The bench publishes at `--rate` for the whole duration (an open loop) and samples,
//! window after window, what a server left running for weeks must keep flat: deliveries per second, publish to
//! delivery latency (p50 and p99 of the window), resident memory, the embedded store's WAL and database files, and
//! the bytes written to disk per delivery: by the server's process on the embedded store, by PostgreSQL (its WAL
//! and data pages) on a database. Latencies go into one histogram per window, so the bench's own memory stays flat
//! too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::measure::ServerProcess;
use super::sink::Sink;

/// One window of the soak.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// The window's end, in seconds since the first publish.
    pub seconds: f64,
    pub deliveries_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rss_bytes: Option<u64>,
    pub wal_bytes: Option<u64>,
    pub db_bytes: Option<u64>,
    /// Bytes written to disk in the window (see [`Writes`]), per delivery of the window.
    pub written_per_delivery: Option<f64>,
}

/// Who writes the store to disk, and so where the bench counts the bytes written.
pub enum Writes {
    /// The server's process (the embedded store, or a server elsewhere on this machine): `write_bytes` of
    /// `/proc/…/io`.
    Process(ServerProcess),
    /// PostgreSQL's processes: the WAL it generated (`pg_stat_wal`) and the data pages its checkpointer, background
    /// writer and backends wrote (`pg_stat_bgwriter`), counted over the whole server, every database on it.
    Postgres(tokio_postgres::Client),
    /// PostgreSQL's statistics could not be read (another version's views, or no right to them).
    Unmeasured,
}

/// PostgreSQL's bytes written so far: WAL and data pages, server-wide (PostgreSQL 14 to 16).
const POSTGRES_WRITTEN: &str = "SELECT ((SELECT wal_bytes FROM pg_stat_wal)
        + (SELECT buffers_checkpoint + buffers_clean + buffers_backend FROM pg_stat_bgwriter)
          * current_setting('block_size')::numeric)::bigint";

impl Writes {
    /// Counts PostgreSQL's writes through a connection of the bench's own.
    pub async fn postgres(url: &str) -> anyhow::Result<Writes> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.query_one(POSTGRES_WRITTEN, &[]).await?;
        Ok(Writes::Postgres(client))
    }

    /// The bytes written so far, when they can be read.
    async fn bytes(&self) -> Option<u64> {
        match self {
            Writes::Process(process) => process.written_bytes(),
            Writes::Postgres(client) => {
                // The statistics are flushed at most once a second, and at the end of each transaction.
                let row = client.query_one(POSTGRES_WRITTEN, &[]).await.ok()?;
                row.get::<_, Option<i64>>(0).and_then(|bytes| u64::try_from(bytes).ok())
            }
            Writes::Unmeasured => None,
        }
    }

    /// The size of the store's database on PostgreSQL (its tables, indexes and their free space), when the
    /// bench counts PostgreSQL's writes; the embedded store's file is measured where it lies instead.
    async fn database_bytes(&self) -> Option<u64> {
        let Writes::Postgres(client) = self else { return None };
        let row = client.query_one("SELECT pg_database_size(current_database())", &[]).await.ok()?;
        u64::try_from(row.get::<_, i64>(0)).ok()
    }

    /// What the figure counts, for the report.
    pub fn scope(&self) -> &'static str {
        match self {
            Writes::Process(_) => "by the server's process (write_bytes)",
            Writes::Postgres(_) => "by PostgreSQL, server-wide: WAL and data pages",
            Writes::Unmeasured => "not measured: PostgreSQL's statistics could not be read",
        }
    }
}

/// What the soak saw, for the report and the chart.
#[derive(Clone, Debug, Default)]
pub struct SoakFigures {
    pub duration_seconds: f64,
    pub window_seconds: f64,
    pub samples: Vec<Sample>,
    /// The WAL's bound, when the bench set it (an in-process embedded store).
    pub max_wal_bytes: Option<u64>,
    pub wal_peak_bytes: Option<u64>,
    /// Over the whole soak.
    pub written_per_delivery: Option<f64>,
    /// What the bytes written count (`Writes::scope`).
    pub written_by: &'static str,
}

/// A latency histogram: microseconds from 1 µs to an hour, three significant digits.
pub fn histogram() -> Histogram<u64> {
    // The bounds are valid: low 1, high well above twice low, and three digits of precision.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Where the embedded store's files are, when the bench can see them.
#[derive(Clone, Debug)]
pub struct StoreFiles {
    pub data_dir: PathBuf,
}

impl StoreFiles {
    fn size(&self, name: &str) -> Option<u64> {
        std::fs::metadata(self.data_dir.join(name)).ok().map(|metadata| metadata.len())
    }
}

/// Samples every `window` until `stop`, from `started` (the first publish); returns the samples, every latency of
/// the soak in one histogram and the bytes written in all, as `writes` counts them.
pub async fn sample(
    sink: Arc<Sink>,
    process: ServerProcess,
    files: Option<StoreFiles>,
    writes: Writes,
    window: Duration,
    started: Instant,
    stop: CancellationToken,
) -> (Vec<Sample>, Histogram<u64>, Option<u64>) {
    let mut samples = Vec::new();
    let mut all = histogram();
    let mut ticks = tokio::time::interval_at((started + window).into(), window);
    let written_at_start = writes.bytes().await;
    let mut written_before = written_at_start;
    let mut delivered_before = sink.counts().borrow().fast;
    let mut last_tick = started;
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            _ = stop.cancelled() => true,
        };
        let now = Instant::now();
        let delivered = sink.counts().borrow().fast;
        let latencies = sink.take_window();
        let _ = all.add(&latencies);
        let written = writes.bytes().await;
        let database = match files.as_ref() {
            Some(files) => files.size("hookline.db"),
            None => writes.database_bytes().await,
        };
        let in_window = delivered - delivered_before;
        let seconds = now.duration_since(last_tick).as_secs_f64().max(1e-6);
        samples.push(Sample {
            seconds: now.duration_since(started).as_secs_f64(),
            deliveries_per_sec: in_window as f64 / seconds,
            p50_ms: latencies.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: latencies.value_at_quantile(0.99) as f64 / 1000.0,
            rss_bytes: process.rss_bytes(),
            wal_bytes: files.as_ref().and_then(|files| files.size("hookline.db-wal")),
            db_bytes: database,
            written_per_delivery: written
                .zip(written_before)
                .and_then(|(now, before)| now.checked_sub(before).filter(|_| in_window > 0))
                .map(|bytes| bytes as f64 / in_window as f64),
        });
        (written_before, delivered_before, last_tick) = (written, delivered, now);
        if stopping {
            let total = written.zip(written_at_start).and_then(|(end, start)| end.checked_sub(start));
            return (samples, all, total);
        }
    }
}

impl SoakFigures {
    /// Fails when the WAL file passed its bound in any window.
    pub fn check_wal(&self) -> anyhow::Result<()> {
        if let (Some(peak), Some(bound)) = (self.wal_peak_bytes, self.max_wal_bytes)
            && peak > bound
        {
            anyhow::bail!("the WAL file reached {peak} bytes during the soak, past its bound of {bound}");
        }
        Ok(())
    }

    pub fn json(&self) -> Value {
        json!({
            "duration_seconds": self.duration_seconds,
            "window_seconds": self.window_seconds,
            "max_wal_bytes": self.max_wal_bytes,
            "wal_peak_bytes": self.wal_peak_bytes,
            "written_bytes_per_delivery": self.written_per_delivery.map(|bytes| bytes.round()),
            "written_by": self.written_by,
            "samples": self.samples.iter().map(|sample| json!({
                "seconds": (sample.seconds * 10.0).round() / 10.0,
                "deliveries_per_sec": sample.deliveries_per_sec.round(),
                "p50_ms": (sample.p50_ms * 1000.0).round() / 1000.0,
                "p99_ms": (sample.p99_ms * 1000.0).round() / 1000.0,
                "rss_bytes": sample.rss_bytes,
                "wal_bytes": sample.wal_bytes,
                "db_bytes": sample.db_bytes,
                "written_bytes_per_delivery": sample.written_per_delivery.map(|bytes| bytes.round()),
            })).collect::<Vec<_>>(),
        })
    }

    /// Lines for the table: the first and the last full window side by side, and the peaks.
    pub fn lines(&self) -> Vec<(String, String)> {
        let megabytes =
            |bytes: Option<u64>| bytes.map_or("n/a".to_owned(), |bytes| format!("{:.1} MB", bytes as f64 / 1e6));
        let mut lines = vec![(
            "soak".to_owned(),
            format!("{:.0} s in windows of {:.0} s", self.duration_seconds, self.window_seconds),
        )];
        if let (Some(first), Some(last)) =
            (self.samples.first(), self.samples.iter().rev().nth(1).or(self.samples.last()))
        {
            lines.push((
                "first / last window".to_owned(),
                format!(
                    "{:.0} / {:.0} deliveries/s, p99 {:.1} / {:.1} ms, RSS {} / {}, WAL {} / {}, db {} / {}",
                    first.deliveries_per_sec,
                    last.deliveries_per_sec,
                    first.p99_ms,
                    last.p99_ms,
                    megabytes(first.rss_bytes),
                    megabytes(last.rss_bytes),
                    megabytes(first.wal_bytes),
                    megabytes(last.wal_bytes),
                    megabytes(first.db_bytes),
                    megabytes(last.db_bytes)
                ),
            ));
        }
        lines.push((
            "WAL peak / bound".to_owned(),
            format!("{} / {}", megabytes(self.wal_peak_bytes), megabytes(self.max_wal_bytes)),
        ));
        lines.push((
            "written per delivery".to_owned(),
            self.written_per_delivery
                .map_or("n/a".to_owned(), |bytes| format!("{bytes:.0} bytes, {}", self.written_by)),
        ));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soak_fails_when_the_wal_passed_its_bound() {
        let soak = |peak: Option<u64>, bound: Option<u64>| SoakFigures {
            wal_peak_bytes: peak,
            max_wal_bytes: bound,
            ..SoakFigures::default()
        };
        assert!(soak(Some(4 << 20), Some(4 << 20)).check_wal().is_ok());
        let error = soak(Some((4 << 20) + 1), Some(4 << 20)).check_wal().unwrap_err();
        assert_eq!(error.to_string(), "the WAL file reached 4194305 bytes during the soak, past its bound of 4194304");
        assert!(soak(None, Some(1)).check_wal().is_ok(), "PostgreSQL has no WAL file of ours to measure");
    }
}
