//! Leases (migration 0016): which server instance runs a kind of background work when several
//! share one PostgreSQL database. A lease is taken when free or expired and renewed by its
//! holder; an instance that dies (SIGKILL, a lost host) loses it when it expires, and another
//! takes the work over.

use super::plan::{Arg, execute_counted};
use super::{Db, DbError};

/// Takes the lease when nobody holds it, when it expired, or when `$2` holds it already (a
/// renewal); changes no row while another holder's lease runs.
const HOLD: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4";
const RELEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";

impl Db {
    /// Whether other server instances may share this database (PostgreSQL). An SQLite file
    /// has one server: `serve` holds its lock file.
    pub fn is_shared(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Takes or renews lease `name` for `holder` until `now_ms + ttl_ms`. `false`: another
    /// holder's lease has not expired.
    pub async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, DbError> {
        let changed = execute_counted(
            self,
            HOLD,
            vec![
                Arg::from(name),
                Arg::from(holder),
                Arg::from(now_ms.saturating_add(ttl_ms)),
                Arg::from(now_ms),
            ],
        )
        .await?;
        Ok(changed > 0)
    }

    /// Gives lease `name` up if `holder` holds it (an instance shutting down), so that another
    /// instance need not wait for it to expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), DbError> {
        execute_counted(self, RELEASE, vec![Arg::from(name), Arg::from(holder)]).await?;
        Ok(())
    }
}
