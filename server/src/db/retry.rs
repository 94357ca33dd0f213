//! Retrying the transactions PostgreSQL aborts on purpose.
//!
//! PostgreSQL ends a transaction with SQLSTATE `40001` (serialization failure) or `40P01`
//! (deadlock detected) when it cannot order it against a concurrent one, and its manual asks
//! the application to run the whole transaction again. Every write transaction of the server
//! on PostgreSQL runs through [`retry_transient`]: a plan (projections, compaction, deliveries),
//! an append to the change log, and the account writes. The tally triggers take their rows in one
//! order (migration 0009), so a deadlock is not expected; this is the second line.
//!
//! SQLite has one writer (ADR 0005) and reports neither.

use std::future::Future;
use std::time::Duration;

/// How many times a transaction is run at most.
pub const MAX_ATTEMPTS: u32 = 10;

/// Whether PostgreSQL asks for the transaction to be run again.
pub fn is_transient(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40001" || code == "40P01")
}

/// The pause before attempt `attempt + 1`: doubling from 2 ms, capped at 256 ms, with equal
/// jitter so that the two transactions that collided do not collide again.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = 2u64 << attempt.min(7);
    let half = ceiling / 2;
    let jitter = rand::random_range(0..=half);
    Duration::from_millis(half + jitter)
}

/// Runs `transaction` until it succeeds, fails for another reason, or has run
/// [`MAX_ATTEMPTS`] times. `transaction` must be a whole transaction (begin to commit): an
/// aborted PostgreSQL transaction cannot be continued.
pub async fn retry_transient<T, F, Fut>(
    what: &'static str,
    mut transaction: F,
) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(e) if attempt < MAX_ATTEMPTS && is_transient(&e) => {
                tracing::info!(what, attempt, error = %e, "transaction retried");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Runs `$body` (a whole transaction on `$pool`, whose `?`s return `sqlx::Error`) with
/// [`retry_transient`] on PostgreSQL and once on SQLite. The value is the body's; a failure
/// becomes a [`super::DbError`].
macro_rules! with_pool_retry {
    ($db:expr, $what:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(sqlite) => {
                let $pool = &sqlite.pool;
                async { Ok::<_, sqlx::Error>($body) }
                    .await
                    .map_err($crate::db::DbError::from)?
            }
            $crate::db::Db::Postgres($pool) => {
                $crate::db::retry::retry_transient($what, || async { Ok::<_, sqlx::Error>($body) })
                    .await
                    .map_err($crate::db::DbError::from)?
            }
        }
    };
}
pub(crate) use with_pool_retry;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_cap() {
        for attempt in 1..20 {
            let ceiling = 2u64 << attempt.min(7);
            let d = backoff(attempt).as_millis() as u64;
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d}");
        }
        assert!(backoff(30) <= Duration::from_millis(256));
    }

    #[test]
    fn only_sqlstates_40001_and_40p01_are_transient() {
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(!is_transient(&sqlx::Error::PoolTimedOut));
    }

    #[tokio::test]
    async fn a_non_transient_error_is_not_retried() {
        let mut runs = 0;
        let r: Result<(), sqlx::Error> = retry_transient("test", || {
            runs += 1;
            async { Err(sqlx::Error::RowNotFound) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(runs, 1);
    }
}
