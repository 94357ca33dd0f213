//! [`InspectionClient`]: the one handle an app holds. Every method blocks the calling thread
//! (the app calls from a background thread / coroutine / `Task`); network work runs on a small
//! tokio runtime the client owns. Every edit runs through `sync_core::edit` — the same policy
//! check the server makes — and is committed to SQLite before the method returns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use sync_core::automerge::{ActorId, Automerge, Change, ChangeHash};
use sync_core::doc::visit::ChecklistItem;
use sync_core::doc::{DocKind, HazardDoc, Header, TextField, TypedDoc, VisitDoc};
use sync_core::domain::{Author, Deadline, Grade, PhotoRef, Role, check_text, parse_category};
use sync_core::edit::{self, Edited};
use sync_core::ids::{AgencyId, DeviceId, EnterpriseId, EventId, TownshipId, UserId, VisitId};
use sync_core::protocol::{self, Payload, SyncResponse};
use sync_core::rectification::EventKind;

use crate::autosync::{self, Backoff, Sleeper, TokioSleeper};
use crate::error::BridgeError;
use crate::photo;
use crate::records::*;
use crate::store::{self, EnterpriseRow, LocalStore, PhotoRow, SessionRow};

/// Size of one photo upload chunk.
pub const PHOTO_CHUNK: usize = 256 * 1024;

/// Told when documents change on this phone (a local edit or a sync).
#[uniffi::export(callback_interface)]
pub trait ChangeListener: Send + Sync {
    /// The ids of the documents that changed.
    fn on_change(&self, doc_ids: Vec<String>);
}

pub(crate) struct Inner {
    pub(crate) store: LocalStore,
    data_dir: PathBuf,
    server: String,
    http: reqwest::Client,
    handle: tokio::runtime::Handle,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    listeners: Mutex<HashMap<u64, Arc<dyn ChangeListener>>>,
    next_listener: AtomicU64,
    /// One sync (and one token refresh) at a time.
    sync_lock: tokio::sync::Mutex<()>,
    max_edge: AtomicU32,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("data_dir", &self.data_dir)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // May run on a runtime thread (the last handle dropped by a task): never block there.
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
    }
}

/// The phone's client: local documents, session, sync and photos.
#[derive(Debug, uniffi::Object)]
pub struct InspectionClient {
    inner: Arc<Inner>,
}

/// Unregisters a listener on `cancel()` or when dropped.
#[derive(Debug, uniffi::Object)]
pub struct ListenerHandle {
    inner: Weak<Inner>,
    id: u64,
}

#[uniffi::export]
impl ListenerHandle {
    /// Stops notifications.
    pub fn cancel(&self) {
        if let Some(inner) = self.inner.upgrade() {
            inner
                .listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.id);
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Stops background sync on `cancel()` or when dropped.
#[derive(Debug, uniffi::Object)]
pub struct SyncHandle {
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[uniffi::export]
impl SyncHandle {
    /// Stops background sync (a sync in flight finishes its current step).
    pub fn cancel(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn parse_uuid(field: &str, s: &str) -> Result<uuid::Uuid, BridgeError> {
    uuid::Uuid::parse_str(s)
        .map_err(|_| BridgeError::invalid(field, format!("不是有效的编号 / not a valid id: {s:?}")))
}

#[uniffi::export]
impl InspectionClient {
    /// Opens (or creates) the phone's store in `data_dir` for the server at `server_url`.
    #[uniffi::constructor]
    pub fn new(data_dir: String, server_url: String) -> Result<Arc<Self>, BridgeError> {
        let dir = PathBuf::from(&data_dir);
        std::fs::create_dir_all(dir.join("photos"))?;
        let store = LocalStore::open(&dir.join("inspect.db"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("inspect-bridge")
            .enable_all()
            .build()
            .map_err(BridgeError::storage)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(BridgeError::network)?;
        Ok(Arc::new(Self {
            inner: Arc::new(Inner {
                store,
                data_dir: dir,
                server: server_url.trim_end_matches('/').to_owned(),
                http,
                handle: runtime.handle().clone(),
                runtime: Mutex::new(Some(runtime)),
                listeners: Mutex::new(HashMap::new()),
                next_listener: AtomicU64::new(1),
                sync_lock: tokio::sync::Mutex::new(()),
                max_edge: AtomicU32::new(photo::DEFAULT_MAX_EDGE),
            }),
        }))
    }

    /// Sets the longest edge photos are downscaled to (default 2048).
    pub fn set_max_photo_edge(&self, pixels: u32) {
        self.inner.max_edge.store(pixels.max(64), Ordering::Relaxed);
    }

    // ---- session ----

    /// Logs in: enrols this phone as a device of the user (once per data dir and user), then
    /// opens a session bound to it. Needs the network.
    pub fn login(
        &self,
        username: String,
        password: String,
        device_name: String,
        platform: String,
    ) -> Result<UserRecord, BridgeError> {
        self.inner
            .block_on(self.inner.login(username, password, device_name, platform))
    }

    /// Ends the session on the server (best effort) and forgets the tokens. Documents stay.
    pub fn logout(&self) -> Result<(), BridgeError> {
        self.inner.block_on(self.inner.logout())
    }

    /// The logged-in user, if any (works offline).
    pub fn current_user(&self) -> Result<Option<UserRecord>, BridgeError> {
        Ok(self.inner.store.session()?.and_then(|s| {
            s.access_token.as_ref().or(s.refresh_token.as_ref())?;
            Some(user_record(&s))
        }))
    }

    // ---- lists ----

    /// The enterprises the user may see: fetched when online, the cached list when offline.
    pub fn list_enterprises(&self) -> Result<Vec<EnterpriseRecord>, BridgeError> {
        match self.inner.block_on(self.inner.fetch_enterprises()) {
            Ok(()) | Err(BridgeError::Network { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(self
            .inner
            .store
            .enterprises()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Hazards on this phone that are not closed (from every visit, earlier ones included),
    /// optionally of one enterprise, by deadline.
    pub fn open_hazards(
        &self,
        enterprise_id: Option<String>,
    ) -> Result<Vec<HazardSummary>, BridgeError> {
        self.hazards(enterprise_id, false)
    }

    /// Every hazard on this phone, closed ones included.
    pub fn all_hazards(
        &self,
        enterprise_id: Option<String>,
    ) -> Result<Vec<HazardSummary>, BridgeError> {
        self.hazards(enterprise_id, true)
    }

    /// Ids of the visits on this phone.
    pub fn list_visits(&self, enterprise_id: Option<String>) -> Result<Vec<String>, BridgeError> {
        Ok(self
            .inner
            .store
            .summaries(Some(DocKind::Visit), enterprise_id.as_deref())?
            .into_iter()
            .map(|s| s.id)
            .collect())
    }

    /// A visit.
    pub fn get_visit(&self, visit_id: String) -> Result<VisitRecord, BridgeError> {
        let (_, doc) = self.inner.load(&visit_id)?;
        let v = VisitDoc::hydrate_from(&doc).map_err(BridgeError::storage)?;
        Ok((&v).into())
    }

    /// Every action on a hazard with whether the signed-in user may take it now, and the rule
    /// that stops it when not: what the app offers (the server gives the same answer).
    pub fn allowed_actions(&self, hazard_id: String) -> Result<Vec<ActionRecord>, BridgeError> {
        let author = self.inner.author()?;
        let (_, doc) = self.inner.load(&hazard_id)?;
        let h = HazardDoc::hydrate_from(&doc).map_err(BridgeError::storage)?;
        // A hazard on this phone is in the user's scope, unless it is kept only for unsent
        // edits after leaving it.
        let in_scope = !self
            .inner
            .store
            .is_out_of_scope(parse_uuid("hazard_id", &hazard_id)?)?;
        Ok(sync_core::actions::allowed_actions(&author, &h, in_scope)
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Inspector: picks the value of a field that two people set at once (one of
    /// `HazardRecord::conflicts`' values, or a new one).
    pub fn resolve_conflict(
        &self,
        hazard_id: String,
        field: String,
        value: String,
    ) -> Result<(), BridgeError> {
        check_text("field", &field, 64)?;
        if value.chars().count() > sync_core::limits::max_chars(&field) {
            return Err(BridgeError::invalid(
                "value",
                format!(
                    "取值过长（最多 {} 个字） / the value is too long",
                    sync_core::limits::max_chars(&field)
                ),
            ));
        }
        let author = self.inner.author()?;
        let (uid, doc) = self.inner.load(&hazard_id)?;
        let header = sync_core::doc::read_header(&doc).map_err(BridgeError::storage)?;
        if !edit::conflicts(&doc).iter().any(|c| c.field == field) {
            return Err(BridgeError::invalid(
                "field",
                "该字段只有一个值，无需选择 / the field holds a single value: nothing to resolve",
            ));
        }
        let edited = edit::resolve_conflict(&doc, &author, now_ms(), &field, &value).map_err(
            |e| match e {
                // The value does not fit the field (funds that are not a number, ...).
                edit::EditError::Write(w) => BridgeError::invalid("value", w),
                edit::EditError::Doc(d) => BridgeError::invalid("value", d.to_string()),
                other => other.into(),
            },
        )?;
        self.inner
            .commit(uid, DocKind::Hazard, header.enterprise, edited)
    }

    /// A hazard with its state and history.
    pub fn get_hazard(&self, hazard_id: String) -> Result<HazardRecord, BridgeError> {
        let (_, doc) = self.inner.load(&hazard_id)?;
        let h = HazardDoc::hydrate_from(&doc).map_err(BridgeError::storage)?;
        let mut rec: HazardRecord = (&h).into();
        rec.conflicts = edit::conflicts(&doc).into_iter().map(Into::into).collect();
        for p in rec
            .photos
            .iter_mut()
            .chain(rec.events.iter_mut().flat_map(|e| e.photos.iter_mut()))
        {
            p.local_path = self.inner.local_photo(&p.sha256);
        }
        Ok(rec)
    }

    // ---- visits ----

    /// Starts a visit to an enterprise (inspectors). Returns the visit id.
    pub fn start_visit(
        &self,
        enterprise_id: String,
        visit_kind: VisitKindRecord,
        place: String,
    ) -> Result<String, BridgeError> {
        let author = self.inner.author()?;
        if author.role != Role::Inspector {
            return Err(BridgeError::Refused {
                reason: "只有检查员可以开始检查 / only inspectors start visits".into(),
            });
        }
        let enterprise = self
            .inner
            .store
            .enterprises()?
            .into_iter()
            .find(|e| e.id == enterprise_id)
            .ok_or_else(|| BridgeError::not_found(format!("enterprise {enterprise_id}")))?;
        let now = now_ms();
        let header = Header {
            kind: DocKind::Visit,
            id: uuid::Uuid::new_v4(),
            schema: sync_core::doc::SCHEMA_VERSION,
            enterprise: EnterpriseId::parse(&enterprise.id)?,
            agency: AgencyId::from_uuid(author.org),
            township: TownshipId::parse(&enterprise.township_id)?,
            created_by: author.user,
            created_at: now,
        };
        let mut visit = VisitDoc::new(&header, visit_kind.into(), now);
        visit.place = place;
        let edited = edit::new_visit(&visit, &author, now)?;
        self.inner
            .commit(header.id, DocKind::Visit, header.enterprise, edited)?;
        Ok(header.id.to_string())
    }

    /// Changes a visit's details.
    pub fn edit_visit(&self, visit_id: String, patch: VisitPatch) -> Result<(), BridgeError> {
        let gps = patch.gps.map(TryInto::try_into).transpose()?;
        self.inner.edit_visit(&visit_id, move |v| {
            if let Some(p) = patch.place {
                v.place = p;
            }
            if let Some(n) = patch.notes {
                v.notes = TextField(n);
            }
            if let Some(a) = patch.overall_assessment {
                v.overall_assessment = TextField(a);
            }
            if gps.is_some() {
                v.gps = gps;
            }
            if let Some(e) = patch.ended_at {
                v.ended_at = Some(e);
            }
            for i in patch.add_inspectors {
                if !v.inspectors.contains(&i) {
                    v.inspectors.push(i);
                }
            }
        })
    }

    /// Adds or updates a checklist line (an empty `id` adds one). Returns the line's id.
    pub fn set_checklist_item(
        &self,
        visit_id: String,
        item: ChecklistItemRecord,
    ) -> Result<String, BridgeError> {
        check_text("title", &item.title, 500)?;
        let id = if item.id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            parse_uuid("id", &item.id)?.to_string()
        };
        let line = ChecklistItem {
            id: id.clone(),
            title: item.title,
            result: item.result.into(),
            note: item.note,
        };
        self.inner.edit_visit(&visit_id, move |v| {
            match v.checklist.iter_mut().find(|c| c.id == line.id) {
                Some(existing) => *existing = line,
                None => v.checklist.push(line),
            }
        })?;
        Ok(id)
    }

    /// The enterprise head signs the hazard list: the signature image is taken like a photo.
    pub fn sign_visit(
        &self,
        visit_id: String,
        signer_name: String,
        image_path: String,
    ) -> Result<(), BridgeError> {
        check_text(
            "signer_name",
            &signer_name,
            sync_core::limits::max_chars("signer"),
        )?;
        let author = self.inner.author()?;
        let (uid, vdoc) = self.inner.load(&visit_id)?;
        let header = sync_core::doc::read_header(&vdoc).map_err(BridgeError::storage)?;
        // The signature names every hazard of the visit this phone holds, with its content now.
        let hazards = self.inner.hazards_of_visit(&visit_id)?;
        let photo = self.inner.ingest_photo(&visit_id, &image_path)?;
        let edited = edit::sign_hazard_list(
            &vdoc,
            &hazards,
            &author,
            uuid::Uuid::new_v4(),
            &signer_name,
            photo,
            now_ms(),
        )?;
        self.inner
            .commit(uid, DocKind::Visit, header.enterprise, edited)
    }

    // ---- hazards ----

    /// Records a hazard found on a visit. Returns the hazard id.
    pub fn add_hazard(&self, visit_id: String, input: HazardInput) -> Result<String, BridgeError> {
        let author = self.inner.author()?;
        let (_, vdoc) = self.inner.load(&visit_id)?;
        let visit = VisitDoc::hydrate_from(&vdoc).map_err(BridgeError::storage)?;
        let vh = visit.header().map_err(BridgeError::storage)?;
        let grade = Grade::parse(&input.grade)?;
        let deadline = Deadline::parse(&input.deadline)?;
        check_text("location", &input.location, 200)?;
        check_text("description", &input.description, 4000)?;
        let category = parse_category(&input.category)?;
        let now = now_ms();
        let header = Header {
            kind: DocKind::Hazard,
            id: uuid::Uuid::new_v4(),
            created_by: author.user,
            created_at: now,
            ..vh
        };
        let mut h = HazardDoc::new(&header, VisitId::parse(&visit.id)?, grade, deadline);
        h.location = input.location;
        h.description = TextField(input.description);
        h.category = category.to_owned();
        h.criterion = input.criterion;
        h.measure = TextField(input.measure);
        h.responsible_person = input.responsible_person;
        h.funds_yuan = input.funds_yuan;
        h.emergency_plan = input.emergency_plan;
        let edited = edit::new_hazard(&h, &author, now)?;
        self.inner
            .commit(header.id, DocKind::Hazard, header.enterprise, edited)?;
        Ok(header.id.to_string())
    }

    /// Changes a hazard's details (every field optional).
    pub fn edit_hazard(&self, hazard_id: String, patch: HazardPatch) -> Result<(), BridgeError> {
        let grade = patch.grade.as_deref().map(Grade::parse).transpose()?;
        let deadline = patch.deadline.as_deref().map(Deadline::parse).transpose()?;
        let category = patch.category.as_deref().map(parse_category).transpose()?;
        if let Some(l) = &patch.location {
            check_text("location", l, 200)?;
        }
        self.inner.edit_hazard(&hazard_id, move |h| {
            if let Some(v) = patch.location {
                h.location = v;
            }
            if let Some(v) = patch.description {
                h.description = TextField(v);
            }
            if let Some(v) = category {
                h.category = v.to_owned();
            }
            if let Some(v) = grade {
                h.grade = v;
            }
            if let Some(v) = patch.criterion {
                h.criterion = v;
            }
            if let Some(v) = patch.measure {
                h.measure = TextField(v);
            }
            if let Some(v) = deadline {
                h.deadline = v.to_string();
            }
            if let Some(v) = patch.responsible_person {
                h.responsible_person = v;
            }
            if patch.funds_yuan.is_some() {
                h.funds_yuan = patch.funds_yuan;
            }
            if let Some(v) = patch.emergency_plan {
                h.emergency_plan = v;
            }
        })
    }

    /// Adds a photo of the hazard as found: prepared (EXIF time and GPS read, downscaled,
    /// re-encoded), stored under `data_dir/photos/`, queued for upload.
    pub fn attach_photo(
        &self,
        hazard_id: String,
        path: String,
    ) -> Result<PhotoRecord, BridgeError> {
        let photo = self.inner.ingest_photo(&hazard_id, &path)?;
        let rec = PhotoRecord {
            local_path: self.inner.local_photo(&photo.sha256),
            ..(&photo).into()
        };
        self.inner.edit_hazard(&hazard_id, move |h| {
            if !h.photos.iter().any(|p| p.sha256 == photo.sha256) {
                h.photos.push(photo);
            }
        })?;
        Ok(rec)
    }

    // ---- rectification events ----

    /// Inspector: issues the rectification notice.
    pub fn notify(&self, hazard_id: String) -> Result<(), BridgeError> {
        self.inner.record(&hazard_id, EventKind::Notified)
    }

    /// Enterprise: signs for the notice.
    pub fn sign_for(&self, hazard_id: String, signer: String) -> Result<(), BridgeError> {
        check_text("signer", &signer, sync_core::limits::max_chars("signer"))?;
        self.inner
            .record(&hazard_id, EventKind::SignedFor { signer })
    }

    /// Enterprise: asks for more time.
    pub fn request_extension(
        &self,
        hazard_id: String,
        until: String,
        reason: String,
    ) -> Result<(), BridgeError> {
        let until = Deadline::parse(&until)?.to_string();
        check_text("reason", &reason, 1000)?;
        self.inner
            .record(&hazard_id, EventKind::ExtensionRequested { until, reason })
    }

    /// Inspector: grants a pending extension request.
    pub fn grant_extension(
        &self,
        hazard_id: String,
        request_event_id: String,
        until: String,
    ) -> Result<(), BridgeError> {
        let until = Deadline::parse(&until)?.to_string();
        self.inner.record(
            &hazard_id,
            EventKind::ExtensionGranted {
                request: request_event_id,
                until,
            },
        )
    }

    /// Enterprise: submits the rectification with evidence photos (file paths).
    pub fn submit_rectification(
        &self,
        hazard_id: String,
        note: String,
        photo_paths: Vec<String>,
    ) -> Result<(), BridgeError> {
        check_text("note", &note, 4000)?;
        let mut photos = Vec::new();
        for p in &photo_paths {
            photos.push(self.inner.ingest_photo(&hazard_id, p)?);
        }
        self.inner.record(
            &hazard_id,
            EventKind::RectificationSubmitted { note, photos },
        )
    }

    /// Inspector: re-inspection result (复查): accepted, or rejected and back in progress.
    pub fn verify(
        &self,
        hazard_id: String,
        accepted: bool,
        note: String,
    ) -> Result<(), BridgeError> {
        self.inner
            .record(&hazard_id, EventKind::Verified { accepted, note })
    }

    /// Closes the hazard (销号): the inspector for a general hazard, the regulator for a major one.
    pub fn close(&self, hazard_id: String, note: String) -> Result<(), BridgeError> {
        self.inner.record(&hazard_id, EventKind::Closed { note })
    }

    // ---- sync ----

    /// Sends local changes, receives others', then uploads queued photos.
    pub fn sync_now(&self) -> Result<SyncReport, BridgeError> {
        let inner = self.inner.clone();
        let report = self.inner.block_on(async move { inner.sync().await })?;
        Ok(report)
    }

    /// Where one document stands with the server.
    pub fn item_state(&self, doc_id: String) -> Result<ItemState, BridgeError> {
        let id = parse_uuid("doc_id", &doc_id)?;
        let st = self
            .inner
            .store
            .doc_state(id)?
            .ok_or_else(|| BridgeError::not_found(format!("document {doc_id}")))?;
        if st.refused.is_none() && self.inner.store.is_out_of_scope(id)? {
            return Ok(ItemState::OutOfScope);
        }
        Ok(item_state(st.dirty, st.refused.as_deref()))
    }

    /// Rebuilds a refused document from what the server accepted (the document at its synced
    /// hashes), discarding the refused local changes. The refused version is kept on the phone
    /// and the values it had are returned so the app can offer to re-apply what is allowed.
    pub fn repair(&self, doc_id: String) -> Result<RepairReport, BridgeError> {
        self.inner.repair(&doc_id)
    }

    /// Photos waiting for upload.
    pub fn pending_photos(&self) -> Result<u32, BridgeError> {
        Ok(u32::try_from(self.inner.store.queued_photos()?.len()).unwrap_or(u32::MAX))
    }

    /// The local cursor (the last server sequence number received).
    pub fn cursor(&self) -> Result<u64, BridgeError> {
        Ok(self.inner.store.read(store::cursor)?)
    }

    // ---- listeners and background sync ----

    /// Registers a listener; keep the handle, drop or cancel it to stop.
    pub fn add_listener(&self, listener: Box<dyn ChangeListener>) -> Arc<ListenerHandle> {
        let id = self.inner.next_listener.fetch_add(1, Ordering::Relaxed);
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::from(listener));
        Arc::new(ListenerHandle {
            inner: Arc::downgrade(&self.inner),
            id,
        })
    }

    /// Syncs every `interval_secs` in the background, backing off exponentially (up to 5
    /// minutes, jittered) while the network fails. Keep the handle; drop or cancel it to stop.
    pub fn start_auto_sync(&self, interval_secs: u32) -> Arc<SyncHandle> {
        let interval = Duration::from_secs(u64::from(interval_secs.max(1)));
        // Each phone its own jitter, so phones that lost the network together spread out.
        let backoff = Backoff::new(interval, autosync::MAX_BACKOFF, rand::random());
        self.auto_sync_with(TokioSleeper, backoff)
    }
}

impl InspectionClient {
    /// Background sync on the client's runtime, timed by `backoff` and waiting through `sleeper`.
    fn auto_sync_with(&self, sleeper: impl Sleeper, backoff: Backoff) -> Arc<SyncHandle> {
        let weak = Arc::downgrade(&self.inner);
        let attempt = move || {
            let weak = weak.clone();
            async move {
                let inner = weak.upgrade()?;
                // Listeners may call back into the client (blocking): run the sync off the
                // runtime's worker threads.
                let done = tokio::task::spawn_blocking(move || {
                    let i2 = inner.clone();
                    inner.block_on(async move { i2.sync().await })
                })
                .await;
                Some(done.unwrap_or_else(|e| Err(BridgeError::storage(e))))
            }
        };
        let task = self
            .inner
            .handle
            .spawn(autosync::run(sleeper, backoff, attempt));
        Arc::new(SyncHandle {
            task: Mutex::new(Some(task)),
        })
    }

    fn hazards(
        &self,
        enterprise_id: Option<String>,
        include_closed: bool,
    ) -> Result<Vec<HazardSummary>, BridgeError> {
        let rows = self
            .inner
            .store
            .summaries(Some(DocKind::Hazard), enterprise_id.as_deref())?;
        let mut out = Vec::new();
        for r in rows {
            let state = r.state.clone().unwrap_or_default();
            if !include_closed && (state == "closed" || state.is_empty()) {
                continue;
            }
            let sync_state = if r.refused {
                let st = self.inner.store.doc_state(parse_uuid("id", &r.id)?)?;
                item_state(true, st.and_then(|s| s.refused).as_deref())
            } else {
                item_state(r.dirty, None)
            };
            out.push(HazardSummary {
                id: r.id,
                enterprise_id: r.enterprise,
                visit_id: r.visit_id,
                state,
                grade: r.grade.unwrap_or_default(),
                deadline: r.deadline,
                location: r.title.unwrap_or_default(),
                sync_state,
            });
        }
        Ok(out)
    }

    /// The shared state (for tests and the bench in this crate).
    pub fn store(&self) -> &LocalStore {
        &self.inner.store
    }

    /// Prepares a photo for `doc_id` without editing any document (bench and tests).
    pub fn ingest_photo_for(&self, doc_id: &str, path: &str) -> Result<PhotoRecord, BridgeError> {
        Ok((&self.inner.ingest_photo(doc_id, path)?).into())
    }
}

fn item_state(dirty: bool, refused: Option<&[String]>) -> ItemState {
    match refused {
        Some(r) => ItemState::Refused {
            reason: r.join("；"),
        },
        None if dirty => ItemState::Pending,
        None => ItemState::Synced,
    }
}

fn user_record(s: &SessionRow) -> UserRecord {
    UserRecord {
        id: s.user_id.clone(),
        username: s.username.clone(),
        role: s.role.clone(),
        org_id: s.org_id.clone(),
        display_name: s.display_name.clone(),
        device_id: s.device_id.clone(),
    }
}

/// Why an HTTP answer is not what was expected.
fn http_error(status: reqwest::StatusCode, body: &str) -> BridgeError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = v["message"].as_str().map(str::to_owned).unwrap_or_else(|| {
        format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        )
    });
    match status.as_u16() {
        401 => BridgeError::Unauthorized { message },
        403 => BridgeError::Refused { reason: message },
        404 => BridgeError::not_found(message),
        400 | 409 | 422 => BridgeError::invalid(v["error"].as_str().unwrap_or("request"), message),
        _ => BridgeError::Network { message },
    }
}

impl Inner {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server)
    }

    fn author(&self) -> Result<Author, BridgeError> {
        let s = self
            .store
            .session()?
            .ok_or_else(|| BridgeError::Unauthorized {
                message: "未登录 / not logged in".into(),
            })?;
        let actor = hex::decode(&s.actor_id).map_err(BridgeError::storage)?;
        Ok(Author {
            user: UserId::parse(&s.user_id).map_err(BridgeError::storage)?,
            role: Role::parse(&s.role).map_err(BridgeError::storage)?,
            org: uuid::Uuid::parse_str(&s.org_id).map_err(BridgeError::storage)?,
            device: DeviceId::parse(&s.device_id).map_err(BridgeError::storage)?,
            actors: vec![ActorId::from(actor)],
        })
    }

    /// The hazards of a visit this phone holds.
    fn hazards_of_visit(&self, visit_id: &str) -> Result<Vec<HazardDoc>, BridgeError> {
        let rows = self.store.summaries(Some(DocKind::Hazard), None)?;
        let mut out = Vec::new();
        for r in rows
            .into_iter()
            .filter(|r| r.visit_id.as_deref() == Some(visit_id))
        {
            let (_, doc) = self.load(&r.id)?;
            out.push(HazardDoc::hydrate_from(&doc).map_err(BridgeError::storage)?);
        }
        Ok(out)
    }

    fn load(&self, id: &str) -> Result<(uuid::Uuid, Automerge), BridgeError> {
        let uid = parse_uuid("id", id)?;
        let doc = self
            .store
            .load_doc(uid)?
            .ok_or_else(|| BridgeError::not_found(format!("document {id}")))?;
        Ok((uid, doc))
    }

    fn notify(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let listeners: Vec<Arc<dyn ChangeListener>> = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for l in listeners {
            l.on_change(ids.clone());
        }
    }

    fn commit(
        &self,
        id: uuid::Uuid,
        kind: DocKind,
        enterprise: EnterpriseId,
        edited: Edited,
    ) -> Result<(), BridgeError> {
        let Some(change) = edited.change else {
            return Ok(());
        };
        self.store
            .commit_local(id, kind, enterprise, &edited.doc, &[change])?;
        self.notify(vec![id.to_string()]);
        Ok(())
    }

    fn edit_visit(&self, id: &str, f: impl FnOnce(&mut VisitDoc)) -> Result<(), BridgeError> {
        let author = self.author()?;
        let (uid, doc) = self.load(id)?;
        let header = sync_core::doc::read_header(&doc).map_err(BridgeError::storage)?;
        if header.kind != DocKind::Visit {
            return Err(BridgeError::invalid(
                "visit_id",
                "不是检查记录 / not a visit",
            ));
        }
        let edited = edit::edit_visit(&doc, &author, now_ms(), f)?;
        self.commit(uid, DocKind::Visit, header.enterprise, edited)
    }

    fn edit_hazard(&self, id: &str, f: impl FnOnce(&mut HazardDoc)) -> Result<(), BridgeError> {
        let author = self.author()?;
        let (uid, doc) = self.load(id)?;
        let header = sync_core::doc::read_header(&doc).map_err(BridgeError::storage)?;
        if header.kind != DocKind::Hazard {
            return Err(BridgeError::invalid(
                "hazard_id",
                "不是隐患记录 / not a hazard",
            ));
        }
        let edited = edit::edit_hazard(&doc, &author, now_ms(), f)?;
        self.commit(uid, DocKind::Hazard, header.enterprise, edited)
    }

    fn record(&self, id: &str, kind: EventKind) -> Result<(), BridgeError> {
        let author = self.author()?;
        let (uid, doc) = self.load(id)?;
        let header = sync_core::doc::read_header(&doc).map_err(BridgeError::storage)?;
        // `record_event` refuses an event the fold would ignore (close before acceptance,
        // verify before submission), so the user learns it now and not after the next sync.
        let edited = edit::record_event(&doc, &author, EventId::new_random(), now_ms(), kind)?;
        self.commit(uid, DocKind::Hazard, header.enterprise, edited)
    }

    fn local_photo(&self, sha: &str) -> Option<String> {
        let p = self.data_dir.join("photos").join(format!("{sha}.jpg"));
        p.exists().then(|| p.display().to_string())
    }

    /// Prepares, stores and queues a photo; returns the reference for the document.
    fn ingest_photo(&self, doc_id: &str, path: &str) -> Result<PhotoRef, BridgeError> {
        let author = self.author()?;
        let prepared = photo::prepare_file(Path::new(path), self.max_edge.load(Ordering::Relaxed))
            .map_err(|e| match e {
                photo::PhotoError::Io(io) => BridgeError::invalid("path", io.to_string()),
                other => BridgeError::invalid("photo", other.to_string()),
            })?;
        let dest = self
            .data_dir
            .join("photos")
            .join(format!("{}.jpg", prepared.sha256));
        if !dest.exists() {
            // Write to a temporary name and rename: a kill mid-write never leaves a torn file
            // under the final name.
            let tmp = dest.with_extension("jpg.part");
            {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&prepared.bytes)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &dest)?;
        }
        self.store.queue_photo(
            &PhotoRow {
                sha256: prepared.sha256.clone(),
                original_sha256: prepared.original_sha256.clone(),
                path: dest.display().to_string(),
                size: prepared.bytes.len() as u64,
                media_type: prepared.media_type.clone(),
                doc_id: doc_id.to_owned(),
                received: 0,
                complete: false,
            },
            now_ms(),
        )?;
        let r = PhotoRef {
            sha256: prepared.sha256,
            size: prepared.bytes.len() as u64,
            media_type: prepared.media_type,
            captured_at: prepared.captured_at,
            gps: prepared.gps,
            added_by: author.user.to_string(),
            original_sha256: Some(prepared.original_sha256),
        };
        r.validate()?;
        Ok(r)
    }

    // ---- network ----

    async fn login(
        &self,
        username: String,
        password: String,
        device_name: String,
        platform: String,
    ) -> Result<UserRecord, BridgeError> {
        let _g = self.sync_lock.lock().await;
        let web = self
            .post_json(
                "/auth/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await?;
        let web_token = web["access_token"].as_str().unwrap_or_default().to_owned();
        let user_id = web["user"]["id"].as_str().unwrap_or_default().to_owned();
        // Re-use this phone's enrolment when the same user logs in again on the same server.
        let existing = self
            .store
            .session()?
            .filter(|s| s.user_id == user_id && s.server_url == self.server);
        let (device_id, actor_id) = match existing {
            Some(s) => (s.device_id, s.actor_id),
            None => {
                if self.store.session()?.is_some() {
                    // Another user's documents must not be sent with this user's device.
                    return Err(BridgeError::Refused {
                        reason: "此设备已绑定其他账号，请使用新的数据目录 / this data directory belongs to another account".into(),
                    });
                }
                let dev = self
                    .post_json(
                        "/devices",
                        Some(&web_token),
                        &json!({"name": device_name, "platform": platform}),
                    )
                    .await?;
                (
                    dev["device_id"].as_str().unwrap_or_default().to_owned(),
                    dev["actor_id"].as_str().unwrap_or_default().to_owned(),
                )
            }
        };
        let phone = self
            .post_json(
                "/auth/login",
                None,
                &json!({"username": username, "password": password, "device_id": device_id}),
            )
            .await?;
        // The web session was only needed to enrol.
        let _ = self
            .http
            .post(self.url("/auth/logout"))
            .bearer_auth(&web_token)
            .send()
            .await;
        let u = &phone["user"];
        let row = SessionRow {
            server_url: self.server.clone(),
            username: u["username"].as_str().unwrap_or(&username).to_owned(),
            user_id: u["id"].as_str().unwrap_or_default().to_owned(),
            role: u["role"].as_str().unwrap_or_default().to_owned(),
            org_id: u["org_id"].as_str().unwrap_or_default().to_owned(),
            display_name: u["display_name"].as_str().unwrap_or_default().to_owned(),
            device_id,
            actor_id,
            access_token: phone["access_token"].as_str().map(str::to_owned),
            access_expires_at: phone["access_expires_at"].as_str().map(str::to_owned),
            refresh_token: phone["refresh_token"].as_str().map(str::to_owned),
        };
        self.store.put_session(&row)?;
        drop(_g);
        let _ = self.fetch_enterprises().await;
        Ok(user_record(&row))
    }

    async fn logout(&self) -> Result<(), BridgeError> {
        let _g = self.sync_lock.lock().await;
        if let Some(s) = self.store.session()?
            && let Some(t) = &s.access_token
        {
            let _ = self
                .http
                .post(self.url("/auth/logout"))
                .bearer_auth(t)
                .send()
                .await;
        }
        self.store.put_tokens(None, None, None)?;
        Ok(())
    }

    async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value, BridgeError> {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            return Err(http_error(status, &text));
        }
        serde_json::from_str(&text).map_err(BridgeError::network)
    }

    /// A valid access token, refreshing it first when it has expired. Callers hold `sync_lock`
    /// (a refresh token works once: two refreshes at a time would end the session).
    async fn token(&self, force_refresh: bool) -> Result<String, BridgeError> {
        let s = self
            .store
            .session()?
            .ok_or_else(|| BridgeError::Unauthorized {
                message: "未登录 / not logged in".into(),
            })?;
        let expired = s
            .access_expires_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_none_or(|t| t.as_millisecond() - 30_000 < now_ms());
        if let Some(t) = &s.access_token
            && !expired
            && !force_refresh
        {
            return Ok(t.clone());
        }
        let refresh = s.refresh_token.ok_or_else(|| BridgeError::Unauthorized {
            message: "会话已结束 / session ended".into(),
        })?;
        let r = self
            .http
            .post(self.url("/auth/refresh"))
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        if status.as_u16() == 401 || status.as_u16() == 400 {
            self.store.put_tokens(None, None, None)?;
            return Err(http_error(reqwest::StatusCode::UNAUTHORIZED, &text));
        }
        if !status.is_success() {
            return Err(http_error(status, &text));
        }
        let v: Value = serde_json::from_str(&text).map_err(BridgeError::network)?;
        let access = v["access_token"].as_str().map(str::to_owned);
        self.store.put_tokens(
            access.as_deref(),
            v["access_expires_at"].as_str(),
            v["refresh_token"].as_str(),
        )?;
        access.ok_or_else(|| BridgeError::network("refresh answered without a token"))
    }

    async fn get_authed(&self, path: &str) -> Result<reqwest::Response, BridgeError> {
        let token = self.token(false).await?;
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&token)
            .send()
            .await?;
        if r.status().as_u16() == 401 {
            let token = self.token(true).await?;
            return Ok(self
                .http
                .get(self.url(path))
                .bearer_auth(&token)
                .send()
                .await?);
        }
        Ok(r)
    }

    async fn fetch_enterprises(&self) -> Result<(), BridgeError> {
        let _g = self.sync_lock.lock().await;
        let r = self.get_authed("/enterprises").await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            return Err(http_error(status, &text));
        }
        let list: Vec<EnterpriseRow> = serde_json::from_str(&text).map_err(BridgeError::network)?;
        self.store.put_enterprises(&list)?;
        Ok(())
    }

    async fn sync(self: &Arc<Self>) -> Result<SyncReport, BridgeError> {
        let guard = self.sync_lock.lock().await;
        let mut report = SyncReport {
            sent: 0,
            received: 0,
            refused: vec![],
            removed: 0,
            photos_uploaded: 0,
            photos_pending: 0,
            photo_error: None,
        };
        let mut changed: Vec<String> = Vec::new();
        // `more` means the server has further updates: ask again at once (bounded).
        for _round in 0..20 {
            let pending = self.store.pending()?;
            let cursor = self.store.read(store::cursor)?;
            let req = protocol::SyncRequest {
                cursor,
                docs: pending
                    .iter()
                    .filter(|p| !p.changes.is_empty())
                    .map(|p| protocol::DocChanges {
                        id: p.id,
                        kind: p.kind,
                        changes: p.changes.clone(),
                    })
                    .collect(),
            };
            let body = protocol::encode_request(&req);
            let mut token = self.token(false).await?;
            let mut attempt = 0;
            let bytes = loop {
                let r = self
                    .http
                    .post(self.url("/sync"))
                    .bearer_auth(&token)
                    .header(reqwest::header::CONTENT_TYPE, protocol::MEDIA_TYPE)
                    .body(body.clone())
                    .send()
                    .await?;
                let status = r.status();
                if status.as_u16() == 401 && attempt == 0 {
                    attempt += 1;
                    token = self.token(true).await?;
                    continue;
                }
                let b = r.bytes().await?;
                if !status.is_success() {
                    return Err(http_error(status, &String::from_utf8_lossy(&b)));
                }
                break b;
            };
            let resp = protocol::decode_response(&bytes).map_err(BridgeError::network)?;
            let sent = req.docs.len();
            let outcome = self.apply(&pending, &resp)?;
            report.sent += u32::try_from(sent).unwrap_or(u32::MAX);
            report.received += u32::try_from(outcome.updated.len()).unwrap_or(u32::MAX);
            report.removed += u32::try_from(outcome.removed).unwrap_or(u32::MAX);
            for r in &resp.refused {
                report.refused.push(RefusedItem {
                    doc_id: r.id.to_string(),
                    reasons: refusal_texts(r),
                });
            }
            changed.extend(outcome.updated);
            if !resp.more {
                break;
            }
        }
        let (uploaded, error) = self.upload_photos().await;
        report.photos_uploaded = uploaded;
        report.photo_error = error;
        report.photos_pending =
            u32::try_from(self.store.queued_photos()?.len()).unwrap_or(u32::MAX);
        drop(guard);
        changed.sort();
        changed.dedup();
        self.notify(changed);
        Ok(report)
    }

    /// Applies a response in one transaction: acknowledgements, refusals, updates, removals
    /// and the cursor become durable together.
    fn apply(
        &self,
        sent: &[store::PendingDoc],
        resp: &SyncResponse,
    ) -> Result<ApplyOutcome, BridgeError> {
        let mut out = ApplyOutcome::default();
        self.store.write(|tx| {
            let refused: HashMap<uuid::Uuid, &protocol::DocRefusal> =
                resp.refused.iter().map(|r| (r.id, r)).collect();
            for p in sent.iter().filter(|p| !p.changes.is_empty()) {
                let Some(state) = store::doc_state(tx, p.id)? else {
                    continue;
                };
                if let Some(r) = refused.get(&p.id) {
                    store::set_refused(tx, p.id, Some(&refusal_texts(r)))?;
                } else {
                    let Some(doc) = store::load_doc(tx, p.id)? else {
                        continue;
                    };
                    let mut synced = state.synced;
                    synced.extend(p.heads.iter().copied());
                    store::set_synced(tx, p.id, &doc, synced)?;
                    store::set_refused(tx, p.id, None)?;
                    tx.execute(
                        "UPDATE docs SET dirty = 0 WHERE id = ?1 AND edit_gen = ?2",
                        rusqlite::params![p.id.to_string(), p.edit_gen],
                    )
                    .map_err(|e| sync_core::store::StoreError::Backend(e.to_string()))?;
                }
            }
            for u in &resp.updates {
                let before = store::load_doc(tx, u.id)?;
                let mut doc = before.clone().unwrap_or_default();
                let before_heads = doc.get_heads();
                let received: Vec<ChangeHash> = match &u.payload {
                    Payload::Changes(raw) => {
                        let mut changes = Vec::with_capacity(raw.len());
                        for r in raw {
                            changes.push(Change::from_bytes(r.clone()).map_err(|e| {
                                sync_core::store::StoreError::Corrupt(e.to_string())
                            })?);
                        }
                        let hashes = changes.iter().map(Change::hash).collect();
                        doc.apply_changes(changes)
                            .map_err(|e| sync_core::store::StoreError::Corrupt(e.to_string()))?;
                        hashes
                    }
                    Payload::Whole(bytes) => {
                        let mut whole = sync_core::doc::load(bytes)
                            .map_err(|e| sync_core::store::StoreError::Corrupt(e.to_string()))?;
                        let heads = whole.get_heads();
                        doc.merge(&mut whole)
                            .map_err(|e| sync_core::store::StoreError::Corrupt(e.to_string()))?;
                        heads
                    }
                };
                let new: Vec<([u8; 32], Vec<u8>)> = doc
                    .get_changes(&before_heads)
                    .into_iter()
                    .map(|c| (c.hash().0, c.raw_bytes().to_vec()))
                    .collect();
                let enterprise = match sync_core::doc::read_header(&doc) {
                    Ok(h) => h.enterprise,
                    // Changes whose dependencies are still missing leave no readable header
                    // yet; keep the enterprise already known.
                    Err(_) => match store::doc_state(tx, u.id)? {
                        Some(s) => EnterpriseId::parse(&s.enterprise)
                            .map_err(|e| sync_core::store::StoreError::Corrupt(e.to_string()))?,
                        None => continue,
                    },
                };
                store::append(tx, u.id, u.kind, enterprise, &new)?;
                let mut synced = store::doc_state(tx, u.id)?
                    .map(|s| s.synced)
                    .unwrap_or_default();
                synced.extend(received);
                store::set_synced(tx, u.id, &doc, synced)?;
                store::after_write(tx, u.id, &doc)?;
                if !new.is_empty() {
                    out.updated.push(u.id.to_string());
                }
            }
            // A document that left the scope goes, unless it holds unsent edits: those are
            // never lost; the document stays until the server has them (or refused them).
            for id in &resp.removed {
                if store::leave_scope(tx, *id)? {
                    out.removed += 1;
                }
                out.updated.push(id.to_string());
            }
            for id in store::sweep_out_of_scope(tx)? {
                out.removed += 1;
                out.updated.push(id.to_string());
            }
            store::set_cursor(tx, resp.cursor)?;
            Ok(())
        })?;
        Ok(out)
    }

    /// Uploads queued photos, resuming where the server stopped. Returns how many finished and
    /// why the rest did not, if something failed.
    async fn upload_photos(&self) -> (u32, Option<String>) {
        let queued = match self.store.queued_photos() {
            Ok(q) => q,
            Err(e) => return (0, Some(e.to_string())),
        };
        let mut done = 0;
        for p in queued {
            match self.upload_photo(&p).await {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(e) => return (done, Some(e.to_string())),
            }
        }
        (done, None)
    }

    async fn upload_photo(&self, p: &PhotoRow) -> Result<bool, BridgeError> {
        let bytes = tokio::fs::read(&p.path).await?;
        if photo::sha256_hex(&bytes) != p.sha256 {
            return Err(BridgeError::storage(format!(
                "照片文件已损坏 / prepared photo {} is damaged",
                p.sha256
            )));
        }
        let total = bytes.len() as u64;
        // Ask the server where it stands (it may have more than we recorded before a kill).
        let r = self
            .get_authed(&format!("/photos/{}/status", p.sha256))
            .await?;
        let mut offset = match r.status().as_u16() {
            200 => {
                let v: Value = r.json().await.map_err(BridgeError::network)?;
                if v["complete"].as_bool() == Some(true) {
                    self.store.photo_progress(&p.sha256, total, true)?;
                    return Ok(true);
                }
                v["received"].as_u64().unwrap_or(0)
            }
            404 => 0,
            s => {
                let text = r.text().await.unwrap_or_default();
                return Err(http_error(
                    reqwest::StatusCode::from_u16(s).unwrap_or(reqwest::StatusCode::BAD_GATEWAY),
                    &text,
                ));
            }
        };
        let mut token = self.token(false).await?;
        let mut conflicts = 0;
        while offset < total {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = (start + PHOTO_CHUNK).min(bytes.len());
            let r = self
                .http
                .put(self.url(&format!("/photos/{}?offset={offset}", p.sha256)))
                .bearer_auth(&token)
                .header("x-photo-size", total.to_string())
                .header(reqwest::header::CONTENT_TYPE, p.media_type.as_str())
                .body(bytes[start..end].to_vec())
                .send()
                .await?;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match status {
                200 | 201 => {
                    offset = v["received"].as_u64().unwrap_or(end as u64);
                    let complete = v["complete"].as_bool() == Some(true);
                    self.store.photo_progress(&p.sha256, offset, complete)?;
                    if complete {
                        return Ok(true);
                    }
                }
                409 if conflicts < 3 => {
                    conflicts += 1;
                    offset = v["expected"].as_u64().unwrap_or(0);
                }
                401 => token = self.token(true).await?,
                404 | 405 => {
                    return Err(BridgeError::network(
                        "服务器尚不支持照片上传 / the server has no photo upload route yet",
                    ));
                }
                _ => {
                    return Err(http_error(
                        reqwest::StatusCode::from_u16(status)
                            .unwrap_or(reqwest::StatusCode::BAD_GATEWAY),
                        &text,
                    ));
                }
            }
        }
        Ok(false)
    }

    fn repair(&self, doc_id: &str) -> Result<RepairReport, BridgeError> {
        let (uid, doc) = self.load(doc_id)?;
        let state = self
            .store
            .doc_state(uid)?
            .ok_or_else(|| BridgeError::not_found(format!("document {doc_id}")))?;
        let reasons = state.refused.clone().unwrap_or_default();
        let repaired = if state.synced.is_empty() {
            // The server never accepted anything of it: nothing to keep but the copy.
            Automerge::new()
        } else {
            doc.fork_at(&state.synced).map_err(BridgeError::storage)?
        };
        let discarded = discarded_values(&doc, &repaired);
        self.store.write(|tx| {
            self.store
                .save_refused_version(tx, uid, &doc.save(), &reasons, now_ms())?;
            store::replace_doc(tx, uid, &repaired)
        })?;
        self.notify(vec![doc_id.to_owned()]);
        Ok(RepairReport {
            doc_id: doc_id.to_owned(),
            discarded,
            kept_versions: self.store.refused_versions(uid)?,
        })
    }
}

#[derive(Debug, Default)]
struct ApplyOutcome {
    updated: Vec<String>,
    removed: usize,
}

fn refusal_texts(r: &protocol::DocRefusal) -> Vec<String> {
    r.reasons
        .iter()
        .map(|c| {
            if c.detail.is_empty() {
                c.code.message().to_owned()
            } else {
                format!("{}（{}）", c.code.message(), c.detail)
            }
        })
        .collect()
}

/// The fields whose value differs between the refused version and the repaired one.
fn discarded_values(local: &Automerge, kept: &Automerge) -> Vec<DiscardedValue> {
    fn as_json(doc: &Automerge) -> Value {
        match TypedDoc::hydrate(doc) {
            Ok(TypedDoc::Hazard(h)) => serde_json::to_value(HazardRecord::from(&*h)),
            Ok(TypedDoc::Visit(v)) => serde_json::to_value(VisitRecord::from(&*v)),
            Err(_) => Ok(Value::Null),
        }
        .unwrap_or(Value::Null)
    }
    let (l, k) = (as_json(local), as_json(kept));
    let Value::Object(lm) = l else {
        return vec![];
    };
    let mut out = Vec::new();
    for (field, lv) in lm {
        let kv = k.get(&field).cloned().unwrap_or(Value::Null);
        if kv != lv {
            out.push(DiscardedValue {
                field,
                local_value: lv.to_string(),
                server_value: kv.to_string(),
            });
        }
    }
    out
}
