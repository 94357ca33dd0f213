//! Statements with typed arguments, built once and run by either backend in one transaction:
//! on SQLite as one job of the writer thread ([`super::writer`]), on PostgreSQL through sqlx.
//! The hot writes that are plain statements (projections, compaction, the key-value store,
//! deliveries) are written this way, once for both backends.

use super::{Db, DbError};

/// One value bound to a statement of a [`Plan`]. Nulls are typed: PostgreSQL checks a
/// parameter's declared type against its column.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Vec<u8>),
}

/// `From` for each Rust type a plan binds.
macro_rules! arg_from {
    ($($t:ty => |$v:ident| $e:expr;)*) => {$(
        impl From<$t> for Arg {
            fn from($v: $t) -> Self {
                $e
            }
        }
    )*};
}

arg_from! {
    i64 => |v| Arg::Int(Some(v));
    Option<i64> => |v| Arg::Int(v);
    &str => |v| Arg::Text(Some(v.to_owned()));
    &String => |v| Arg::Text(Some(v.clone()));
    String => |v| Arg::Text(Some(v));
    Option<String> => |v| Arg::Text(v);
    Option<&str> => |v| Arg::Text(v.map(str::to_owned));
    Vec<u8> => |v| Arg::Blob(v);
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(v) => v.to_sql(),
            Arg::Text(v) => v.to_sql(),
            Arg::Blob(v) => v.to_sql(),
        }
    }
}

/// Statements run in order in one transaction. The SQL numbers its parameters `$1`, `$2`…;
/// both backends bind them by number ([`super::inline::bind_numbered`] on SQLite).
#[derive(Debug, Default)]
pub struct Plan {
    statements: Vec<(&'static str, Vec<Arg>, bool)>,
}

impl Plan {
    /// Adds a statement.
    pub fn push(&mut self, sql: &'static str, args: Vec<Arg>) {
        self.statements.push((sql, args, false));
    }

    /// Adds a statement that must change at least one row: when it changes none, the plan
    /// stops, nothing of it is written, and [`run`](Self::run) returns [`DbError::Unchanged`].
    /// A compare-and-set in front of the statements it guards.
    pub fn guard(&mut self, sql: &'static str, args: Vec<Arg>) {
        self.statements.push((sql, args, true));
    }

    /// Runs every statement in one transaction, committed when this returns `Ok`.
    pub async fn run(self, db: &Db) -> Result<(), DbError> {
        match db {
            Db::Sqlite(sqlite) => {
                sqlite
                    .writer
                    .call(move |conn| {
                        for (i, (sql, args, guard)) in self.statements.iter().enumerate() {
                            let mut stmt = conn.prepare_cached(sql)?;
                            super::inline::bind_numbered(&mut stmt, args)?;
                            if stmt.raw_execute()? == 0 && *guard {
                                // Rolls the job back.
                                return Err(super::writer::WriteError::Stale(i));
                            }
                        }
                        Ok(())
                    })
                    .await?;
                Ok(())
            }
            Db::Postgres(pool) => {
                // A deadlock or serialization failure aborts the whole transaction: run it again.
                let held = super::retry::retry_transient("plan", || async {
                    let mut tx = pool.begin().await?;
                    for (sql, args, guard) in &self.statements {
                        let done = bind_pg(sqlx::query(*sql), args).execute(&mut *tx).await?;
                        if done.rows_affected() == 0 && *guard {
                            // Dropping the transaction rolls it back.
                            return Ok(false);
                        }
                    }
                    tx.commit().await.map(|()| true)
                })
                .await?;
                if held {
                    Ok(())
                } else {
                    Err(DbError::Unchanged)
                }
            }
        }
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_pg<'q>(mut q: PgQuery<'q>, args: &[Arg]) -> PgQuery<'q> {
    for arg in args {
        q = match arg {
            Arg::Int(v) => q.bind(*v),
            Arg::Text(v) => q.bind(v.clone()),
            Arg::Blob(v) => q.bind(v.clone()),
        };
    }
    q
}

/// Runs one statement on its own and returns how many rows it changed: a compare-and-set
/// (claiming a delivery) needs the count, which [`Plan::run`] does not give. On SQLite it is a
/// writer job, on PostgreSQL one statement on the pool.
pub async fn execute_counted(db: &Db, sql: &'static str, args: Vec<Arg>) -> Result<u64, DbError> {
    match db {
        Db::Sqlite(sqlite) => Ok(sqlite
            .writer
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(sql)?;
                super::inline::bind_numbered(&mut stmt, &args)?;
                Ok(stmt.raw_execute()? as u64)
            })
            .await?),
        Db::Postgres(pool) => Ok(bind_pg(sqlx::query(sql), &args)
            .execute(pool)
            .await
            .map_err(DbError::from)?
            .rows_affected()),
    }
}
