//! The field simulator (issue #6): N phones drive the real `mobile-bridge` against a real server
//! the way phones do in the field, then the simulator checks that every phone and the server
//! converged and that nothing was lost.
//!
//! Each phone is an [`InspectionClient`] with its own data directory. It logs in (enrols) online
//! and syncs once; then it works **offline**: the client is reopened on a URL where nothing
//! listens, and the simulator proves it by a sync that fails with a network error while the
//! count of pending documents grows. Work happens in three phases, each ended by every phone
//! syncing at once (threads released by a barrier) until a round where nothing moves:
//!
//! 1. *inspect* — inspectors start visits, fill checklists, record hazards (some major, with
//!    the criterion, funds and emergency plan), attach photos, issue notices, take signatures;
//! 2. *rectify* — managers sign for the notices, ask for extensions and submit evidence with
//!    photos, while inspectors edit the same hazards and visits (concurrent offline edits of one
//!    document by several phones);
//! 3. *verify* — inspectors accept or reject what was submitted and close accepted general
//!    hazards; some hazards are verified by two inspectors at once.
//!
//! The scenario is a pure function of the seed: every phone draws from its own seeded RNG and
//! picks documents from a [`Ledger`] kept in creation order, never from random ids. What a race
//! resolves to (which concurrent value wins) is Automerge's choice, and [`Simulation::check`]
//! accepts any of the raced values while requiring every replica to agree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mobile_bridge::records::{
    CheckResultRecord, ChecklistItemRecord, HazardInput, HazardPatch, SyncReport, UserRecord,
    VisitKindRecord, VisitPatch,
};
use mobile_bridge::{BridgeError, InspectionClient};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use server::AppState;

use crate::{PASSWORD, TestApp};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of phones.
    pub phones: usize,
    /// Edits each phone makes (successful bridge calls that change a document).
    pub edits: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Probability that an edit which can carry a photo (hazard photo, evidence, signature)
    /// carries one.
    pub photos: f64,
    /// No progress bars.
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            phones: 8,
            edits: 50,
            seed: 6,
            photos: 0.3,
            quiet: false,
        }
    }
}

/// Who holds a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneRole {
    /// An inspector of the agency (检查员).
    Inspector,
    /// An enterprise manager (企业负责人).
    Manager,
}

impl PhoneRole {
    fn label(self) -> &'static str {
        match self {
            PhoneRole::Inspector => "检查员",
            PhoneRole::Manager => "企业",
        }
    }
}

/// The mix of roles for `phones` phones, as in the field: mostly inspectors, one enterprise
/// manager in four (at least one when there are two phones or more).
pub fn roles(phones: usize) -> Vec<PhoneRole> {
    let managers = if phones >= 2 { (phones / 4).max(1) } else { 0 };
    (0..phones)
        .map(|i| {
            if i < phones - managers {
                PhoneRole::Inspector
            } else {
                PhoneRole::Manager
            }
        })
        .collect()
}

/// The account one phone logs in with.
#[derive(Debug, Clone)]
pub struct Account {
    pub username: String,
    pub password: String,
    pub role: PhoneRole,
}

/// The in-process server, for comparing documents with the hub's copy.
#[derive(Clone)]
pub struct ServerHandle {
    pub state: AppState,
    /// The runtime the server runs on.
    pub runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

/// Where the phones sync and who they are.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's base URL (`http://host:port`).
    pub base: String,
    /// One account per phone.
    pub accounts: Vec<Account>,
    /// Set when the server runs in this process: documents are then also compared by heads.
    pub server: Option<ServerHandle>,
}

/// Seeds an in-process server for `phones` phones: a township, an agency, one enterprise per
/// manager phone (at least one) under contract with the agency, and one user per phone. The
/// server's clock is set to the wall clock, which the phones stamp their edits with and check
/// token expiry against; contracts run from 2020 to 2099 so the world does not age.
pub async fn prepare_world(app: &TestApp, phones: usize) -> anyhow::Result<Vec<Account>> {
    use server::admin::{self, EnterpriseInput, UserInput};
    use server::model::{Role, Uscc};
    app.clock.set(jiff::Timestamp::now());
    let db = &app.state.db;
    let clock = app.clock.as_ref();
    let township = admin::create_township(db, clock, "城东街道", &["城东工业园".into()]).await?;
    let agency = admin::create_agency(db, clock, "安邦安全咨询有限公司").await?;
    let start: jiff::civil::Date = "2020-01-01".parse()?;
    let end: jiff::civil::Date = "2099-12-31".parse()?;
    let roles = roles(phones);
    let wanted = roles
        .iter()
        .filter(|r| **r == PhoneRole::Manager)
        .count()
        .max(1);
    let mut enterprises = Vec::new();
    for n in 1..=wanted {
        let uscc = Uscc::with_check_digit(&format!("91330100MA2{:06}", 100 + n))
            .map_err(|e| anyhow!("uscc: {e}"))?;
        let e = admin::create_enterprise(
            db,
            clock,
            &EnterpriseInput {
                name: format!("模拟企业{n:02}"),
                uscc: uscc.as_str().to_owned(),
                address: format!("工业路 {} 号", 10 + n),
                township: township.clone(),
                industry: "机械".into(),
                park: None,
            },
        )
        .await?;
        admin::create_contract(db, clock, &agency, &e, start, end, true).await?;
        enterprises.push(e);
    }
    let mut accounts = Vec::new();
    let mut managers = enterprises.iter();
    for (i, role) in roles.into_iter().enumerate() {
        let (username, user_role, org) = match role {
            PhoneRole::Inspector => (
                format!("fieldsim_inspector_{:02}", i + 1),
                Role::Inspector,
                agency.clone(),
            ),
            PhoneRole::Manager => (
                format!("fieldsim_manager_{:02}", i + 1),
                Role::EnterpriseManager,
                managers
                    .next()
                    .cloned()
                    .ok_or_else(|| anyhow!("an enterprise per manager"))?,
            ),
        };
        admin::create_user(
            db,
            clock,
            &UserInput {
                username: username.clone(),
                password: PASSWORD.into(),
                role: user_role,
                org_id: org,
                display_name: Some(format!("{username} 模拟")),
            },
        )
        .await?;
        accounts.push(Account {
            username,
            password: PASSWORD.into(),
            role,
        });
    }
    Ok(accounts)
}

// ---- the ledger: what the simulation did, in a deterministic order ----------------------------

/// A rectification event the simulation recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Notified,
    SignedFor,
    ExtensionRequested,
    Submitted,
    Verified { accepted: bool },
    Closed,
}

/// A visit the simulation started.
#[derive(Debug, Clone)]
pub struct VisitEntry {
    pub id: String,
    pub enterprise: String,
    /// Index of the phone that started it.
    pub phone: usize,
    /// Ids of the checklist lines added (by any phone).
    pub checklist: BTreeSet<String>,
}

/// A hazard the simulation recorded.
#[derive(Debug, Clone)]
pub struct HazardEntry {
    pub id: String,
    pub visit: String,
    pub enterprise: String,
    pub phone: usize,
    pub major: bool,
    /// Every event recorded on it, with the phone that recorded it.
    pub events: Vec<(usize, Recorded)>,
    /// Field → (phase, value) for every write of a plain (last-writer-wins) field.
    pub writes: BTreeMap<&'static str, Vec<(u8, String)>>,
    /// Photos attached to the hazard as found.
    pub photos: BTreeSet<String>,
}

/// Everything the phones did, in creation order (phone by phone within a phase).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub visits: Vec<VisitEntry>,
    pub hazards: Vec<HazardEntry>,
    /// Every photo (hazard, evidence, signature): SHA-256 → prepared size.
    pub photos: BTreeMap<String, u64>,
}

#[derive(Debug, Clone)]
enum Op {
    Visit {
        id: String,
        enterprise: String,
    },
    Checklist {
        visit: String,
        item: String,
    },
    Hazard {
        id: String,
        visit: String,
        enterprise: String,
        major: bool,
    },
    Field {
        hazard: String,
        field: &'static str,
        value: String,
    },
    HazardPhoto {
        hazard: String,
        sha: String,
    },
    Photo {
        sha: String,
        size: u64,
    },
    Event {
        hazard: String,
        event: Recorded,
    },
}

impl Ledger {
    fn apply(&mut self, phase: u8, phone: usize, ops: Vec<Op>) {
        for op in ops {
            match op {
                Op::Visit { id, enterprise } => self.visits.push(VisitEntry {
                    id,
                    enterprise,
                    phone,
                    checklist: BTreeSet::new(),
                }),
                Op::Checklist { visit, item } => {
                    if let Some(v) = self.visits.iter_mut().find(|v| v.id == visit) {
                        v.checklist.insert(item);
                    }
                }
                Op::Hazard {
                    id,
                    visit,
                    enterprise,
                    major,
                } => self.hazards.push(HazardEntry {
                    id,
                    visit,
                    enterprise,
                    phone,
                    major,
                    events: Vec::new(),
                    writes: BTreeMap::new(),
                    photos: BTreeSet::new(),
                }),
                Op::Field {
                    hazard,
                    field,
                    value,
                } => {
                    if let Some(h) = self.hazard_mut(&hazard) {
                        h.writes.entry(field).or_default().push((phase, value));
                    }
                }
                Op::HazardPhoto { hazard, sha } => {
                    if let Some(h) = self.hazard_mut(&hazard) {
                        h.photos.insert(sha);
                    }
                }
                Op::Photo { sha, size } => {
                    self.photos.insert(sha, size);
                }
                Op::Event { hazard, event } => {
                    if let Some(h) = self.hazard_mut(&hazard) {
                        h.events.push((phone, event));
                    }
                }
            }
        }
    }

    fn hazard_mut(&mut self, id: &str) -> Option<&mut HazardEntry> {
        self.hazards.iter_mut().find(|h| h.id == id)
    }
}

impl HazardEntry {
    /// The states the hazard may be in after everything recorded on it.
    pub fn expected_states(&self) -> BTreeSet<&'static str> {
        let has = |r: Recorded| self.events.iter().any(|(_, e)| *e == r);
        let verifications: Vec<bool> = self
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Recorded::Verified { accepted } => Some(*accepted),
                _ => None,
            })
            .collect();
        let one = |s: &'static str| BTreeSet::from([s]);
        match verifications.as_slice() {
            // Two inspectors verified at once: the fold orders the events, any outcome of the
            // race is legitimate as long as every replica computes the same.
            [_, _, ..] => BTreeSet::from(["accepted", "closed", "in_progress"]),
            [true] if has(Recorded::Closed) => one("closed"),
            [true] => one("accepted"),
            [false] => one("in_progress"),
            [] if has(Recorded::Submitted) => one("submitted"),
            [] if has(Recorded::SignedFor) => one("in_progress"),
            [] if has(Recorded::Notified) => one("notified"),
            [] => one("open"),
        }
    }
}

// ---- figures and the check ---------------------------------------------------------------------

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub phones: usize,
    pub inspectors: usize,
    pub managers: usize,
    pub seed: u64,
    pub edits_planned: usize,
    pub edits: usize,
    pub edits_by_kind: BTreeMap<&'static str, usize>,
    pub visits: usize,
    pub hazards: usize,
    /// Distinct photos (hazard, evidence, signature).
    pub photos: usize,
    /// Bytes of the prepared photos uploaded.
    pub photo_bytes: u64,
    /// Bytes of the phones' SQLite stores at the end.
    pub store_bytes: u64,
    /// Wall time of the offline work, all phases.
    pub offline_secs: f64,
    /// Wall time of every sync round, all phases.
    pub sync_wall_secs: f64,
    /// Wall time of the sync rounds after the last phase.
    pub final_sync_wall_secs: f64,
    pub sync_calls: usize,
    pub sync_p50_ms: f64,
    pub sync_p90_ms: f64,
    pub sync_max_ms: f64,
    /// Sync rounds until nothing moved, per phase.
    pub rounds: Vec<usize>,
    /// Documents the server refused (expected: none).
    pub refused: usize,
    /// Hazard states on the server at the end.
    pub states: BTreeMap<String, usize>,
}

impl Figures {
    /// Edits made per second of offline work (all phones together).
    pub fn edits_per_offline_s(&self) -> f64 {
        self.edits as f64 / self.offline_secs.max(1e-9)
    }

    /// Edits absorbed per second of sync wall time.
    pub fn edits_per_sync_s(&self) -> f64 {
        self.edits as f64 / self.sync_wall_secs.max(1e-9)
    }

    /// The figures as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "phones": self.phones,
            "inspectors": self.inspectors,
            "managers": self.managers,
            "seed": self.seed,
            "edits_planned": self.edits_planned,
            "edits": self.edits,
            "edits_by_kind": self.edits_by_kind,
            "documents": self.visits + self.hazards,
            "visits": self.visits,
            "hazards": self.hazards,
            "photos": self.photos,
            "photo_bytes": self.photo_bytes,
            "store_bytes": self.store_bytes,
            "offline_secs": self.offline_secs,
            "edits_per_offline_s": self.edits_per_offline_s(),
            "sync_wall_secs": self.sync_wall_secs,
            "final_sync_wall_secs": self.final_sync_wall_secs,
            "edits_per_sync_s": self.edits_per_sync_s(),
            "sync_calls": self.sync_calls,
            "sync_p50_ms": self.sync_p50_ms,
            "sync_p90_ms": self.sync_p90_ms,
            "sync_max_ms": self.sync_max_ms,
            "convergence_rounds": self.rounds,
            "refused": self.refused,
            "hazard_states": self.states,
        })
    }

    /// The figures as a short table.
    pub fn print(&self) {
        let kinds: Vec<String> = self
            .edits_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let states: Vec<String> = self
            .states
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!("fieldsim  seed {}", self.seed);
        println!(
            "  phones              {} ({} inspectors, {} managers)",
            self.phones, self.inspectors, self.managers
        );
        println!(
            "  edits               {} of {} planned ({})",
            self.edits,
            self.edits_planned,
            kinds.join(", ")
        );
        println!(
            "  documents           {} ({} visits, {} hazards)",
            self.visits + self.hazards,
            self.visits,
            self.hazards
        );
        println!(
            "  photos              {} ({:.1} KiB uploaded)",
            self.photos,
            self.photo_bytes as f64 / 1024.0
        );
        println!(
            "  phone stores        {:.1} KiB",
            self.store_bytes as f64 / 1024.0
        );
        println!(
            "  offline work        {:.2} s, {:.0} edits/s",
            self.offline_secs,
            self.edits_per_offline_s()
        );
        println!(
            "  sync wall time      {:.2} s in all ({:.2} s after the last phase), {:.0} edits/s",
            self.sync_wall_secs,
            self.final_sync_wall_secs,
            self.edits_per_sync_s()
        );
        println!(
            "  sync_now            {} calls, p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
            self.sync_calls, self.sync_p50_ms, self.sync_p90_ms, self.sync_max_ms
        );
        println!(
            "  convergence rounds  {:?} (per phase: inspect, rectify, verify)",
            self.rounds
        );
        println!("  refused             {}", self.refused);
        println!("  hazard states       {}", states.join(", "));
    }
}

/// The result of [`Simulation::check`].
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Individual comparisons made.
    pub checked: usize,
    /// What did not hold, one line each.
    pub failures: Vec<String>,
}

impl CheckReport {
    /// Whether everything held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    fn expect(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.failures.push(what());
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, phone: &T, server: &T) {
        self.expect(phone == server, || {
            format!("{what}: phone {phone:?} != server {server:?}")
        });
    }
}

// ---- phones ------------------------------------------------------------------------------------

const PLACES: &[&str] = &["一号冲压车间", "二号装配车间", "仓库", "配电室", "喷涂车间"];
const CHECKS: &[&str] = &[
    "安全生产责任制是否建立",
    "冲压设备安全防护装置是否有效",
    "配电箱是否上锁并有警示标识",
    "灭火器是否在有效期内",
    "有限空间作业是否审批",
    "特种作业人员是否持证上岗",
];
const FINDINGS: &[(&str, &str, &str)] = &[
    (
        "machinery",
        "冲床光电保护装置失效",
        "立即停用并修复光电保护装置",
    ),
    (
        "electrical",
        "配电箱未上锁且无警示标识",
        "加锁并张贴警示标识",
    ),
    ("fire", "灭火器压力不足", "更换灭火器并建立检查记录"),
    (
        "site_and_housekeeping",
        "车间通道堆放物料",
        "清理通道，划线管理",
    ),
    (
        "combustible_dust",
        "除尘系统未设置泄爆装置",
        "加装泄爆装置并定期清灰",
    ),
    (
        "confined_space",
        "污水井作业未审批",
        "建立有限空间作业审批制度",
    ),
];

struct Phone {
    index: usize,
    name: String,
    account: Account,
    dir: PathBuf,
    client: Option<Arc<InspectionClient>>,
    user: Option<UserRecord>,
    rng: ChaCha8Rng,
    bar: ProgressBar,
    budget: usize,
    edits: usize,
    by_kind: BTreeMap<&'static str, usize>,
    sync_times: Vec<Duration>,
    photo_seq: usize,
}

impl Phone {
    fn client(&self) -> anyhow::Result<&InspectionClient> {
        self.client
            .as_deref()
            .ok_or_else(|| anyhow!("{}: no client", self.name))
    }

    fn org(&self) -> &str {
        self.user.as_ref().map(|u| u.org_id.as_str()).unwrap_or("")
    }

    /// Reopens the phone's store for `url` (the real server, or a dead address when offline).
    fn reopen(&mut self, url: &str) -> anyhow::Result<()> {
        // Close the store before opening it again: one writer per store.
        self.client = None;
        let c = InspectionClient::new(self.dir.display().to_string(), url.to_owned())
            .with_context(|| format!("{}: open store", self.name))?;
        self.client = Some(c);
        Ok(())
    }

    fn pending_docs(&self) -> anyhow::Result<usize> {
        Ok(self.client()?.store().pending()?.len())
    }

    fn left(&self) -> usize {
        self.budget.saturating_sub(self.edits)
    }

    /// Runs one edit through the bridge and counts it.
    fn edit<T>(
        &mut self,
        kind: &'static str,
        f: impl FnOnce(&InspectionClient) -> Result<T, BridgeError>,
    ) -> anyhow::Result<T> {
        let out = f(self.client()?).with_context(|| format!("{}: {kind}", self.name))?;
        self.edits += 1;
        *self.by_kind.entry(kind).or_default() += 1;
        self.bar.inc(1);
        Ok(out)
    }

    /// Like [`Self::edit`] for an edit the rules may refuse where the hazard stands: a refusal
    /// records nothing and answers `None`; the attempt still counts, as a user's tap would.
    fn attempt<T>(
        &mut self,
        kind: &'static str,
        f: impl FnOnce(&InspectionClient) -> Result<T, BridgeError>,
    ) -> anyhow::Result<Option<T>> {
        match self.edit(kind, f) {
            Ok(out) => Ok(Some(out)),
            Err(e) if matches!(e.downcast_ref(), Some(BridgeError::Refused { .. })) => {
                self.edits += 1;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    /// A small JPEG made from the phone's RNG (so its bytes, and hash, follow from the seed).
    fn make_photo(&mut self, work: &Path) -> anyhow::Result<String> {
        let (w, h) = (160u32, 120u32);
        let cells: Vec<[u8; 3]> = (0..48)
            .map(|_| [self.rng.random(), self.rng.random(), self.rng.random()])
            .collect();
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let c = cells[((y / 20) * 8 + x / 20) as usize];
            image::Rgb([
                c[0].wrapping_add((x % 20) as u8),
                c[1].wrapping_add((y % 20) as u8),
                c[2],
            ])
        });
        self.photo_seq += 1;
        let path = work.join(format!("p{:02}-{:04}.jpg", self.index + 1, self.photo_seq));
        img.save_with_format(&path, image::ImageFormat::Jpeg)
            .with_context(|| format!("write {}", path.display()))?;
        Ok(path.display().to_string())
    }
}

fn is_network(e: &BridgeError) -> bool {
    matches!(e, BridgeError::Network { .. })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A simulation: the phones, what they did, and what it measured.
pub struct Simulation {
    opts: Options,
    target: Target,
    work: tempfile::TempDir,
    phones: Vec<Phone>,
    ledger: Ledger,
    figures: Figures,
    dead_url: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    bars: MultiProgress,
    last_sync_wall: f64,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("opts", &self.opts)
            .field("phones", &self.phones.len())
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Prepares the phones' data directories (nothing is sent yet). Blocking: call it from a
    /// thread that is not running async tasks.
    pub fn new(opts: Options, target: Target) -> anyhow::Result<Self> {
        if target.accounts.len() != opts.phones {
            bail!(
                "{} accounts for {} phones",
                target.accounts.len(),
                opts.phones
            );
        }
        let work = tempfile::Builder::new().prefix("fieldsim-").tempdir()?;
        // An address where nothing listens: the phones' "no signal".
        let dead = std::net::TcpListener::bind("127.0.0.1:0")?;
        let dead_url = format!("http://{}", dead.local_addr()?);
        drop(dead);
        let bars = if opts.quiet {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        let style = ProgressStyle::with_template(
            "{prefix:<24} {bar:30.cyan/blue} {pos:>4}/{len:<4} {msg}",
        )?
        .progress_chars("=> ");
        std::fs::create_dir_all(work.path().join("camera"))?;
        let phones = target
            .accounts
            .iter()
            .enumerate()
            .map(|(i, account)| {
                let name = format!("phone-{:02} {}", i + 1, account.role.label());
                let bar = bars.add(ProgressBar::new(opts.edits as u64));
                bar.set_style(style.clone());
                bar.set_prefix(name.clone());
                Phone {
                    index: i,
                    name,
                    account: account.clone(),
                    dir: work.path().join(format!("phone-{:02}", i + 1)),
                    client: None,
                    user: None,
                    rng: ChaCha8Rng::seed_from_u64(
                        opts.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    ),
                    bar,
                    budget: 0,
                    edits: 0,
                    by_kind: BTreeMap::new(),
                    sync_times: Vec::new(),
                    photo_seq: 0,
                }
            })
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            figures: Figures {
                phones: opts.phones,
                inspectors: target
                    .accounts
                    .iter()
                    .filter(|a| a.role == PhoneRole::Inspector)
                    .count(),
                managers: target
                    .accounts
                    .iter()
                    .filter(|a| a.role == PhoneRole::Manager)
                    .count(),
                seed: opts.seed,
                edits_planned: opts.phones * opts.edits,
                ..Figures::default()
            },
            opts,
            target,
            work,
            phones,
            ledger: Ledger::default(),
            dead_url,
            http: reqwest::Client::new(),
            rt,
            bars,
            last_sync_wall: 0.0,
        })
    }

    /// What the phones did (the check compares the server with it).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The ledger, to change what the check expects (tests of the check).
    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// The client of phone `i` (tests of the check).
    pub fn client(&self, i: usize) -> anyhow::Result<&InspectionClient> {
        self.phones
            .get(i)
            .ok_or_else(|| anyhow!("no phone {i}"))?
            .client()
    }

    /// What the run measured.
    pub fn figures(&self) -> &Figures {
        &self.figures
    }

    /// Runs the three phases. An error means the simulation itself could not go on (a login
    /// failed, an edit was refused on the phone, sync did not settle); whether the replicas
    /// agree is [`Simulation::check`]'s question.
    pub fn run(&mut self) -> anyhow::Result<()> {
        self.enrol()?;
        let m = self.opts.edits;
        let (b1, b2) = (m.div_ceil(2), m / 4);
        for p in &mut self.phones {
            p.budget = match p.account.role {
                PhoneRole::Inspector => b1,
                PhoneRole::Manager => 0,
            };
        }
        self.phase(1, "inspect 检查")?;
        for p in &mut self.phones {
            p.budget = match p.account.role {
                PhoneRole::Inspector => b1 + b2,
                PhoneRole::Manager => m,
            };
        }
        self.phase(2, "rectify 整改")?;
        for p in &mut self.phones {
            p.budget = m;
        }
        self.phase(3, "verify 复查")?;
        self.figures.final_sync_wall_secs = self.last_sync_wall;
        self.finish_figures()?;
        for p in &self.phones {
            p.bar.finish_with_message("done");
        }
        Ok(())
    }
}

/// Per-phase state kept outside the phones.
impl Simulation {
    fn enrol(&mut self) -> anyhow::Result<()> {
        let base = self.target.base.clone();
        for p in &mut self.phones {
            p.bar.set_message("login 登录");
            p.reopen(&base)?;
            let user = p
                .client()?
                .login(
                    p.account.username.clone(),
                    p.account.password.clone(),
                    format!("{} 的手机", p.account.username),
                    "android".into(),
                )
                .with_context(|| format!("{}: login as {}", p.name, p.account.username))?;
            p.user = Some(user);
            let started = Instant::now();
            let report = p.client()?.sync_now()?;
            p.sync_times.push(started.elapsed());
            if !report.refused.is_empty() {
                bail!("{}: first sync refused {:?}", p.name, report.refused);
            }
        }
        Ok(())
    }

    fn phase(&mut self, phase: u8, label: &str) -> anyhow::Result<()> {
        let _ = self.bars.println(format!("phase {phase}: {label}"));
        // Offline: reopen every phone on the dead address and prove it has no network.
        let dead = self.dead_url.clone();
        for p in &mut self.phones {
            p.bar.set_message(format!("{label} offline 离线"));
            p.reopen(&dead)?;
            match p.client()?.sync_now() {
                Err(e) if is_network(&e) => {}
                other => bail!("{}: expected no network offline, got {other:?}", p.name),
            }
        }
        let ledger = &self.ledger;
        let work = self.work.path().join("camera");
        let photos = self.opts.photos;
        let inspectors: Vec<usize> = self
            .phones
            .iter()
            .filter(|p| p.account.role == PhoneRole::Inspector)
            .map(|p| p.index)
            .collect();
        let started = Instant::now();
        let results: Vec<anyhow::Result<Vec<Op>>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .phones
                .iter_mut()
                .map(|p| {
                    let work = work.clone();
                    let inspectors = inspectors.clone();
                    s.spawn(move || {
                        let before = p.pending_docs()?;
                        let made = p.edits;
                        let ops = work_offline(p, phase, ledger, &inspectors, &work, photos)?;
                        // Still offline, and the edits wait on the phone.
                        match p.client()?.sync_now() {
                            Err(e) if is_network(&e) => {}
                            other => bail!("{}: sync offline answered {other:?}", p.name),
                        }
                        if p.edits > made && p.pending_docs()? <= before {
                            bail!("{}: edits made offline but nothing pending", p.name);
                        }
                        Ok(ops)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a phone thread panicked")))
                })
                .collect()
        });
        self.figures.offline_secs += started.elapsed().as_secs_f64();
        for (i, r) in results.into_iter().enumerate() {
            let ops = r?;
            self.ledger.apply(phase, i, ops);
        }
        // Back in signal: everyone syncs at once until nothing moves.
        let base = self.target.base.clone();
        for p in &mut self.phones {
            p.reopen(&base)?;
        }
        let rounds = self.converge(label)?;
        self.figures.rounds.push(rounds);
        Ok(())
    }

    /// Every phone syncs at the same moment; rounds repeat until one where nobody sent,
    /// received or uploaded anything. Returns the number of rounds.
    fn converge(&mut self, label: &str) -> anyhow::Result<usize> {
        let started = Instant::now();
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > 20 {
                bail!("{label}: sync did not settle in 20 rounds");
            }
            let barrier = Barrier::new(self.phones.len());
            let results: Vec<anyhow::Result<SyncReport>> = std::thread::scope(|s| {
                let handles: Vec<_> = self
                    .phones
                    .iter_mut()
                    .map(|p| {
                        let barrier = &barrier;
                        p.bar.set_message(format!("{label} sync round {rounds}"));
                        s.spawn(move || {
                            barrier.wait();
                            let t = Instant::now();
                            let r = p.client()?.sync_now();
                            p.sync_times.push(t.elapsed());
                            r.with_context(|| format!("{}: sync", p.name))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow!("a phone thread panicked")))
                    })
                    .collect()
            });
            let mut quiet = true;
            for r in results {
                let r = r?;
                self.figures.refused += r.refused.len();
                if let Some(e) = &r.photo_error {
                    bail!("photo upload failed: {e}");
                }
                if r.sent > 0 || r.received > 0 || r.removed > 0 || r.photos_uploaded > 0 {
                    quiet = false;
                }
            }
            if quiet {
                break;
            }
        }
        self.last_sync_wall = started.elapsed().as_secs_f64();
        self.figures.sync_wall_secs += self.last_sync_wall;
        Ok(rounds)
    }
}

// ---- what phones do offline --------------------------------------------------------------------

/// One phone's offline work in a phase; returns what it did, for the ledger.
fn work_offline(
    p: &mut Phone,
    phase: u8,
    ledger: &Ledger,
    inspectors: &[usize],
    work: &Path,
    photos: f64,
) -> anyhow::Result<Vec<Op>> {
    let mut ops = Vec::new();
    match (p.account.role, phase) {
        (PhoneRole::Inspector, 1) => inspect(p, inspectors, work, photos, &mut ops)?,
        (PhoneRole::Inspector, 2) => revise(p, ledger, work, photos, &mut ops)?,
        (PhoneRole::Manager, 2) => rectify(p, ledger, work, photos, &mut ops)?,
        (PhoneRole::Inspector, 3) => verify(p, ledger, inspectors, &mut ops)?,
        _ => {}
    }
    Ok(ops)
}

fn checklist(p: &mut Phone, visit: &str, ops: &mut Vec<Op>) -> anyhow::Result<()> {
    let title = (*p.pick(CHECKS)).to_owned();
    let result = match p.rng.random_range(0..3) {
        0 => CheckResultRecord::Pass,
        1 => CheckResultRecord::Fail,
        _ => CheckResultRecord::NotApplicable,
    };
    let note = if result == CheckResultRecord::Fail {
        "现场发现问题，已列入隐患清单".to_owned()
    } else {
        String::new()
    };
    let v = visit.to_owned();
    let item = p.edit("set_checklist_item", |c| {
        c.set_checklist_item(
            v,
            ChecklistItemRecord {
                id: String::new(),
                title,
                result,
                note,
            },
        )
    })?;
    ops.push(Op::Checklist {
        visit: visit.to_owned(),
        item,
    });
    Ok(())
}

fn attach(p: &mut Phone, hazard: &str, work: &Path, ops: &mut Vec<Op>) -> anyhow::Result<()> {
    let path = p.make_photo(work)?;
    let h = hazard.to_owned();
    let rec = p.edit("attach_photo", |c| c.attach_photo(h, path))?;
    ops.push(Op::HazardPhoto {
        hazard: hazard.to_owned(),
        sha: rec.sha256.clone(),
    });
    ops.push(Op::Photo {
        sha: rec.sha256,
        size: rec.size,
    });
    Ok(())
}

fn set_field(
    p: &mut Phone,
    hazard: &str,
    field: &'static str,
    value: String,
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    let patch = match field {
        "location" => HazardPatch {
            location: Some(value.clone()),
            ..HazardPatch::default()
        },
        "responsible_person" => HazardPatch {
            responsible_person: Some(value.clone()),
            ..HazardPatch::default()
        },
        other => bail!("the simulator does not edit {other}"),
    };
    let h = hazard.to_owned();
    p.edit("edit_hazard", |c| c.edit_hazard(h, patch))?;
    ops.push(Op::Field {
        hazard: hazard.to_owned(),
        field,
        value,
    });
    Ok(())
}

/// Phase 1, inspectors: visits with checklists, hazards (one in five major), photos, notices
/// and the enterprise head's signature.
fn inspect(
    p: &mut Phone,
    inspectors: &[usize],
    work: &Path,
    photos: f64,
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    // Offline, the list comes from the phone's cache.
    let mut enterprises = p.client()?.list_enterprises()?;
    enterprises.sort_by(|a, b| a.name.cmp(&b.name));
    if enterprises.is_empty() {
        bail!("{}: no enterprise to inspect", p.name);
    }
    let ordinal = inspectors.iter().position(|&i| i == p.index).unwrap_or(0);
    let mut n = 0;
    while p.left() > 0 {
        // Inspectors spread over the enterprises, so every manager has hazards to work on.
        let enterprise = enterprises[(ordinal + n) % enterprises.len()].id.clone();
        n += 1;
        let place = (*p.pick(PLACES)).to_owned();
        let e = enterprise.clone();
        let visit = p.edit("start_visit", |c| {
            c.start_visit(e, VisitKindRecord::Routine, place)
        })?;
        ops.push(Op::Visit {
            id: visit.clone(),
            enterprise: enterprise.clone(),
        });
        for _ in 0..2 {
            if p.left() > 0 {
                checklist(p, &visit, ops)?;
            }
        }
        for _ in 0..p.rng.random_range(1..=3) {
            if p.left() == 0 {
                break;
            }
            let major = p.chance(0.2);
            let (category, description, measure) = *p.pick(FINDINGS);
            let location = format!("{} {} 号位", p.pick(PLACES), p.rng.random_range(1..=20));
            let responsible = format!("负责人{}", p.rng.random_range(1..=9));
            let input = HazardInput {
                location: location.clone(),
                description: description.into(),
                category: category.into(),
                grade: if major { "major" } else { "general" }.into(),
                criterion: if major {
                    format!(
                        "工贸企业重大事故隐患判定标准 第{}条",
                        p.rng.random_range(4..=20)
                    )
                } else {
                    String::new()
                },
                measure: measure.into(),
                deadline: format!(
                    "2027-{:02}-{:02}",
                    p.rng.random_range(1..=12),
                    p.rng.random_range(1..=28)
                ),
                responsible_person: responsible.clone(),
                funds_yuan: major.then_some(50_000),
                emergency_plan: if major {
                    "停用设备，设置警戒区，专人监护".into()
                } else {
                    String::new()
                },
            };
            let v = visit.clone();
            let hazard = p.edit("add_hazard", |c| c.add_hazard(v, input))?;
            ops.push(Op::Hazard {
                id: hazard.clone(),
                visit: visit.clone(),
                enterprise: enterprise.clone(),
                major,
            });
            for (field, value) in [("location", location), ("responsible_person", responsible)] {
                ops.push(Op::Field {
                    hazard: hazard.clone(),
                    field,
                    value,
                });
            }
            if p.left() > 0 && p.chance(photos) {
                attach(p, &hazard, work, ops)?;
            }
            if p.left() > 0 {
                let h = hazard.clone();
                p.edit("notify", |c| c.notify(h))?;
                ops.push(Op::Event {
                    hazard,
                    event: Recorded::Notified,
                });
            }
        }
        if p.left() > 0 && p.chance(photos) {
            let path = p.make_photo(work)?;
            let v = visit.clone();
            p.edit("sign_visit", |c| c.sign_visit(v, "王厂长".into(), path))?;
            let signature = p
                .client()?
                .get_visit(visit.clone())?
                .signature
                .ok_or_else(|| anyhow!("{}: signature missing after signing", p.name))?;
            ops.push(Op::Photo {
                sha: signature.image.sha256,
                size: signature.image.size,
            });
        }
    }
    Ok(())
}

/// Phase 2, inspectors: edits of documents other phones are editing at the same time — every
/// inspector sets the first hazard's responsible person and adds a line to the first visit's
/// checklist; then locations, photos and checklist lines of random documents.
fn revise(
    p: &mut Phone,
    ledger: &Ledger,
    work: &Path,
    photos: f64,
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    if let Some(h) = ledger.hazards.first()
        && p.left() > 0
    {
        let value = format!("{} 指定的负责人", p.account.username);
        set_field(p, &h.id, "responsible_person", value, ops)?;
    }
    if let Some(v) = ledger.visits.first()
        && p.left() > 0
    {
        checklist(p, &v.id, ops)?;
    }
    while p.left() > 0 {
        if ledger.hazards.is_empty() {
            let v = p.pick(&ledger.visits).id.clone();
            checklist(p, &v, ops)?;
            continue;
        }
        let h = p.pick(&ledger.hazards).id.clone();
        match p.rng.random_range(0..3) {
            0 => {
                let value = format!("{} 复核 {}", p.pick(PLACES), p.index + 1);
                set_field(p, &h, "location", value, ops)?;
            }
            1 if p.chance(photos) => attach(p, &h, work, ops)?,
            1 => {
                let value = format!("负责人{}", p.rng.random_range(10..=99));
                set_field(p, &h, "responsible_person", value, ops)?;
            }
            _ => {
                let v = p.pick(&ledger.visits).id.clone();
                checklist(p, &v, ops)?;
            }
        }
    }
    Ok(())
}

fn extension(p: &mut Phone, hazard: &str, ops: &mut Vec<Op>) -> anyhow::Result<()> {
    let until = format!(
        "2028-{:02}-{:02}",
        p.rng.random_range(1..=12),
        p.rng.random_range(1..=28)
    );
    let h = hazard.to_owned();
    // One request waits for its answer at a time, and none once the rectification is
    // submitted (ADR 0009): the phone may refuse it.
    if p.attempt("request_extension", |c| {
        c.request_extension(h, until, "设备采购周期长，申请延期".into())
    })?
    .is_some()
    {
        ops.push(Op::Event {
            hazard: hazard.to_owned(),
            event: Recorded::ExtensionRequested,
        });
    }
    Ok(())
}

/// Phase 2, enterprise managers: sign for the notices of their enterprise's hazards, ask for
/// more time on some, submit evidence (with photos) for most; the rest of the budget goes to
/// further extension requests.
fn rectify(
    p: &mut Phone,
    ledger: &Ledger,
    work: &Path,
    photos: f64,
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    let org = p.org().to_owned();
    let mine: Vec<&HazardEntry> = ledger
        .hazards
        .iter()
        .filter(|h| h.enterprise == org)
        .collect();
    for h in &mine {
        if p.left() == 0 {
            break;
        }
        let state = p.client()?.get_hazard(h.id.clone())?.state;
        // A notice is signed for, and rectification owed, only once it was issued (ADR 0009).
        if state == "open" {
            continue;
        }
        if state == "notified" {
            let id = h.id.clone();
            p.edit("sign_for", |c| c.sign_for(id, "王厂长".into()))?;
            ops.push(Op::Event {
                hazard: h.id.clone(),
                event: Recorded::SignedFor,
            });
        }
        if p.left() > 0 && p.chance(0.25) {
            extension(p, &h.id, ops)?;
        }
        if p.left() > 0 && p.chance(0.85) {
            let n = if p.chance(photos) {
                p.rng.random_range(1..=2)
            } else {
                0
            };
            let paths = (0..n)
                .map(|_| p.make_photo(work))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let id = h.id.clone();
            // A major hazard's rectification needs a photo (ADR 0009): without one the phone
            // refuses it.
            if p.attempt("submit_rectification", |c| {
                c.submit_rectification(id, "已按要求整改，附整改后照片".into(), paths)
            })?
            .is_none()
            {
                continue;
            }
            ops.push(Op::Event {
                hazard: h.id.clone(),
                event: Recorded::Submitted,
            });
            let rec = p.client()?.get_hazard(h.id.clone())?;
            let last = rec
                .events
                .last()
                .ok_or_else(|| anyhow!("{}: submission missing", p.name))?;
            for photo in &last.photos {
                ops.push(Op::Photo {
                    sha: photo.sha256.clone(),
                    size: photo.size,
                });
            }
        }
    }
    let mut k = 0;
    while p.left() > 0 && !mine.is_empty() {
        let id = mine[k % mine.len()].id.clone();
        extension(p, &id, ops)?;
        k += 1;
    }
    Ok(())
}

/// Phase 3, inspectors: verify what was submitted (three in four accepted) and close accepted
/// general hazards; one hazard in four is verified by two inspectors at once. The rest of the
/// budget goes to the inspector's own visits (notes, checklist lines).
fn verify(
    p: &mut Phone,
    ledger: &Ledger,
    inspectors: &[usize],
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    let count = inspectors.len().max(1);
    let ordinal = inspectors.iter().position(|&i| i == p.index).unwrap_or(0);
    for (n, h) in ledger.hazards.iter().enumerate() {
        if p.left() == 0 {
            break;
        }
        let second = (count >= 2 && n % 4 == 0).then_some((n + 1) % count);
        if ordinal != n % count && Some(ordinal) != second {
            continue;
        }
        if p.client()?.get_hazard(h.id.clone())?.state != "submitted" {
            continue;
        }
        let accepted = p.chance(0.75);
        let id = h.id.clone();
        let note = if accepted {
            "复查合格"
        } else {
            "整改不到位，退回"
        };
        p.edit("verify", |c| c.verify(id, accepted, note.into()))?;
        ops.push(Op::Event {
            hazard: h.id.clone(),
            event: Recorded::Verified { accepted },
        });
        if accepted && !h.major && p.left() > 0 {
            let id = h.id.clone();
            p.edit("close", |c| c.close(id, "复查合格，销号".into()))?;
            ops.push(Op::Event {
                hazard: h.id.clone(),
                event: Recorded::Closed,
            });
        }
    }
    let own: Vec<String> = ledger
        .visits
        .iter()
        .filter(|v| v.phone == p.index)
        .map(|v| v.id.clone())
        .collect();
    let mut k = 0;
    while p.left() > 0 && !own.is_empty() {
        let v = own[k % own.len()].clone();
        k += 1;
        if k % 2 == 1 {
            let notes = format!("复查记录，第 {k} 次");
            p.edit("edit_visit", |c| {
                c.edit_visit(
                    v,
                    VisitPatch {
                        notes: Some(notes),
                        ..VisitPatch::default()
                    },
                )
            })?;
        } else {
            checklist(p, &v, ops)?;
        }
    }
    Ok(())
}

// ---- figures and the check ---------------------------------------------------------------------

fn sorted_heads(doc: &sync_core::automerge::Automerge) -> Vec<String> {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn set_difference(what: &str, phone: &BTreeSet<String>, server: &BTreeSet<String>) -> String {
    let missing: Vec<&String> = server.difference(phone).collect();
    let extra: Vec<&String> = phone.difference(server).collect();
    format!(
        "{what}: {} on the server but not on the phone {missing:?}, {} on the phone but not on the server {extra:?}",
        missing.len(),
        extra.len()
    )
}

impl Simulation {
    fn finish_figures(&mut self) -> anyhow::Result<()> {
        let f = &mut self.figures;
        f.edits = self.phones.iter().map(|p| p.edits).sum();
        f.edits_by_kind.clear();
        for p in &self.phones {
            for (k, n) in &p.by_kind {
                *f.edits_by_kind.entry(k).or_default() += n;
            }
        }
        f.visits = self.ledger.visits.len();
        f.hazards = self.ledger.hazards.len();
        f.photos = self.ledger.photos.len();
        f.photo_bytes = self.ledger.photos.values().sum();
        f.store_bytes = 0;
        for p in &self.phones {
            for name in ["inspect.db", "inspect.db-wal"] {
                f.store_bytes += std::fs::metadata(p.dir.join(name)).map_or(0, |m| m.len());
            }
        }
        let mut times: Vec<f64> = self
            .phones
            .iter()
            .flat_map(|p| p.sync_times.iter().map(|d| d.as_secs_f64() * 1000.0))
            .collect();
        times.sort_by(f64::total_cmp);
        f.sync_calls = times.len();
        f.sync_p50_ms = pct(&times, 0.5);
        f.sync_p90_ms = pct(&times, 0.9);
        f.sync_max_ms = times.last().copied().unwrap_or(0.0);
        f.states.clear();
        for h in &self.ledger.hazards {
            let state = self.phones[h.phone]
                .client()?
                .get_hazard(h.id.clone())?
                .state;
            *f.states.entry(state).or_default() += 1;
        }
        Ok(())
    }

    fn get(&self, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{}{path}", self.target.base))
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let status = r.status().as_u16();
            Ok((status, r.json().await.unwrap_or(Value::Null)))
        })
    }

    fn web_login(&self, account: &Account) -> anyhow::Result<String> {
        self.rt.block_on(async {
            let body: Value = self
                .http
                .post(format!("{}/api/v1/auth/login", self.target.base))
                .json(&json!({"username": account.username, "password": account.password}))
                .send()
                .await?
                .json()
                .await?;
            body["access_token"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("web login of {} failed: {body}", account.username))
        })
    }

    /// Ids of every hazard (`/api/v1/hazards`, paged) or visit (`/api/v1/visits`) the user sees.
    fn server_ids(&self, token: &str, what: &str) -> anyhow::Result<Option<BTreeSet<String>>> {
        let mut ids = BTreeSet::new();
        let mut offset = 0;
        loop {
            let path = if what == "hazards" {
                format!("/api/v1/hazards?limit=1000&offset={offset}")
            } else {
                "/api/v1/visits?limit=1000".to_owned()
            };
            let (status, body) = self.get(token, &path)?;
            if status != 200 {
                bail!("GET {path}: {status} {body}");
            }
            let rows = body.as_array().cloned().unwrap_or_default();
            ids.extend(rows.iter().map(|r| str_of(r, "id").to_owned()));
            if rows.len() < 1000 {
                return Ok(Some(ids));
            }
            if what != "hazards" {
                // The visit list has no paging: a larger set cannot be compared whole.
                return Ok(None);
            }
            offset += 1000;
        }
    }

    /// Checks that every phone and the server converged and that nothing was lost:
    ///
    /// - no phone has unacknowledged changes, refused documents or photos to upload;
    /// - each phone holds exactly the hazards and visits its user may see on the server;
    /// - each document on a phone equals the server's: the same Automerge heads as the hub's
    ///   copy (in-process server), and field by field the same as the JSON API shows;
    /// - every visit, hazard, checklist line, event and photo the phones made is on the server
    ///   and on every phone that may see it; each hazard is in the state its history implies,
    ///   and each edited field holds one of the values last written to it.
    pub fn check(&self) -> CheckReport {
        let mut r = CheckReport::default();
        if let Err(e) = self.check_into(&mut r) {
            r.failures.push(format!("the check could not run: {e:#}"));
        }
        r
    }

    fn check_into(&self, r: &mut CheckReport) -> anyhow::Result<()> {
        let mut tokens: BTreeMap<&str, String> = BTreeMap::new();
        for p in &self.phones {
            if !tokens.contains_key(p.account.username.as_str()) {
                tokens.insert(&p.account.username, self.web_login(&p.account)?);
            }
        }
        for p in &self.phones {
            let c = p.client()?;
            let token = &tokens[p.account.username.as_str()];
            let pending = c.store().pending()?;
            r.expect(pending.is_empty(), || {
                format!(
                    "{}: {} document(s) with changes the server has not acknowledged",
                    p.name,
                    pending.len()
                )
            });
            let queued = c.pending_photos()?;
            r.expect(queued == 0, || {
                format!("{}: {queued} photo(s) not uploaded", p.name)
            });
            let rows = c.store().summaries(None, None)?;
            for row in rows.iter().filter(|row| row.refused) {
                r.expect(false, || {
                    format!("{}: {} {} refused", p.name, row.kind, row.id)
                });
            }
            let ids = |kind: &str| -> BTreeSet<String> {
                rows.iter()
                    .filter(|row| row.kind == kind)
                    .map(|row| row.id.clone())
                    .collect()
            };
            for kind in ["hazard", "visit"] {
                if let Some(server) = self.server_ids(token, &format!("{kind}s"))? {
                    let phone = ids(kind);
                    r.expect(phone == server, || {
                        set_difference(&format!("{}: {kind}s", p.name), &phone, &server)
                    });
                }
            }
            for row in &rows {
                let uid = uuid::Uuid::parse_str(&row.id)?;
                if let Some(server) = &self.target.server {
                    let ours = c.store().load_doc(uid)?.map(|d| sorted_heads(&d));
                    let theirs = server
                        .runtime
                        .block_on(server.state.hub.load(uid))
                        .map_err(|e| anyhow!("hub load {uid}: {e}"))?
                        .map(|d| sorted_heads(&d));
                    r.eq(
                        &format!("{}: heads of {} {}", p.name, row.kind, row.id),
                        &ours,
                        &theirs,
                    );
                }
                match row.kind.as_str() {
                    "hazard" => self.compare_hazard(r, p, token, &row.id)?,
                    "visit" => self.compare_visit(r, p, token, &row.id)?,
                    _ => {}
                }
            }
        }
        self.check_ledger(r, &tokens)
    }

    fn compare_hazard(
        &self,
        r: &mut CheckReport,
        p: &Phone,
        token: &str,
        id: &str,
    ) -> anyhow::Result<()> {
        let rec = p.client()?.get_hazard(id.to_owned())?;
        let (status, d) = self.get(token, &format!("/api/v1/hazards/{id}"))?;
        r.expect(status == 200, || {
            format!(
                "{}: hazard {id} answers {status} on the server for its user",
                p.name
            )
        });
        if status != 200 {
            return Ok(());
        }
        let h = &d["hazard"];
        let what = |field: &str| format!("{}: hazard {id} {field}", p.name);
        for (field, ours) in [
            ("location", &rec.location),
            ("description", &rec.description),
            ("category", &rec.category),
            ("grade", &rec.grade),
            ("criterion", &rec.criterion),
            ("measure", &rec.measure),
            ("responsible_person", &rec.responsible_person),
            ("state", &rec.state),
        ] {
            r.eq(&what(field), &ours.as_str(), &str_of(h, field));
        }
        r.eq(
            &what("deadline"),
            &rec.current_deadline.as_deref(),
            &h["deadline"].as_str(),
        );
        let photos: Vec<&str> = rec.photos.iter().map(|x| x.sha256.as_str()).collect();
        let server_photos: Vec<&str> = d["photos"]
            .as_array()
            .map(|a| a.iter().map(|x| str_of(x, "sha256")).collect())
            .unwrap_or_default();
        r.eq(&what("photos"), &photos, &server_photos);
        let events: BTreeMap<&str, Option<&str>> = rec
            .events
            .iter()
            .map(|e| (e.id.as_str(), e.ignored.as_deref()))
            .collect();
        let history: BTreeMap<&str, Option<&str>> = d["history"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| (str_of(e, "event_id"), e["ignored"].as_str()))
                    .collect()
            })
            .unwrap_or_default();
        r.eq(&what("events (id → why ignored)"), &events, &history);
        Ok(())
    }

    fn compare_visit(
        &self,
        r: &mut CheckReport,
        p: &Phone,
        token: &str,
        id: &str,
    ) -> anyhow::Result<()> {
        let v = p.client()?.get_visit(id.to_owned())?;
        let (status, d) = self.get(token, &format!("/api/v1/visits/{id}"))?;
        r.expect(status == 200, || {
            format!(
                "{}: visit {id} answers {status} on the server for its user",
                p.name
            )
        });
        if status != 200 {
            return Ok(());
        }
        let row = &d["visit"];
        let what = |field: &str| format!("{}: visit {id} {field}", p.name);
        r.eq(&what("place"), &v.place.as_str(), &str_of(row, "place"));
        let inspectors: Vec<&str> = row["inspectors"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        r.eq(
            &what("inspectors"),
            &v.inspectors.iter().map(String::as_str).collect::<Vec<_>>(),
            &inspectors,
        );
        r.eq(
            &what("checklist_total"),
            &Some(v.checklist.len() as i64),
            &row["checklist_total"].as_i64(),
        );
        let failed = v
            .checklist
            .iter()
            .filter(|c| c.result == CheckResultRecord::Fail)
            .count() as i64;
        r.eq(
            &what("checklist_failed"),
            &Some(failed),
            &row["checklist_failed"].as_i64(),
        );
        r.eq(
            &what("signed_by"),
            &v.signature.as_ref().map(|s| s.signer_name.as_str()),
            &row["signed_by"].as_str(),
        );
        Ok(())
    }

    /// Whether phone `p` may see a document of `enterprise` made by a phone of `creator_org`.
    fn may_see(p: &Phone, creator_org: &str, enterprise: &str) -> bool {
        match p.account.role {
            PhoneRole::Inspector => p.org() == creator_org,
            PhoneRole::Manager => p.org() == enterprise,
        }
    }

    fn check_ledger(
        &self,
        r: &mut CheckReport,
        tokens: &BTreeMap<&str, String>,
    ) -> anyhow::Result<()> {
        for h in &self.ledger.hazards {
            let creator = &self.phones[h.phone];
            let token = &tokens[creator.account.username.as_str()];
            let (status, d) = self.get(token, &format!("/api/v1/hazards/{}", h.id))?;
            r.expect(status == 200, || {
                format!(
                    "hazard {} recorded by {} is not on the server ({status})",
                    h.id, creator.name
                )
            });
            if status != 200 {
                continue;
            }
            let history = d["history"].as_array().map_or(0, Vec::len);
            r.expect(history == h.events.len(), || {
                format!(
                    "hazard {}: {history} events on the server, {} recorded by the phones",
                    h.id,
                    h.events.len()
                )
            });
            let state = str_of(&d["hazard"], "state");
            let expected = h.expected_states();
            r.expect(expected.contains(state), || {
                format!(
                    "hazard {}: state {state} on the server, expected one of {expected:?} after {:?}",
                    h.id, h.events
                )
            });
            for (field, writes) in &h.writes {
                let last = writes.iter().map(|(phase, _)| *phase).max();
                let allowed: BTreeSet<&str> = writes
                    .iter()
                    .filter(|(phase, _)| Some(*phase) == last)
                    .map(|(_, v)| v.as_str())
                    .collect();
                let value = str_of(&d["hazard"], field);
                r.expect(allowed.contains(value), || {
                    format!(
                        "hazard {} {field}: {value:?} on the server, last written {allowed:?}",
                        h.id
                    )
                });
            }
            let photos: BTreeSet<&str> = d["photos"]
                .as_array()
                .map(|a| a.iter().map(|x| str_of(x, "sha256")).collect())
                .unwrap_or_default();
            for sha in &h.photos {
                r.expect(photos.contains(sha.as_str()), || {
                    format!("hazard {}: photo {sha} missing on the server", h.id)
                });
            }
            let uid = uuid::Uuid::parse_str(&h.id)?;
            for p in &self.phones {
                if Self::may_see(p, creator.org(), &h.enterprise) {
                    let held = p.client()?.store().doc_state(uid)?.is_some();
                    r.expect(held, || format!("{}: hazard {} missing", p.name, h.id));
                }
            }
        }
        for v in &self.ledger.visits {
            let creator = &self.phones[v.phone];
            let token = &tokens[creator.account.username.as_str()];
            let (status, d) = self.get(token, &format!("/api/v1/visits/{}", v.id))?;
            r.expect(status == 200, || {
                format!(
                    "visit {} started by {} is not on the server ({status})",
                    v.id, creator.name
                )
            });
            if status == 200 {
                let total = d["visit"]["checklist_total"].as_i64();
                r.expect(total == Some(v.checklist.len() as i64), || {
                    format!(
                        "visit {}: {total:?} checklist lines on the server, {} added by the phones",
                        v.id,
                        v.checklist.len()
                    )
                });
            }
            let uid = uuid::Uuid::parse_str(&v.id)?;
            for p in &self.phones {
                if !Self::may_see(p, creator.org(), &v.enterprise) {
                    continue;
                }
                if p.client()?.store().doc_state(uid)?.is_none() {
                    r.expect(false, || format!("{}: visit {} missing", p.name, v.id));
                    continue;
                }
                let lines: BTreeSet<String> = p
                    .client()?
                    .get_visit(v.id.clone())?
                    .checklist
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                r.expect(v.checklist.is_subset(&lines), || {
                    format!("{}: visit {} lost checklist lines", p.name, v.id)
                });
            }
        }
        let token = self
            .phones
            .first()
            .map(|p| tokens[p.account.username.as_str()].clone())
            .unwrap_or_default();
        for (sha, size) in &self.ledger.photos {
            let (status, d) = self.get(&token, &format!("/api/v1/photos/{sha}/status"))?;
            r.expect(
                status == 200 && d["complete"] == true && d["size"].as_u64() == Some(*size),
                || format!("photo {sha} ({size} bytes) not stored on the server: {status} {d}"),
            );
        }
        Ok(())
    }
}

/// Runs a whole simulation and its check; the figures are complete when the run succeeded.
pub fn simulate(opts: Options, target: Target) -> anyhow::Result<(Figures, CheckReport)> {
    let mut sim = Simulation::new(opts, target)?;
    sim.run()?;
    let report = sim.check();
    Ok((sim.figures().clone(), report))
}
