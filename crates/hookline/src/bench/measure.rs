//! What the bench reads from the operating system and how it sums up what it saw: CPU seconds and memory from
//! `/proc`, deliveries counted in 100 ms buckets, and latency percentiles.

use std::time::Duration;

/// The name of the threads that run the load (publishers, sink, progress line). An in-process server's CPU time
/// is the process's minus these threads'.
pub const LOAD_THREAD: &str = "bench-load";

/// The width of one bucket of the throughput series.
pub const BUCKET: Duration = Duration::from_millis(100);

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`), which Linux fixes at 100 for user space on every
/// architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// Counts per [`BUCKET`], indexed by time since the bench's epoch.
#[derive(Clone, Debug, Default)]
pub struct Buckets(Vec<u64>);

impl Buckets {
    pub fn add(&mut self, at: Duration) {
        let index = (at.as_millis() / BUCKET.as_millis()) as usize;
        if self.0.len() <= index {
            self.0.resize(index + 1, 0);
        }
        self.0[index] += 1;
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The counts from the bucket holding `start` up to the one holding `end`, zeros included.
    pub fn between(&self, start: Duration, end: Duration) -> Vec<u64> {
        let first = (start.as_millis() / BUCKET.as_millis()) as usize;
        let last = (end.as_millis() / BUCKET.as_millis()) as usize;
        (first..=last).map(|index| self.0.get(index).copied().unwrap_or(0)).collect()
    }
}

/// Where the server's CPU time and memory can be read.
#[derive(Clone, Copy, Debug)]
pub enum ServerProcess {
    /// The server runs in this process, beside the load.
    InProcess,
    /// Another process on this machine (`--server-pid`).
    Pid(u32),
    /// A server elsewhere: nothing to read.
    Unknown,
}

impl ServerProcess {
    fn proc_dir(self) -> Option<String> {
        match self {
            ServerProcess::InProcess => Some("/proc/self".to_owned()),
            ServerProcess::Pid(pid) => Some(format!("/proc/{pid}")),
            ServerProcess::Unknown => None,
        }
    }

    /// The server's cumulative CPU seconds (user and system).
    pub fn cpu_seconds(self) -> Option<f64> {
        let process = stat_cpu_seconds(&format!("{}/stat", self.proc_dir()?))?.1;
        match self {
            ServerProcess::InProcess => Some(process - load_threads_cpu_seconds()),
            _ => Some(process),
        }
    }

    /// The resident set size now.
    pub fn rss_bytes(self) -> Option<u64> {
        status_bytes(&self.proc_dir()?, "VmRSS")
    }

    /// The bytes the process has caused to be written to storage so far (`write_bytes` in `/proc/…/io`).
    pub fn written_bytes(self) -> Option<u64> {
        let text = std::fs::read_to_string(format!("{}/io", self.proc_dir()?)).ok()?;
        text.lines().find_map(|line| line.strip_prefix("write_bytes:")).and_then(|value| value.trim().parse().ok())
    }

    /// The highest resident set size since the last [`ServerProcess::reset_peak_rss`].
    pub fn peak_rss_bytes(self) -> Option<u64> {
        status_bytes(&self.proc_dir()?, "VmHWM")
    }

    /// Starts the peak over (Linux 4.0 and later); false if the kernel refused.
    pub fn reset_peak_rss(self) -> bool {
        self.proc_dir().is_some_and(|dir| std::fs::write(format!("{dir}/clear_refs"), "5").is_ok())
    }

    /// What the CPU figure covers, for the report.
    pub fn cpu_scope(self) -> &'static str {
        match self {
            ServerProcess::InProcess => "server threads: the bench process minus the sink's and publishers' threads",
            ServerProcess::Pid(_) => "the server process (--server-pid)",
            ServerProcess::Unknown => "not measured: pass --server-pid for a server on this machine",
        }
    }

    /// What the memory figure covers, for the report.
    pub fn rss_scope(self) -> &'static str {
        match self {
            ServerProcess::InProcess => "the whole bench process: server, sink and publishers",
            ServerProcess::Pid(_) => "the server process (--server-pid)",
            ServerProcess::Unknown => "not measured: pass --server-pid for a server on this machine",
        }
    }
}

/// The whole bench process's cumulative CPU seconds.
pub fn bench_process_cpu_seconds() -> Option<f64> {
    Some(stat_cpu_seconds("/proc/self/stat")?.1)
}

/// The cumulative CPU seconds of this process's live [`LOAD_THREAD`] threads (they live as long as the bench).
pub fn load_threads_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .filter_map(|task| stat_cpu_seconds(&format!("{}/stat", task.ok()?.path().display())))
        .filter(|(name, _)| name == LOAD_THREAD)
        .map(|(_, seconds)| seconds)
        .sum()
}

/// The command name and user plus system CPU seconds in a `/proc/…/stat` file.
fn stat_cpu_seconds(path: &str) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    // "pid (comm) state ppid …": the name may hold spaces and parentheses, so split at the last ')'.
    let (head, rest) = text.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of the man page; `rest` starts at field 3.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((name, (user + system) as f64 / TICKS_PER_SECOND))
}

/// A `kB` line of `/proc/…/status`, in bytes.
fn status_bytes(dir: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let line = text.lines().find(|line| line.starts_with(key) && line[key.len()..].starts_with(':'))?;
    let kilobytes: u64 = line[key.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kilobytes * 1024)
}

/// The value at `fraction` (0 to 1) of microsecond samples sorted ascending, in milliseconds.
pub fn percentile_ms(sorted_us: &[u64], fraction: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let index = ((sorted_us.len() - 1) as f64 * fraction).round() as usize;
    sorted_us[index] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(bench_process_cpu_seconds().is_some());
        let rss = ServerProcess::InProcess.rss_bytes().unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        assert!(ServerProcess::InProcess.peak_rss_bytes().unwrap() >= rss / 2);
    }

    #[test]
    fn buckets_fill_gaps_with_zeros() {
        let mut buckets = Buckets::default();
        buckets.add(Duration::from_millis(50));
        buckets.add(Duration::from_millis(250));
        buckets.add(Duration::from_millis(299));
        assert_eq!(buckets.between(Duration::ZERO, Duration::from_millis(450)), vec![1, 0, 2, 0, 0]);
        assert_eq!(buckets.between(Duration::from_millis(200), Duration::from_millis(200)), vec![2]);
    }

    #[test]
    fn percentiles() {
        let samples: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&samples, 0.5), 51.0);
        assert_eq!(percentile_ms(&samples, 1.0), 100.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
