//! The server's document store: sync-core's [`DocumentStore`] and [`DeliveryLog`] over SQLite
//! and PostgreSQL (`migrations/*/0002_sync.sql`).
//!
//! Sequence numbers must become visible in increasing order (see `sync_core::store`). SQLite
//! gives that by having one writer at a time; on PostgreSQL `append` takes a transaction-scoped
//! advisory lock before drawing sequence numbers, so appends commit in sequence order. The lock
//! covers only the statement that draws them and the commit; the rest of an append runs under
//! the document's row lock alone.
//!
//! On SQLite the writes run on the writer thread ([`super::writer`]) through `rusqlite`; on
//! PostgreSQL through sqlx. Both run the same SQL text (the constants below): SQLite reads
//! `$1`, `$2`… as parameters numbered in order of first appearance, which is their number here.

use sqlx::Row;
use sync_core::doc::DocKind;
use sync_core::ids::{DeviceId, EnterpriseId};
use sync_core::store::{
    AppendBatch, DeliveryLog, DocMeta, DocumentStore, LoadedDoc, StoreError, StoredChange,
};

use super::Db;
use super::filter::placeholders;
use super::plan::{Arg, Plan};

/// Advisory lock key serialising appends on PostgreSQL ("INSP" in ASCII).
const APPEND_LOCK: i64 = 0x494E_5350;

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn kind_of(s: &str) -> Result<DocKind, StoreError> {
    DocKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("document kind {s:?}")))
}

fn uuid_of(s: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("id {s:?}")))
}

fn enterprise_of(s: &str) -> Result<EnterpriseId, StoreError> {
    EnterpriseId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A document's heads as the change log and the read models record them: the change hashes in
/// hex, sorted, joined by commas. The projection writes the same text for the copy it
/// projected (`documents.projected_heads`), so the two compare as strings in SQL.
pub fn heads_text<'a>(heads: impl IntoIterator<Item = &'a [u8; 32]>) -> String {
    let mut hex: Vec<String> = heads.into_iter().map(hex::encode).collect();
    hex.sort_unstable();
    hex.dedup();
    hex.join(",")
}

/// The heads after an append: the heads before, plus the changes this append inserted, less
/// every change those depend on (a stored change never depends on a newer one; the
/// dependencies are removed after all are added, so the order of `inserted` does not matter).
/// Nothing inserted: the heads before. `None` when the heads
/// before are unknown (a document stored before migration 0009, until the reconciler fills
/// them in) or a change cannot be read.
fn heads_after(before: Option<String>, inserted: &[&([u8; 32], Vec<u8>)]) -> Option<String> {
    if inserted.is_empty() {
        return before;
    }
    let mut heads: std::collections::BTreeSet<[u8; 32]> = std::collections::BTreeSet::new();
    for h in before?.split(',').filter(|h| !h.is_empty()) {
        heads.insert(hex::decode(h).ok()?.try_into().ok()?);
    }
    let mut deps = std::collections::HashSet::new();
    for (hash, bytes) in inserted {
        heads.insert(*hash);
        let change = sync_core::automerge::Change::from_bytes(bytes.clone()).ok()?;
        deps.extend(change.deps().iter().map(|d| d.0));
    }
    heads.retain(|h| !deps.contains(h));
    Some(heads_text(&heads))
}

const SELECT_DOC: &str = "SELECT kind, enterprise_id, last_seq, heads FROM documents WHERE id = $1";
/// PostgreSQL's: the row stays locked until the append commits, so the heads read here are
/// the ones the append replaces.
const SELECT_DOC_FOR_UPDATE: &str =
    "SELECT kind, enterprise_id, last_seq, heads FROM documents WHERE id = $1 FOR UPDATE";
const INSERT_DOC: &str =
    "INSERT INTO documents (id, kind, enterprise_id, last_seq) VALUES ($1, $2, $3, 0)";
const INSERT_CHANGE: &str = "INSERT INTO changes (doc_id, enterprise_id, hash, bytes) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (doc_id, hash) DO NOTHING RETURNING seq";
const UPDATE_LAST_SEQ: &str = "UPDATE documents SET last_seq = $1, heads = $2 WHERE id = $3";
const COMPACT: &str =
    "UPDATE documents SET snapshot = $1, snapshot_seq = $2 WHERE id = $3 AND snapshot_seq <= $2";
const PUT_KV: &str = "INSERT INTO sync_kv (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const UPSERT_DELIVERY: &str = "INSERT INTO deliveries (device_id, enterprise_id, seq) VALUES ($1, $2, $3) \
     ON CONFLICT (device_id, enterprise_id) DO UPDATE SET seq = excluded.seq";
const DELETE_DELIVERY: &str = "DELETE FROM deliveries WHERE device_id = $1 AND enterprise_id = $2";

/// A row of `changes_since`: seq, document id, kind, hash, bytes.
type ChangeRow = (i64, String, String, Vec<u8>, Vec<u8>);

/// The widest range of sequence numbers `changes_since` reads on the calling thread on SQLite
/// (it returns at most this many rows); wider ranges go to the sqlx pool.
const INLINE_CHANGES: i64 = 256;

fn plan_failed(e: super::DbError) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn writer_failed(e: super::writer::WriteError) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Why an append part was not stored.
enum Refused {
    /// The id belongs to another kind or enterprise.
    Conflict,
    /// The document is no longer at the part's base position.
    Stale,
}

/// Whether a stored position (`None`: no such document) is the one a conditional part expects.
fn at_base(base: Option<u64>, stored: Option<i64>) -> bool {
    base.is_none_or(|b| i64::try_from(b).ok() == Some(stored.unwrap_or(0)))
}

/// SQLite's append, on the writer thread.
fn append_sqlite(
    conn: &rusqlite::Connection,
    part: &Part<'_>,
) -> Result<Result<i64, Refused>, super::writer::WriteError> {
    let Part {
        id,
        kind,
        enterprise,
        changes,
        base_seq,
    } = part;
    let (id, kind, enterprise) = (id.as_str(), *kind, enterprise.as_str());
    use rusqlite::OptionalExtension as _;
    let existing = conn
        .prepare_cached(SELECT_DOC)?
        .query_row([id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })
        .optional()?;
    if !at_base(*base_seq, existing.as_ref().map(|e| e.2)) {
        return Ok(Err(Refused::Stale));
    }
    let (mut last_seq, heads_before) = match existing {
        Some((k, e, seq, heads)) => {
            if k != kind || e != enterprise {
                return Ok(Err(Refused::Conflict));
            }
            (seq, heads)
        }
        None => {
            conn.prepare_cached(INSERT_DOC)?
                .execute(rusqlite::params![id, kind, enterprise])?;
            (0, Some(String::new()))
        }
    };
    let mut insert = conn.prepare_cached(INSERT_CHANGE)?;
    let mut inserted = Vec::new();
    for change in changes.iter() {
        let (hash, bytes) = change;
        let seq: Option<i64> = insert
            .query_row(
                rusqlite::params![id, enterprise, &hash[..], &bytes[..]],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(seq) = seq {
            last_seq = seq;
            inserted.push(change);
        }
    }
    let heads = heads_after(heads_before, &inserted);
    conn.prepare_cached(UPDATE_LAST_SEQ)?
        .execute(rusqlite::params![last_seq, heads, id])?;
    Ok(Ok(last_seq))
}

/// PostgreSQL's: a document created by an append (a concurrent creator wins the race and the
/// append locks its row instead).
const INSERT_DOC_PG: &str = "INSERT INTO documents (id, kind, enterprise_id, last_seq, heads) VALUES ($1, $2, $3, 0, '') \
     ON CONFLICT (id) DO NOTHING RETURNING kind, enterprise_id, last_seq, heads";
/// PostgreSQL's: which of the changes the document already holds.
const KNOWN_HASHES_PG: &str = "SELECT hash FROM changes WHERE doc_id = $1 AND hash = ANY($2)";
/// PostgreSQL's: the new changes of every document in their order, and each document's new
/// position and heads, in one statement (the part of an append that runs under the global lock).
const INSERT_CHANGES_PG: &str = "WITH ins AS (\
     INSERT INTO changes (doc_id, enterprise_id, hash, bytes) \
     SELECT t.d, t.e, t.h, t.b FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[]) \
     WITH ORDINALITY AS t(d, e, h, b, n) ORDER BY t.n \
     RETURNING doc_id, seq), \
     last AS (SELECT doc_id, max(seq) AS seq FROM ins GROUP BY doc_id) \
     UPDATE documents SET last_seq = last.seq, heads = h.heads \
     FROM last JOIN unnest($5::text[], $6::text[]) AS h(id, heads) ON h.id = last.doc_id \
     WHERE documents.id = last.doc_id RETURNING documents.id, documents.last_seq";

/// A document's part of an append as SQL binds it: ids as text, the changes borrowed.
struct Part<'a> {
    id: String,
    kind: &'static str,
    enterprise: String,
    changes: &'a [([u8; 32], Vec<u8>)],
    base_seq: Option<u64>,
}

fn parts_of(batches: &[AppendBatch]) -> Vec<Part<'_>> {
    batches
        .iter()
        .map(|b| Part {
            id: b.id.to_string(),
            kind: b.kind.as_str(),
            enterprise: b.enterprise.to_string(),
            changes: &b.changes,
            base_seq: b.base_seq,
        })
        .collect()
}

/// Locks document `part`'s row on PostgreSQL, creating it on first use; a concurrent creator
/// wins the race and its row is locked instead. `Ok(None)`: the part is conditional and the
/// document is not at its base (a part expecting a new document finds the row created by
/// another writer, even one created with no changes yet, since that writer's changes follow).
async fn lock_row(
    tx: &mut sqlx::PgConnection,
    part: &Part<'_>,
) -> Result<Option<sqlx::postgres::PgRow>, sqlx::Error> {
    let select = || sqlx::query(SELECT_DOC_FOR_UPDATE).bind(&part.id);
    if let Some(row) = select().fetch_optional(&mut *tx).await? {
        // A part expecting no document (base 0) finds one: another writer created it.
        let stored: i64 = row.get(2);
        let positioned = part
            .base_seq
            .is_none_or(|b| b != 0 && i64::try_from(b).ok() == Some(stored));
        return Ok(positioned.then_some(row));
    }
    let created = sqlx::query(INSERT_DOC_PG)
        .bind(&part.id)
        .bind(part.kind)
        .bind(&part.enterprise)
        .fetch_optional(&mut *tx)
        .await?;
    match created {
        Some(row) => Ok(Some(row)),
        // Created by another writer since the first read.
        None if part.base_seq.is_some() => Ok(None),
        None => select().fetch_one(&mut *tx).await.map(Some),
    }
}

/// PostgreSQL's append of several documents, as one transaction. `Ok(Err((i, why)))`: part
/// `i` was refused (nothing is stored).
///
/// Appends of one document queue on its row lock (taken in id order, so two requests touching
/// the same documents cannot deadlock); the global advisory lock, which keeps sequence numbers
/// committing in order, is taken only for the one statement that draws them and the commit.
/// Everything else overlaps between requests: reading the rows, finding which changes are new,
/// computing the heads. Before, each document took the lock for its whole transaction, and the
/// 8-phone field simulator spent 20 ms per append waiting for it (issue #21).
async fn append_postgres(
    pool: &sqlx::PgPool,
    parts: &[Part<'_>],
) -> Result<Result<Vec<i64>, (usize, Refused)>, sqlx::Error> {
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| parts[*a].id.cmp(&parts[*b].id));
    let mut tx = pool.begin().await?;
    let mut seqs = vec![0i64; parts.len()];
    let (mut doc_ids, mut ents, mut hashes, mut bytes) = (vec![], vec![], vec![], vec![]);
    let (mut head_ids, mut heads) = (vec![], vec![]);
    // Heads already computed for a document that appears twice (its second part sees the first).
    type Seen = (i64, Option<String>, std::collections::HashSet<[u8; 32]>);
    let mut pending: std::collections::HashMap<&str, Seen> = std::collections::HashMap::new();
    for &i in &order {
        let part = &parts[i];
        let (last_seq, heads_before, known) = match pending.remove(part.id.as_str()) {
            Some(seen) => seen,
            None => {
                let Some(row) = lock_row(&mut tx, part).await? else {
                    return Ok(Err((i, Refused::Stale)));
                };
                let (k, e): (String, String) = (row.get(0), row.get(1));
                if k != part.kind || e != part.enterprise {
                    return Ok(Err((i, Refused::Conflict)));
                }
                let all: Vec<Vec<u8>> = part.changes.iter().map(|(h, _)| h.to_vec()).collect();
                let known: std::collections::HashSet<[u8; 32]> =
                    sqlx::query_scalar::<_, Vec<u8>>(KNOWN_HASHES_PG)
                        .bind(&part.id)
                        .bind(&all)
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .filter_map(|h| h.try_into().ok())
                        .collect();
                (row.get::<i64, _>(2), row.get::<Option<String>, _>(3), known)
            }
        };
        seqs[i] = last_seq;
        let mut known = known;
        let inserted: Vec<&([u8; 32], Vec<u8>)> = part
            .changes
            .iter()
            .filter(|(h, _)| known.insert(*h))
            .collect();
        let after = heads_after(heads_before, &inserted);
        for (h, b) in &inserted {
            doc_ids.push(part.id.as_str());
            ents.push(part.enterprise.as_str());
            hashes.push(&h[..]);
            bytes.push(&b[..]);
        }
        if !inserted.is_empty() {
            if let Some(at) = head_ids.iter().position(|d: &&str| *d == part.id) {
                heads[at] = after.clone();
            } else {
                head_ids.push(part.id.as_str());
                heads.push(after.clone());
            }
        }
        pending.insert(part.id.as_str(), (last_seq, after, known));
    }
    if !doc_ids.is_empty() {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(INSERT_CHANGES_PG)
            .bind(&doc_ids)
            .bind(&ents)
            .bind(&hashes)
            .bind(&bytes)
            .bind(&head_ids)
            .bind(&heads)
            .fetch_all(&mut *tx)
            .await?;
        let last: std::collections::HashMap<String, i64> = rows.into_iter().collect();
        for (i, part) in parts.iter().enumerate() {
            if let Some(seq) = last.get(&part.id) {
                seqs[i] = *seq;
            }
        }
    }
    tx.commit().await?;
    Ok(Ok(seqs))
}

impl Db {
    /// Every stored document's id, in id order (a rebuild projects them all).
    pub async fn document_ids(&self) -> Result<Vec<String>, super::DbError> {
        Ok(super::with_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM documents ORDER BY id").fetch_all(pool).await?
        }))
    }
}

impl DocumentStore for Db {
    async fn append(
        &self,
        id: uuid::Uuid,
        kind: DocKind,
        enterprise: EnterpriseId,
        changes: &[([u8; 32], Vec<u8>)],
    ) -> Result<u64, StoreError> {
        let batch = AppendBatch {
            id,
            kind,
            enterprise,
            changes: changes.to_vec(),
            base_seq: None,
        };
        let seqs = self.append_many(std::slice::from_ref(&batch)).await?;
        Ok(seqs.first().copied().unwrap_or(0))
    }

    async fn append_many(&self, batches: &[AppendBatch]) -> Result<Vec<u64>, StoreError> {
        let seqs = match self {
            Db::Sqlite(sqlite) => {
                // The writer thread needs its own copy; PostgreSQL binds the caller's.
                let owned = batches.to_vec();
                let seqs = sqlite
                    .writer
                    .call(move |conn| {
                        let mut seqs = Vec::with_capacity(owned.len());
                        for (i, p) in parts_of(&owned).iter().enumerate() {
                            // An error rolls back the whole job: every part or none.
                            match append_sqlite(conn, p)? {
                                Ok(seq) => seqs.push(seq),
                                Err(Refused::Conflict) => {
                                    return Err(super::writer::WriteError::Conflict(i));
                                }
                                Err(Refused::Stale) => {
                                    return Err(super::writer::WriteError::Stale(i));
                                }
                            }
                        }
                        Ok(seqs)
                    })
                    .await
                    .map_err(|e| match e {
                        super::writer::WriteError::Conflict(i) => {
                            StoreError::Conflict(batches[i].id)
                        }
                        super::writer::WriteError::Stale(i) => StoreError::Stale(batches[i].id),
                        other => writer_failed(other),
                    })?;
                // After the commit: readers never see a number whose change is not visible.
                let top = seqs.iter().copied().max().unwrap_or(0);
                sqlite.max_seq.fetch_max(
                    u64::try_from(top).unwrap_or(0),
                    std::sync::atomic::Ordering::AcqRel,
                );
                seqs
            }
            Db::Postgres(pool) => {
                let parts = parts_of(batches);
                super::retry::retry_transient("append", || append_postgres(pool, &parts))
                    .await
                    .map_err(backend)?
                    .map_err(|(i, why)| match why {
                        Refused::Conflict => StoreError::Conflict(batches[i].id),
                        Refused::Stale => StoreError::Stale(batches[i].id),
                    })?
            }
        };
        Ok(seqs
            .into_iter()
            .map(|s| u64::try_from(s).unwrap_or(0))
            .collect())
    }

    async fn position(&self, id: uuid::Uuid) -> Result<Option<u64>, StoreError> {
        let id_s = id.to_string();
        let seq: Option<i64> = super::with_pool!(self, pool => {
            sqlx::query_scalar("SELECT last_seq FROM documents WHERE id = $1")
                .bind(&id_s)
                .fetch_optional(pool)
                .await
                .map_err(backend)?
        });
        Ok(seq.map(|s| u64::try_from(s).unwrap_or(0)))
    }

    async fn positions(&self, ids: &[uuid::Uuid]) -> Result<Vec<Option<u64>>, StoreError> {
        let Db::Postgres(pool) = self else {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(self.position(*id).await?);
            }
            return Ok(out);
        };
        let text: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT id, last_seq FROM documents WHERE id = ANY($1)")
                .bind(&text)
                .fetch_all(pool)
                .await
                .map_err(backend)?;
        let found: std::collections::HashMap<String, i64> = rows.into_iter().collect();
        Ok(text
            .iter()
            .map(|id| found.get(id).map(|s| u64::try_from(*s).unwrap_or(0)))
            .collect())
    }

    fn shared(&self) -> bool {
        self.is_shared()
    }

    async fn load(&self, id: uuid::Uuid) -> Result<Option<LoadedDoc>, StoreError> {
        let id_s = id.to_string();
        super::with_pool!(self, pool => {
            let Some(row) = sqlx::query(
                "SELECT kind, enterprise_id, last_seq, snapshot, snapshot_seq FROM documents WHERE id = $1",
            )
            .bind(&id_s)
            .fetch_optional(pool)
            .await
            .map_err(backend)? else {
                return Ok(None);
            };
            let kind: String = row.get(0);
            let ent: String = row.get(1);
            let last_seq: i64 = row.get(2);
            let snapshot: Option<Vec<u8>> = row.get(3);
            let snapshot_seq: i64 = row.get(4);
            let changes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT bytes FROM changes WHERE doc_id = $1 AND seq > $2 ORDER BY seq")
                .bind(&id_s)
                .bind(snapshot_seq)
                .fetch_all(pool)
                .await
                .map_err(backend)?;
            Ok(Some(LoadedDoc {
                meta: DocMeta { id, kind: kind_of(&kind)?, enterprise: enterprise_of(&ent)?, last_seq: last_seq as u64 },
                snapshot: snapshot.unwrap_or_default(),
                changes,
            }))
        })
    }

    async fn compact(
        &self,
        id: uuid::Uuid,
        snapshot: Vec<u8>,
        upto_seq: u64,
    ) -> Result<(), StoreError> {
        let upto =
            i64::try_from(upto_seq).map_err(|_| StoreError::Backend("seq out of range".into()))?;
        let mut plan = Plan::default();
        plan.push(
            COMPACT,
            vec![
                Arg::from(snapshot),
                Arg::from(upto),
                Arg::from(id.to_string()),
            ],
        );
        plan.run(self).await.map_err(plan_failed)
    }

    async fn changes_since(
        &self,
        after: u64,
        upto: u64,
        enterprises: &[EnterpriseId],
        limit: usize,
    ) -> Result<Vec<StoredChange>, StoreError> {
        if enterprises.is_empty() || after >= upto {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT c.seq, c.doc_id, d.kind, c.hash, c.bytes FROM changes c JOIN documents d ON d.id = c.doc_id \
             WHERE c.seq > $1 AND c.seq <= $2 AND c.enterprise_id IN ({}) ORDER BY c.seq LIMIT $3",
            placeholders(4, enterprises.len())
        );
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let stored = |seq: i64, doc: String, kind: String, hash: Vec<u8>, bytes: Vec<u8>| {
            Ok(StoredChange {
                seq: seq as u64,
                doc: uuid_of(&doc)?,
                kind: kind_of(&kind)?,
                hash: hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("hash length".into()))?,
                bytes,
            })
        };
        match self {
            // A phone syncing often asks for a few changes: read them on the calling thread
            // (see `inline`). A long catch-up goes to the pool, off the async worker.
            Db::Sqlite(sqlite) if upto - after <= INLINE_CHANGES => {
                use rusqlite::types::Value;
                let mut args = vec![
                    Value::Integer(after),
                    Value::Integer(upto),
                    Value::Integer(limit),
                ];
                args.extend(enterprises.iter().map(|e| Value::Text(e.to_string())));
                let rows = sqlite
                    .inline
                    .read(|c| {
                        let mut stmt = c.prepare_cached(&sql)?;
                        super::inline::bind_numbered(&mut stmt, &args)?;
                        let mut rows = stmt.raw_query();
                        let mut out: Vec<ChangeRow> = Vec::new();
                        while let Some(r) = rows.next()? {
                            out.push((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?));
                        }
                        Ok(out)
                    })
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                rows.into_iter()
                    .map(|(seq, doc, kind, hash, bytes)| stored(seq, doc, kind, hash, bytes))
                    .collect()
            }
            _ => super::with_pool!(self, pool => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(after).bind(upto).bind(limit);
                for e in enterprises {
                    q = q.bind(e.to_string());
                }
                let rows = q.fetch_all(pool).await.map_err(backend)?;
                rows.into_iter()
                    .map(|row| stored(row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
                    .collect()
            }),
        }
    }

    async fn docs_of(&self, enterprises: &[EnterpriseId]) -> Result<Vec<DocMeta>, StoreError> {
        if enterprises.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, kind, enterprise_id, last_seq FROM documents WHERE enterprise_id IN ({}) ORDER BY id",
            placeholders(1, enterprises.len())
        );
        super::with_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for e in enterprises {
                q = q.bind(e.to_string());
            }
            let rows = q.fetch_all(pool).await.map_err(backend)?;
            rows.into_iter()
                .map(|row| {
                    let id: String = row.get(0);
                    let kind: String = row.get(1);
                    let ent: String = row.get(2);
                    let last_seq: i64 = row.get(3);
                    Ok(DocMeta { id: uuid_of(&id)?, kind: kind_of(&kind)?, enterprise: enterprise_of(&ent)?, last_seq: last_seq as u64 })
                })
                .collect()
        })
    }

    async fn max_seq(&self) -> Result<u64, StoreError> {
        if let Db::Sqlite(sqlite) = self {
            // Kept by `append` (see `SqliteDb::max_seq`).
            return Ok(sqlite.max_seq.load(std::sync::atomic::Ordering::Acquire));
        }
        super::with_pool!(self, pool => {
            let v: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
                .fetch_one(pool)
                .await
                .map_err(backend)?;
            Ok(v.unwrap_or(0) as u64)
        })
    }

    async fn get_kv(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        super::with_pool!(self, pool => {
            sqlx::query_scalar("SELECT value FROM sync_kv WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(backend)
        })
    }

    async fn put_kv(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut plan = Plan::default();
        plan.push(PUT_KV, vec![Arg::from(key), Arg::from(value.to_vec())]);
        plan.run(self).await.map_err(plan_failed)
    }
}

impl DeliveryLog for Db {
    async fn delivered(&self, device: DeviceId) -> Result<Vec<(EnterpriseId, u64)>, StoreError> {
        const SQL: &str =
            "SELECT enterprise_id, seq FROM deliveries WHERE device_id = $1 ORDER BY enterprise_id";
        let device = device.to_string();
        let rows: Vec<(String, i64)> = match self {
            // Every sync asks this: a point read on the calling thread (see `inline`).
            Db::Sqlite(sqlite) => sqlite
                .inline
                .read(|c| {
                    c.prepare_cached(SQL)?
                        .query_map([&device], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .map_err(|e| StoreError::Backend(e.to_string()))?,
            Db::Postgres(pool) => sqlx::query_as(SQL)
                .bind(&device)
                .fetch_all(pool)
                .await
                .map_err(backend)?,
        };
        rows.into_iter()
            .map(|(e, s)| Ok((enterprise_of(&e)?, s as u64)))
            .collect()
    }

    async fn record_delivery(
        &self,
        device: DeviceId,
        added: &[EnterpriseId],
        seq: u64,
        removed: &[EnterpriseId],
    ) -> Result<(), StoreError> {
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let dev = device.to_string();
        let mut plan = Plan::default();
        for e in added {
            plan.push(
                UPSERT_DELIVERY,
                vec![Arg::from(&dev), Arg::from(e.to_string()), Arg::from(seq)],
            );
        }
        for e in removed {
            plan.push(
                DELETE_DELIVERY,
                vec![Arg::from(&dev), Arg::from(e.to_string())],
            );
        }
        plan.run(self).await.map_err(plan_failed)
    }
}

/// Finding and repairing read models that are behind their documents (`crate::reconcile`).
impl Db {
    /// Up to `limit` documents, in id order after `after`, whose read model was not built from
    /// their stored heads (never projected, projected from an older copy, or heads unknown).
    /// Served by the partial index `documents_unprojected` (migration 0009).
    pub async fn unprojected_docs(
        &self,
        after: &str,
        limit: i64,
    ) -> super::DbResult<Vec<(String, Option<String>, i64)>> {
        Ok(super::with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, heads, last_seq FROM documents \
                 WHERE (heads IS NULL OR projected_heads IS NULL OR projected_heads <> heads) AND id > $1 \
                 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Records the heads of a document stored before migration 0009, read from the document as
    /// it was at `last_seq`. Does nothing when an append changed the document meanwhile (that
    /// append left the heads unknown too; the next pass reads them again).
    pub async fn fill_heads(&self, id: &str, last_seq: i64, heads: String) -> super::DbResult<()> {
        let mut plan = Plan::default();
        plan.push(
            "UPDATE documents SET heads = $1 WHERE id = $2 AND last_seq = $3 AND heads IS NULL",
            vec![Arg::from(heads), Arg::from(id), Arg::from(last_seq)],
        );
        plan.run(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::automerge::transaction::Transactable as _;

    /// Three changes in a chain, a → b → c, as (hash, bytes) rows.
    fn chain() -> Vec<([u8; 32], Vec<u8>)> {
        let mut doc = sync_core::automerge::AutoCommit::new();
        let mut rows = Vec::new();
        for i in 0..3i64 {
            doc.put(sync_core::automerge::ROOT, "n", i).expect("put");
            doc.commit();
            let change = doc.get_last_local_change().expect("a change").clone();
            rows.push((change.hash().0, change.raw_bytes().to_vec()));
        }
        rows
    }

    #[test]
    fn the_heads_after_an_append_do_not_depend_on_the_order_of_its_changes() {
        let rows = chain();
        let last = heads_text([&rows[2].0]);
        let forwards: Vec<_> = rows.iter().collect();
        let backwards: Vec<_> = rows.iter().rev().collect();
        assert_eq!(
            heads_after(Some(String::new()), &forwards),
            Some(last.clone())
        );
        assert_eq!(
            heads_after(Some(String::new()), &backwards),
            Some(last.clone())
        );
        // On top of stored heads: the first change stored, the other two appended.
        let first = heads_text([&rows[0].0]);
        assert_eq!(
            heads_after(Some(first.clone()), &backwards[..2]),
            Some(last)
        );
        // Nothing inserted keeps what was there, and unknown heads stay unknown.
        assert_eq!(heads_after(Some(first.clone()), &[]), Some(first));
        assert_eq!(heads_after(None, &forwards), None);
    }
}
