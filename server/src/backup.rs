//! `server admin backup` and `server admin restore` for the embedded SQLite database.
//!
//! A backup is taken with SQLite's online backup API from a connection of its own, all pages in
//! one step: that step reads one snapshot (a WAL read transaction), so the copy is consistent
//! while the server keeps writing, and holds every change committed before it began. The copy
//! is written beside the destination, checked with `PRAGMA integrity_check`, synced and only
//! then renamed into place, so a destination that exists is always a whole backup.
//!
//! A restore refuses a file that is not an intact database of this server, and refuses while a
//! server holds the data directory's lock ([`hold_server_lock`]); the database it replaces is
//! kept beside it (`inspect.db.before-restore-<time>`, with its WAL), never deleted.
//!
//! PostgreSQL has its own tools (`pg_dump`, base backups with WAL archiving); these commands
//! say so instead of pretending.
//!
//! Photos are files named by their SHA-256 and never change: `--photos` copies the ones the
//! destination lacks, and a restore puts them back the same way.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use anyhow::{Context as _, bail};

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    /// Changes in the copy's log, and its highest sequence number.
    pub changes: i64,
    pub max_seq: i64,
    /// Photo files copied (with `--photos`).
    pub photo_files: u64,
}

/// The SQLite file a database URL names; an error for PostgreSQL.
pub fn sqlite_path(database_url: &str) -> anyhow::Result<PathBuf> {
    if database_url.starts_with("postgres") {
        bail!(
            "PostgreSQL 请使用 pg_dump 或基础备份加 WAL 归档 / for PostgreSQL use pg_dump, or base backups with WAL archiving"
        );
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
        .with_context(|| format!("数据库地址无效 / bad database URL {database_url}"))?;
    Ok(options.get_filename().to_path_buf())
}

fn integrity(conn: &rusqlite::Connection) -> anyhow::Result<()> {
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .context("integrity_check")?;
    if result != "ok" {
        bail!("数据库完整性检查未通过 / integrity check failed: {result}");
    }
    Ok(())
}

/// Copies the database at `source` to `dest` (which must not exist) while it may be in use.
pub fn backup_sqlite(source: &Path, dest: &Path) -> anyhow::Result<BackupReport> {
    if dest.exists() {
        bail!(
            "{} 已存在，不会覆盖 / {} exists already: not overwritten",
            dest.display(),
            dest.display()
        );
    }
    if !source.exists() {
        bail!(
            "数据库文件不存在 / no database file at {}",
            source.display()
        );
    }
    let src = rusqlite::Connection::open_with_flags(
        source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", source.display()))?;
    src.busy_timeout(std::time::Duration::from_secs(30))?;
    let partial = with_suffix(dest, ".partial");
    let _ = std::fs::remove_file(&partial);
    let result = (|| {
        let mut dst = rusqlite::Connection::open(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut dst)?;
            // All pages in one step (-1): one snapshot of the source, however busy its writer
            // (a copy made in several steps starts again whenever another connection writes).
            let mut waits = 0;
            loop {
                match backup.step(-1)? {
                    rusqlite::backup::StepResult::Done => break,
                    rusqlite::backup::StepResult::More => {}
                    _busy_or_locked if waits < 300 => {
                        waits += 1;
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    _ => {
                        bail!("数据库持续忙碌，无法备份 / the database stayed busy: no backup made")
                    }
                }
            }
        }
        dst.pragma_update(None, "journal_mode", "DELETE")?;
        integrity(&dst)?;
        let changes: i64 = dst.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))?;
        let max_seq: i64 = dst.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
            r.get(0)
        })?;
        drop(dst);
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, dest)?;
        sync_dir(dest);
        Ok::<_, anyhow::Error>((changes, max_seq))
    })();
    let (changes, max_seq) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context("备份失败 / backup failed"));
        }
    };
    Ok(BackupReport {
        path: dest.to_path_buf(),
        bytes: std::fs::metadata(dest)?.len(),
        changes,
        max_seq,
        photo_files: 0,
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = d.sync_all();
    }
}

/// Copies every file under `from` that `to` lacks (photos never change: same name, same bytes).
/// Partial uploads and temporary files are left out.
pub fn copy_photos(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let mut copied = 0;
    for part in ["blobs", "derived"] {
        let src = from.join(part);
        if !src.exists() {
            continue;
        }
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path.strip_prefix(from)?;
                let target = to.join(rel);
                if target.exists() {
                    continue;
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let tmp = with_suffix(&target, ".partial");
                std::fs::copy(&path, &tmp)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &target)?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

/// The lock a running server holds on its SQLite database (`<file>.lock`): restore refuses to
/// replace a database under a running server, and a second server on the same file refuses to
/// start (the file has one writer by design, ADR 0007).
pub fn hold_server_lock(database: &Path) -> anyhow::Result<std::fs::File> {
    let path = with_suffix(database, ".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "另一个服务进程正在使用数据库 {}，请先停止它 / another server process uses {}: stop it first",
            database.display(),
            database.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot lock {}", path.display())))
        }
    }
}

/// Replaces the database at `target` with the backup at `backup`, keeping the old one beside it.
/// Returns where the old database was kept, if there was one.
pub fn restore_sqlite(
    backup: &Path,
    target: &Path,
    now: jiff::Timestamp,
) -> anyhow::Result<Option<PathBuf>> {
    {
        let conn = rusqlite::Connection::open_with_flags(
            backup,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .with_context(|| format!("cannot open {}", backup.display()))?;
        integrity(&conn).context("备份文件已损坏 / the backup is damaged")?;
        let ours: bool = conn
            .query_row(
                "SELECT COUNT(*) = 2 FROM sqlite_master WHERE type = 'table' AND name IN ('changes', '_sqlx_migrations')",
                [],
                |r| r.get(0),
            )
            .unwrap_or(false);
        if !ours {
            bail!(
                "{} 不是本系统的数据库备份 / {} is not a backup of this server's database",
                backup.display(),
                backup.display()
            );
        }
    }
    let _lock = hold_server_lock(target)?;
    let restoring = with_suffix(target, ".restoring");
    let _ = std::fs::remove_file(&restoring);
    std::fs::copy(backup, &restoring)
        .with_context(|| format!("cannot write {}", restoring.display()))?;
    std::fs::File::open(&restoring)?.sync_all()?;
    let mut kept = None;
    if target.exists() {
        let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let old = with_suffix(target, &format!(".before-restore-{stamp}"));
        // The WAL and its index belong to the old file: they move with it, so that the restored
        // file never meets a log of another database.
        for suffix in ["-wal", "-shm"] {
            let side = with_suffix(target, suffix);
            if side.exists() {
                std::fs::rename(&side, with_suffix(&old, suffix))?;
            }
        }
        std::fs::rename(target, &old)?;
        kept = Some(old);
    }
    std::fs::rename(&restoring, target)?;
    sync_dir(target);
    Ok(kept)
}
