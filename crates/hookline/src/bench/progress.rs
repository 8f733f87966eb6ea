//! The progress line on stderr while the bench runs (drawn only when stderr is a terminal), and the server's
//! memory sampled on the same 100 ms tick for the chart.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::measure::{BUCKET, ServerProcess};
use super::report::thousands;
use super::sink::Counts;

/// What the bench is doing, for the progress line.
#[derive(Clone, Copy, Debug)]
pub enum Phase {
    Setup,
    /// Posting straight to the sink.
    Raw {
        requests: u64,
    },
    /// Publishing or waiting for deliveries; `label` says which (`publishing`, `queueing`, `draining`…).
    Deliveries {
        label: &'static str,
        events: u64,
        deliveries: u64,
        fast_only: bool,
    },
}

/// The server's resident memory at a time since the epoch.
pub type MemorySample = (Duration, u64);

pub struct Ticker {
    phase: watch::Sender<Phase>,
    stop: CancellationToken,
    task: JoinHandle<Vec<MemorySample>>,
}

impl Ticker {
    /// Starts ticking on `runtime` (the load's, so its CPU time counts as the load's).
    pub fn start(
        runtime: &tokio::runtime::Handle,
        epoch: Instant,
        server: ServerProcess,
        counts: watch::Receiver<Counts>,
        accepted: Arc<AtomicU64>,
    ) -> Ticker {
        let (phase, phases) = watch::channel(Phase::Setup);
        let stop = CancellationToken::new();
        let draw = std::io::stderr().is_terminal();
        let task = runtime.spawn(tick(epoch, server, counts, accepted, phases, stop.clone(), draw));
        Ticker { phase, stop, task }
    }

    pub fn set(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    /// Stops, clears the line, and hands back the memory samples.
    pub async fn finish(self) -> Vec<MemorySample> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

async fn tick(
    epoch: Instant,
    server: ServerProcess,
    counts: watch::Receiver<Counts>,
    accepted: Arc<AtomicU64>,
    phase: watch::Receiver<Phase>,
    stop: CancellationToken,
    draw: bool,
) -> Vec<MemorySample> {
    let mut interval = tokio::time::interval(BUCKET);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut samples = Vec::new();
    // The last second of (time, answered) pairs, for the current rate.
    let mut recent: VecDeque<(Instant, u64)> = VecDeque::new();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => break,
        }
        if let Some(rss) = server.rss_bytes() {
            samples.push((epoch.elapsed(), rss));
        }
        if !draw {
            continue;
        }
        let counts = *counts.borrow();
        let now = Instant::now();
        let line = match *phase.borrow() {
            Phase::Setup => "setting up: tenant, endpoints, sink".to_owned(),
            Phase::Raw { requests } => {
                format!(
                    "{:<11} {}  {}/{} requests",
                    "raw ceiling",
                    bar(counts.raw, requests),
                    thousands(counts.raw),
                    thousands(requests)
                )
            }
            Phase::Deliveries { label, events, deliveries, fast_only } => {
                let answered = counts.answered(fast_only);
                recent.push_back((now, answered));
                while recent.front().is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(1)) {
                    recent.pop_front();
                }
                let rate = match (recent.front(), recent.back()) {
                    (Some((first_at, first)), Some((last_at, last))) if last_at > first_at => {
                        (last - first) as f64 / last_at.duration_since(*first_at).as_secs_f64()
                    }
                    _ => 0.0,
                };
                format!(
                    "{label:<11} {}  accepted {}/{}  delivered {}/{}  {}/s",
                    bar(answered, deliveries),
                    thousands(accepted.load(Ordering::Relaxed)),
                    thousands(events),
                    thousands(answered),
                    thousands(deliveries),
                    thousands(rate.round() as u64)
                )
            }
        };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K{line}");
        let _ = stderr.flush();
    }
    if draw {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
    }
    samples
}

/// `[██████░░░░]  60%`
fn bar(done: u64, total: u64) -> String {
    const WIDTH: u64 = 30;
    let fraction = if total == 0 { 1.0 } else { (done as f64 / total as f64).min(1.0) };
    let filled = (fraction * WIDTH as f64).round() as u64;
    let mut text = String::from("[");
    text.extend((0..WIDTH).map(|cell| if cell < filled { '█' } else { '░' }));
    text.push_str(&format!("] {:>3.0}%", fraction * 100.0));
    text
}
