//! SQLite point reads on the calling thread, for the few queries every sync makes.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every query is a round trip
//! between the request's task and that thread (a channel send, a futex wake, a reply). For the
//! reads a sync makes each time — the token, the scope, the device's deliveries, the changes
//! since its cursor — the trip cost more CPU than the query (ADR 0007). These go through
//! [`InlineReader`] instead: a small stack of `rusqlite` connections, each query run right where
//! it is asked, on the async worker.
//!
//! That blocks the worker for the length of the query, so only indexed lookups with a bounded
//! result belong here (tens of microseconds); anything that may scan or return many rows stays
//! on the sqlx pool. In WAL mode a reader never waits for the writer; the short busy timeout
//! covers the rare moments (a WAL reset) when it could.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Connections kept open when idle (more are opened when several reads overlap).
const IDLE: usize = 4;

/// How long a read waits on a lock before it fails, instead of blocking its thread longer.
const BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// A stack of read-only connections to one SQLite file, used on the calling thread.
pub struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for InlineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl InlineReader {
    /// Readers of the (existing) database file at `path`; opens one now to check it can.
    pub fn open(path: &Path) -> rusqlite::Result<InlineReader> {
        let reader = InlineReader {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        let first = reader.connect()?;
        reader.give_back(first);
        Ok(reader)
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE {
            idle.push(conn);
        }
    }

    /// Runs `f` on an idle connection (opening one if none is idle), here and now.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let out = f(&conn);
        self.give_back(conn);
        out
    }
}

/// Binds `args[k]` to the parameter named `$k+1` of `stmt`, by name.
///
/// The SQL shared with PostgreSQL numbers its parameters `$1`, `$2`…; SQLite reads each as a
/// named parameter and numbers them in order of first appearance, so binding by position is
/// right only when they first appear in numeric order (`… IN ($4, $5) LIMIT $3` does not).
pub fn bind_numbered<P: rusqlite::ToSql>(
    stmt: &mut rusqlite::Statement<'_>,
    args: &[P],
) -> rusqlite::Result<()> {
    for (i, arg) in args.iter().enumerate() {
        let name = format!("${}", i + 1);
        let index = stmt
            .parameter_index(&name)?
            .ok_or(rusqlite::Error::InvalidParameterName(name))?;
        stmt.raw_bind_parameter(index, arg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn numbered_parameters_bind_by_number_whatever_their_order_in_the_text() {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("SELECT $1 || $3 || $2 || $1").unwrap();
        bind_numbered(&mut stmt, &["a", "b", "c"]).unwrap();
        let got: String = stmt.raw_query().next().unwrap().unwrap().get(0).unwrap();
        assert_eq!(got, "acba");
        // Positional binding would have put "b" where $3 stands.
        let mut stmt = conn.prepare("SELECT $2").unwrap();
        assert!(matches!(
            bind_numbered(&mut stmt, &["a", "b"]),
            Err(rusqlite::Error::InvalidParameterName(n)) if n == "$1"
        ));
    }
}
