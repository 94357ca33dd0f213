//! SQLite's one writer: a thread that owns the write connection and commits jobs in groups.
//!
//! SQLite admits one writer at a time (see [`super::SqliteDb`] and ADR 0005). Before this
//! module, the hot writes went through a sqlx pool of one connection; sqlx runs each SQLite
//! connection on a worker thread of its own, so every statement was a round trip between a
//! tokio task and that thread (a channel send, a futex wake, a reply): a one-edit sync made six
//! such trips for its writes alone, and measured, the hand-offs cost more CPU than SQLite's own
//! work (ADR 0007).
//!
//! Here a job is a closure over a `rusqlite` connection, run on the writer's thread: a whole
//! append, or a whole document's projection, is one hand-off however many statements it runs.
//! Jobs that queue while the writer is busy are committed together (group commit): the thread
//! takes every job waiting, up to [`MAX_GROUP`], runs each inside its own savepoint (a failing
//! job is rolled back alone and gets its own error) and commits once. Nobody hears back before
//! the commit: a job's result is sent only once its writes are durable, and if the commit fails
//! every job of the group gets the error.
//!
//! `rusqlite` and sqlx's SQLite driver link the same `libsqlite3-sys`, so this adds no second
//! SQLite to the build.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// The most jobs committed together. Bounds how long the first job of a group waits for the
/// others (each job is a few statements, tens of microseconds).
pub const MAX_GROUP: usize = 64;

/// How many jobs may wait in the queue before callers wait to enqueue (backpressure).
const QUEUE: usize = 1024;

/// A write that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// SQLite refused a statement or the commit.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread is gone (the database was closed).
    #[error("the SQLite writer is closed")]
    Closed,
    /// The job panicked; its writes were rolled back.
    #[error("a write job panicked: {0}")]
    Panicked(String),
    /// The job refused its input part `0` (a document that exists with another kind or
    /// enterprise); its writes were rolled back.
    #[error("part {0} of the write names a document of another kind or enterprise")]
    Conflict(usize),
    /// The job's part `0` was conditional on a document's position, and the document had moved
    /// on; its writes were rolled back.
    #[error("part {0} of the write names a document that changed since it was read")]
    Stale(usize),
}

impl WriteError {
    /// The same failure again, for each job of a group whose commit failed.
    fn duplicate(&self) -> WriteError {
        match self {
            WriteError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
                WriteError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            WriteError::Sqlite(other) => WriteError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(other.to_string()),
            )),
            WriteError::Closed => WriteError::Closed,
            WriteError::Panicked(m) => WriteError::Panicked(m.clone()),
            WriteError::Conflict(i) => WriteError::Conflict(*i),
            WriteError::Stale(i) => WriteError::Stale(*i),
        }
    }
}

/// One queued job: runs on the writer thread, then hears whether its group committed.
trait Job: Send {
    /// Runs the job's statements (inside its savepoint). `Err` rolls the savepoint back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Sends the result: the job's own, or the commit's failure.
    fn finish(self: Box<Self>, commit: Result<(), &WriteError>);
}

struct Call<F, T> {
    f: Option<F>,
    out: Option<Result<T, WriteError>>,
    reply: oneshot::Sender<Result<T, WriteError>>,
}

impl<F, T> Job for Call<F, T>
where
    F: FnOnce(&Connection) -> Result<T, WriteError> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let out = match std::panic::catch_unwind(AssertUnwindSafe(|| f(conn))) {
            Ok(out) => out,
            Err(panic) => Err(WriteError::Panicked(
                panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default(),
            )),
        };
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &WriteError>) {
        let out = match (commit, self.out) {
            (_, Some(Err(e))) => Err(e),
            (Err(e), _) => Err(e.duplicate()),
            (Ok(()), Some(ok)) => ok,
            (Ok(()), None) => Err(WriteError::Panicked("job never ran".into())),
        };
        // The caller may have gone away (its request was cancelled): nothing to tell.
        let _ = self.reply.send(out);
    }
}

/// What the queue carries: a job, or the request to stop after the jobs before it.
enum Msg {
    Job(Box<dyn Job>),
    Stop(oneshot::Sender<()>),
}

/// The handle to the writer thread. Cloning shares the thread; it stops when the last handle
/// is dropped or [`SqliteWriter::close`] is called, after finishing the queued jobs.
#[derive(Clone)]
pub struct SqliteWriter {
    queue: mpsc::Sender<Msg>,
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    groups: Arc<AtomicU64>,
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter")
            .field("groups", &self.groups.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SqliteWriter {
    /// Opens the write connection to the database file at `path` (which must exist and be
    /// migrated) and starts its thread.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<SqliteWriter, WriteError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        // The same settings as the sqlx readers (see `Db::connect`).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        let (queue, jobs) = mpsc::channel(QUEUE);
        let groups = Arc::new(AtomicU64::new(0));
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn({
                let groups = groups.clone();
                move || run(conn, jobs, &groups)
            })
            .map_err(|e| WriteError::Panicked(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteWriter {
            queue,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
            groups,
        })
    }

    /// Runs `f` on the writer connection inside a transaction shared with other queued jobs,
    /// and returns its result once the transaction has committed. If `f` fails, its own writes
    /// are rolled back and the others' are kept. `f` must not begin, commit or roll back
    /// transactions itself (savepoints of its own are fine).
    pub async fn call<T, F>(&self, f: F) -> Result<T, WriteError>
    where
        F: FnOnce(&Connection) -> Result<T, WriteError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Call {
            f: Some(f),
            out: None,
            reply,
        });
        self.queue
            .send(Msg::Job(job))
            .await
            .map_err(|_| WriteError::Closed)?;
        answer.await.map_err(|_| WriteError::Closed)?
    }

    /// How many transactions the writer has committed (each holding one or more jobs; a group
    /// whose only job failed is rolled back and not counted).
    pub fn groups_committed(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// How many jobs wait in the queue now.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Finishes the queued jobs, then stops the thread and closes the connection. Jobs sent
    /// afterwards fail with [`WriteError::Closed`].
    pub async fn close(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let (reply, answer) = oneshot::channel();
            if self.queue.send(Msg::Stop(reply)).await.is_ok() {
                let _ = answer.await;
            }
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The writer thread: takes a group of jobs, runs them in one transaction, commits, answers.
fn run(conn: Connection, mut queue: mpsc::Receiver<Msg>, groups: &AtomicU64) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    let mut stop = None;
    while let Some(first) = queue.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Job(job) => group.push(job),
                Msg::Stop(reply) => {
                    stop = Some(reply);
                    break;
                }
            }
            if group.len() < MAX_GROUP {
                next = queue.try_recv().ok();
            }
        }
        if !group.is_empty() {
            commit_group(&conn, &mut group, groups);
        }
        if stop.is_some() {
            break;
        }
    }
    // Jobs queued after the stop (a caller racing `close`) are dropped with the queue, and
    // their callers get `Closed`.
    queue.close();
    drop(queue);
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the SQLite writer connection failed");
    }
    if let Some(reply) = stop {
        let _ = reply.send(());
    }
}

/// Runs one statement with no result rows, from the connection's statement cache.
fn exec(conn: &Connection, sql: &str) -> Result<(), WriteError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn fail_all(conn: &Connection, group: &mut Vec<Box<dyn Job>>, e: WriteError, in_tx: bool) {
    if in_tx {
        let _ = exec(conn, "ROLLBACK");
    }
    for job in group.drain(..) {
        job.finish(Err(&e));
    }
}

fn commit_group(conn: &Connection, group: &mut Vec<Box<dyn Job>>, groups: &AtomicU64) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        return fail_all(conn, group, e, false);
    }
    if group.len() == 1 {
        // One job: no savepoint; its failure rolls the transaction back.
        if !group[0].run(conn) {
            let _ = exec(conn, "ROLLBACK");
            for job in group.drain(..) {
                job.finish(Ok(()));
            }
            return;
        }
    } else {
        for i in 0..group.len() {
            if let Err(e) = exec(conn, "SAVEPOINT job") {
                return fail_all(conn, group, e, true);
            }
            let end = if group[i].run(conn) {
                exec(conn, "RELEASE job")
            } else {
                exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
            };
            if let Err(e) = end {
                return fail_all(conn, group, e, true);
            }
        }
    }
    let commit = exec(conn, "COMMIT");
    if commit.is_err() {
        let _ = exec(conn, "ROLLBACK");
    } else {
        // Counted before anyone hears back, so a caller never sees its group uncounted.
        groups.fetch_add(1, Ordering::Relaxed);
    }
    for job in group.drain(..) {
        job.finish(commit.as_ref().map(|_| ()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn count(path: &Path, sql: &str) -> i64 {
        let reader = Connection::open(path).unwrap();
        reader.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn open(dir: &tempfile::TempDir) -> (std::path::PathBuf, SqliteWriter) {
        let path = dir.path().join("w.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);",
            )
            .unwrap();
        let writer = SqliteWriter::open(&path, Duration::from_secs(5)).unwrap();
        (path, writer)
    }

    fn insert(
        writer: &SqliteWriter,
        k: i64,
    ) -> impl Future<Output = Result<usize, WriteError>> + use<> {
        let writer = writer.clone();
        async move {
            writer
                .call(move |c| Ok(c.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k])?))
                .await
        }
    }

    /// Jobs queued while the writer is busy commit together, each with its own result, and a
    /// failing one is rolled back alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_jobs_commit_as_one_group_and_a_failure_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = open(&dir);
        // Hold the writer in a first job until the others have queued.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        let first = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .call(move |c| {
                        started.send(()).unwrap();
                        held.recv().unwrap();
                        Ok(c.execute("INSERT INTO t (k, v) VALUES (0, 'first')", [])?)
                    })
                    .await
            }
        });
        running.await.unwrap();
        // Queued one after another, so that their order in the group is known.
        let mut tasks = Vec::new();
        let mut enqueue = |task: tokio::task::JoinHandle<Result<usize, WriteError>>| {
            tasks.push(task);
            tasks.len()
        };
        for k in (1..=10).chain([5]) {
            // Key 5 twice: the second is a primary-key violation inside the group.
            let n = enqueue(tokio::spawn(insert(&writer, k)));
            while writer.queued() < n {
                tokio::task::yield_now().await;
            }
        }
        // A job that writes, then fails: its write must not survive.
        let n = enqueue(tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .call(|c| {
                        c.execute("INSERT INTO t (k, v) VALUES (99, 'doomed')", [])?;
                        Err::<usize, _>(WriteError::Panicked("refused on purpose".into()))
                    })
                    .await
            }
        }));
        while writer.queued() < n {
            tokio::task::yield_now().await;
        }
        let groups_before = writer.groups_committed();
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert!(
            results[..10].iter().all(|r| matches!(r, Ok(1))),
            "{results:?}"
        );
        assert!(
            matches!(&results[10], Err(WriteError::Sqlite(rusqlite::Error::SqliteFailure(e, _))) if e.code == rusqlite::ErrorCode::ConstraintViolation),
            "{:?}",
            results[10]
        );
        assert!(matches!(&results[11], Err(WriteError::Panicked(_))));
        // The first job's group, then one group for the twelve queued behind it.
        assert_eq!(writer.groups_committed() - groups_before, 2);
        assert_eq!(count(&path, "SELECT COUNT(*) FROM t"), 11);
        assert_eq!(count(&path, "SELECT COUNT(*) FROM t WHERE k = 99"), 0);
        writer.close().await;
    }

    /// A result is sent only after the commit: another connection sees the write at once.
    #[tokio::test]
    async fn a_write_is_visible_to_readers_when_the_call_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = open(&dir);
        for k in 0..20 {
            insert(&writer, k).await.unwrap();
            assert_eq!(count(&path, "SELECT COUNT(*) FROM t"), k + 1);
        }
        writer.close().await;
    }

    /// A panicking job fails alone and the writer goes on; after `close`, calls fail cleanly.
    #[tokio::test]
    async fn a_panic_is_an_error_and_close_stops_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = open(&dir);
        let panicked = writer
            .call(|c| -> Result<(), WriteError> {
                c.execute("INSERT INTO t (k, v) VALUES (1, 'x')", [])?;
                panic!("boom");
            })
            .await;
        assert!(matches!(panicked, Err(WriteError::Panicked(m)) if m == "boom"));
        insert(&writer, 2).await.unwrap();
        assert_eq!(
            count(&path, "SELECT COUNT(*) FROM t"),
            1,
            "the panicking job's row is gone"
        );
        writer.close().await;
        assert!(matches!(insert(&writer, 3).await, Err(WriteError::Closed)));
    }
}
