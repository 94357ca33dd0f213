//! Two hubs over one store, as two server instances over one PostgreSQL database: a hub never
//! validates a batch against a copy another writer has since moved past. Over a store that says
//! it is shared, each use of a cached copy is checked against the stored position first; over
//! one that claims a single writer (here falsely), the conditional append still refuses the
//! stale copy and the hub validates again against the stored document.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::World;
use sync_core::automerge::{Automerge, Change, ReadDoc as _};
use sync_core::doc::{DocKind, HazardDoc};
use sync_core::domain::Grade;
use sync_core::edit;
use sync_core::engine::{Hub, HubLimits};
use sync_core::ids::{DeviceId, EnterpriseId, EventId, HazardId, VisitId};
use sync_core::rectification::EventKind;
use sync_core::store::{
    AppendBatch, DeliveryLog, DocMeta, DocumentStore, LoadedDoc, MemoryStore, StoreError,
    StoredChange, block_on,
};

const T: i64 = 1_760_000_100_000;

/// One memory store seen by several hubs, saying whether it is shared, and counting the
/// conditional appends it refused as stale.
#[derive(Clone)]
struct Seen {
    store: Arc<MemoryStore>,
    shared: bool,
    stale: Arc<AtomicUsize>,
}

impl DocumentStore for Seen {
    async fn append(
        &self,
        id: uuid::Uuid,
        kind: DocKind,
        enterprise: EnterpriseId,
        changes: &[([u8; 32], Vec<u8>)],
    ) -> Result<u64, StoreError> {
        self.store.append(id, kind, enterprise, changes).await
    }
    async fn append_many(&self, batches: &[AppendBatch]) -> Result<Vec<u64>, StoreError> {
        let r = self.store.append_many(batches).await;
        if matches!(r, Err(StoreError::Stale(_))) {
            self.stale.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
    async fn position(&self, id: uuid::Uuid) -> Result<Option<u64>, StoreError> {
        self.store.position(id).await
    }
    fn shared(&self) -> bool {
        self.shared
    }
    async fn load(&self, id: uuid::Uuid) -> Result<Option<LoadedDoc>, StoreError> {
        self.store.load(id).await
    }
    async fn compact(
        &self,
        id: uuid::Uuid,
        snapshot: Vec<u8>,
        upto: u64,
    ) -> Result<(), StoreError> {
        self.store.compact(id, snapshot, upto).await
    }
    async fn changes_since(
        &self,
        after: u64,
        upto: u64,
        enterprises: &[EnterpriseId],
        limit: usize,
    ) -> Result<Vec<StoredChange>, StoreError> {
        self.store
            .changes_since(after, upto, enterprises, limit)
            .await
    }
    async fn docs_of(&self, enterprises: &[EnterpriseId]) -> Result<Vec<DocMeta>, StoreError> {
        self.store.docs_of(enterprises).await
    }
    async fn max_seq(&self) -> Result<u64, StoreError> {
        self.store.max_seq().await
    }
    async fn get_kv(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get_kv(key).await
    }
    async fn put_kv(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store.put_kv(key, value).await
    }
}

impl DeliveryLog for Seen {
    async fn delivered(&self, device: DeviceId) -> Result<Vec<(EnterpriseId, u64)>, StoreError> {
        self.store.delivered(device).await
    }
    async fn record_delivery(
        &self,
        device: DeviceId,
        added: &[EnterpriseId],
        seq: u64,
        removed: &[EnterpriseId],
    ) -> Result<(), StoreError> {
        self.store
            .record_delivery(device, added, seq, removed)
            .await
    }
}

fn hash_of(change: &[u8]) -> sync_core::automerge::ChangeHash {
    Change::from_bytes(change.to_vec()).unwrap().hash()
}

/// Hub A stores a notified hazard and keeps it cached; hub B, over the same store, records the
/// enterprise signing for it; then A takes an edit the inspector made on the copy before the
/// signature. Returns the copy A validated the edit against, what A's `load` gives, B's
/// change, and how many appends were refused as stale.
fn two_writers(shared: bool) -> (Automerge, Automerge, Vec<u8>, usize) {
    let w = World::new();
    let store = Seen {
        store: Arc::new(MemoryStore::new()),
        shared,
        stale: Arc::default(),
    };
    let a = Hub::new(store.clone(), HubLimits::default());
    let b = Hub::new(store.clone(), HubLimits::default());
    let (hid, vid) = (HazardId::new_random(), VisitId::new_random());
    let scope = w.scope(&w.inspector);
    let (_, _, visit) = w.visit(vid);
    block_on(a.ingest(
        &w.inspector,
        &scope,
        *vid.as_uuid(),
        DocKind::Visit,
        &[visit],
    ))
    .unwrap()
    .unwrap();
    let (doc, change) = w.hazard(hid, vid, Grade::Major);
    let (doc, notice) = w.notify(&doc);
    block_on(a.ingest(
        &w.inspector,
        &scope,
        *hid.as_uuid(),
        DocKind::Hazard,
        &[change, notice],
    ))
    .unwrap()
    .unwrap();

    // B: the enterprise signs for the notice.
    let signed = edit::record_event(
        &doc,
        &w.manager,
        EventId::new_random(),
        T,
        EventKind::SignedFor {
            signer: "张三".into(),
        },
    )
    .unwrap()
    .change
    .unwrap();
    let manager_scope = w.scope(&w.manager);
    block_on(b.ingest(
        &w.manager,
        &manager_scope,
        *hid.as_uuid(),
        DocKind::Hazard,
        std::slice::from_ref(&signed),
    ))
    .unwrap()
    .unwrap();

    // A: what it reads now, then the inspector's edit made before the signature arrived.
    let read = block_on(a.load(*hid.as_uuid())).unwrap().unwrap();
    let moved = edit::modify::<HazardDoc>(&doc, &w.inspector.actors[0], T, |h| {
        h.location = "二号车间东侧".into();
    })
    .unwrap()
    .change
    .unwrap();
    let accepted = block_on(a.ingest(
        &w.inspector,
        &scope,
        *hid.as_uuid(),
        DocKind::Hazard,
        &[moved],
    ))
    .unwrap()
    .unwrap();
    (
        (*accepted.doc).clone(),
        read,
        signed,
        store.stale.load(Ordering::SeqCst),
    )
}

#[test]
fn over_a_shared_store_each_cached_copy_is_checked_against_the_stored_position() {
    let (validated, read, signed, stale) = two_writers(true);
    let signature = hash_of(&signed);
    assert!(
        read.get_change_by_hash(&signature).is_some(),
        "A reads the other writer's change"
    );
    assert!(
        validated.get_change_by_hash(&signature).is_some(),
        "A validated against a copy holding the other writer's change"
    );
    assert_eq!(stale, 0, "the position check found it before any append");
}

#[test]
fn a_copy_another_writer_moved_past_is_never_the_one_validated_against() {
    // The store claims one writer, so A trusts its cache for reads; the append is what
    // catches the stale copy.
    let (validated, read, signed, stale) = two_writers(false);
    let signature = hash_of(&signed);
    assert!(
        read.get_change_by_hash(&signature).is_none(),
        "the premise: A's cache is behind the store"
    );
    assert!(
        validated.get_change_by_hash(&signature).is_some(),
        "A validated again against the stored copy"
    );
    assert_eq!(stale, 1, "the first append was refused as stale");
}
