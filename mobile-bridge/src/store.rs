//! The phone's durable store: one SQLite file in WAL mode, one writer (a mutex around one
//! connection), `synchronous = FULL` so that a committed transaction survives a power cut.
//!
//! It keeps what sync-core's [`Replica`](sync_core::engine::Replica) keeps in memory — documents
//! (snapshot + appended changes, the same layout as the server's [`DocumentStore`]), per document
//! the hashes the server is known to have and the last refusal, and the cursor — plus what only a
//! phone has: the session, the cached enterprise list, the photo upload queue and copies of
//! refused versions that [`repair`](crate::InspectionClient::repair) discarded.
//!
//! Every public write commits before it returns: an edit is durable when the call returns.
//! A summary of each document (kind, state, grade, deadline, location) is kept in the `docs` row
//! so that lists do not hydrate thousands of documents; it is a view rebuilt from the document
//! on every write.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sync_core::automerge::{Automerge, ChangeHash};
use sync_core::doc::{DocKind, TypedDoc};
use sync_core::ids::{DeviceId, EnterpriseId};
use sync_core::store::{DeliveryLog, DocMeta, DocumentStore, LoadedDoc, StoreError, StoredChange};

/// Storage format version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// Changes appended after a snapshot before the document is compacted into a new snapshot.
const COMPACT_AFTER: i64 = 32;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS docs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    enterprise TEXT NOT NULL,
    snapshot BLOB NOT NULL DEFAULT x'',
    snapshot_seq INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    -- JSON array of hex change hashes the server is known to have
    synced TEXT NOT NULL DEFAULT '[]',
    -- 1 while local changes await the server's acknowledgement
    dirty INTEGER NOT NULL DEFAULT 0,
    -- bumped by every local edit, so an acknowledgement of an older request keeps newer edits dirty
    edit_gen INTEGER NOT NULL DEFAULT 0,
    -- JSON array of the server's reasons when it refused the last batch
    refused TEXT,
    -- 1 once the server said the document left the user's scope while it held unsynced edits:
    -- kept until those edits are sent (or refused and repaired), then removed
    out_of_scope INTEGER NOT NULL DEFAULT 0,
    -- summary (a view of the document)
    visit_id TEXT,
    state TEXT,
    grade TEXT,
    deadline TEXT,
    title TEXT,
    -- more of the summary a list shows, as JSON (`HazardDetail`)
    detail TEXT
);
CREATE INDEX IF NOT EXISTS docs_enterprise ON docs(enterprise, kind);
-- what a sync looks for on a phone holding thousands of documents: the few with unsent edits,
-- the few kept only for them
CREATE INDEX IF NOT EXISTS docs_dirty ON docs(id) WHERE dirty = 1;
CREATE INDEX IF NOT EXISTS docs_out_of_scope ON docs(id) WHERE out_of_scope = 1;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL,
    hash BLOB NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (doc, hash)
);
CREATE INDEX IF NOT EXISTS changes_doc ON changes(doc, seq);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS delivered (
    device TEXT NOT NULL, enterprise TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (device, enterprise)
);
CREATE TABLE IF NOT EXISTS session (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    server_url TEXT NOT NULL,
    username TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    org_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    access_token TEXT,
    access_expires_at TEXT,
    refresh_token TEXT,
    -- 1 after logout: no edit is accepted until someone logs in
    signed_out INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS enterprises (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    uscc TEXT NOT NULL,
    address TEXT NOT NULL,
    township_id TEXT NOT NULL,
    industry TEXT NOT NULL,
    park TEXT
);
CREATE TABLE IF NOT EXISTS photos (
    sha256 TEXT PRIMARY KEY,
    original_sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0,
    queued_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refused_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL,
    saved_at INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    reasons TEXT NOT NULL
);
"#;

/// The SQLite store. Cheap to share behind an `Arc`; every method takes the one connection.
#[derive(Debug)]
pub struct LocalStore {
    conn: Mutex<Connection>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A document row without the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocState {
    /// Kind.
    pub kind: DocKind,
    /// Enterprise.
    pub enterprise: String,
    /// Hashes the server has.
    pub synced: Vec<ChangeHash>,
    /// Local changes await acknowledgement.
    pub dirty: bool,
    /// Edit generation.
    pub edit_gen: i64,
    /// The server's reasons for refusing the last batch.
    pub refused: Option<Vec<String>>,
}

/// The session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Server base URL the session belongs to.
    pub server_url: String,
    /// Login name.
    pub username: String,
    /// User id.
    pub user_id: String,
    /// Role (stable text).
    pub role: String,
    /// Organisation id.
    pub org_id: String,
    /// Display name.
    pub display_name: String,
    /// Enrolled device id.
    pub device_id: String,
    /// Automerge actor id, hex.
    pub actor_id: String,
    /// Bearer token, none after logout.
    pub access_token: Option<String>,
    /// RFC 3339 expiry of the access token.
    pub access_expires_at: Option<String>,
    /// Single-use refresh token.
    pub refresh_token: Option<String>,
}

/// A cached enterprise.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct EnterpriseRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Unified social credit code.
    pub uscc: String,
    /// Address.
    pub address: String,
    /// Township id.
    pub township_id: String,
    /// Industry.
    pub industry: String,
    /// Industrial park.
    pub park: Option<String>,
}

/// A photo waiting for (or done with) upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoRow {
    /// SHA-256 of the prepared bytes (the upload key).
    pub sha256: String,
    /// SHA-256 of the file the user picked.
    pub original_sha256: String,
    /// Prepared file.
    pub path: String,
    /// Prepared size.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// The document that references it.
    pub doc_id: String,
    /// Bytes the server confirmed.
    pub received: u64,
    /// Upload finished.
    pub complete: bool,
}

/// A list row: a document's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Enterprise.
    pub enterprise: String,
    /// For hazards, the visit.
    pub visit_id: Option<String>,
    /// Hazard state (`open` … `closed`) or visit state (`open`, `ended`).
    pub state: Option<String>,
    /// Hazard grade.
    pub grade: Option<String>,
    /// Current deadline.
    pub deadline: Option<String>,
    /// Location (hazard) or place (visit).
    pub title: Option<String>,
    /// Local changes await acknowledgement.
    pub dirty: bool,
    /// Refused by the server.
    pub refused: bool,
    /// For hazards, what else a list shows.
    pub detail: Option<HazardDetail>,
}

/// A user of the phone user's organisation, as `GET /api/v1/colleagues` lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColleagueRow {
    /// User id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// Role, in its stable text form.
    pub role: String,
}

/// What a hazard list shows beyond the summary columns, kept beside them as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HazardDetail {
    /// Description.
    pub description: String,
    /// Photos as found.
    pub photos: u32,
    /// Under supervision.
    pub supervised: bool,
    /// When reported to the regulator, ms.
    pub reported_at: Option<i64>,
    /// The date a pending extension request asks for.
    pub extension_until: Option<String>,
    /// When it was recorded, ms.
    pub created_at: i64,
}

fn hashes_to_json(h: &[ChangeHash]) -> String {
    let v: Vec<String> = h.iter().map(|h| hex::encode(h.0)).collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}

fn hashes_from_json(s: &str) -> Result<Vec<ChangeHash>, StoreError> {
    let v: Vec<String> = serde_json::from_str(s).map_err(corrupt)?;
    v.iter()
        .map(|h| {
            let b = hex::decode(h).map_err(corrupt)?;
            let arr: [u8; 32] = b
                .try_into()
                .map_err(|_| corrupt("change hash is not 32 bytes"))?;
            Ok(ChangeHash(arr))
        })
        .collect()
}

fn kind_of(s: &str) -> Result<DocKind, StoreError> {
    DocKind::parse(s).ok_or_else(|| corrupt(format!("unknown kind {s:?}")))
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl LocalStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        Self::init(conn)
    }

    /// A store in memory (tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend)?;
        // WAL: readers never block the writer; FULL: a commit is on disk when it returns.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(backend)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Backend(format!(
                "local database format {version} is newer than this app ({SCHEMA_VERSION}); update the app"
            )));
        }
        // Columns added by later formats, each only where missing: a crash between adding one
        // and recording the new format must not make the next open fail.
        if version >= 1 {
            for (table, column, decl) in [
                ("docs", "out_of_scope", "INTEGER NOT NULL DEFAULT 0"),
                ("session", "signed_out", "INTEGER NOT NULL DEFAULT 0"),
                ("docs", "detail", "TEXT"),
            ] {
                add_column_if_missing(&conn, table, column, decl)?;
            }
        }
        conn.execute_batch(SCHEMA).map_err(backend)?;
        if (1..4).contains(&version) {
            resummarise(&conn)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(backend)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one transaction and commits it.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        let out = f(&tx)?;
        tx.commit().map_err(backend)?;
        Ok(out)
    }

    /// Runs `f` with the connection (reads).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.lock();
        f(&conn)
    }

    // ---- session ----

    /// The stored session, if any.
    pub fn session(&self) -> Result<Option<SessionRow>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT server_url, username, user_id, role, org_id, display_name, device_id, actor_id, \
                 access_token, access_expires_at, refresh_token FROM session WHERE id = 1",
                [],
                |r| {
                    Ok(SessionRow {
                        server_url: r.get(0)?,
                        username: r.get(1)?,
                        user_id: r.get(2)?,
                        role: r.get(3)?,
                        org_id: r.get(4)?,
                        display_name: r.get(5)?,
                        device_id: r.get(6)?,
                        actor_id: r.get(7)?,
                        access_token: r.get(8)?,
                        access_expires_at: r.get(9)?,
                        refresh_token: r.get(10)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
    }

    /// Replaces the session.
    pub fn put_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO session (id, server_url, username, user_id, role, org_id, display_name, \
                 device_id, actor_id, access_token, access_expires_at, refresh_token) \
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    s.server_url,
                    s.username,
                    s.user_id,
                    s.role,
                    s.org_id,
                    s.display_name,
                    s.device_id,
                    s.actor_id,
                    s.access_token,
                    s.access_expires_at,
                    s.refresh_token
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    /// Stores a new token pair (a refresh token is single-use: this commits before anything else
    /// happens with the new pair).
    pub fn put_tokens(
        &self,
        access: Option<&str>,
        expires: Option<&str>,
        refresh: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE session SET access_token = ?1, access_expires_at = ?2, refresh_token = ?3 WHERE id = 1",
                params![access, expires, refresh],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    // ---- enterprises ----

    /// Replaces the cached enterprise list.
    pub fn put_enterprises(&self, list: &[EnterpriseRow]) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM enterprises", []).map_err(backend)?;
            for e in list {
                tx.execute(
                    "INSERT INTO enterprises (id, name, uscc, address, township_id, industry, park) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        e.id,
                        e.name,
                        e.uscc,
                        e.address,
                        e.township_id,
                        e.industry,
                        e.park
                    ],
                )
                .map_err(backend)?;
            }
            Ok(())
        })
    }

    /// The cached enterprise list.
    pub fn enterprises(&self) -> Result<Vec<EnterpriseRow>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT id, name, uscc, address, township_id, industry, park FROM enterprises ORDER BY name",
                )
                .map_err(backend)?;
            let rows = st
                .query_map([], |r| {
                    Ok(EnterpriseRow {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        uscc: r.get(2)?,
                        address: r.get(3)?,
                        township_id: r.get(4)?,
                        industry: r.get(5)?,
                        park: r.get(6)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }

    // ---- documents ----

    /// A document's sync state.
    pub fn doc_state(&self, id: uuid::Uuid) -> Result<Option<DocState>, StoreError> {
        self.read(|c| doc_state(c, id))
    }

    /// Whether a document is kept only for its unsent edits after it left the scope.
    pub fn is_out_of_scope(&self, id: uuid::Uuid) -> Result<bool, StoreError> {
        self.read(|c| is_out_of_scope(c, id))
    }

    /// Loads a document.
    pub fn load_doc(&self, id: uuid::Uuid) -> Result<Option<Automerge>, StoreError> {
        self.read(|c| load_doc(c, id))
    }

    /// Commits a local edit: the new change(s) of `doc`, marks it dirty, refreshes the summary.
    pub fn commit_local(
        &self,
        id: uuid::Uuid,
        kind: DocKind,
        enterprise: EnterpriseId,
        doc: &Automerge,
        changes: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let rows = raw_rows(changes)?;
            append(tx, id, kind, enterprise, &rows)?;
            tx.execute(
                "UPDATE docs SET dirty = 1, edit_gen = edit_gen + 1 WHERE id = ?1",
                params![id.to_string()],
            )
            .map_err(backend)?;
            after_write(tx, id, doc)
        })
    }

    /// Summaries of documents, optionally of one kind and one enterprise.
    pub fn summaries(
        &self,
        kind: Option<DocKind>,
        enterprise: Option<&str>,
    ) -> Result<Vec<SummaryRow>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT id, kind, enterprise, visit_id, state, grade, deadline, title, dirty, refused IS NOT NULL, detail \
                     FROM docs WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR enterprise = ?2) \
                     ORDER BY deadline, id",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![kind.map(|k| k.as_str()), enterprise], |r| {
                    Ok(SummaryRow {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        enterprise: r.get(2)?,
                        visit_id: r.get(3)?,
                        state: r.get(4)?,
                        grade: r.get(5)?,
                        deadline: r.get(6)?,
                        title: r.get(7)?,
                        dirty: r.get(8)?,
                        refused: r.get(9)?,
                        detail: r
                            .get::<_, Option<String>>(10)?
                            .and_then(|j| serde_json::from_str(&j).ok()),
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }

    /// Marks the session logged out (or in again).
    pub fn set_signed_out(&self, signed_out: bool) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE session SET signed_out = ?1 WHERE id = 1",
                params![signed_out],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    /// Whether the phone's user logged out (a session ended by expiry is not a logout: work
    /// goes on offline until the user logs in again).
    pub fn signed_out(&self) -> Result<bool, StoreError> {
        self.read(|c| {
            let v: Option<bool> = c
                .query_row("SELECT signed_out FROM session WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(backend)?;
            Ok(v.unwrap_or(false))
        })
    }

    /// Replaces the cached colleagues list (JSON of `ColleagueRow`s).
    pub fn put_colleagues(&self, rows: &[ColleagueRow]) -> Result<(), StoreError> {
        let json = serde_json::to_vec(rows).map_err(corrupt)?;
        self.write(|tx| put_kv(tx, "colleagues", &json))
    }

    /// The cached colleagues list, empty before the first fetch.
    pub fn colleagues(&self) -> Result<Vec<ColleagueRow>, StoreError> {
        self.read(|c| {
            let v: Option<Vec<u8>> = c
                .query_row("SELECT value FROM kv WHERE key = 'colleagues'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(backend)?;
            match v {
                Some(b) => serde_json::from_slice(&b).map_err(corrupt),
                None => Ok(Vec::new()),
            }
        })
    }

    /// Records that the server said this device is revoked (cleared by the next login, which
    /// enrols a new device).
    pub fn set_device_revoked(&self, revoked: bool) -> Result<(), StoreError> {
        self.write(|tx| {
            if revoked {
                put_kv(tx, "device_revoked", b"1")
            } else {
                tx.execute("DELETE FROM kv WHERE key = 'device_revoked'", [])
                    .map_err(backend)?;
                Ok(())
            }
        })
    }

    /// Whether the server said this device is revoked.
    pub fn device_revoked(&self) -> Result<bool, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM kv WHERE key = 'device_revoked')",
                [],
                |r| r.get(0),
            )
            .map_err(backend)
        })
    }

    /// Work the server does not have yet: documents with unsent edits, photos not uploaded.
    pub fn unsynced_work(&self) -> Result<(u32, u32), StoreError> {
        self.read(|c| {
            let count = |sql: &str| -> Result<u32, StoreError> {
                c.query_row(sql, [], |r| r.get(0)).map_err(backend)
            };
            Ok((
                count("SELECT COUNT(*) FROM docs WHERE dirty = 1")?,
                count("SELECT COUNT(*) FROM photos WHERE complete = 0")?,
            ))
        })
    }

    /// Forgets everything this phone holds for its user (documents, cursor, deliveries,
    /// enterprises, photos, the session), in one transaction, before another user logs in.
    /// Returns the prepared photo files to delete.
    pub fn wipe(&self) -> Result<Vec<String>, StoreError> {
        self.write(|tx| {
            let mut st = tx.prepare("SELECT path FROM photos").map_err(backend)?;
            let paths = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            drop(st);
            tx.execute_batch(
                "DELETE FROM changes; DELETE FROM docs; DELETE FROM kv; DELETE FROM delivered; \
                 DELETE FROM enterprises; DELETE FROM photos; DELETE FROM refused_versions; \
                 DELETE FROM session;",
            )
            .map_err(backend)?;
            Ok(paths)
        })
    }

    /// Ids and pending changes of every dirty document, with their heads and edit generation,
    /// in the order they are sent ([`LocalStore::pending_ids`]).
    pub fn pending(&self) -> Result<Vec<PendingDoc>, StoreError> {
        self.read(|c| {
            let mut out = Vec::new();
            for (id, _) in pending_ids_in(c)? {
                out.extend(pending_doc(c, id)?);
            }
            Ok(out)
        })
    }

    /// Every dirty document's id and kind, visits first (a hazard is checked against its visit,
    /// so a visit must reach the server in the same request or an earlier one), then by id.
    pub fn pending_ids(&self) -> Result<Vec<(uuid::Uuid, DocKind)>, StoreError> {
        self.read(pending_ids_in)
    }

    /// One dirty document's pending changes, with its heads and edit generation; `None` when it
    /// is gone or has nothing to send.
    pub fn pending_doc(&self, id: uuid::Uuid) -> Result<Option<PendingDoc>, StoreError> {
        self.read(|c| pending_doc(c, id))
    }

    /// Photos not yet uploaded: those already begun first, then oldest first. Begun ones lead
    /// because the server counts a user's unfinished uploads against
    /// an allowance (429 past it), so the phone finishes what it started before starting more.
    pub fn queued_photos(&self) -> Result<Vec<PhotoRow>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT sha256, original_sha256, path, size, media_type, doc_id, received, complete \
                     FROM photos WHERE complete = 0 ORDER BY received > 0 DESC, queued_at, sha256",
                )
                .map_err(backend)?;
            let rows = st.query_map([], photo_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
    }

    /// One photo.
    pub fn photo(&self, sha256: &str) -> Result<Option<PhotoRow>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT sha256, original_sha256, path, size, media_type, doc_id, received, complete \
                 FROM photos WHERE sha256 = ?1",
                params![sha256],
                photo_row,
            )
            .optional()
            .map_err(backend)
        })
    }

    /// Queues a prepared photo for upload (idempotent).
    pub fn queue_photo(&self, p: &PhotoRow, now_ms: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO photos (sha256, original_sha256, path, size, media_type, doc_id, received, complete, queued_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?7)",
                params![p.sha256, p.original_sha256, p.path, clamp(p.size), p.media_type, p.doc_id, now_ms],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    /// Records upload progress.
    pub fn photo_progress(
        &self,
        sha256: &str,
        received: u64,
        complete: bool,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE photos SET received = ?2, complete = ?3 WHERE sha256 = ?1",
                params![sha256, clamp(received), complete],
            )
            .map_err(backend)?;
            Ok(())
        })
    }

    /// Keeps a copy of a version the server refused (nothing the user typed is lost).
    pub fn save_refused_version(
        &self,
        tx: &Transaction<'_>,
        id: uuid::Uuid,
        bytes: &[u8],
        reasons: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO refused_versions (doc, saved_at, bytes, reasons) VALUES (?1, ?2, ?3, ?4)",
            params![
                id.to_string(),
                now_ms,
                bytes,
                serde_json::to_string(reasons).unwrap_or_default()
            ],
        )
        .map_err(backend)?;
        Ok(())
    }

    /// Number of refused versions kept for a document.
    pub fn refused_versions(&self, id: uuid::Uuid) -> Result<u64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM refused_versions WHERE doc = ?1",
                params![id.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0).unsigned_abs())
            .map_err(backend)
        })
    }
}

fn photo_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PhotoRow> {
    Ok(PhotoRow {
        sha256: r.get(0)?,
        original_sha256: r.get(1)?,
        path: r.get(2)?,
        size: r.get::<_, i64>(3)?.max(0).unsigned_abs(),
        media_type: r.get(4)?,
        doc_id: r.get(5)?,
        received: r.get::<_, i64>(6)?.max(0).unsigned_abs(),
        complete: r.get(7)?,
    })
}

/// A dirty document's pending changes.
#[derive(Debug, Clone)]
pub struct PendingDoc {
    /// Id.
    pub id: uuid::Uuid,
    /// Kind.
    pub kind: DocKind,
    /// Heads when the request was built.
    pub heads: Vec<ChangeHash>,
    /// Edit generation when the request was built.
    pub edit_gen: i64,
    /// Changes since the synced hashes.
    pub changes: Vec<Vec<u8>>,
}

impl PendingDoc {
    /// Moves the changes out into the request's entry for this document; the rest (heads, edit
    /// generation) stays for acknowledging it.
    pub fn take_for_request(&mut self) -> sync_core::protocol::DocChanges {
        sync_core::protocol::DocChanges {
            id: self.id,
            kind: self.kind,
            changes: std::mem::take(&mut self.changes),
        }
    }
}

/// A change as the store appends it: (hash, raw bytes).
pub type HashedChange = ([u8; 32], Vec<u8>);

/// (hash, bytes) rows of raw changes.
pub fn raw_rows(changes: &[Vec<u8>]) -> Result<Vec<HashedChange>, StoreError> {
    changes
        .iter()
        .map(|raw| {
            let c = sync_core::automerge::Change::from_bytes(raw.clone()).map_err(corrupt)?;
            Ok((c.hash().0, raw.clone()))
        })
        .collect()
}

/// A document's sync state, within a connection or transaction.
pub fn doc_state(c: &Connection, id: uuid::Uuid) -> Result<Option<DocState>, StoreError> {
    let row: Option<(String, String, String, bool, i64, Option<String>)> = c
        .query_row(
            "SELECT kind, enterprise, synced, dirty, edit_gen, refused FROM docs WHERE id = ?1",
            params![id.to_string()],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()
        .map_err(backend)?;
    let Some((kind, enterprise, synced, dirty, edit_gen, refused)) = row else {
        return Ok(None);
    };
    Ok(Some(DocState {
        kind: kind_of(&kind)?,
        enterprise,
        synced: hashes_from_json(&synced)?,
        dirty,
        edit_gen,
        refused: match refused {
            Some(s) => Some(serde_json::from_str(&s).map_err(corrupt)?),
            None => None,
        },
    }))
}

/// See [`LocalStore::pending_ids`].
pub fn pending_ids_in(c: &Connection) -> Result<Vec<(uuid::Uuid, DocKind)>, StoreError> {
    let mut st = c
        .prepare("SELECT id, kind FROM docs WHERE dirty = 1 ORDER BY id")
        .map_err(backend)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind) = row.map_err(backend)?;
        out.push((
            uuid::Uuid::parse_str(&id).map_err(corrupt)?,
            kind_of(&kind)?,
        ));
    }
    // Stable: ids stay in order within each kind.
    out.sort_by_key(|(_, kind)| *kind != DocKind::Visit);
    Ok(out)
}

/// See [`LocalStore::pending_doc`].
fn pending_doc(c: &Connection, id: uuid::Uuid) -> Result<Option<PendingDoc>, StoreError> {
    let (Some(state), Some(doc)) = (doc_state(c, id)?, load_doc(c, id)?) else {
        return Ok(None);
    };
    if !state.dirty {
        return Ok(None);
    }
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&state.synced)
        .into_iter()
        .map(|ch| ch.raw_bytes().to_vec())
        .collect();
    Ok(Some(PendingDoc {
        id,
        kind: state.kind,
        heads: doc.get_heads(),
        edit_gen: state.edit_gen,
        changes,
    }))
}

/// Loads a document within a connection or transaction.
pub fn load_doc(c: &Connection, id: uuid::Uuid) -> Result<Option<Automerge>, StoreError> {
    match load(c, id)? {
        Some(l) => Ok(Some(l.into_automerge()?)),
        None => Ok(None),
    }
}

/// Sets the synced hashes, keeping them small (heads of the synced sub-document).
pub fn set_synced(
    tx: &Connection,
    id: uuid::Uuid,
    doc: &Automerge,
    mut synced: Vec<ChangeHash>,
) -> Result<(), StoreError> {
    synced.sort();
    synced.dedup();
    if synced.len() > 16
        && let Ok(fork) = doc.fork_at(&synced)
    {
        synced = fork.get_heads();
    }
    tx.execute(
        "UPDATE docs SET synced = ?2 WHERE id = ?1",
        params![id.to_string(), hashes_to_json(&synced)],
    )
    .map_err(backend)?;
    Ok(())
}

/// Records a refusal (or clears it with `None`).
pub fn set_refused(
    tx: &Connection,
    id: uuid::Uuid,
    reasons: Option<&[String]>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE docs SET refused = ?2 WHERE id = ?1",
        params![
            id.to_string(),
            reasons.map(|r| serde_json::to_string(r).unwrap_or_default())
        ],
    )
    .map_err(backend)?;
    Ok(())
}

/// Replaces a document wholesale (repair): drops its log, stores `doc` as the snapshot; the
/// server has all of it.
pub fn replace_doc(tx: &Connection, id: uuid::Uuid, doc: &Automerge) -> Result<(), StoreError> {
    replace_log(tx, id, doc, doc.get_heads(), false)
}

/// Replaces a document's unsent edits with `doc` (the same content re-recorded by this
/// device): its log becomes one snapshot, the server still has `synced`, and it stays dirty.
pub fn rerecord_doc(
    tx: &Connection,
    id: uuid::Uuid,
    doc: &Automerge,
    synced: Vec<ChangeHash>,
) -> Result<(), StoreError> {
    replace_log(tx, id, doc, synced, true)
}

/// Drops a document's change log and stores `doc` as its snapshot, with what the server has
/// and whether edits wait for it; clears any refusal.
fn replace_log(
    tx: &Connection,
    id: uuid::Uuid,
    doc: &Automerge,
    synced: Vec<ChangeHash>,
    dirty: bool,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM changes WHERE doc = ?1",
        params![id.to_string()],
    )
    .map_err(backend)?;
    let seq = max_seq(tx)?;
    tx.execute(
        "UPDATE docs SET snapshot = ?2, snapshot_seq = ?3, dirty = ?4, edit_gen = edit_gen + 1, refused = NULL WHERE id = ?1",
        params![id.to_string(), doc.save(), seq, dirty],
    )
    .map_err(backend)?;
    set_synced(tx, id, doc, synced)?;
    summarise(tx, id, doc)
}

/// A document left the phone's scope: deleted, unless it holds edits the server has not
/// acknowledged; then it is kept, marked out of scope, and its edits are still sent (the server
/// accepts or refuses them, with its reason). Returns whether it was deleted.
pub fn leave_scope(tx: &Connection, id: uuid::Uuid) -> Result<bool, StoreError> {
    if doc_state(tx, id)?.is_some_and(|s| s.dirty) {
        tx.execute(
            "UPDATE docs SET out_of_scope = 1 WHERE id = ?1",
            params![id.to_string()],
        )
        .map_err(backend)?;
        return Ok(false);
    }
    delete_doc(tx, id)?;
    Ok(true)
}

/// Removes the out-of-scope documents that hold nothing unsent any more. Returns their ids.
pub fn sweep_out_of_scope(tx: &Connection) -> Result<Vec<uuid::Uuid>, StoreError> {
    let ids: Vec<String> = tx
        .prepare("SELECT id FROM docs WHERE out_of_scope = 1 AND dirty = 0")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .map_err(backend)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let id = uuid::Uuid::parse_str(&id).map_err(corrupt)?;
        delete_doc(tx, id)?;
        out.push(id);
    }
    Ok(out)
}

/// Whether [`sweep_out_of_scope`] has anything to remove.
pub fn any_to_sweep(c: &Connection) -> Result<bool, StoreError> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM docs WHERE out_of_scope = 1 AND dirty = 0)",
        [],
        |r| r.get(0),
    )
    .map_err(backend)
}

/// Whether a document is kept only for its unsent edits after it left the scope.
pub fn is_out_of_scope(c: &Connection, id: uuid::Uuid) -> Result<bool, StoreError> {
    c.query_row(
        "SELECT out_of_scope FROM docs WHERE id = ?1",
        params![id.to_string()],
        |r| r.get::<_, bool>(0),
    )
    .optional()
    .map(|v| v.unwrap_or(false))
    .map_err(backend)
}

/// Deletes a document.
pub fn delete_doc(tx: &Connection, id: uuid::Uuid) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM changes WHERE doc = ?1",
        params![id.to_string()],
    )
    .map_err(backend)?;
    tx.execute("DELETE FROM docs WHERE id = ?1", params![id.to_string()])
        .map_err(backend)?;
    Ok(())
}

/// After any write of a document: compact when the log grew, refresh the summary.
pub fn after_write(tx: &Connection, id: uuid::Uuid, doc: &Automerge) -> Result<(), StoreError> {
    let (snapshot_seq, last_seq): (i64, i64) = tx
        .query_row(
            "SELECT snapshot_seq, last_seq FROM docs WHERE id = ?1",
            params![id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(backend)?;
    let since: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM changes WHERE doc = ?1 AND seq > ?2",
            params![id.to_string(), snapshot_seq],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if since >= COMPACT_AFTER {
        compact(tx, id, doc.save(), last_seq.max(0).unsigned_abs())?;
    }
    summarise(tx, id, doc)
}

/// `ALTER TABLE table ADD COLUMN column decl`, unless the column is there already (or the
/// table is not: the schema then creates it whole).
fn add_column_if_missing(
    conn: &Connection,
    table: &str,
    column: &str,
    decl: &str,
) -> Result<(), StoreError> {
    let (columns, present): (i64, bool) = conn
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(name = ?2), 0) > 0 FROM pragma_table_info(?1)",
            params![table, column],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(backend)?;
    if columns > 0 && !present {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))
            .map_err(backend)?;
    }
    Ok(())
}

/// Summarises every document again (after a format change added to the summary).
fn resummarise(c: &Connection) -> Result<(), StoreError> {
    let ids: Vec<String> = c
        .prepare("SELECT id FROM docs")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .map_err(backend)?;
    for id in ids {
        let id = uuid::Uuid::parse_str(&id).map_err(corrupt)?;
        if let Some(doc) = load_doc(c, id)? {
            summarise(c, id, &doc)?;
        }
    }
    Ok(())
}

fn summarise(tx: &Connection, id: uuid::Uuid, doc: &Automerge) -> Result<(), StoreError> {
    let mut detail: Option<String> = None;
    let (visit_id, state, grade, deadline, title) = match TypedDoc::hydrate(doc) {
        Ok(TypedDoc::Hazard(h)) => {
            let status = h.header().ok().map(|hd| {
                sync_core::rectification::fold(&hd, h.grade, h.original_deadline(), &h.events)
            });
            detail = serde_json::to_string(&HazardDetail {
                description: h.description.to_string(),
                photos: u32::try_from(h.photos.len()).unwrap_or(u32::MAX),
                supervised: status.as_ref().is_some_and(|s| s.under_supervision),
                reported_at: status.as_ref().and_then(|s| s.reported_at),
                extension_until: status
                    .as_ref()
                    .and_then(|s| s.pending_extension.as_ref())
                    .map(|(_, d)| d.to_string()),
                created_at: h.created_at,
            })
            .ok();
            (
                Some(h.visit_id.clone()),
                status.as_ref().map(|s| s.state.as_str().to_owned()),
                // The grade in force (the notice's and later regrades'), not an edited field.
                Some(
                    status
                        .as_ref()
                        .map_or(h.grade, |s| s.grade)
                        .as_str()
                        .to_owned(),
                ),
                status
                    .as_ref()
                    .and_then(|s| s.deadline)
                    .map(|d| d.to_string())
                    .or(Some(h.deadline.clone())),
                Some(h.location.clone()),
            )
        }
        Ok(TypedDoc::Visit(v)) => (
            None,
            Some(
                if v.ended_at.is_some() {
                    "ended"
                } else {
                    "open"
                }
                .to_owned(),
            ),
            None,
            None,
            Some(v.place.clone()),
        ),
        // A document whose content has not arrived yet (or an unknown shape) has no summary.
        Err(_) => (None, None, None, None, None),
    };
    tx.execute(
        "UPDATE docs SET visit_id = ?2, state = ?3, grade = ?4, deadline = ?5, title = ?6, detail = ?7 WHERE id = ?1",
        params![id.to_string(), visit_id, state, grade, deadline, title, detail],
    )
    .map_err(backend)?;
    Ok(())
}

// ---- DocumentStore primitives over a connection (usable inside a transaction) ----

/// Appends changes; see [`DocumentStore::append`].
pub fn append(
    tx: &Connection,
    id: uuid::Uuid,
    kind: DocKind,
    enterprise: EnterpriseId,
    changes: &[([u8; 32], Vec<u8>)],
) -> Result<u64, StoreError> {
    let ids = id.to_string();
    let existing: Option<(String, String)> = tx
        .query_row(
            "SELECT kind, enterprise FROM docs WHERE id = ?1",
            params![ids],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    match existing {
        Some((k, e)) => {
            if k != kind.as_str() || e != enterprise.to_string() {
                return Err(StoreError::Conflict(id));
            }
        }
        None => {
            tx.execute(
                "INSERT INTO docs (id, kind, enterprise) VALUES (?1, ?2, ?3)",
                params![ids, kind.as_str(), enterprise.to_string()],
            )
            .map_err(backend)?;
        }
    }
    for (hash, bytes) in changes {
        // Checked first: an ignored INSERT would still consume an AUTOINCREMENT number.
        let known: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM changes WHERE doc = ?1 AND hash = ?2)",
                params![ids, &hash[..]],
                |r| r.get(0),
            )
            .map_err(backend)?;
        if !known {
            tx.execute(
                "INSERT INTO changes (doc, hash, bytes) VALUES (?1, ?2, ?3)",
                params![ids, &hash[..], bytes],
            )
            .map_err(backend)?;
            let seq = tx.last_insert_rowid();
            tx.execute(
                "UPDATE docs SET last_seq = ?2 WHERE id = ?1",
                params![ids, seq],
            )
            .map_err(backend)?;
        }
    }
    let last: i64 = tx
        .query_row(
            "SELECT last_seq FROM docs WHERE id = ?1",
            params![ids],
            |r| r.get(0),
        )
        .map_err(backend)?;
    Ok(last.max(0).unsigned_abs())
}

fn load(c: &Connection, id: uuid::Uuid) -> Result<Option<LoadedDoc>, StoreError> {
    let ids = id.to_string();
    let row: Option<(String, String, Vec<u8>, i64, i64)> = c
        .query_row(
            "SELECT kind, enterprise, snapshot, snapshot_seq, last_seq FROM docs WHERE id = ?1",
            params![ids],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(backend)?;
    let Some((kind, enterprise, snapshot, snapshot_seq, last_seq)) = row else {
        return Ok(None);
    };
    let mut st = c
        .prepare_cached("SELECT bytes FROM changes WHERE doc = ?1 AND seq > ?2 ORDER BY seq")
        .map_err(backend)?;
    let changes = st
        .query_map(params![ids, snapshot_seq], |r| r.get::<_, Vec<u8>>(0))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok(Some(LoadedDoc {
        meta: DocMeta {
            id,
            kind: kind_of(&kind)?,
            enterprise: EnterpriseId::parse(&enterprise).map_err(corrupt)?,
            last_seq: last_seq.max(0).unsigned_abs(),
        },
        snapshot,
        changes,
    }))
}

fn compact(c: &Connection, id: uuid::Uuid, snapshot: Vec<u8>, upto: u64) -> Result<(), StoreError> {
    c.execute(
        "UPDATE docs SET snapshot = ?2, snapshot_seq = ?3 WHERE id = ?1 AND snapshot_seq <= ?3",
        params![id.to_string(), snapshot, clamp(upto)],
    )
    .map_err(backend)?;
    Ok(())
}

fn max_seq(c: &Connection) -> Result<i64, StoreError> {
    c.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
        [],
        |r| r.get(0),
    )
    .map_err(backend)
}

/// Reads the cursor.
pub fn cursor(c: &Connection) -> Result<u64, StoreError> {
    let v: Option<Vec<u8>> = c
        .query_row("SELECT value FROM kv WHERE key = 'cursor'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(backend)?;
    Ok(v.and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

/// Writes the cursor.
pub fn set_cursor(c: &Connection, cursor: u64) -> Result<(), StoreError> {
    put_kv(c, "cursor", cursor.to_string().as_bytes())
}

fn put_kv(c: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)",
        params![key, value],
    )
    .map_err(backend)?;
    Ok(())
}

// The store is blocking: each future below is ready when first polled, so
// `sync_core::store::block_on` runs them (see the conformance tests).
impl DocumentStore for LocalStore {
    async fn append(
        &self,
        id: uuid::Uuid,
        kind: DocKind,
        enterprise: EnterpriseId,
        changes: &[([u8; 32], Vec<u8>)],
    ) -> Result<u64, StoreError> {
        self.write(|tx| append(tx, id, kind, enterprise, changes))
    }

    async fn load(&self, id: uuid::Uuid) -> Result<Option<LoadedDoc>, StoreError> {
        self.read(|c| load(c, id))
    }

    async fn compact(
        &self,
        id: uuid::Uuid,
        snapshot: Vec<u8>,
        upto_seq: u64,
    ) -> Result<(), StoreError> {
        self.write(|tx| compact(tx, id, snapshot, upto_seq))
    }

    async fn changes_since(
        &self,
        after: u64,
        upto: u64,
        enterprises: &[EnterpriseId],
        limit: usize,
    ) -> Result<Vec<StoredChange>, StoreError> {
        if after >= upto || enterprises.is_empty() {
            return Ok(Vec::new());
        }
        let ents: Vec<String> = enterprises.iter().map(|e| e.to_string()).collect();
        let ents_json = serde_json::to_string(&ents).map_err(corrupt)?;
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT c.seq, c.doc, d.kind, c.hash, c.bytes FROM changes c JOIN docs d ON d.id = c.doc \
                     WHERE c.seq > ?1 AND c.seq <= ?2 AND d.enterprise IN (SELECT value FROM json_each(?3)) \
                     ORDER BY c.seq LIMIT ?4",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(
                    params![clamp(after), clamp(upto), ents_json, clamp(limit as u64)],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                            r.get::<_, Vec<u8>>(4)?,
                        ))
                    },
                )
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, doc, kind, hash, bytes) = row.map_err(backend)?;
                out.push(StoredChange {
                    seq: seq.max(0).unsigned_abs(),
                    doc: uuid::Uuid::parse_str(&doc).map_err(corrupt)?,
                    kind: kind_of(&kind)?,
                    hash: hash
                        .try_into()
                        .map_err(|_| corrupt("change hash is not 32 bytes"))?,
                    bytes,
                });
            }
            Ok(out)
        })
    }

    async fn docs_of(&self, enterprises: &[EnterpriseId]) -> Result<Vec<DocMeta>, StoreError> {
        let ents: Vec<String> = enterprises.iter().map(|e| e.to_string()).collect();
        let ents_json = serde_json::to_string(&ents).map_err(corrupt)?;
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT id, kind, enterprise, last_seq FROM docs \
                     WHERE enterprise IN (SELECT value FROM json_each(?1)) ORDER BY id",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![ents_json], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, kind, ent, last) = row.map_err(backend)?;
                out.push(DocMeta {
                    id: uuid::Uuid::parse_str(&id).map_err(corrupt)?,
                    kind: kind_of(&kind)?,
                    enterprise: EnterpriseId::parse(&ent).map_err(corrupt)?,
                    last_seq: last.max(0).unsigned_abs(),
                });
            }
            Ok(out)
        })
    }

    async fn max_seq(&self) -> Result<u64, StoreError> {
        self.read(|c| max_seq(c).map(|s| s.max(0).unsigned_abs()))
    }

    async fn get_kv(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|c| {
            c.query_row("SELECT value FROM kv WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)
        })
    }

    async fn put_kv(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(|tx| put_kv(tx, key, value))
    }
}

// A phone never serves other devices; the delivery log is here so the SQLite store can stand in
// for the server's in tests and simulations, and it runs the same conformance function.
impl DeliveryLog for LocalStore {
    async fn delivered(&self, device: DeviceId) -> Result<Vec<(EnterpriseId, u64)>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT enterprise, seq FROM delivered WHERE device = ?1 ORDER BY enterprise",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![device.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (e, s) = row.map_err(backend)?;
                out.push((
                    EnterpriseId::parse(&e).map_err(corrupt)?,
                    s.max(0).unsigned_abs(),
                ));
            }
            out.sort();
            Ok(out)
        })
    }

    async fn record_delivery(
        &self,
        device: DeviceId,
        added: &[EnterpriseId],
        seq: u64,
        removed: &[EnterpriseId],
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            for e in added {
                tx.execute(
                    "INSERT OR REPLACE INTO delivered (device, enterprise, seq) VALUES (?1, ?2, ?3)",
                    params![device.to_string(), e.to_string(), clamp(seq)],
                )
                .map_err(backend)?;
            }
            for e in removed {
                tx.execute(
                    "DELETE FROM delivered WHERE device = ?1 AND enterprise = ?2",
                    params![device.to_string(), e.to_string()],
                )
                .map_err(backend)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sha: &str) -> PhotoRow {
        PhotoRow {
            sha256: sha.into(),
            original_sha256: sha.into(),
            path: format!("/photos/{sha}.jpg"),
            size: 1000,
            media_type: "image/jpeg".into(),
            doc_id: "doc".into(),
            received: 0,
            complete: false,
        }
    }

    /// An upload the server has begun is sent before older photos not begun, so the phone
    /// finishes its unfinished uploads before the server's allowance for them refuses new ones.
    #[test]
    fn begun_uploads_lead_the_queue_then_the_oldest() {
        let store = LocalStore::open_in_memory().unwrap();
        for (i, sha) in ["a", "b", "c", "d"].into_iter().enumerate() {
            store.queue_photo(&row(sha), i as i64).unwrap();
        }
        store.photo_progress("c", 400, false).unwrap();
        store.photo_progress("b", 1000, true).unwrap();
        let order: Vec<String> = store
            .queued_photos()
            .unwrap()
            .into_iter()
            .map(|p| p.sha256)
            .collect();
        assert_eq!(order, ["c", "a", "d"]);
    }
}
