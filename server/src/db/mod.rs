//! The accounts database behind one [`Db`] handle, for SQLite and PostgreSQL alike.
//!
//! Handlers and services call one method per query and never learn which backend is in use. Both
//! backends share one schema shape (see `migrations/*/0001_accounts.sql`: TEXT ids, epoch-millisecond
//! instants, ISO dates), and sqlx's SQLite driver accepts PostgreSQL's `$1` placeholders, so each query
//! is written once and [`with_pool!`] runs it on whichever pool is open.
//!
//! To add tables, add `0002_*.sql` to both `migrations/sqlite` and `migrations/postgres` and add methods
//! here (or in a sibling module with its own `impl Db` block, using [`with_pool!`]).
//!
//! On SQLite the hot paths of a sync leave sqlx (ADR 0007): its writes are jobs of the writer
//! thread ([`writer`]), its point reads run on the calling thread ([`inline`]). Both use
//! `rusqlite` over the same `libsqlite3-sys` and the same SQL text.

mod accounts;
mod dashboard;
mod docs;
pub(crate) mod filter;
pub mod inline;
mod leases;
mod ledger;
mod photos;
pub mod plan;
mod reads;
pub mod retry;
pub mod writer;

pub use accounts::{
    AuthTokenRow, Contract, Device, Enterprise, NewContract, NewDevice, NewEnterprise, NewToken,
    NewUser, ScopeRule, TokenKind, User, UserSummary,
};
pub use dashboard::{DashboardRows, DashboardSql, TallyRow};
pub use docs::heads_text;
pub use ledger::{LedgerEvent, LedgerHazard, LedgerQuery};
pub use reads::{
    DeviceAuthor, EventRow, HazardFilters, HazardListQuery, HazardRow, MajorReportRow, VisitKey,
    VisitListQuery, VisitRow,
};

use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Migrations for SQLite, embedded at compile time.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
/// Migrations for PostgreSQL, embedded at compile time.
pub static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// A connection pool to one of the supported backends.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// SQLite with its writes funnelled through one connection.
///
/// SQLite admits one writer at a time; when several pooled connections write at once, all but one
/// get `SQLITE_BUSY` and sleep in the busy handler (1, 2, 5, 10… ms) before retrying, which caps a
/// busy server at a few hundred writes per second. The hot writes (sync appends, deliveries,
/// projections) therefore go through `writer`, one connection on a thread of its own where they
/// queue in memory and commit in groups ([`writer::SqliteWriter`], ADR 0007); reads use `pool`
/// and, in WAL mode, never wait for the writer. Rare writes (logins, admin) may use `pool`; the
/// busy timeout covers them. See ADR 0005.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    /// Readers (and rare writes).
    pub pool: SqlitePool,
    /// The one connection the hot writes share.
    pub writer: writer::SqliteWriter,
    /// The highest change sequence number committed, kept by `append` after each commit so that
    /// every sync does not ask SQLite for `MAX(seq)`. Exact because this process is the only
    /// writer of the file (every append goes through `writer`); loaded when the file is opened.
    pub(crate) max_seq: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Point reads every sync makes, run on the calling thread ([`inline::InlineReader`]).
    pub(crate) inline: std::sync::Arc<inline::InlineReader>,
}

impl std::ops::Deref for SqliteDb {
    type Target = SqlitePool;

    fn deref(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Runs `$body` with `$pool` bound to the open pool, whichever backend it is. The body is compiled once
/// per backend, so it may use any sqlx API generic over the database.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(sqlite) => {
                let $pool = &sqlite.pool;
                $body
            }
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs [`Db::optimize`] every `every`, for the life of the runtime. Failures are logged: stale
/// statistics make queries slower, never wrong.
pub fn spawn_optimizer(db: Db, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; start-up already optimised
        loop {
            tick.tick().await;
            if let Err(error) = db.optimize().await {
                tracing::warn!(%error, "PRAGMA optimize failed");
            }
        }
    })
}

/// A database failure, classified where callers need to tell the user something specific.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A UNIQUE constraint refused the write; the payload is the database's message.
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    /// A FOREIGN KEY or CHECK constraint refused the write.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// A stored value could not be read back into its Rust type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Sqlx(sqlx::Error),
    /// The SQLite writer failed.
    #[error(transparent)]
    Writer(writer::WriteError),
    /// A plan's guard statement changed no row ([`plan::Plan::guard`]); nothing was written.
    #[error("the plan's guard changed no row")]
    Unchanged,
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        DbError::from(writer::WriteError::Sqlite(error))
    }
}

impl From<writer::WriteError> for DbError {
    fn from(error: writer::WriteError) -> Self {
        use rusqlite::ErrorCode;
        match &error {
            writer::WriteError::Sqlite(rusqlite::Error::SqliteFailure(e, message)) => {
                let message = message.clone().unwrap_or_else(|| e.to_string());
                match (e.code, e.extended_code) {
                    (
                        _,
                        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
                    ) => DbError::Conflict(message),
                    (ErrorCode::ConstraintViolation, _) => DbError::Constraint(message),
                    _ => DbError::Writer(error),
                }
            }
            writer::WriteError::Stale(_) => DbError::Unchanged,
            _ => DbError::Writer(error),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match error
            .as_database_error()
            .map(|e| (e.kind(), e.message().to_owned()))
        {
            Some((ErrorKind::UniqueViolation, message)) => DbError::Conflict(message),
            Some((
                ErrorKind::ForeignKeyViolation
                | ErrorKind::CheckViolation
                | ErrorKind::NotNullViolation,
                message,
            )) => DbError::Constraint(message),
            _ => DbError::Sqlx(error),
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

impl Db {
    /// Opens the database at `url` (`sqlite:...` or `postgres://...`) and applies pending migrations.
    ///
    /// SQLite runs in WAL mode with foreign keys on and a busy timeout, and the file is created if
    /// missing. `sqlite::memory:` works but is held to a single connection, since every SQLite
    /// connection to `:memory:` would otherwise open its own empty database.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("连接 PostgreSQL 失败 / cannot connect to PostgreSQL")?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("SQLite 地址无效 / invalid SQLite URL {url}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT);
            if url.contains(":memory:") || url.contains("mode=memory") {
                // The writer thread and the readers open the file separately; two connections
                // to `:memory:` would be two different empty databases.
                anyhow::bail!(
                    "不支持内存 SQLite 数据库，请使用文件 / in-memory SQLite is not supported: use a file, e.g. sqlite://data/inspect.db"
                );
            }
            let open_failed =
                || format!("打开 SQLite 数据库失败 / cannot open SQLite database {url}");
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options.clone())
                .await
                .with_context(open_failed)?;
            SQLITE_MIGRATOR
                .run(&pool)
                .await
                .context("数据库迁移失败 / database migration failed")?;
            let writer = writer::SqliteWriter::open(options.get_filename(), BUSY_TIMEOUT)
                .with_context(open_failed)?;
            let inline =
                inline::InlineReader::open(options.get_filename()).with_context(open_failed)?;
            let max: Option<i64> = writer
                .call(|conn| Ok(conn.query_row("SELECT MAX(seq) FROM changes", [], |r| r.get(0))?))
                .await
                .context("数据库读取失败 / cannot read the change log")?;
            Db::Sqlite(SqliteDb {
                pool,
                writer,
                inline: std::sync::Arc::new(inline),
                max_seq: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
                    u64::try_from(max.unwrap_or(0)).unwrap_or(0),
                )),
            })
        } else {
            anyhow::bail!(
                "不支持的数据库地址 / unsupported database URL {url:?}: expected sqlite:... or postgres://..."
            );
        };
        if let Db::Postgres(_) = &db {
            // (SQLite was migrated above, before its writer read the change log.)
            db.migrate().await?;
        }
        db.optimize()
            .await
            .context("数据库统计更新失败 / cannot refresh planner statistics")?;
        Ok(db)
    }

    /// Applies the migrations of this backend that are not applied yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(sqlite) => SQLITE_MIGRATOR.run(&sqlite.pool).await,
            Db::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await,
        }
        .context("数据库迁移失败 / database migration failed")
    }

    /// Refreshes the query planner's statistics where they are stale.
    ///
    /// SQLite has no autovacuum daemon to do this, and its planner chooses between indexes (for
    /// the dashboard, `hazards_view_overdue` of migration 0008 against the older
    /// `(state, current_deadline)`) from these statistics, guessing without them.
    /// `PRAGMA optimize` analyses only the tables whose size changed a lot since their last
    /// analysis, within `analysis_limit` rows per index, so it is cheap to run at start-up and
    /// every hour ([`spawn_optimizer`]).
    /// On PostgreSQL autovacuum keeps the statistics; nothing to do.
    pub async fn optimize(&self) -> DbResult<()> {
        if let Db::Sqlite(sqlite) = self {
            // 0x10002: also look at tables never analysed (a fresh database).
            sqlite
                .writer
                .call(|conn| {
                    conn.execute_batch("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;")?;
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }

    /// Whether the database answers a query, and on SQLite whether the writer thread takes a
    /// job (for `/readyz`).
    pub async fn ping(&self) -> DbResult<()> {
        if let Db::Sqlite(sqlite) = self {
            sqlite
                .writer
                .call(|conn| {
                    conn.query_row("SELECT 1", [], |_| Ok(()))?;
                    Ok(())
                })
                .await?;
        }
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// The read pool's connections: (open, idle).
    pub fn pool_use(&self) -> (u32, usize) {
        with_pool!(self, pool => (pool.size(), pool.num_idle()))
    }

    /// How many documents have a read model behind them (the reconciler's queue; a partial
    /// index makes this a count of a few rows).
    pub async fn documents_behind(&self) -> DbResult<i64> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM documents \
                 WHERE heads IS NULL OR projected_heads IS NULL OR projected_heads <> heads",
            )
            .fetch_one(pool)
            .await?
        }))
    }

    /// Webhook deliveries still to be made.
    pub async fn webhook_backlog(&self) -> DbResult<i64> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL",
            )
            .fetch_one(pool)
            .await?
        }))
    }

    /// Which backend this is, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Waits for connections to finish and closes the pool.
    pub async fn close(&self) {
        if let Db::Sqlite(sqlite) = self {
            sqlite.writer.close().await;
        }
        with_pool!(self, pool => pool.close().await)
    }
}
