//! Where "now" comes from: the system clock in production, a clock a test sets and advances by hand, so that
//! rules about time (due times, leases, retries) are tested without waiting.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::time::Timestamp;

/// A source of the current time, given to the store and the dispatcher when they are made.
pub trait Clock: Debug + Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until it is moved: for tests.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock { millis: AtomicI64::new(start.unix_millis()) }
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&self, duration: Duration) {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }

    /// Sets the clock to `time`, earlier or later.
    pub fn set(&self, time: Timestamp) {
        self.millis.store(time.unix_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000));
        assert_eq!(clock.now(), Timestamp::from_unix_millis(1_000));
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), Timestamp::from_unix_millis(2_500));
        clock.set(Timestamp::from_unix_millis(10));
        assert_eq!(clock.now(), Timestamp::from_unix_millis(10));
    }
}
