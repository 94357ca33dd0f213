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

mod check;
mod offline;
use offline::work_offline;
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
    /// A sync that fails on the network (a server instance killed behind a balancer) is
    /// tried again in the next round instead of failing the run; the rounds stop only when
    /// one goes by with nothing moved and no failure.
    pub survive_outages: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            phones: 8,
            edits: 50,
            seed: 6,
            photos: 0.3,
            quiet: false,
            survive_outages: false,
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
    /// Syncs and photo uploads that failed on the network and were tried again
    /// ([`Options::survive_outages`]).
    pub outages: usize,
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
            let survive = self.opts.survive_outages;
            let results: Vec<anyhow::Result<Option<SyncReport>>> = std::thread::scope(|s| {
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
                            match r {
                                Err(e) if survive && is_network(&e) => Ok(None),
                                r => r.map(Some).with_context(|| format!("{}: sync", p.name)),
                            }
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
                let Some(r) = r? else {
                    self.figures.outages += 1;
                    quiet = false;
                    continue;
                };
                self.figures.refused += r.refused.len();
                if let Some(e) = &r.photo_error {
                    if !survive {
                        bail!("photo upload failed: {e}");
                    }
                    self.figures.outages += 1;
                    quiet = false;
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

/// Runs a whole simulation and its check; the figures are complete when the run succeeded.
pub fn simulate(opts: Options, target: Target) -> anyhow::Result<(Figures, CheckReport)> {
    let mut sim = Simulation::new(opts, target)?;
    sim.run()?;
    let report = sim.check();
    Ok((sim.figures().clone(), report))
}
