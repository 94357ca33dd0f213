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

mod events;
mod hazards;
mod link;
mod lists;
mod net;
mod visits;

/// Size of one photo upload chunk.
pub const PHOTO_CHUNK: usize = 256 * 1024;

/// Told what background sync does, so an app can show it. Called on a background thread;
/// calling back into the client from it is safe.
#[uniffi::export(callback_interface)]
pub trait SyncObserver: Send + Sync {
    /// A sync begins.
    fn on_started(&self);
    /// A sync finished, with what it did.
    fn on_finished(&self, report: SyncReport);
    /// A sync failed: why, and the error's text (Chinese first).
    fn on_failed(&self, failure: SyncFailure, message: String);
}

/// Why a background sync failed, in terms an app acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncFailure {
    /// No network or no server: it retries on its own, backing off.
    Network,
    /// The session ended (logged out, or the refresh token expired): show the login screen.
    SessionEnded,
    /// The agency revoked this device: log in again to enrol it anew.
    Revoked,
    /// The server refused the request.
    Refused,
    /// The phone's storage failed.
    Storage,
    /// The server no longer serves this version of the app: ask the user to update it.
    UpdateRequired,
}

impl SyncFailure {
    fn of(e: &BridgeError) -> Self {
        match e {
            BridgeError::Network { .. } => Self::Network,
            BridgeError::Unauthorized { .. } => Self::SessionEnded,
            BridgeError::DeviceRevoked { .. } => Self::Revoked,
            BridgeError::Refused { .. }
            | BridgeError::InvalidInput { .. }
            | BridgeError::NotFound { .. } => Self::Refused,
            BridgeError::Storage { .. } => Self::Storage,
            BridgeError::UpdateRequired { .. } => Self::UpdateRequired,
        }
    }
}

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
    /// Rebuilt when the timeout changes (reqwest's timeouts are the client's).
    http: std::sync::RwLock<reqwest::Client>,
    link: link::Link,
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
        let http = http_client(link::DEFAULT_TIMEOUT)?;
        Ok(Arc::new(Self {
            inner: Arc::new(Inner {
                store,
                data_dir: dir,
                server: server_url.trim_end_matches('/').to_owned(),
                http: std::sync::RwLock::new(http),
                link: link::Link::default(),
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

    /// Sets the network timeout in seconds (default 60, at least 1): a request fails when
    /// nothing arrives for this long, and a sync sizes its batches to a quarter of it at the
    /// rate the link achieved. A sync request itself has no overall deadline: a large answer on
    /// a slow link is read to the end while it keeps arriving.
    pub fn set_network_timeout(&self, seconds: u32) -> Result<(), BridgeError> {
        let timeout = Duration::from_secs(u64::from(seconds.max(1)));
        let http = http_client(timeout)?;
        self.inner.link.set_timeout(timeout);
        *self.inner.http.write().unwrap_or_else(|p| p.into_inner()) = http;
        Ok(())
    }

    /// Sets the most documents one sync request carries (default 1,000; the server takes at most
    /// 5,000). A larger backlog goes in several requests, each kept once acknowledged.
    pub fn set_sync_batch_limit(&self, documents: u32) {
        self.inner
            .link
            .set_max_docs(usize::try_from(documents).unwrap_or(usize::MAX));
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

    /// Ends the session on the server (best effort) and forgets the tokens. Documents stay, and
    /// no edit is accepted until someone logs in again. Another user may log in once this
    /// user's unsynced work ([`Self::unsynced_work`]) has reached the server or been discarded
    /// ([`Self::discard_unsynced_work`]); then the phone forgets the first user's data.
    pub fn logout(&self) -> Result<(), BridgeError> {
        self.inner.block_on(self.inner.logout())
    }

    /// The users of the phone user's organisation (an inspector's agency), as last fetched
    /// (at login and when the enterprise list is fetched): for adding inspectors to a visit.
    pub fn colleagues(&self) -> Result<Vec<ColleagueRecord>, BridgeError> {
        self.inner
            .store
            .colleagues()?
            .into_iter()
            .filter_map(|c| {
                let role = Role::parse(&c.role).ok()?.into();
                Some(Ok(ColleagueRecord {
                    id: c.id,
                    username: c.username,
                    display_name: c.display_name,
                    role,
                }))
            })
            .collect()
    }

    /// What this phone holds that the server does not have yet.
    pub fn unsynced_work(&self) -> Result<UnsyncedWork, BridgeError> {
        let (documents, photos) = self.inner.store.unsynced_work()?;
        Ok(UnsyncedWork { documents, photos })
    }

    /// Discards, after logout, everything this phone holds of its user, unsynced work included,
    /// so that another user can log in. `documents` and `photos` are the counts the user was
    /// shown ([`Self::unsynced_work`]): if more work is waiting than that, nothing is discarded.
    pub fn discard_unsynced_work(&self, documents: u32, photos: u32) -> Result<(), BridgeError> {
        if !self.inner.store.signed_out()? {
            return Err(BridgeError::Refused {
                reason:
                    "请先退出登录 / log out first: only a logged-out phone's work can be discarded"
                        .into(),
            });
        }
        let now = self.unsynced_work()?;
        if now.documents != documents || now.photos != photos {
            return Err(BridgeError::Refused {
                reason: format!(
                    "待同步的工作已变为 {} 份记录和 {} 张照片，请确认后再放弃 / the unsynced work is now {} documents and {} photos: confirm again",
                    now.documents, now.photos, now.documents, now.photos
                ),
            });
        }
        for path in self.inner.store.wipe()? {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// The logged-in user, if any (works offline).
    pub fn current_user(&self) -> Result<Option<UserRecord>, BridgeError> {
        if self.inner.store.signed_out()? {
            return Ok(None);
        }
        match self.inner.store.session()? {
            Some(s) if s.access_token.is_some() || s.refresh_token.is_some() => {
                Ok(Some(user_record(&s)?))
            }
            _ => Ok(None),
        }
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
        self.auto_sync_with(TokioSleeper, backoff, None)
    }

    /// [`Self::start_auto_sync`], telling `observer` when each sync starts, finishes (with its
    /// report) or fails (with the reason).
    pub fn start_auto_sync_observed(
        &self,
        interval_secs: u32,
        observer: Box<dyn SyncObserver>,
    ) -> Arc<SyncHandle> {
        let interval = Duration::from_secs(u64::from(interval_secs.max(1)));
        let backoff = Backoff::new(interval, autosync::MAX_BACKOFF, rand::random());
        self.auto_sync_with(TokioSleeper, backoff, Some(Arc::from(observer)))
    }
}

impl InspectionClient {
    /// Background sync on the client's runtime, timed by `backoff` and waiting through `sleeper`.
    fn auto_sync_with(
        &self,
        sleeper: impl Sleeper,
        backoff: Backoff,
        observer: Option<Arc<dyn SyncObserver>>,
    ) -> Arc<SyncHandle> {
        let weak = Arc::downgrade(&self.inner);
        let attempt = move || {
            let weak = weak.clone();
            let observer = observer.clone();
            async move {
                let inner = weak.upgrade()?;
                // Listeners and the observer may call back into the client (blocking): run the
                // sync off the runtime's worker threads.
                let done = tokio::task::spawn_blocking(move || {
                    let i2 = inner.clone();
                    if let Some(o) = &observer {
                        o.on_started();
                    }
                    let result = inner.block_on(async move { i2.sync().await });
                    if let Some(o) = &observer {
                        match &result {
                            Ok(report) => o.on_finished(report.clone()),
                            Err(e) => o.on_failed(SyncFailure::of(e), e.to_string()),
                        }
                    }
                    result
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
        let today = today_in_china();
        for r in rows {
            // A hazard whose document does not read yet (changes still missing) has no state.
            let Some(state) = r.state.as_deref().and_then(HazardStateRecord::parse) else {
                continue;
            };
            let Some(grade) = r.grade.as_deref().and_then(|g| Grade::parse(g).ok()) else {
                continue;
            };
            if !include_closed && state == HazardStateRecord::Closed {
                continue;
            }
            let sync_state = if r.refused {
                let st = self.inner.store.doc_state(parse_uuid("id", &r.id)?)?;
                item_state(true, st.and_then(|s| s.refused).as_deref())
            } else {
                item_state(r.dirty, None)
            };
            let detail = r.detail.unwrap_or_default();
            out.push(HazardSummary {
                overdue: is_overdue(state, r.deadline.as_deref(), &today),
                id: r.id,
                enterprise_id: r.enterprise,
                visit_id: r.visit_id,
                state,
                grade: grade.into(),
                deadline: r.deadline,
                location: r.title.unwrap_or_default(),
                description: detail.description,
                photo_count: detail.photos,
                pending_extension_until: detail.extension_until,
                under_supervision: detail.supervised,
                reported_at: detail.reported_at,
                created_at: detail.created_at,
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

fn user_record(s: &SessionRow) -> Result<UserRecord, BridgeError> {
    Ok(UserRecord {
        id: s.user_id.clone(),
        username: s.username.clone(),
        role: Role::parse(&s.role).map_err(BridgeError::storage)?.into(),
        org_id: s.org_id.clone(),
        display_name: s.display_name.clone(),
        device_id: s.device_id.clone(),
    })
}

/// A document kind as a user reads it.
fn kind_zh(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Visit => "巡查记录",
        DocKind::Hazard => "隐患",
    }
}

/// The HTTP client: connecting may take 10 s, and a request fails when nothing arrives for
/// `timeout` or (except sync, which sets its own) when it takes longer than `timeout` overall.
fn http_client(timeout: Duration) -> Result<reqwest::Client, BridgeError> {
    let mut headers = reqwest::header::HeaderMap::new();
    // The server tells an app it no longer serves to update, by this version.
    headers.insert(
        "x-inspect-sdk",
        reqwest::header::HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(BridgeError::network)
}

/// Today in China, as deadlines are written (`YYYY-MM-DD`), by the phone's clock.
fn today_in_china() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date()
        .to_string()
}

/// Whether a hazard in `state` with the current `deadline` is overdue `today`: still owed a
/// rectification (not yet submitted, accepted or closed) and past the deadline.
fn is_overdue(state: HazardStateRecord, deadline: Option<&str>, today: &str) -> bool {
    let owed = matches!(
        state,
        HazardStateRecord::Open | HazardStateRecord::Notified | HazardStateRecord::InProgress
    );
    owed && deadline.is_some_and(|d| d < today)
}

/// A reason or addressee the user must write: not blank, within the rules' limit.
fn check_reason(field: &'static str, value: &str) -> Result<(), BridgeError> {
    if value.trim().is_empty() {
        return Err(BridgeError::invalid(field, "请填写 / required"));
    }
    check_text(field, value, sync_core::limits::max_chars(field))?;
    Ok(())
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
        401 if v["error"].as_str() == Some("device_revoked") => {
            BridgeError::DeviceRevoked { detail: message }
        }
        401 => BridgeError::Unauthorized { detail: message },
        403 => BridgeError::Refused { reason: message },
        404 => BridgeError::not_found(message),
        426 => BridgeError::UpdateRequired { detail: message },
        400 | 409 | 422 => BridgeError::invalid(v["error"].as_str().unwrap_or("request"), message),
        _ => BridgeError::Network { detail: message },
    }
}

impl Inner {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    fn http(&self) -> reqwest::Client {
        self.http.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server)
    }

    fn author(&self) -> Result<Author, BridgeError> {
        let s = self
            .store
            .session()?
            .ok_or_else(|| BridgeError::Unauthorized {
                detail: "未登录 / not logged in".into(),
            })?;
        if self.store.signed_out()? {
            return Err(BridgeError::Unauthorized {
                detail: "已退出登录，请重新登录后再记录 / logged out: log in to record anything"
                    .into(),
            });
        }
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

    /// Loads a document that must be of `kind`: another kind's id is the caller's mistake
    /// (`InvalidInput` naming `field`), not a storage failure.
    fn load_kind(&self, id: &str, kind: DocKind, field: &str) -> Result<Automerge, BridgeError> {
        let (_, doc) = self.load(id)?;
        match sync_core::doc::read_kind(&doc) {
            Some(k) if k == kind => Ok(doc),
            Some(other) => Err(BridgeError::invalid(
                field,
                format!(
                    "此编号是{}，不是{} / this id is a {}, not a {}",
                    kind_zh(other),
                    kind_zh(kind),
                    other.as_str(),
                    kind.as_str()
                ),
            )),
            None => Err(BridgeError::storage(format!("document {id} has no kind"))),
        }
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
            exif_unreadable: prepared.exif_unreadable.then_some(true),
        };
        r.validate()?;
        Ok(r)
    }
}
