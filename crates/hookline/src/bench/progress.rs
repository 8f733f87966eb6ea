//! The progress line on stderr while the bench runs (an indicatif bar, drawn only when stderr is a terminal),
//! and the server's memory sampled on the same 100 ms tick for a burst's chart.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::mem::discriminant;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
    /// Starts ticking on `runtime` (the load's, so its CPU time counts as the load's); `charted` is the process whose
    /// memory a burst's chart draws, none in a soak.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        epoch: Instant,
        charted: Option<ServerProcess>,
        counts: watch::Receiver<Counts>,
        accepted: Arc<AtomicU64>,
    ) -> Ticker {
        let (phase, phases) = watch::channel(Phase::Setup);
        let stop = CancellationToken::new();
        let draw = std::io::stderr().is_terminal();
        let task = runtime.spawn(tick(epoch, charted, counts, accepted, phases, stop.clone(), draw));
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

/// `charted`: the process whose memory the burst chart draws; none in a soak, which keeps no series.
async fn tick(
    epoch: Instant,
    charted: Option<ServerProcess>,
    counts: watch::Receiver<Counts>,
    accepted: Arc<AtomicU64>,
    phase: watch::Receiver<Phase>,
    stop: CancellationToken,
    draw: bool,
) -> Vec<MemorySample> {
    let target = if draw { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let line = ProgressBar::with_draw_target(None, target);
    let mut interval = tokio::time::interval(BUCKET);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut samples = Vec::new();
    // The last second of (time, answered) pairs, for the current rate.
    let mut recent: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut shown_phase = None;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => break,
        }
        if let Some(rss) = charted.and_then(ServerProcess::rss_bytes) {
            samples.push((epoch.elapsed(), rss));
        }
        if !draw {
            continue;
        }
        let counts = *counts.borrow();
        let phase = *phase.borrow();
        let done = match phase {
            Phase::Setup => 0,
            Phase::Raw { .. } => counts.raw,
            Phase::Deliveries { fast_only, .. } => counts.answered(fast_only),
        };
        let now = Instant::now();
        recent.push_back((now, done));
        while recent.front().is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(1)) {
            recent.pop_front();
        }
        let rate = match (recent.front(), recent.back()) {
            (Some((first_at, first)), Some((last_at, last))) if last_at > first_at && last >= first => {
                (last - first) as f64 / last_at.duration_since(*first_at).as_secs_f64()
            }
            _ => 0.0,
        };
        if shown_phase != Some(discriminant(&phase)) {
            shown_phase = Some(discriminant(&phase));
            line.set_style(style(&phase));
        }
        show(&line, phase, done, accepted.load(Ordering::Relaxed), rate);
    }
    line.finish_and_clear();
    samples
}

/// Puts one tick's figures on the line: `done` of the phase's total so far, and `rate` of them a second.
fn show(line: &ProgressBar, phase: Phase, done: u64, accepted: u64, rate: f64) {
    match phase {
        Phase::Setup => line.set_message("setting up: tenant, endpoints, sink"),
        Phase::Raw { requests } => {
            line.set_prefix("raw ceiling");
            line.set_length(requests);
            line.set_position(done);
        }
        Phase::Deliveries { label, events, deliveries, .. } => {
            line.set_prefix(label);
            line.set_length(deliveries);
            line.set_position(done);
            line.set_message(format!(
                "accepted {}/{}  delivered {}/{}  {}/s",
                thousands(accepted),
                thousands(events),
                thousands(done),
                thousands(deliveries),
                thousands(rate.round() as u64)
            ));
        }
    }
}

/// How a phase's line looks: `label [██████░░░░]  60%  …`.
fn style(phase: &Phase) -> ProgressStyle {
    let template = match phase {
        Phase::Setup => "{msg}",
        Phase::Raw { .. } => "{prefix:<11} [{bar:30}] {percent:>3}%  {human_pos}/{human_len} requests",
        Phase::Deliveries { .. } => "{prefix:<11} [{bar:30}] {percent:>3}%  {msg}",
    };
    // The templates are constants, and each is a valid one.
    ProgressStyle::with_template(template).expect("a valid progress template").progress_chars("█░")
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use indicatif::{ProgressBar, ProgressDrawTarget, TermLike};

    use super::{Phase, show, style};

    /// A terminal that keeps what was written on it.
    #[derive(Clone, Debug, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, text: &str) -> io::Result<()> {
            self.write_str(text)
        }
        fn write_str(&self, text: &str) -> io::Result<()> {
            self.0.lock().unwrap().push(text.to_owned());
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Checks the line drawn for `phase` with `done` of its total so far.
    fn check(phase: Phase, done: u64, expected: &str) {
        let screen = Screen::default();
        let line = ProgressBar::with_draw_target(None, ProgressDrawTarget::term_like(Box::new(screen.clone())));
        line.set_style(style(&phase));
        show(&line, phase, done, 1_500, 1_234.4);
        line.abandon();
        let written = screen.0.lock().unwrap();
        let last = written.iter().rev().find(|text| !text.trim().is_empty()).cloned().unwrap_or_default();
        assert_eq!(last.trim_end(), expected, "{phase:?}");
    }

    #[test]
    fn lines() {
        check(Phase::Setup, 0, "setting up: tenant, endpoints, sink");
        check(
            Phase::Raw { requests: 20_000 },
            5_000,
            "raw ceiling [███████░░░░░░░░░░░░░░░░░░░░░░░]  25%  5,000/20,000 requests",
        );
        check(
            Phase::Deliveries { label: "publishing", events: 2_000, deliveries: 4_000, fast_only: false },
            3_000,
            "publishing  [██████████████████████░░░░░░░░]  75%  accepted 1,500/2,000  delivered 3,000/4,000  1,234/s",
        );
        check(
            Phase::Deliveries { label: "draining", events: 10, deliveries: 0, fast_only: true },
            0,
            "draining    [██████████████████████████████] 100%  accepted 1,500/10  delivered 0/0  1,234/s",
        );
    }
}
