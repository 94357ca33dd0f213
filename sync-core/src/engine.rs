//! The two ends of the sync protocol, sans I/O.
//!
//! [`Hub`] is the server's side: generic over a [`DocumentStore`] + [`DeliveryLog`], it
//! validates incoming batches, makes accepted changes durable *before* answering, and computes
//! what the device lacks. The HTTP server wraps it; tests and the field simulator drive it
//! directly with a [`MemoryStore`](crate::store::MemoryStore).
//!
//! [`Replica`] is a client's side in memory (what the phone keeps durably in SQLite): documents
//! with the server heads last seen, and the cursor. It builds requests and applies responses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use crate::doc::{DocKind, Header};
use crate::domain::Author;
use crate::ids::{EnterpriseId, TownshipId};
use crate::protocol::{DocChanges, DocRefusal, DocUpdate, Payload, SyncRequest, SyncResponse};
use crate::store::{AppendBatch, DeliveryLog, DocumentStore, StoreError};
use crate::validate::{self, Accepted, ChangeRefusal, RefusalCode};

/// What the server's records say of the enterprises an author may work on: which they are, and
/// the township each is registered in. A new document must name its enterprise's township
/// (a made-up township would hide a major hazard from the regulator who must close it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    townships: HashMap<EnterpriseId, TownshipId>,
}

impl Reach {
    /// Whether the enterprise is in reach.
    pub fn contains(&self, enterprise: &EnterpriseId) -> bool {
        self.townships.contains_key(enterprise)
    }

    /// The township the enterprise is registered in, when it is in reach.
    pub fn township_of(&self, enterprise: &EnterpriseId) -> Option<TownshipId> {
        self.townships.get(enterprise).copied()
    }

    /// The enterprises in reach, in no particular order.
    pub fn enterprises(&self) -> impl Iterator<Item = &EnterpriseId> {
        self.townships.keys()
    }

    /// How many enterprises are in reach.
    pub fn len(&self) -> usize {
        self.townships.len()
    }

    /// Whether nothing is in reach.
    pub fn is_empty(&self) -> bool {
        self.townships.is_empty()
    }
}

impl FromIterator<(EnterpriseId, TownshipId)> for Reach {
    fn from_iter<I: IntoIterator<Item = (EnterpriseId, TownshipId)>>(iter: I) -> Self {
        Self {
            townships: iter.into_iter().collect(),
        }
    }
}

/// Limits on one response.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Most changes sent in one response (the rest follow with `more`).
    pub max_changes: usize,
    /// Rough byte budget for whole documents in one response.
    pub max_whole_bytes: usize,
    /// Documents kept in memory.
    pub cache_docs: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        Self {
            max_changes: 20_000,
            max_whole_bytes: 16 * 1024 * 1024,
            cache_docs: 4_096,
        }
    }
}

/// A batch that was accepted, for the caller to project into read models.
#[derive(Debug)]
pub struct Applied {
    /// The document's header.
    pub header: Header,
    /// The typed document after the batch.
    pub typed: crate::doc::TypedDoc,
    /// The heads of the document `typed` was read from (the batch applied to the copy the
    /// validator saw): a projection may reuse `typed` while the hub's copy still has them.
    pub heads: Vec<ChangeHash>,
    /// How many changes were new.
    pub new_changes: usize,
}

/// The outcome of one sync.
#[derive(Debug)]
pub struct SyncOutcome {
    /// What to send back.
    pub response: SyncResponse,
    /// Documents changed by this request (for projections).
    pub applied: Vec<Applied>,
}

/// A failure of the hub (never a refusal: refusals are part of the response).
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The store failed; nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A document's batch validated in a request, waiting to be stored with the others.
#[derive(Debug)]
struct StagedDoc {
    id: uuid::Uuid,
    kind: DocKind,
    /// The copy it was validated against (from the cache or the store).
    before: Option<Arc<Automerge>>,
    /// The position in the store of `before` (0: the document was not stored).
    base: u64,
    accepted: Accepted,
}

/// The batches of one request, in the order staged, one per document.
#[derive(Debug, Default)]
struct Staging {
    docs: Vec<StagedDoc>,
    index: HashMap<uuid::Uuid, usize>,
}

/// The server's side of sync.
#[derive(Debug)]
pub struct Hub<S> {
    store: S,
    limits: HubLimits,
    cache: Mutex<DocCache>,
}

/// A bounded cache of loaded documents (least recently used out first). Entries are shared
/// (`Arc`) so a request reads a document without copying it; an accepted batch is applied to the
/// cached entry in place (copy-on-write when another request still holds it). Each entry knows
/// its position in the store (the document's `last_seq` it holds every change up to), which is
/// what a conditional append and, over a shared store, each use are checked against.
#[derive(Debug, Default)]
struct DocCache {
    docs: HashMap<uuid::Uuid, Cached>,
    tick: u64,
    cap: usize,
}

#[derive(Debug)]
struct Cached {
    doc: Arc<Automerge>,
    /// The document's position in the store that `doc` holds.
    seq: u64,
    /// Last use, for eviction.
    tick: u64,
}

impl DocCache {
    fn get(&mut self, id: &uuid::Uuid) -> Option<(Arc<Automerge>, u64)> {
        self.tick += 1;
        let tick = self.tick;
        self.docs.get_mut(id).map(|c| {
            c.tick = tick;
            (Arc::clone(&c.doc), c.seq)
        })
    }

    /// Stores a version read from the store at position `seq`. A cached version that is at
    /// least as far along is kept (every copy read at a position holds exactly the document's
    /// changes up to it, so the later one holds the earlier). Returns the cached copy.
    fn put(&mut self, id: uuid::Uuid, doc: Automerge, seq: u64) -> (Arc<Automerge>, u64) {
        self.tick += 1;
        if let Some(cached) = self.docs.get_mut(&id) {
            cached.tick = self.tick;
            if cached.seq >= seq {
                return (cached.doc.clone(), cached.seq);
            }
            cached.doc = Arc::new(doc);
            cached.seq = seq;
            return (cached.doc.clone(), seq);
        }
        let doc = Arc::new(doc);
        self.insert(id, doc.clone(), seq);
        (doc, seq)
    }

    /// Records a batch just made durable by a conditional append: `before` is the copy it was
    /// validated against (at position `base`), `after` that copy with the batch applied, now at
    /// position `seq`. When the cache still holds `before`, `after` replaces it; when it holds
    /// another copy at the same base, the batch's changes are applied to it; a cached copy at
    /// any other position is dropped (the next use reads the store).
    fn accepted(
        &mut self,
        id: uuid::Uuid,
        before: Option<&Arc<Automerge>>,
        base: u64,
        changes: &[Change],
        after: &Arc<Automerge>,
        seq: u64,
    ) {
        self.tick += 1;
        let tick = self.tick;
        let Some(cached) = self.docs.get_mut(&id) else {
            self.insert(id, after.clone(), seq);
            return;
        };
        cached.tick = tick;
        if before.is_some_and(|b| Arc::ptr_eq(b, &cached.doc)) {
            cached.doc = after.clone();
            cached.seq = seq;
            return;
        }
        if cached.seq == base {
            let doc = Arc::make_mut(&mut cached.doc);
            if doc.apply_changes(changes.iter().cloned()).is_ok()
                && changes
                    .iter()
                    .all(|c| doc.get_change_by_hash(&c.hash()).is_some())
            {
                cached.seq = seq;
                return;
            }
        }
        self.docs.remove(&id);
    }

    /// Drops a document's cached copy (after a failed store: the next access reloads it).
    fn forget(&mut self, id: &uuid::Uuid) {
        self.docs.remove(id);
    }

    fn insert(&mut self, id: uuid::Uuid, doc: Arc<Automerge>, seq: u64) {
        if self.docs.len() >= self.cap.max(1)
            && let Some(oldest) = self
                .docs
                .iter()
                .min_by_key(|(_, c)| c.tick)
                .map(|(k, _)| *k)
        {
            self.docs.remove(&oldest);
        }
        let tick = self.tick;
        self.docs.insert(id, Cached { doc, seq, tick });
    }

    fn len(&self) -> usize {
        self.docs.len()
    }
}

/// How many times a request is validated again after its append found a document moved on
/// by a concurrent request ([`StoreError::Stale`]) before the failure is returned.
const STALE_ATTEMPTS: usize = 8;

impl<S: DocumentStore + DeliveryLog> Hub<S> {
    /// A hub over a store.
    pub fn new(store: S, limits: HubLimits) -> Self {
        Self {
            store,
            limits,
            cache: Mutex::new(DocCache {
                cap: limits.cache_docs,
                ..Default::default()
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// How many documents are held in memory.
    pub fn cached_docs(&self) -> usize {
        self.cache().len()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, DocCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads a document (from the cache or the store).
    pub async fn load(&self, id: uuid::Uuid) -> Result<Option<Automerge>, HubError> {
        Ok(self.load_shared(id).await?.map(|d| (*d).clone()))
    }

    /// Loads a document without copying it when it is cached.
    pub async fn load_shared(&self, id: uuid::Uuid) -> Result<Option<Arc<Automerge>>, HubError> {
        Ok(self.load_positioned(id).await?.map(|(doc, _)| doc))
    }

    /// Loads a document with its position in the store. A cached copy is used as is when this
    /// process is the store's only writer; over a shared store (several server instances on
    /// one database) only when the stored position is still the cached one.
    async fn load_positioned(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<(Arc<Automerge>, u64)>, HubError> {
        self.load_checked(id, None).await
    }

    /// [`load_positioned`](Self::load_positioned) with the stored position already read
    /// (`Some(None)`: not stored), as a request reads its documents' positions in one go.
    async fn load_checked(
        &self,
        id: uuid::Uuid,
        stored: Option<Option<u64>>,
    ) -> Result<Option<(Arc<Automerge>, u64)>, HubError> {
        let cached = self.cache().get(&id);
        if let Some((doc, seq)) = cached {
            if !self.store.shared() {
                return Ok(Some((doc, seq)));
            }
            let stored = match stored {
                Some(known) => known,
                None => self.store.position(id).await?,
            };
            if stored == Some(seq) {
                return Ok(Some((doc, seq)));
            }
        } else if stored == Some(None) {
            return Ok(None);
        }
        self.load_stored(id).await
    }

    /// The stored positions of a request's documents, read in one go over a shared store
    /// (nothing to read otherwise: the cache is exact).
    async fn request_positions(
        &self,
        docs: &[&DocChanges],
    ) -> Result<HashMap<uuid::Uuid, Option<u64>>, HubError> {
        if !self.store.shared() || docs.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<uuid::Uuid> = docs.iter().map(|d| d.id).collect();
        let positions = self.store.positions(&ids).await?;
        Ok(ids.into_iter().zip(positions).collect())
    }

    /// Reads a document from the store into the cache.
    async fn load_stored(&self, id: uuid::Uuid) -> Result<Option<(Arc<Automerge>, u64)>, HubError> {
        let Some(loaded) = self.store.load(id).await? else {
            return Ok(None);
        };
        let seq = loaded.meta.last_seq;
        let doc = loaded.into_automerge()?;
        Ok(Some(self.cache().put(id, doc, seq)))
    }

    /// A copy holding at least every change up to position `known` (read from the store's
    /// metadata): the cached one when it is that far along, else the stored one.
    async fn load_since_known(
        &self,
        id: uuid::Uuid,
        known: u64,
    ) -> Result<Option<Arc<Automerge>>, HubError> {
        if let Some((doc, seq)) = self.cache().get(&id)
            && seq >= known
        {
            return Ok(Some(doc));
        }
        Ok(self.load_stored(id).await?.map(|(doc, _)| doc))
    }

    /// Any copy, however old: for what never changes once a document exists (its header).
    async fn load_any(&self, id: uuid::Uuid) -> Result<Option<Arc<Automerge>>, HubError> {
        if let Some((doc, _)) = self.cache().get(&id) {
            return Ok(Some(doc));
        }
        Ok(self.load_stored(id).await?.map(|(doc, _)| doc))
    }

    /// Validates and stores one document's batch as `author`. `in_scope` tells which
    /// enterprises the author may access. Durable when it returns `Ok(Ok(_))`.
    pub async fn ingest(
        &self,
        author: &Author,
        scope: &Reach,
        id: uuid::Uuid,
        kind: DocKind,
        changes: &[Vec<u8>],
    ) -> Result<Result<Accepted, DocRefusal>, HubError> {
        let mut attempt = 0;
        let accepted = loop {
            attempt += 1;
            let mut staged = Staging::default();
            if let Err(refusal) = self
                .stage(author, scope, id, kind, changes, None, &mut staged)
                .await?
            {
                return Ok(Err(refusal));
            }
            match self.store_staged(staged).await {
                Ok(mut accepted) => break accepted.pop(),
                Err(HubError::Store(StoreError::Stale(_))) if attempt < STALE_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
        };
        let accepted = accepted.ok_or_else(|| {
            HubError::Store(StoreError::Backend(
                "an accepted batch was not staged".into(),
            ))
        })?;
        Ok(Ok(accepted))
    }

    /// Validates one document's batch against the latest copy (one staged earlier in this
    /// request, else the cache or the store) and stages it. Nothing is stored yet.
    #[allow(clippy::too_many_arguments)]
    async fn stage(
        &self,
        author: &Author,
        scope: &Reach,
        id: uuid::Uuid,
        kind: DocKind,
        changes: &[Vec<u8>],
        stored: Option<Option<u64>>,
        staged: &mut Staging,
    ) -> Result<Result<(), DocRefusal>, HubError> {
        let earlier = staged.index.get(&id).copied();
        let (before, base) = match earlier {
            Some(i) => (
                Some(staged.docs[i].accepted.doc.clone()),
                staged.docs[i].base,
            ),
            None => match self.load_checked(id, stored).await? {
                Some((doc, seq)) => (Some(doc), seq),
                None => (None, 0),
            },
        };
        let in_scope = |h: &Header| scope.contains(&h.enterprise);
        let mut verdict =
            validate::validate_batch(before.as_deref(), id, kind, changes, author, &in_scope);
        if let Ok(accepted) = &verdict
            && accepted.created
            && let Some(reason) = self.check_references(scope, accepted, staged).await?
        {
            verdict = Err(vec![reason]);
        }
        let accepted = match verdict {
            Err(reasons) => return Ok(Err(DocRefusal { id, reasons })),
            Ok(accepted) => accepted,
        };
        match earlier {
            // The same document twice in one request: one batch, validated in order.
            Some(i) => {
                let first = &mut staged.docs[i];
                let mut new_changes = std::mem::take(&mut first.accepted.new_changes);
                new_changes.extend(accepted.new_changes);
                let created = first.accepted.created || accepted.created;
                first.accepted = Accepted {
                    new_changes,
                    created,
                    ..accepted
                };
            }
            None => {
                staged.index.insert(id, staged.docs.len());
                staged.docs.push(StagedDoc {
                    id,
                    kind,
                    before,
                    base,
                    accepted,
                });
            }
        }
        Ok(Ok(()))
    }

    /// Stores every staged batch in one conditional [`DocumentStore::append_many`] (each
    /// document at the position it was validated at), then records them in the cache. On a
    /// store failure the cached copies of these documents are dropped (some parts may have
    /// been stored, or another writer moved them on), so the next access reads them from the
    /// store.
    async fn store_staged(&self, staged: Staging) -> Result<Vec<Accepted>, HubError> {
        let batches: Vec<AppendBatch> = staged
            .docs
            .iter()
            .filter(|s| !s.accepted.new_changes.is_empty())
            .map(|s| AppendBatch {
                base_seq: Some(s.base),
                id: s.id,
                kind: s.kind,
                enterprise: s.accepted.header.enterprise,
                changes: s
                    .accepted
                    .new_changes
                    .iter()
                    .map(|c| (c.hash().0, c.raw_bytes().to_vec()))
                    .collect(),
            })
            .collect();
        let seqs = if batches.is_empty() {
            Vec::new()
        } else {
            match self.store.append_many(&batches).await {
                Ok(seqs) => seqs,
                Err(e) => {
                    let mut cache = self.cache();
                    for b in &batches {
                        cache.forget(&b.id);
                    }
                    return Err(e.into());
                }
            }
        };
        let mut seqs = seqs.into_iter();
        let mut cache = self.cache();
        Ok(staged
            .docs
            .into_iter()
            .map(|s| {
                if !s.accepted.new_changes.is_empty() {
                    match seqs.next() {
                        Some(seq) => cache.accepted(
                            s.id,
                            s.before.as_ref(),
                            s.base,
                            &s.accepted.new_changes,
                            &s.accepted.doc,
                            seq,
                        ),
                        None => cache.forget(&s.id),
                    }
                }
                s.accepted
            })
            .collect())
    }

    /// Handles one sync request from `author`, whose readable enterprises are `scope`.
    pub async fn sync(
        &self,
        author: &Author,
        scope: &Reach,
        req: &SyncRequest,
    ) -> Result<SyncOutcome, HubError> {
        let mut response = SyncResponse::default();
        let mut applied = Vec::new();
        let mut sent_hashes: HashSet<[u8; 32]> = HashSet::new();
        let sent_docs: HashSet<uuid::Uuid> = req.docs.iter().map(|d| d.id).collect();
        // Visits first: a new hazard is checked against its visit, which may come in the same
        // request.
        let mut docs: Vec<&DocChanges> = req.docs.iter().collect();
        docs.sort_by_key(|d| d.kind != DocKind::Visit);
        // Changes the client sent (accepted or already known) need not come back.
        for d in &docs {
            for raw in &d.changes {
                if let Ok(c) = Change::from_bytes(raw.clone()) {
                    sent_hashes.insert(c.hash().0);
                }
            }
        }
        // Every accepted batch of the request in one append: one commit, and on a shared
        // database one turn of the global order instead of one per document. When a document
        // moved on between its validation and the append (another request, or another server
        // instance, stored changes to it), nothing is stored and the request is validated
        // again against the documents as they are now.
        let mut attempt = 0;
        let stored = loop {
            attempt += 1;
            response.refused.clear();
            let positions = self.request_positions(&docs).await?;
            let mut staged = Staging::default();
            for d in &docs {
                let stored = positions.get(&d.id).copied();
                if let Err(refusal) = self
                    .stage(author, scope, d.id, d.kind, &d.changes, stored, &mut staged)
                    .await?
                {
                    response.refused.push(refusal);
                }
            }
            match self.store_staged(staged).await {
                Ok(stored) => break stored,
                Err(HubError::Store(StoreError::Stale(_))) if attempt < STALE_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
        };
        for acc in stored {
            if !acc.new_changes.is_empty() {
                applied.push(Applied {
                    heads: acc.doc.get_heads(),
                    header: acc.header,
                    typed: acc.typed,
                    new_changes: acc.new_changes.len(),
                });
            }
        }

        // What the device lacks. Read the upper bound first: anything stored later is sent next
        // time, so nothing can be skipped.
        let upto = self.store.max_seq().await?;
        let delivered: HashMap<EnterpriseId, u64> = self
            .store
            .delivered(author.device)
            .await?
            .into_iter()
            .collect();
        let mut fresh: Vec<EnterpriseId> = scope
            .enterprises()
            .filter(|e| delivered.get(e).is_none_or(|seq| *seq > req.cursor))
            .copied()
            .collect();
        fresh.sort();
        let removed_ents: Vec<EnterpriseId> = delivered
            .keys()
            .filter(|e| !scope.contains(e))
            .copied()
            .collect();
        if !removed_ents.is_empty() {
            for meta in self.store.docs_of(&removed_ents).await? {
                response.removed.push(meta.id);
            }
        }

        // Whole documents of enterprises newly in scope, within the byte budget.
        let mut budget = self.limits.max_whole_bytes;
        let mut delivered_now = Vec::new();
        for ent in &fresh {
            if budget == 0 {
                response.more = true;
                break;
            }
            for meta in self.store.docs_of(std::slice::from_ref(ent)).await? {
                // At least as far along as the metadata read after `upto`: a copy cached
                // before a concurrent commit landed would miss a change the cursor passes.
                if let Some(doc) = self.load_since_known(meta.id, meta.last_seq).await? {
                    if !readable(author, &doc) {
                        continue;
                    }
                    // A document the device sent in this request: it holds what it sent, so
                    // it gets only the rest (on a first sync after capture offline, nothing).
                    if sent_docs.contains(&meta.id) {
                        let rest: Vec<Vec<u8>> = doc
                            .get_changes(&[])
                            .into_iter()
                            .filter(|c| !sent_hashes.contains(&c.hash().0))
                            .map(|c| c.raw_bytes().to_vec())
                            .collect();
                        if !rest.is_empty() {
                            let size: usize = rest.iter().map(Vec::len).sum();
                            budget = budget.saturating_sub(size);
                            response.updates.push(DocUpdate {
                                id: meta.id,
                                kind: meta.kind,
                                payload: Payload::Changes(rest),
                            });
                        }
                        continue;
                    }
                    let bytes = doc.save();
                    budget = budget.saturating_sub(bytes.len());
                    response.updates.push(DocUpdate {
                        id: meta.id,
                        kind: meta.kind,
                        payload: Payload::Whole(bytes),
                    });
                }
            }
            delivered_now.push(*ent);
        }

        // Changes since the cursor in enterprises the device already holds.
        let held: Vec<EnterpriseId> = scope
            .enterprises()
            .filter(|e| !fresh.contains(e))
            .copied()
            .collect();
        let mut cursor = upto;
        if !held.is_empty() && req.cursor < upto {
            let changes = self
                .store
                .changes_since(req.cursor, upto, &held, self.limits.max_changes)
                .await?;
            if changes.len() == self.limits.max_changes
                && let Some(last) = changes.last()
            {
                cursor = last.seq;
                response.more = true;
            }
            let mut per_doc: BTreeMap<uuid::Uuid, (DocKind, Vec<Vec<u8>>)> = BTreeMap::new();
            for c in changes {
                if sent_hashes.contains(&c.hash) {
                    continue;
                }
                per_doc
                    .entry(c.doc)
                    .or_insert_with(|| (c.kind, Vec::new()))
                    .1
                    .push(c.bytes);
            }
            for (id, (kind, changes)) in per_doc {
                // Reads follow the author's organisation, not only the enterprise: another
                // agency serving the same enterprise receives nothing of this agency's work.
                match self.load_any(id).await? {
                    Some(doc) if readable(author, &doc) => {}
                    _ => continue,
                }
                response.updates.push(DocUpdate {
                    id,
                    kind,
                    payload: Payload::Changes(changes),
                });
            }
        }
        self.store
            .record_delivery(author.device, &delivered_now, cursor, &removed_ents)
            .await?;
        response.cursor = cursor;
        Ok(SyncOutcome { response, applied })
    }
}

impl<S: DocumentStore + DeliveryLog> Hub<S> {
    /// What a new document names that the server can check against its records: the township
    /// of its enterprise, and for a hazard its visit (same enterprise, same agency). `None`
    /// when everything holds.
    async fn check_references(
        &self,
        scope: &Reach,
        accepted: &Accepted,
        staged: &Staging,
    ) -> Result<Option<ChangeRefusal>, HubError> {
        let header = &accepted.header;
        let refusal = |code, detail: String| {
            Some(ChangeRefusal {
                change: None,
                code,
                detail,
            })
        };
        if scope.township_of(&header.enterprise) != Some(header.township) {
            return Ok(refusal(
                RefusalCode::TownshipMismatch,
                header.township.to_string(),
            ));
        }
        let crate::doc::TypedDoc::Hazard(hazard) = &accepted.typed else {
            return Ok(None);
        };
        let Ok(visit_id) = uuid::Uuid::parse_str(&hazard.visit_id) else {
            return Ok(refusal(RefusalCode::Malformed, "visit_id".into()));
        };
        // A visit staged earlier in the same request counts: visits are staged first.
        let visit = match staged.index.get(&visit_id) {
            Some(&i) => Some(staged.docs[i].accepted.doc.clone()),
            None => self.load_any(visit_id).await?,
        };
        let Some(visit) = visit else {
            return Ok(refusal(RefusalCode::VisitUnknown, visit_id.to_string()));
        };
        let same = crate::doc::read_header(&visit).is_ok_and(|v| {
            v.kind == DocKind::Visit
                && v.enterprise == header.enterprise
                && v.agency == header.agency
                && v.township == header.township
        });
        Ok((!same).then(|| ChangeRefusal {
            change: None,
            code: RefusalCode::VisitMismatch,
            detail: visit_id.to_string(),
        }))
    }
}

/// Whether `author` may read `doc`, whose enterprise is in the author's scope already: the
/// document must be their agency's, their enterprise's or their township's
/// ([`crate::policy::may_read`]).
fn readable(author: &Author, doc: &Automerge) -> bool {
    crate::doc::read_header(doc)
        .is_ok_and(|h| crate::policy::may_read(author.role, &author.org, &h, true))
}

/// One document on a client.
#[derive(Debug, Clone)]
pub struct ReplicaDoc {
    /// Kind.
    pub kind: DocKind,
    /// The document with local edits.
    pub doc: Automerge,
    /// Hashes the server is known to have (heads at the last sync plus what it sent).
    pub synced: Vec<ChangeHash>,
    /// Why the server refused the last batch, if it did.
    pub refused: Option<DocRefusal>,
}

impl ReplicaDoc {
    /// Local changes the server has not acknowledged.
    pub fn pending(&self) -> Vec<Vec<u8>> {
        self.doc
            .get_changes(&self.synced)
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }
}

/// A client's documents and cursor, in memory.
#[derive(Debug, Clone, Default)]
pub struct Replica {
    /// Documents by id.
    pub docs: BTreeMap<uuid::Uuid, ReplicaDoc>,
    /// Server cursor.
    pub cursor: u64,
}

/// What applying a response did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// Documents changed by the server's updates.
    pub changed: Vec<uuid::Uuid>,
    /// Documents refused.
    pub refused: Vec<uuid::Uuid>,
    /// Documents removed from scope.
    pub removed: Vec<uuid::Uuid>,
}

/// A response that could not be applied (the client keeps its state and retries later).
#[derive(Debug, thiserror::Error)]
#[error("could not apply a server update to {doc}: {detail}")]
pub struct ApplyError {
    /// Document.
    pub doc: uuid::Uuid,
    /// What failed.
    pub detail: String,
}

impl Replica {
    /// Builds the request: every document's changes since the server heads last seen.
    /// Returns it with the heads each document had, needed by [`Replica::apply`].
    ///
    /// Looks at every document; a caller that knows which documents it edited (as a phone's
    /// store knows its pending rows) uses [`Replica::request_for`], which costs nothing per
    /// untouched document.
    pub fn request(&self) -> (SyncRequest, HashMap<uuid::Uuid, Vec<ChangeHash>>) {
        self.request_of(self.docs.iter())
    }

    /// Like [`Replica::request`], but only for the documents `ids` (unknown ids are skipped):
    /// the changes of other documents stay pending for a later request.
    pub fn request_for(
        &self,
        ids: &[uuid::Uuid],
    ) -> (SyncRequest, HashMap<uuid::Uuid, Vec<ChangeHash>>) {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        self.request_of(
            ids.iter()
                .filter_map(|id| self.docs.get(id).map(|d| (id, d))),
        )
    }

    fn request_of<'a>(
        &self,
        docs_in: impl Iterator<Item = (&'a uuid::Uuid, &'a ReplicaDoc)>,
    ) -> (SyncRequest, HashMap<uuid::Uuid, Vec<ChangeHash>>) {
        let mut docs = Vec::new();
        let mut heads = HashMap::new();
        for (id, d) in docs_in {
            // Cheap check first: heads the server already has mean nothing is pending.
            if d.doc.get_heads().iter().all(|h| d.synced.contains(h)) {
                continue;
            }
            let pending = d.pending();
            if !pending.is_empty() {
                docs.push(DocChanges {
                    id: *id,
                    kind: d.kind,
                    changes: pending,
                });
                heads.insert(*id, d.doc.get_heads());
            }
        }
        (
            SyncRequest {
                cursor: self.cursor,
                docs,
            },
            heads,
        )
    }

    /// Applies a response to the request built by [`Replica::request`].
    pub fn apply(
        &mut self,
        sent_heads: &HashMap<uuid::Uuid, Vec<ChangeHash>>,
        resp: &SyncResponse,
    ) -> Result<ApplyReport, ApplyError> {
        let mut out = ApplyReport::default();
        let refused: HashMap<uuid::Uuid, &DocRefusal> =
            resp.refused.iter().map(|r| (r.id, r)).collect();
        // Documents the server accepted: it now has everything we sent.
        for (id, heads) in sent_heads {
            if let Some(d) = self.docs.get_mut(id) {
                if let Some(r) = refused.get(id) {
                    d.refused = Some((*r).clone());
                    out.refused.push(*id);
                } else {
                    d.synced.extend(heads.iter().copied());
                    d.refused = None;
                }
            }
        }
        for u in &resp.updates {
            let (received, merged) = match &u.payload {
                Payload::Changes(raw) => {
                    let mut changes = Vec::with_capacity(raw.len());
                    for r in raw {
                        changes.push(Change::from_bytes(r.clone()).map_err(|e| ApplyError {
                            doc: u.id,
                            detail: e.to_string(),
                        })?);
                    }
                    let hashes: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
                    let mut doc = self
                        .docs
                        .get(&u.id)
                        .map(|d| d.doc.clone())
                        .unwrap_or_default();
                    doc.apply_changes(changes).map_err(|e| ApplyError {
                        doc: u.id,
                        detail: e.to_string(),
                    })?;
                    (hashes, doc)
                }
                Payload::Whole(bytes) => {
                    let whole = crate::doc::load(bytes).map_err(|e| ApplyError {
                        doc: u.id,
                        detail: e.to_string(),
                    })?;
                    let heads = whole.get_heads();
                    let mut doc = self
                        .docs
                        .get(&u.id)
                        .map(|d| d.doc.clone())
                        .unwrap_or_default();
                    let mut whole = whole;
                    doc.merge(&mut whole).map_err(|e| ApplyError {
                        doc: u.id,
                        detail: e.to_string(),
                    })?;
                    (heads, doc)
                }
            };
            let entry = self.docs.entry(u.id).or_insert_with(|| ReplicaDoc {
                kind: u.kind,
                doc: Automerge::new(),
                synced: Vec::new(),
                refused: None,
            });
            entry.doc = merged;
            entry.synced.extend(received);
            compact_synced(entry);
            out.changed.push(u.id);
        }
        for id in &resp.removed {
            if self.docs.remove(id).is_some() {
                out.removed.push(*id);
            }
        }
        self.cursor = resp.cursor;
        Ok(out)
    }
}

/// Keeps `synced` small: hashes that are ancestors of others add nothing to `get_changes`.
fn compact_synced(d: &mut ReplicaDoc) {
    d.synced.sort();
    d.synced.dedup();
    if d.synced.len() > 16 {
        // Every known-synced hash present in the doc; the heads of the sub-document they span
        // are enough. Computed by forking at them.
        if let Ok(fork) = d.doc.fork_at(&d.synced) {
            d.synced = fork.get_heads();
        }
    }
}
