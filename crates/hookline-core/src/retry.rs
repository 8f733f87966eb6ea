//! The retry policy as data: which attempt comes when, and what an attempt's outcome means for the next one.

use std::time::Duration;

use crate::attempt::AttemptError;

/// Delays before each retry, counted from the end of the previous attempt. The first attempt is immediate,
/// so a schedule of `n` delays allows `n + 1` attempts in all. Herald's policy is `["3m", "3m"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: bool,
}

/// The most retries one schedule may hold.
pub const MAX_RETRIES: usize = 30;
/// The longest single delay a schedule may hold.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);
/// How far a receiver's `Retry-After` may push the next attempt beyond the schedule.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("retry schedule has {count} delays; at most {MAX_RETRIES} are allowed")]
    TooLong { count: usize },
    #[error("retry delay {delay:?} is too long; the longest allowed is 24h")]
    DelayTooLong { delay: Duration },
}

impl RetrySchedule {
    /// Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, each retry jittered by up to ±10%.
    pub fn standard() -> Self {
        let minutes = |count: u64| Duration::from_secs(count * 60);
        Self {
            delays: vec![
                Duration::from_secs(5),
                minutes(5),
                minutes(30),
                minutes(120),
                minutes(300),
                minutes(600),
                minutes(600),
            ],
            jitter: true,
        }
    }

    /// An explicit schedule, followed exactly (no jitter), as an endpoint's override gives it.
    pub fn exact(delays: Vec<Duration>) -> Result<Self, ScheduleError> {
        if delays.len() > MAX_RETRIES {
            return Err(ScheduleError::TooLong { count: delays.len() });
        }
        if let Some(delay) = delays.iter().find(|delay| **delay > MAX_DELAY) {
            return Err(ScheduleError::DelayTooLong { delay: *delay });
        }
        Ok(Self { delays, jitter: false })
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// When to try again after `attempts_made` attempts failed, or `None` when the schedule is used up.
    /// `retry_after` is the receiver's `Retry-After`, which can only push the next attempt later, by at most
    /// [`MAX_RETRY_AFTER`]. `jitter_unit` is a random number in `[0, 1)`, passed in so the policy stays pure.
    pub fn next_delay(&self, attempts_made: u32, retry_after: Option<Duration>, jitter_unit: f64) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        let mut delay = *self.delays.get(index)?;
        if self.jitter {
            let factor = 0.9 + 0.2 * jitter_unit.clamp(0.0, 1.0);
            delay = delay.mul_f64(factor);
        }
        if let Some(asked) = retry_after {
            delay = delay.max(asked.min(MAX_RETRY_AFTER));
        }
        Some(delay)
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::standard()
    }
}

/// What one attempt's response means for the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx answer: delivered.
    Delivered,
    /// `410 Gone`: the receiver asked us to stop; no more attempts.
    Gone,
    /// The SSRF guard refused the endpoint's address. Waiting does not change its answer, so no more attempts:
    /// the delivery stays in the log, to be retried by hand once the operator changes the guard's settings.
    Blocked,
    /// Any other answer or a transport error: try again if the schedule allows.
    Retry,
}

/// Classifies an attempt: the HTTP status of its response, or why it got none.
pub fn verdict(outcome: Result<u16, AttemptError>) -> Verdict {
    match outcome {
        Ok(200..=299) => Verdict::Delivered,
        Ok(410) => Verdict::Gone,
        Err(AttemptError::Blocked) => Verdict::Blocked,
        _ => Verdict::Retry,
    }
}

/// Parses a `Retry-After` value given in seconds. HTTP dates are accepted by the caller via [`crate::time`].
pub fn parse_retry_after_seconds(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(count: u64) -> Duration {
        Duration::from_secs(count)
    }

    fn check(schedule: &RetrySchedule, attempts_made: u32, retry_after: Option<Duration>, expected: Option<Duration>) {
        assert_eq!(schedule.next_delay(attempts_made, retry_after, 0.5), expected, "after {attempts_made}");
    }

    #[test]
    fn heralds_policy_is_three_attempts_three_minutes_apart() {
        let herald = RetrySchedule::exact(vec![secs(180), secs(180)]).unwrap();
        assert_eq!(herald.max_attempts(), 3);
        check(&herald, 1, None, Some(secs(180)));
        check(&herald, 2, None, Some(secs(180)));
        check(&herald, 3, None, None);
    }

    #[test]
    fn the_standard_schedule_has_eight_attempts_with_bounded_jitter() {
        let standard = RetrySchedule::standard();
        assert_eq!(standard.max_attempts(), 8);
        check(&standard, 1, None, Some(secs(5)));
        check(&standard, 7, None, Some(secs(36000)));
        check(&standard, 8, None, None);
        assert_eq!(standard.next_delay(2, None, 0.0), Some(secs(270)));
        assert_eq!(standard.next_delay(2, None, 0.999_999), Some(secs(300).mul_f64(0.9 + 0.2 * 0.999_999)));
    }

    #[test]
    fn retry_after_only_postpones_and_is_capped() {
        let schedule = RetrySchedule::exact(vec![secs(10), secs(10)]).unwrap();
        check(&schedule, 1, Some(secs(2)), Some(secs(10)));
        check(&schedule, 1, Some(secs(60)), Some(secs(60)));
        check(&schedule, 1, Some(secs(86400)), Some(MAX_RETRY_AFTER));
        check(&schedule, 2, Some(secs(60)), Some(secs(60)));
        check(&schedule, 3, Some(secs(60)), None);
    }

    #[test]
    fn schedules_are_bounded() {
        assert_eq!(
            RetrySchedule::exact(vec![secs(1); 31]).unwrap_err().to_string(),
            "retry schedule has 31 delays; at most 30 are allowed"
        );
        assert!(RetrySchedule::exact(vec![secs(90000)]).is_err());
        assert_eq!(RetrySchedule::exact(vec![]).unwrap().max_attempts(), 1);
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(Ok(200)), Verdict::Delivered);
        assert_eq!(verdict(Ok(204)), Verdict::Delivered);
        assert_eq!(verdict(Ok(301)), Verdict::Retry);
        assert_eq!(verdict(Ok(410)), Verdict::Gone);
        assert_eq!(verdict(Ok(500)), Verdict::Retry);
        assert_eq!(verdict(Err(AttemptError::Timeout)), Verdict::Retry);
        assert_eq!(verdict(Err(AttemptError::Blocked)), Verdict::Blocked);
        assert_eq!(parse_retry_after_seconds(" 120 "), Some(secs(120)));
        assert_eq!(parse_retry_after_seconds("soon"), None);
    }
}
