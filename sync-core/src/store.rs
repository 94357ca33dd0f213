//! Store traits, an in-memory implementation, and the conformance suite every backend runs.
//!
//! A [`DocumentStore`] keeps documents as an append-only log of Automerge changes, each given a
//! sequence number, plus an optional compacted snapshot per document so that loading does not
//! replay the whole log. The log is what incremental sync reads ("changes since cursor"). The
//! [`DeliveryLog`] remembers, per device, which enterprises' documents it has been given whole,
//! so that documents newly in a device's scope are sent whole exactly once.
//!
//! Backends: [`MemoryStore`] here; SQLite on the phone (`mobile-bridge`); SQLite and PostgreSQL
//! on the server. Each runs [`store_conformance_tests!`](crate::store_conformance_tests).
//!
//! Invariant every backend keeps: sequence numbers are strictly increasing and become visible
//! in increasing order (a reader that has seen seq `n` will never later see a new change with
//! seq `<= n`). SQLite gets this from its single writer; PostgreSQL from a lock taken in
//! `append`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::doc::DocKind;
use crate::ids::{DeviceId, EnterpriseId};

/// What a store knows of a document without loading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocMeta {
    /// Document id.
    pub id: uuid::Uuid,
    /// Kind.
    pub kind: DocKind,
    /// Enterprise it belongs to (decides who sees it).
    pub enterprise: EnterpriseId,
    /// Highest sequence number of its changes.
    pub last_seq: u64,
}

/// One change as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    /// Sequence number (global to the store).
    pub seq: u64,
    /// Document id.
    pub doc: uuid::Uuid,
    /// Kind of the document.
    pub kind: DocKind,
    /// Automerge change hash.
    pub hash: [u8; 32],
    /// Raw change bytes.
    pub bytes: Vec<u8>,
}

/// A document as loaded: its latest snapshot (possibly empty) and the changes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedDoc {
    /// Metadata.
    pub meta: DocMeta,
    /// `Automerge::save` output of the last compaction, empty if never compacted.
    pub snapshot: Vec<u8>,
    /// Raw changes with seq greater than the snapshot's.
    pub changes: Vec<Vec<u8>>,
}

impl LoadedDoc {
    /// Rebuilds the Automerge document.
    pub fn into_automerge(self) -> Result<automerge::Automerge, StoreError> {
        let mut doc = if self.snapshot.is_empty() {
            automerge::Automerge::new()
        } else {
            automerge::Automerge::load(&self.snapshot)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
        };
        let mut changes = Vec::with_capacity(self.changes.len());
        for c in self.changes {
            changes.push(
                automerge::Change::from_bytes(c).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
        }
        doc.apply_changes(changes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(doc)
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, connection, constraint).
    #[error("store backend: {0}")]
    Backend(String),
    /// Stored bytes could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A document was appended to with another kind or enterprise than it was created with.
    #[error("document {0} exists with another kind or enterprise")]
    Conflict(uuid::Uuid),
    /// A conditional append found the document moved on since the copy its changes were
    /// checked against ([`AppendBatch::base_seq`]); nothing of the call is stored. The caller
    /// reads the document again and re-checks.
    #[error("document {0} changed since it was read")]
    Stale(uuid::Uuid),
}

/// One document's part of [`DocumentStore::append_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendBatch {
    /// The document.
    pub id: uuid::Uuid,
    /// Its kind (checked against the stored one).
    pub kind: DocKind,
    /// Its enterprise (checked against the stored one).
    pub enterprise: EnterpriseId,
    /// The changes, as (hash, bytes), in application order.
    pub changes: Vec<([u8; 32], Vec<u8>)>,
    /// The document's position (its `last_seq`, 0 when it did not exist) in the copy these
    /// changes were validated against. When set, the append stores nothing and fails with
    /// [`StoreError::Stale`] unless the stored position is still that one: a change is never
    /// accepted on the strength of a copy that another request, or another server instance,
    /// has since moved past. `None` appends whatever the position.
    pub base_seq: Option<u64>,
}

/// Documents as an append-only change log with snapshots.
pub trait DocumentStore: Send + Sync {
    /// Appends changes (hash, bytes) of one document atomically, creating its metadata on first
    /// use. A change whose hash is already stored for the document is skipped. Returns the
    /// highest sequence number assigned (or the document's current one if nothing was new).
    fn append(
        &self,
        id: uuid::Uuid,
        kind: DocKind,
        enterprise: EnterpriseId,
        changes: &[([u8; 32], Vec<u8>)],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Appends the changes of several documents, as [`append`](Self::append) does for each, and
    /// returns each document's highest sequence number in the order given. A store that can
    /// make this one transaction does (the server's backends: one commit per sync request, and on
    /// PostgreSQL one turn of the global order); this default appends one document at a time.
    /// Either way each document's part is atomic; after an error some parts may be stored and
    /// others not, so a caller holding copies of these documents must not trust them.
    fn append_many(
        &self,
        batches: &[AppendBatch],
    ) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send {
        async move {
            // Checked before and not under one lock with the appends: a store with concurrent
            // writers overrides this (the server's backends check under the document's lock).
            for b in batches {
                if let Some(base) = b.base_seq
                    && self.position(b.id).await?.unwrap_or(0) != base
                {
                    return Err(StoreError::Stale(b.id));
                }
            }
            let mut seqs = Vec::with_capacity(batches.len());
            for b in batches {
                seqs.push(self.append(b.id, b.kind, b.enterprise, &b.changes).await?);
            }
            Ok(seqs)
        }
    }

    /// A document's position: the highest sequence number of its changes (`None` when it is
    /// not stored). A point read; the default loads the document.
    fn position(
        &self,
        id: uuid::Uuid,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        async move { Ok(self.load(id).await?.map(|d| d.meta.last_seq)) }
    }

    /// The positions of several documents, in the order given (`None`: not stored): what
    /// [`position`](Self::position) answers for each, in one read where the store can.
    fn positions(
        &self,
        ids: &[uuid::Uuid],
    ) -> impl Future<Output = Result<Vec<Option<u64>>, StoreError>> + Send {
        async move {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(self.position(*id).await?);
            }
            Ok(out)
        }
    }

    /// Whether other processes may write this store at the same time (several server
    /// instances on one PostgreSQL database). A cache over a store that is not shared is
    /// exact as long as every write goes through it; over a shared one each use is checked
    /// against [`position`](Self::position) first.
    fn shared(&self) -> bool {
        false
    }

    /// Loads a document's snapshot and later changes.
    fn load(
        &self,
        id: uuid::Uuid,
    ) -> impl Future<Output = Result<Option<LoadedDoc>, StoreError>> + Send;

    /// Replaces a document's snapshot with `snapshot`, which must contain every change up to
    /// and including `upto_seq`. Later loads return only changes after it. The change log itself
    /// is kept (incremental sync reads it).
    fn compact(
        &self,
        id: uuid::Uuid,
        snapshot: Vec<u8>,
        upto_seq: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Changes with `after < seq <= upto` of documents of the given enterprises, in seq order,
    /// at most `limit` of them.
    fn changes_since(
        &self,
        after: u64,
        upto: u64,
        enterprises: &[EnterpriseId],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredChange>, StoreError>> + Send;

    /// Metadata of every document of the given enterprises.
    fn docs_of(
        &self,
        enterprises: &[EnterpriseId],
    ) -> impl Future<Output = Result<Vec<DocMeta>, StoreError>> + Send;

    /// The highest sequence number assigned so far (0 when empty).
    fn max_seq(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A small key-value space for sync state (cursors, settings).
    fn get_kv(&self, key: &str)
    -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Sets a key.
    fn put_kv(
        &self,
        key: &str,
        value: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Which enterprises' documents each device has received whole, and at which cursor.
pub trait DeliveryLog: Send + Sync {
    /// (enterprise, seq at which its documents were delivered) for a device.
    fn delivered(
        &self,
        device: DeviceId,
    ) -> impl Future<Output = Result<Vec<(EnterpriseId, u64)>, StoreError>> + Send;

    /// Records enterprises delivered at `seq` (replacing earlier records for them) and forgets
    /// `removed` ones.
    fn record_delivery(
        &self,
        device: DeviceId,
        added: &[EnterpriseId],
        seq: u64,
        removed: &[EnterpriseId],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Everything in memory: for tests, simulations and as the reference behaviour.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    seq: u64,
    log: BTreeMap<u64, StoredChange>,
    docs: HashMap<uuid::Uuid, MemDoc>,
    kv: HashMap<String, Vec<u8>>,
    delivered: HashMap<DeviceId, HashMap<EnterpriseId, u64>>,
}

#[derive(Debug)]
struct MemDoc {
    meta: DocMeta,
    hashes: std::collections::HashSet<[u8; 32]>,
    snapshot: Vec<u8>,
    snapshot_seq: u64,
    seqs: Vec<u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A poisoned lock only means a test panicked while holding it; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MemoryInner {
    fn position(&self, id: &uuid::Uuid) -> u64 {
        self.docs.get(id).map_or(0, |d| d.meta.last_seq)
    }

    fn append(
        &mut self,
        id: uuid::Uuid,
        kind: DocKind,
        enterprise: EnterpriseId,
        changes: &[([u8; 32], Vec<u8>)],
    ) -> Result<u64, StoreError> {
        let inner = self;
        let doc = inner.docs.entry(id).or_insert_with(|| MemDoc {
            meta: DocMeta {
                id,
                kind,
                enterprise,
                last_seq: 0,
            },
            hashes: Default::default(),
            snapshot: Vec::new(),
            snapshot_seq: 0,
            seqs: Vec::new(),
        });
        if doc.meta.kind != kind || doc.meta.enterprise != enterprise {
            return Err(StoreError::Conflict(id));
        }
        for (hash, bytes) in changes {
            if !doc.hashes.insert(*hash) {
                continue;
            }
            inner.seq += 1;
            let seq = inner.seq;
            doc.seqs.push(seq);
            doc.meta.last_seq = seq;
            inner.log.insert(
                seq,
                StoredChange {
                    seq,
                    doc: id,
                    kind,
                    hash: *hash,
                    bytes: bytes.clone(),
                },
            );
        }
        Ok(doc.meta.last_seq)
    }
}

impl DocumentStore for MemoryStore {
    async fn append(
        &self,
        id: uuid::Uuid,
        kind: DocKind,
        enterprise: EnterpriseId,
        changes: &[([u8; 32], Vec<u8>)],
    ) -> Result<u64, StoreError> {
        self.lock().append(id, kind, enterprise, changes)
    }

    /// Under one lock, so the position checks and the appends are one step. A part refused
    /// for its kind or enterprise leaves the earlier parts stored, as the default does.
    async fn append_many(&self, batches: &[AppendBatch]) -> Result<Vec<u64>, StoreError> {
        let mut g = self.lock();
        for b in batches {
            if b.base_seq.is_some_and(|base| g.position(&b.id) != base) {
                return Err(StoreError::Stale(b.id));
            }
        }
        batches
            .iter()
            .map(|b| g.append(b.id, b.kind, b.enterprise, &b.changes))
            .collect()
    }

    async fn position(&self, id: uuid::Uuid) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().docs.get(&id).map(|d| d.meta.last_seq))
    }

    async fn load(&self, id: uuid::Uuid) -> Result<Option<LoadedDoc>, StoreError> {
        let g = self.lock();
        let Some(doc) = g.docs.get(&id) else {
            return Ok(None);
        };
        let changes = doc
            .seqs
            .iter()
            .filter(|s| **s > doc.snapshot_seq)
            .filter_map(|s| g.log.get(s).map(|c| c.bytes.clone()))
            .collect();
        Ok(Some(LoadedDoc {
            meta: doc.meta.clone(),
            snapshot: doc.snapshot.clone(),
            changes,
        }))
    }

    async fn compact(
        &self,
        id: uuid::Uuid,
        snapshot: Vec<u8>,
        upto_seq: u64,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        if let Some(doc) = g.docs.get_mut(&id)
            && upto_seq >= doc.snapshot_seq
        {
            doc.snapshot = snapshot;
            doc.snapshot_seq = upto_seq;
        }
        Ok(())
    }

    async fn changes_since(
        &self,
        after: u64,
        upto: u64,
        enterprises: &[EnterpriseId],
        limit: usize,
    ) -> Result<Vec<StoredChange>, StoreError> {
        let g = self.lock();
        if after >= upto {
            return Ok(Vec::new());
        }
        Ok(g.log
            .range(after + 1..=upto)
            .map(|(_, c)| c)
            .filter(|c| {
                g.docs
                    .get(&c.doc)
                    .is_some_and(|d| enterprises.contains(&d.meta.enterprise))
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn docs_of(&self, enterprises: &[EnterpriseId]) -> Result<Vec<DocMeta>, StoreError> {
        let g = self.lock();
        let mut out: Vec<DocMeta> = g
            .docs
            .values()
            .filter(|d| enterprises.contains(&d.meta.enterprise))
            .map(|d| d.meta.clone())
            .collect();
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    async fn max_seq(&self) -> Result<u64, StoreError> {
        Ok(self.lock().seq)
    }

    async fn get_kv(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().kv.get(key).cloned())
    }

    async fn put_kv(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.lock().kv.insert(key.to_owned(), value.to_vec());
        Ok(())
    }
}

impl DeliveryLog for MemoryStore {
    async fn delivered(&self, device: DeviceId) -> Result<Vec<(EnterpriseId, u64)>, StoreError> {
        let g = self.lock();
        let mut v: Vec<_> = g
            .delivered
            .get(&device)
            .map(|m| m.iter().map(|(e, s)| (*e, *s)).collect())
            .unwrap_or_default();
        v.sort();
        Ok(v)
    }

    async fn record_delivery(
        &self,
        device: DeviceId,
        added: &[EnterpriseId],
        seq: u64,
        removed: &[EnterpriseId],
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        let m = g.delivered.entry(device).or_default();
        for e in added {
            m.insert(*e, seq);
        }
        for e in removed {
            m.remove(e);
        }
        Ok(())
    }
}

/// The conformance suite. Each function takes a fresh, empty store.
pub mod conformance {
    use super::*;

    fn change(doc: &mut automerge::AutoCommit, key: &str, value: i64) -> ([u8; 32], Vec<u8>) {
        use automerge::transaction::Transactable;
        // Test helper: the writes below cannot fail on a fresh map key.
        let _ = doc.put(automerge::ROOT, key, value);
        let mut c = doc.get_last_local_change().expect("a change was just made");
        let hash = c.hash().0;
        (hash, c.bytes().to_vec())
    }

    fn ent(n: u8) -> EnterpriseId {
        EnterpriseId::from_uuid(uuid::Uuid::from_bytes([n; 16]))
    }

    /// Appended changes load back as the same document; duplicates are skipped.
    pub async fn append_and_load_round_trip<S: DocumentStore>(store: S) {
        let id = uuid::Uuid::from_bytes([7; 16]);
        let mut doc = automerge::AutoCommit::new();
        let c1 = change(&mut doc, "a", 1);
        let c2 = change(&mut doc, "b", 2);
        let s1 = store
            .append(id, DocKind::Visit, ent(1), std::slice::from_ref(&c1))
            .await
            .expect("append");
        let s2 = store
            .append(id, DocKind::Visit, ent(1), &[c1.clone(), c2.clone()])
            .await
            .expect("append");
        assert!(s2 > s1, "sequence numbers increase");
        assert_eq!(
            store
                .append(id, DocKind::Visit, ent(1), &[c2])
                .await
                .expect("append"),
            s2,
            "duplicate skipped"
        );
        assert_eq!(store.max_seq().await.expect("max"), s2);
        let loaded = store.load(id).await.expect("load").expect("exists");
        assert_eq!(loaded.meta.last_seq, s2);
        assert_eq!(loaded.meta.kind, DocKind::Visit);
        let am = loaded.into_automerge().expect("rebuild");
        assert_eq!(am.get_heads(), doc.get_heads());
        assert!(
            store
                .load(uuid::Uuid::from_bytes([8; 16]))
                .await
                .expect("load")
                .is_none()
        );
    }

    /// Several documents in one call: each gets its changes in order and its highest number
    /// (in the order given), a change already stored is skipped, the same document may appear
    /// twice, and everything loads back.
    pub async fn append_many_stores_every_part<S: DocumentStore>(store: S) {
        let (a, b) = (
            uuid::Uuid::from_bytes([9; 16]),
            uuid::Uuid::from_bytes([3; 16]),
        );
        let (mut da, mut db) = (automerge::AutoCommit::new(), automerge::AutoCommit::new());
        let a1 = change(&mut da, "x", 1);
        let b1 = change(&mut db, "y", 1);
        let b2 = change(&mut db, "y", 2);
        let a2 = change(&mut da, "x", 2);
        let first = store
            .append(a, DocKind::Visit, ent(1), std::slice::from_ref(&a1))
            .await
            .expect("append");
        let part = |id, kind, changes: Vec<([u8; 32], Vec<u8>)>| AppendBatch {
            id,
            kind,
            enterprise: ent(1),
            changes,
            base_seq: None,
        };
        let seqs = store
            .append_many(&[
                part(a, DocKind::Visit, vec![a1.clone(), a2.clone()]),
                part(b, DocKind::Hazard, vec![b1.clone()]),
                part(b, DocKind::Hazard, vec![b1.clone(), b2.clone()]),
            ])
            .await
            .expect("append_many");
        assert_eq!(seqs.len(), 3, "one number per part");
        assert!(seqs[0] > first, "a's new change drew a new number");
        assert!(
            seqs[2] >= seqs[1],
            "b's later part ends no earlier than its first"
        );
        let b_last = store
            .load(b)
            .await
            .expect("load")
            .expect("b exists")
            .meta
            .last_seq;
        assert_eq!(seqs[2], b_last, "b's last part ends at b's last number");
        let top = store.max_seq().await.expect("max");
        assert_eq!(top, seqs.iter().copied().max().expect("parts"));
        assert_eq!(
            store
                .changes_since(0, top, &[ent(1)], 100)
                .await
                .expect("since")
                .len(),
            4,
            "a1 once, a2, b1 once, b2"
        );
        for (id, doc) in [(a, &mut da), (b, &mut db)] {
            let loaded = store.load(id).await.expect("load").expect("exists");
            assert_eq!(
                loaded.into_automerge().expect("rebuild").get_heads(),
                doc.get_heads()
            );
        }
    }

    /// A store that makes `append_many` one transaction stores nothing of a call in which one
    /// part names a document of another enterprise (the server's backends; the memory store's
    /// default appends part by part).
    pub async fn append_many_is_all_or_nothing<S: DocumentStore>(store: S) {
        let (a, b) = (
            uuid::Uuid::from_bytes([9; 16]),
            uuid::Uuid::from_bytes([3; 16]),
        );
        let (mut da, mut db) = (automerge::AutoCommit::new(), automerge::AutoCommit::new());
        let b1 = change(&mut db, "y", 1);
        store
            .append(b, DocKind::Hazard, ent(1), std::slice::from_ref(&b1))
            .await
            .expect("append");
        let before = store.max_seq().await.expect("max");
        let a1 = change(&mut da, "x", 1);
        let b2 = change(&mut db, "y", 2);
        let refused = store
            .append_many(&[
                AppendBatch {
                    id: a,
                    kind: DocKind::Visit,
                    enterprise: ent(1),
                    changes: vec![a1],
                    base_seq: None,
                },
                AppendBatch {
                    id: b,
                    kind: DocKind::Hazard,
                    enterprise: ent(2),
                    changes: vec![b2],
                    base_seq: None,
                },
            ])
            .await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(id)) if id == b),
            "{refused:?}"
        );
        assert!(
            store.load(a).await.expect("load").is_none(),
            "the good part was not kept"
        );
        assert_eq!(store.max_seq().await.expect("max"), before);
    }

    /// A conditional append stores only when the document is still where the caller read it:
    /// a part whose base is behind (another writer appended meanwhile), or that expects a new
    /// document where one exists, fails the whole call with `Stale` and stores nothing of it;
    /// the position then moves exactly with each append.
    pub async fn a_conditional_append_refuses_a_document_that_moved<S: DocumentStore>(store: S) {
        let (a, b) = (
            uuid::Uuid::from_bytes([5; 16]),
            uuid::Uuid::from_bytes([6; 16]),
        );
        let (mut da, mut db) = (automerge::AutoCommit::new(), automerge::AutoCommit::new());
        assert_eq!(store.position(a).await.expect("position"), None);
        let a1 = change(&mut da, "x", 1);
        let batch = |id, changes: Vec<([u8; 32], Vec<u8>)>, base| AppendBatch {
            id,
            kind: DocKind::Visit,
            enterprise: ent(1),
            changes,
            base_seq: base,
        };
        let seqs = store
            .append_many(&[batch(a, vec![a1.clone()], Some(0))])
            .await
            .expect("a new document at base 0");
        assert_eq!(store.position(a).await.expect("position"), Some(seqs[0]));
        // A second writer that also read "absent" is too late.
        let a1b = change(&mut automerge::AutoCommit::new(), "y", 1);
        assert!(matches!(
            store.append_many(&[batch(a, vec![a1b], Some(0))]).await,
            Err(StoreError::Stale(id)) if id == a
        ));
        // Another writer moves `a` on; a batch validated against the older copy is refused,
        // and its other part (a new document) is not stored either.
        let a2 = change(&mut da, "x", 2);
        let moved = store
            .append_many(&[batch(a, vec![a2], Some(seqs[0]))])
            .await
            .expect("at the current position")[0];
        assert!(moved > seqs[0]);
        let top = store.max_seq().await.expect("max");
        let a3 = change(&mut da, "x", 3);
        let b1 = change(&mut db, "z", 1);
        let stale = store
            .append_many(&[
                batch(b, vec![b1.clone()], Some(0)),
                batch(a, vec![a3.clone()], Some(seqs[0])),
            ])
            .await;
        assert!(
            matches!(stale, Err(StoreError::Stale(id)) if id == a),
            "{stale:?}"
        );
        assert_eq!(store.max_seq().await.expect("max"), top, "nothing stored");
        assert_eq!(store.position(b).await.expect("position"), None);
        // Re-read, re-checked: the same parts at the right base go in.
        let seqs = store
            .append_many(&[batch(b, vec![b1], Some(0)), batch(a, vec![a3], Some(moved))])
            .await
            .expect("at the current positions");
        assert_eq!(store.position(a).await.expect("position"), Some(seqs[1]));
        assert_eq!(store.position(b).await.expect("position"), Some(seqs[0]));
    }

    /// A document keeps the kind and enterprise it was created with.
    pub async fn a_document_cannot_change_enterprise<S: DocumentStore>(store: S) {
        let id = uuid::Uuid::from_bytes([7; 16]);
        let mut doc = automerge::AutoCommit::new();
        let c1 = change(&mut doc, "a", 1);
        let c2 = change(&mut doc, "a", 2);
        store
            .append(id, DocKind::Hazard, ent(1), &[c1])
            .await
            .expect("append");
        assert!(matches!(
            store.append(id, DocKind::Hazard, ent(2), &[c2]).await,
            Err(StoreError::Conflict(_))
        ));
    }

    /// Compaction keeps the document whole and later changes still load.
    pub async fn compaction_keeps_everything<S: DocumentStore>(store: S) {
        let id = uuid::Uuid::from_bytes([3; 16]);
        let mut doc = automerge::AutoCommit::new();
        let mut last = 0;
        for i in 0..5 {
            let c = change(&mut doc, "n", i);
            last = store
                .append(id, DocKind::Visit, ent(1), &[c])
                .await
                .expect("append");
        }
        store.compact(id, doc.save(), last).await.expect("compact");
        let c = change(&mut doc, "n", 99);
        store
            .append(id, DocKind::Visit, ent(1), &[c])
            .await
            .expect("append");
        let loaded = store.load(id).await.expect("load").expect("exists");
        assert_eq!(
            loaded.changes.len(),
            1,
            "only changes after the snapshot are replayed"
        );
        assert_eq!(
            loaded.into_automerge().expect("rebuild").get_heads(),
            doc.get_heads()
        );
        // The log is still complete for incremental sync.
        let all = store
            .changes_since(0, u64::MAX, &[ent(1)], 100)
            .await
            .expect("since");
        assert_eq!(all.len(), 6);
    }

    /// Changes since a cursor are filtered by enterprise, bounded, limited and in order.
    pub async fn changes_since_filters_and_orders<S: DocumentStore>(store: S) {
        let a = uuid::Uuid::from_bytes([1; 16]);
        let b = uuid::Uuid::from_bytes([2; 16]);
        let mut da = automerge::AutoCommit::new();
        let mut db = automerge::AutoCommit::new();
        for i in 0..3 {
            let c = change(&mut da, "x", i);
            store
                .append(a, DocKind::Visit, ent(1), &[c])
                .await
                .expect("append");
            let c = change(&mut db, "y", i);
            store
                .append(b, DocKind::Hazard, ent(2), &[c])
                .await
                .expect("append");
        }
        let only_a = store
            .changes_since(0, u64::MAX, &[ent(1)], 100)
            .await
            .expect("since");
        assert_eq!(only_a.len(), 3);
        assert!(
            only_a
                .iter()
                .all(|c| c.doc == a && c.kind == DocKind::Visit)
        );
        assert!(only_a.windows(2).all(|w| w[0].seq < w[1].seq));
        let after_first = store
            .changes_since(only_a[0].seq, u64::MAX, &[ent(1), ent(2)], 100)
            .await
            .expect("since");
        assert_eq!(after_first.len(), 5);
        let limited = store
            .changes_since(0, u64::MAX, &[ent(1), ent(2)], 2)
            .await
            .expect("since");
        assert_eq!(limited.len(), 2);
        let upto = store
            .changes_since(0, only_a[1].seq, &[ent(1)], 100)
            .await
            .expect("since");
        assert_eq!(upto.len(), 2);
        assert!(
            store
                .changes_since(0, u64::MAX, &[ent(9)], 100)
                .await
                .expect("since")
                .is_empty()
        );
        let docs = store.docs_of(&[ent(2)]).await.expect("docs");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].id, b);
    }

    /// The key-value space stores and overwrites.
    pub async fn kv_round_trip<S: DocumentStore>(store: S) {
        assert_eq!(store.get_kv("cursor").await.expect("get"), None);
        store.put_kv("cursor", b"1").await.expect("put");
        store.put_kv("cursor", b"22").await.expect("put");
        assert_eq!(
            store.get_kv("cursor").await.expect("get"),
            Some(b"22".to_vec())
        );
    }

    /// Deliveries are per device, replaced and forgotten.
    pub async fn delivery_log_round_trip<S: DeliveryLog>(store: S) {
        let d1 = DeviceId::from_uuid(uuid::Uuid::from_bytes([1; 16]));
        let d2 = DeviceId::from_uuid(uuid::Uuid::from_bytes([2; 16]));
        store
            .record_delivery(d1, &[ent(1), ent(2)], 5, &[])
            .await
            .expect("record");
        store
            .record_delivery(d1, &[ent(2)], 9, &[ent(1)])
            .await
            .expect("record");
        assert_eq!(
            store.delivered(d1).await.expect("delivered"),
            vec![(ent(2), 9)]
        );
        assert!(store.delivered(d2).await.expect("delivered").is_empty());
    }
}

/// Generates the conformance tests for a backend.
///
/// `$attr` is the test attribute to use (`tokio::test`, or `test` with a blocking wrapper), and
/// `$make` an async expression that yields a fresh, empty store.
///
/// ```ignore
/// sync_core::store_conformance_tests!(tokio::test, async { MyStore::open_temp().await });
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($attr:meta, $make:expr) => {
        $crate::store_conformance_tests!(@doc $attr, $make, append_and_load_round_trip);
        $crate::store_conformance_tests!(@doc $attr, $make, append_many_stores_every_part);
        $crate::store_conformance_tests!(@doc $attr, $make, a_document_cannot_change_enterprise);
        $crate::store_conformance_tests!(@doc $attr, $make, a_conditional_append_refuses_a_document_that_moved);
        $crate::store_conformance_tests!(@doc $attr, $make, compaction_keeps_everything);
        $crate::store_conformance_tests!(@doc $attr, $make, changes_since_filters_and_orders);
        $crate::store_conformance_tests!(@doc $attr, $make, kv_round_trip);
    };
    (delivery $attr:meta, $make:expr) => {
        $crate::store_conformance_tests!(@doc $attr, $make, delivery_log_round_trip);
    };
    // Blocking backends: plain `#[test]` functions that drive each case with `$runner`
    // (e.g. `sync_core::store::block_on`); `$make` is a plain expression yielding a fresh store.
    (blocking $runner:path, $make:expr) => {
        $crate::store_conformance_tests!(@blocking $runner, $make, append_and_load_round_trip);
        $crate::store_conformance_tests!(@blocking $runner, $make, append_many_stores_every_part);
        $crate::store_conformance_tests!(@blocking $runner, $make, a_document_cannot_change_enterprise);
        $crate::store_conformance_tests!(@blocking $runner, $make, a_conditional_append_refuses_a_document_that_moved);
        $crate::store_conformance_tests!(@blocking $runner, $make, compaction_keeps_everything);
        $crate::store_conformance_tests!(@blocking $runner, $make, changes_since_filters_and_orders);
        $crate::store_conformance_tests!(@blocking $runner, $make, kv_round_trip);
    };
    (blocking delivery $runner:path, $make:expr) => {
        $crate::store_conformance_tests!(@blocking $runner, $make, delivery_log_round_trip);
    };
    (@blocking $runner:path, $make:expr, $name:ident) => {
        #[test]
        fn $name() {
            $runner($crate::store::conformance::$name($make));
        }
    };
    (@doc $attr:meta, $make:expr, $name:ident) => {
        #[$attr]
        async fn $name() {
            let store = $make.await;
            $crate::store::conformance::$name(store).await;
        }
    };
}

/// Runs a future that never waits on I/O to completion (memory and blocking backends).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The memory store's futures are ready at once, so the minimal executor runs them.
    crate::store_conformance_tests!(blocking block_on, MemoryStore::new());
    crate::store_conformance_tests!(blocking delivery block_on, MemoryStore::new());
}
