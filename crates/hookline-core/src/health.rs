//! An endpoint's health: how its attempts went, kept as each one is recorded, and what follows from a run of
//! failures: the operational events a tenant may subscribe to (`endpoint.failing`, `endpoint.recovered`,
//! `delivery.exhausted`, `endpoint.disabled`) and the automatic disabling of an endpoint that has failed for days.
//!
//! The rules are here, without storage or time of their own: the store keeps a [`Health`] per endpoint and feeds it
//! each recorded attempt, in the order they started, with the time the attempt began.

use std::time::Duration;

use crate::time::Timestamp;

/// When a run of failures is told and when it disables the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `endpoint.failing` is published once a run of failures reaches this many attempts.
    pub failing_after: u32,
    /// An endpoint whose every attempt has failed for this long, and that has a delivery which used its last retry
    /// during that time, is disabled; `None` never disables one.
    pub disable_after: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy { failing_after: 5, disable_after: Some(Duration::from_secs(5 * 86_400)) }
    }
}

/// An endpoint's health as its recorded attempts left it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Attempts that failed since the last success.
    pub consecutive_failures: u32,
    /// When the first of them began; `None` while the last attempt succeeded.
    pub failing_since: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    pub last_failure: Option<Timestamp>,
    /// `endpoint.failing` was published for the current run of failures.
    pub failing_told: bool,
    /// A delivery used its last retry during the current run of failures.
    pub exhausted_in_run: bool,
}

/// One recorded attempt, as health sees it.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub started: Timestamp,
    pub succeeded: bool,
    /// It failed and was its delivery's last attempt.
    pub exhausted: bool,
}

/// What an attempt changed that others are told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A run of failures reached [`Policy::failing_after`].
    Failing,
    /// The first success after a run of failures that was told (`failing_since` is gone when the endpoint was
    /// enabled again meanwhile, which starts a new run).
    Recovered { failing_since: Option<Timestamp> },
    /// The attempt was its delivery's last.
    Exhausted,
    /// The endpoint has failed long enough to be disabled.
    Disable,
}

/// How an endpoint is doing, as its answers show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Healthy,
    /// Its current run of failures has reached the policy's threshold.
    Failing,
    Disabled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Failing => "failing",
            State::Disabled => "disabled",
        }
    }
}

impl Health {
    /// Takes in one attempt and says what it changed, in the order to tell it.
    pub fn record(&mut self, sample: Sample, policy: &Policy) -> Vec<Change> {
        let mut changes = Vec::new();
        if sample.succeeded {
            if self.failing_told {
                changes.push(Change::Recovered { failing_since: self.failing_since });
            }
            let last_success = self.last_success.map_or(sample.started, |last| last.max(sample.started));
            *self = Health { last_success: Some(last_success), last_failure: self.last_failure, ..Health::default() };
            return changes;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let since = *self.failing_since.get_or_insert(sample.started);
        self.last_failure = Some(self.last_failure.map_or(sample.started, |last| last.max(sample.started)));
        if sample.exhausted {
            self.exhausted_in_run = true;
            changes.push(Change::Exhausted);
        }
        if self.consecutive_failures >= policy.failing_after && !self.failing_told {
            self.failing_told = true;
            changes.push(Change::Failing);
        }
        if let Some(after) = policy.disable_after
            && self.exhausted_in_run
            && sample.started >= since.saturating_add(after)
        {
            changes.push(Change::Disable);
        }
        changes
    }

    /// The state an endpoint shows, given whether it is enabled.
    pub fn state(&self, enabled: bool, policy: &Policy) -> State {
        if !enabled {
            State::Disabled
        } else if self.failing_since.is_some() && self.consecutive_failures >= policy.failing_after {
            State::Failing
        } else {
            State::Healthy
        }
    }
}

/// The start of the hour `time` falls in: the key of the hourly counts.
pub fn hour_of(time: Timestamp) -> Timestamp {
    const HOUR: i64 = 3_600_000;
    Timestamp::from_unix_millis(time.unix_millis().div_euclid(HOUR) * HOUR)
}

/// How long hourly counts are kept.
pub const HOURS_KEPT: Duration = Duration::from_secs(7 * 86_400);

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: u64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000).saturating_add(Duration::from_secs(hours * 3600))
    }

    fn failed(hours: u64) -> Sample {
        Sample { started: at(hours), succeeded: false, exhausted: false }
    }

    const POLICY: Policy = Policy { failing_after: 3, disable_after: Some(Duration::from_secs(5 * 86_400)) };

    #[test]
    fn a_run_of_failures_is_told_once_and_its_end_once() {
        let mut health = Health::default();
        assert!(health.record(failed(0), &POLICY).is_empty());
        assert!(health.record(failed(1), &POLICY).is_empty());
        assert_eq!(health.state(true, &POLICY), State::Healthy, "two failures are not yet failing");
        assert_eq!(health.record(failed(2), &POLICY), [Change::Failing]);
        assert!(health.record(failed(3), &POLICY).is_empty(), "told once per run");
        assert_eq!((health.consecutive_failures, health.failing_since), (4, Some(at(0))));
        assert_eq!(health.state(true, &POLICY), State::Failing);
        assert_eq!(health.state(false, &POLICY), State::Disabled);
        let success = Sample { started: at(4), succeeded: true, exhausted: false };
        assert_eq!(health.record(success, &POLICY), [Change::Recovered { failing_since: Some(at(0)) }]);
        assert_eq!(
            health,
            Health { last_success: Some(at(4)), last_failure: Some(at(3)), ..Health::default() },
            "a success starts over"
        );
        assert!(health.record(success, &POLICY).is_empty(), "a success after a success tells nothing");
        // A run shorter than the threshold ends without a word.
        health.record(failed(5), &POLICY);
        assert!(health.record(Sample { started: at(6), ..success }, &POLICY).is_empty());
    }

    #[test]
    fn an_endpoint_is_disabled_after_days_of_failures_with_a_delivery_that_used_its_last_retry() {
        let mut health = Health::default();
        for hour in 0..=5 * 24 {
            let changes = health.record(failed(hour), &POLICY);
            assert!(!changes.contains(&Change::Disable), "no delivery has used its last retry yet ({hour} h)");
        }
        let exhausted = Sample { started: at(5 * 24 - 1), succeeded: false, exhausted: true };
        assert_eq!(health.record(exhausted, &POLICY), [Change::Exhausted], "not five days yet by its start");
        assert_eq!(health.record(failed(5 * 24), &POLICY), [Change::Disable]);
        // An operator that turned disabling off is never told to disable.
        let never = Policy { disable_after: None, ..POLICY };
        assert!(!health.record(failed(6 * 24), &never).contains(&Change::Disable));
        // A success ends the run: the next failures start a new five days.
        health.record(Sample { started: at(6 * 24), succeeded: true, exhausted: false }, &POLICY);
        assert!(
            health.record(Sample { started: at(6 * 24 + 1), succeeded: false, exhausted: true }, &POLICY)
                == [Change::Exhausted]
        );
    }

    #[test]
    fn counts_are_kept_by_the_hour() {
        let time = Timestamp::from_unix_millis(1_800_000_123_456);
        assert_eq!(hour_of(time).unix_millis(), 1_800_000_000_000);
        assert_eq!(hour_of(hour_of(time)), hour_of(time));
    }
}
