//! Login throttling: per account and per client address, with a lockout after repeated failures.
//!
//! Each failed login counts against its account (the username as typed, lower-cased: an unknown
//! username counts exactly like a known one, so the answers tell an attacker nothing about
//! which accounts exist) and against the client's address. A key whose failures reach its limit
//! within the window is locked for the lockout time; attempts meanwhile answer 429 with
//! `Retry-After`, without checking the password. Attempts still being checked count too: while
//! failures plus attempts in flight are at the limit, a further attempt answers 429 at once, so
//! a burst of parallel guesses is cut off at the limit instead of all passing the check while
//! the first ones are still being hashed.
//!
//! The counts live in memory, per server instance (several instances each count their own
//! share), bounded in size; the clock is the server's injected clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failed attempts of one account within `window` that lock it.
    pub account_failures: u32,
    /// Failed attempts from one address within `window` that lock it (higher: offices and
    /// proxies put many people behind one address).
    pub address_failures: u32,
    /// How long failures are remembered.
    pub window: Duration,
    /// How long a locked key stays locked.
    pub lockout: Duration,
    /// Most keys remembered; expired ones are dropped first when it is reached.
    pub max_keys: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_failures: 5,
            address_failures: 50,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            max_keys: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    in_flight: u32,
    window_start_ms: i64,
    locked_until_ms: i64,
}

/// What an attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Account(String),
    Address(std::net::IpAddr),
}

impl Key {
    /// The account key of a username as typed.
    pub fn account(username: &str) -> Self {
        Key::Account(username.trim().to_lowercase())
    }
}

/// The throttle of one server instance.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// An attempt that was let through; give it back with [`LoginThrottle::succeeded`].
#[derive(Debug)]
#[must_use]
pub struct Attempt {
    keys: Vec<Key>,
}

impl LoginThrottle {
    /// A throttle with these limits.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            entries: Mutex::default(),
        }
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Account(_) => self.policy.account_failures,
            Key::Address(_) => self.policy.address_failures,
        }
        .max(1)
    }

    /// Starts an attempt against `keys` at `now_ms`. `Err(seconds)`: a key is locked, or as
    /// many attempts as it has left are being checked; retry after that many seconds.
    pub fn attempt(&self, keys: Vec<Key>, now_ms: i64) -> Result<Attempt, u64> {
        let window = i64::try_from(self.policy.window.as_millis()).unwrap_or(i64::MAX);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut retry_after = 0u64;
        for key in &keys {
            let Some(e) = entries.get_mut(key) else {
                continue;
            };
            if e.locked_until_ms > now_ms {
                let ms = u64::try_from(e.locked_until_ms - now_ms).unwrap_or(0);
                retry_after = retry_after.max(ms.div_ceil(1000).max(1));
            } else if now_ms - e.window_start_ms >= window {
                e.failures = 0;
                e.window_start_ms = now_ms;
            }
            if e.failures + e.in_flight >= self.limit(key) {
                retry_after = retry_after.max(1);
            }
        }
        if retry_after > 0 {
            return Err(retry_after);
        }
        if entries.len() + keys.len() > self.policy.max_keys {
            entries.retain(|_, e| {
                e.in_flight > 0 || e.locked_until_ms > now_ms || now_ms - e.window_start_ms < window
            });
            if entries.len() + keys.len() > self.policy.max_keys {
                // Still full of live keys: forget the older half rather than grow.
                let mut starts: Vec<i64> = entries.values().map(|e| e.window_start_ms).collect();
                starts.sort_unstable();
                let cut = starts[starts.len() / 2];
                entries.retain(|_, e| e.window_start_ms > cut || e.in_flight > 0);
            }
        }
        for key in &keys {
            let entry = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                in_flight: 0,
                window_start_ms: now_ms,
                locked_until_ms: 0,
            });
            entry.in_flight += 1;
        }
        Ok(Attempt { keys })
    }

    /// The attempt's password was wrong (or its user unknown): a failure for every key, which
    /// locks the keys that reach their limit.
    pub fn failed(&self, attempt: Attempt, now_ms: i64) {
        let lockout = i64::try_from(self.policy.lockout.as_millis()).unwrap_or(i64::MAX);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for key in attempt.keys {
            let limit = self.limit(&key);
            let Some(e) = entries.get_mut(&key) else {
                continue;
            };
            e.in_flight = e.in_flight.saturating_sub(1);
            e.failures += 1;
            if e.failures >= limit {
                e.locked_until_ms = now_ms.saturating_add(lockout);
                e.failures = 0;
                e.window_start_ms = now_ms;
                tracing::warn!(key = ?key, "login locked after repeated failures");
            }
        }
    }

    /// The attempt succeeded: the account's failures are forgotten; the address keeps its
    /// count.
    pub fn succeeded(&self, attempt: Attempt) {
        self.release(attempt, true);
    }

    /// The attempt ended without a verdict on the password (a database error): nothing counts.
    pub fn abandoned(&self, attempt: Attempt) {
        self.release(attempt, false);
    }

    fn release(&self, attempt: Attempt, success: bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for key in attempt.keys {
            if let Some(e) = entries.get_mut(&key) {
                e.in_flight = e.in_flight.saturating_sub(1);
                if success && matches!(key, Key::Account(_)) {
                    e.failures = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            account_failures: 3,
            address_failures: 5,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(120),
            max_keys: 1000,
        }
    }

    fn addr(n: u8) -> Key {
        Key::Address(std::net::IpAddr::from([127, 0, 0, n]))
    }

    fn fail(t: &LoginThrottle, keys: Vec<Key>, now: i64) {
        let a = t.attempt(keys, now).expect("let through");
        t.failed(a, now);
    }

    #[test]
    fn an_account_locks_at_its_limit_and_unlocks_after_the_lockout() {
        let t = LoginThrottle::new(policy());
        for i in 0..3 {
            fail(&t, vec![Key::account("Wang")], i);
        }
        // Locked from the third failure (at 2 ms) for 120 s, whatever the case or spaces.
        assert_eq!(
            t.attempt(vec![Key::account(" wang ")], 10).unwrap_err(),
            120
        );
        assert_eq!(
            t.attempt(vec![Key::account("wang")], 60_002).unwrap_err(),
            60
        );
        let ok = t.attempt(vec![Key::account("wang")], 120_002).unwrap();
        t.succeeded(ok);
    }

    #[test]
    fn a_success_forgets_the_account_failures() {
        let t = LoginThrottle::new(policy());
        for round in 0..5 {
            fail(&t, vec![Key::account("li")], round * 10);
            fail(&t, vec![Key::account("li")], round * 10 + 1);
            let ok = t.attempt(vec![Key::account("li")], round * 10 + 2).unwrap();
            t.succeeded(ok);
        }
        // Without the successes the same failures lock.
        for i in 0..3 {
            fail(&t, vec![Key::account("li")], 100 + i);
        }
        assert!(t.attempt(vec![Key::account("li")], 110).is_err());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = LoginThrottle::new(policy());
        for window in 0..10 {
            let start = window * 61_000;
            fail(&t, vec![Key::account("zhao")], start);
            fail(&t, vec![Key::account("zhao")], start + 1);
        }
        fail(&t, vec![Key::account("zhao")], 9 * 61_000 + 2);
        assert!(
            t.attempt(vec![Key::account("zhao")], 9 * 61_000 + 3)
                .is_err()
        );
    }

    #[test]
    fn parallel_attempts_stop_at_the_limit() {
        let t = LoginThrottle::new(policy());
        let in_flight: Vec<Attempt> = (0..3)
            .map(|i| t.attempt(vec![Key::account("sun")], i).unwrap())
            .collect();
        assert_eq!(t.attempt(vec![Key::account("sun")], 5).unwrap_err(), 1);
        for a in in_flight {
            t.abandoned(a);
        }
        assert!(t.attempt(vec![Key::account("sun")], 6).is_ok());
    }

    #[test]
    fn one_address_trying_many_accounts_is_locked() {
        let t = LoginThrottle::new(policy());
        for i in 0..5 {
            fail(&t, vec![Key::account(&format!("user{i}")), addr(9)], i);
        }
        assert!(
            t.attempt(vec![Key::account("user99"), addr(9)], 10)
                .is_err()
        );
        assert!(t.attempt(vec![Key::account("user99"), addr(8)], 10).is_ok());
    }

    #[test]
    fn the_table_stays_within_its_bound() {
        let t = LoginThrottle::new(ThrottlePolicy {
            max_keys: 100,
            ..policy()
        });
        for i in 0..10_000i64 {
            fail(&t, vec![Key::account(&format!("u{i}"))], i);
        }
        assert!(t.entries.lock().unwrap().len() <= 100);
    }
}
