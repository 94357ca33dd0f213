//! Time as a dependency.
//!
//! Token expiry and contract dates depend on "now", and tests must move time without sleeping, so
//! nothing in the server reads the system clock directly: it asks the [`Clock`] held in
//! [`AppState`](crate::AppState).

use std::fmt::Debug;
use std::sync::Mutex;

use jiff::civil::Date;
use jiff::tz::{self, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// A source of the current instant.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until told to move; for tests.
#[derive(Debug)]
pub struct TestClock {
    now: Mutex<Timestamp>,
}

impl TestClock {
    pub fn new(now: Timestamp) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    pub fn set(&self, now: Timestamp) {
        *self.lock() = now;
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.lock();
        // Saturate rather than panic: a test that overshoots the representable range has a bug that
        // its assertions will show.
        *now = now.saturating_add(by).unwrap_or(*now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A poisoned lock only means another test thread panicked; the timestamp is still valid.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

/// China Standard Time, UTC+8 all year (no daylight saving since 1991), in which contract terms and
/// deadlines are written.
pub fn china_standard_time() -> TimeZone {
    TimeZone::fixed(tz::offset(8))
}

/// The calendar date in China at `instant`.
pub fn china_date(instant: Timestamp) -> Date {
    instant.to_zoned(china_standard_time()).date()
}

/// Milliseconds since the Unix epoch: how instants are stored (see `migrations/*/0001_accounts.sql`).
pub fn to_millis(instant: Timestamp) -> i64 {
    instant.as_millisecond()
}

/// The inverse of [`to_millis`]; out-of-range values clamp to the representable range.
pub fn from_millis(millis: i64) -> Timestamp {
    Timestamp::from_millisecond(millis).unwrap_or(if millis < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_date_rolls_over_at_sixteen_hundred_utc() {
        let before: Timestamp = "2025-03-01T15:59:59Z".parse().expect("timestamp");
        let after: Timestamp = "2025-03-01T16:00:00Z".parse().expect("timestamp");
        assert_eq!(china_date(before), jiff::civil::date(2025, 3, 1));
        assert_eq!(china_date(after), jiff::civil::date(2025, 3, 2));
    }

    #[test]
    fn test_clock_advances_only_when_told() {
        let start: Timestamp = "2025-03-01T00:00:00Z".parse().expect("timestamp");
        let clock = TestClock::new(start);
        clock.advance(SignedDuration::from_mins(16));
        assert_eq!(clock.now(), start + SignedDuration::from_mins(16));
    }
}
