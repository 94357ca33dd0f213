//! Validation of a batch of incoming Automerge changes against the policy.
//!
//! The batch is applied to a fork of the document; then every operation of every change is
//! resolved to the part of the document it touches and checked against [`crate::policy`], every
//! change's actor against the authenticated device, and every new rectification event against
//! its author. The batch is accepted or refused whole, with a specific reason per refused change,
//! so nothing of a refused batch is ever applied. The phone runs the same function on its own
//! edit before committing it, so a well-behaved phone never sees a refusal.
//!
//! State-dependent validity of events is *not* checked here: two events that were each valid
//! when recorded offline may race, and the fold ([`crate::rectification::fold`]) decides their
//! effect deterministically. Refusing the later one would lose a fact that happened.

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, Automerge, Change, ChangeHash, ObjId, ReadDoc};
use serde::{Deserialize, Serialize};

use crate::doc::{self, DocKind, HEADER_KEYS, Header, TypedDoc};
use crate::domain::{Author, Deadline, parse_category};
use crate::policy;
use crate::rectification::{Event, HazardState, HazardStatus};

/// Keys of a visit document that inspectors edit.
pub const VISIT_DETAIL_KEYS: &[&str] = &[
    "visit_kind",
    "inspectors",
    "started_at",
    "ended_at",
    "place",
    "gps",
    "checklist",
    "service_plan",
    "overall_assessment",
    "notes",
    "signature",
];

/// Keys of a hazard document that inspectors edit.
pub const HAZARD_DETAIL_KEYS: &[&str] = &[
    "location",
    "description",
    "category",
    "grade",
    "criterion",
    "measure",
    "deadline",
    "responsible_person",
    "funds_yuan",
    "emergency_plan",
    "photos",
];

/// Why a change was refused. Stable codes: phones and the web map them to messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// Not a decodable Automerge change, or the result does not match the schema.
    Malformed,
    /// The change was made by an actor not enrolled for the sending device.
    ForeignActor,
    /// The change depends on changes the server does not have: send them too.
    MissingDependencies,
    /// The document's enterprise is outside the author's scope.
    NotInScope,
    /// The header (ids, kind, creator) may not change after creation.
    HeaderImmutable,
    /// The batch does not belong to the document it was sent for.
    WrongDocument,
    /// The author's role may not write this part of the document.
    NotPermitted,
    /// A key the schema does not know.
    UnknownField,
    /// Rectification events can only be appended, never edited or removed.
    EventsAppendOnly,
    /// An event's author, role, organisation or device is not the sender's.
    EventForged,
    /// The author's role may not record this kind of event.
    EventNotPermitted,
    /// Written by an app older than the rules: update the app.
    Outdated,
    /// The grade or deadline after the notice: they change only by a regrade or an extension.
    TermsFixed,
    /// The enterprise head's signature may not change once given.
    SignatureImmutable,
    /// A major hazard's notice before 五落实 is complete.
    FiveInPlaceMissing,
    /// A rectification submitted without any evidence.
    EvidenceMissing,
    /// A text or list above its limit ([`crate::limits`]).
    TooLong,
    /// A text that must be given is empty.
    Required,
    /// The hazard is closed: its details no longer change (reopen it first).
    HazardClosed,
    /// A new document names a township other than the one the enterprise is registered in.
    TownshipMismatch,
    /// A new hazard names a visit of another enterprise or agency.
    VisitMismatch,
    /// A new hazard names a visit the server does not hold (send the visit first).
    VisitUnknown,
    /// A photo reference added in someone else's name.
    PhotoForged,
    /// A change or batch that decodes past the limits of [`crate::bounds`]; refused before
    /// it is decoded.
    TooBig,
}

impl RefusalCode {
    /// Stable snake_case text.
    pub const fn as_str(&self) -> &'static str {
        match self {
            RefusalCode::Malformed => "malformed",
            RefusalCode::ForeignActor => "foreign_actor",
            RefusalCode::MissingDependencies => "missing_dependencies",
            RefusalCode::NotInScope => "not_in_scope",
            RefusalCode::HeaderImmutable => "header_immutable",
            RefusalCode::WrongDocument => "wrong_document",
            RefusalCode::NotPermitted => "not_permitted",
            RefusalCode::UnknownField => "unknown_field",
            RefusalCode::EventsAppendOnly => "events_append_only",
            RefusalCode::EventForged => "event_forged",
            RefusalCode::EventNotPermitted => "event_not_permitted",
            RefusalCode::Outdated => "outdated",
            RefusalCode::TermsFixed => "terms_fixed",
            RefusalCode::SignatureImmutable => "signature_immutable",
            RefusalCode::FiveInPlaceMissing => "five_in_place_missing",
            RefusalCode::EvidenceMissing => "evidence_missing",
            RefusalCode::TooLong => "too_long",
            RefusalCode::Required => "required",
            RefusalCode::HazardClosed => "hazard_closed",
            RefusalCode::TownshipMismatch => "township_mismatch",
            RefusalCode::VisitMismatch => "visit_mismatch",
            RefusalCode::VisitUnknown => "visit_unknown",
            RefusalCode::PhotoForged => "photo_forged",
            RefusalCode::TooBig => "too_big",
        }
    }

    /// A message for people, Simplified Chinese first.
    pub const fn message(&self) -> &'static str {
        match self {
            RefusalCode::Malformed => "数据格式错误 / malformed change",
            RefusalCode::ForeignActor => {
                "修改不是由本设备产生 / change was not made on this device"
            }
            RefusalCode::MissingDependencies => {
                "缺少前置修改，请重新同步 / missing earlier changes, sync again"
            }
            RefusalCode::NotInScope => "无权访问该企业 / enterprise outside your scope",
            RefusalCode::HeaderImmutable => "记录归属不可修改 / document header cannot change",
            RefusalCode::WrongDocument => "修改不属于该记录 / change belongs to another document",
            RefusalCode::NotPermitted => "您的角色无权修改此项 / your role may not change this",
            RefusalCode::UnknownField => "未知字段 / unknown field",
            RefusalCode::EventsAppendOnly => {
                "整改记录只能追加 / rectification history is append-only"
            }
            RefusalCode::EventForged => "记录的作者与登录用户不符 / event author is not you",
            RefusalCode::EventNotPermitted => {
                "您的角色无权进行此操作 / your role may not record this event"
            }
            RefusalCode::Outdated => {
                "应用版本过旧，请更新后再同步 / this app is outdated, update it and sync again"
            }
            RefusalCode::TermsFixed => {
                "整改通知下达后，等级只能通过变更等级、期限只能通过批准延期修改 / after the notice, the grade changes only by a regrade and the deadline only by a granted extension"
            }
            RefusalCode::SignatureImmutable => {
                "企业负责人签字后不可修改 / the enterprise head's signature cannot change once given"
            }
            RefusalCode::FiveInPlaceMissing => {
                "重大事故隐患须先落实责任人、措施、资金、期限和应急预案 / a major hazard needs responsible person, measure, funds, deadline and emergency plan before its notice"
            }
            RefusalCode::EvidenceMissing => {
                "提交整改须附照片或说明 / a rectification needs a photo or a note"
            }
            RefusalCode::TooLong => "内容超过长度限制 / text or list above its limit",
            RefusalCode::Required => "必填内容为空 / a required text is empty",
            RefusalCode::HazardClosed => {
                "隐患已销号，记录不可修改 / the hazard is closed: its record cannot change"
            }
            RefusalCode::TownshipMismatch => {
                "记录的乡镇与企业登记的乡镇不符 / the township differs from the one the enterprise is registered in"
            }
            RefusalCode::VisitMismatch => {
                "隐患所属的检查不是本机构对该企业的检查 / the hazard's visit belongs to another enterprise or agency"
            }
            RefusalCode::VisitUnknown => {
                "隐患所属的检查尚未同步，请先同步该检查 / the hazard's visit has not reached the server: sync the visit first"
            }
            RefusalCode::PhotoForged => {
                "照片只能以本人名义添加 / a photo can be added only in your own name"
            }
            RefusalCode::TooBig => {
                "同步内容解码后过大，已拒绝，请分批同步 / the changes are too big once decoded: refused, sync them in smaller parts"
            }
        }
    }
}

impl ChangeRefusal {
    /// The message for people: the rule, and which field when one is named, in Simplified
    /// Chinese first with English beside it. Never a raw key or id.
    pub fn message(&self) -> String {
        let field = crate::limits::field_label_zh(&self.detail);
        match self.code {
            RefusalCode::NotPermitted
            | RefusalCode::TermsFixed
            | RefusalCode::HazardClosed
            | RefusalCode::UnknownField
            | RefusalCode::HeaderImmutable
                if field != "字段" =>
            {
                let (zh, en) = self
                    .code
                    .message()
                    .split_once(" / ")
                    .unwrap_or((self.code.message(), ""));
                format!(
                    "{zh}（{field}） / {en} ({})",
                    crate::limits::field_label_en(&self.detail)
                )
            }
            RefusalCode::TooLong | RefusalCode::Required => self.detail.clone(),
            _ => self.code.message().to_owned(),
        }
    }
}

/// One refused change (or the whole batch when `change` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRefusal {
    /// The refused change's hash, when one change is to blame.
    pub change: Option<[u8; 32]>,
    /// Why.
    pub code: RefusalCode,
    /// Specifics (which field, which event).
    pub detail: String,
}

/// A batch that passed: the document with it applied, and the changes that were new.
#[derive(Debug)]
pub struct Accepted {
    /// The document after applying the batch. Shared: the hub caches this very copy when nothing
    /// else changed the document meanwhile, instead of applying the batch a second time.
    pub doc: std::sync::Arc<Automerge>,
    /// Changes not already in the document, in application order.
    pub new_changes: Vec<Change>,
    /// The document's header.
    pub header: Header,
    /// The typed document after the batch.
    pub typed: TypedDoc,
    /// Whether the batch created the document.
    pub created: bool,
}

/// Validates a batch of raw changes for document `doc_id` of `kind`.
///
/// `before` is the document as the validator's side has it (`None` when it does not exist yet).
/// `in_scope` tells whether the author may access documents with a given header (active
/// contract, own enterprise, own township). Returns the document with the batch applied, or every
/// reason the batch is refused; on refusal nothing has been applied to `before`.
pub fn validate_batch(
    before: Option<&Automerge>,
    doc_id: uuid::Uuid,
    kind: DocKind,
    raw_changes: &[Vec<u8>],
    author: &Author,
    in_scope: &dyn Fn(&Header) -> bool,
) -> Result<Accepted, Vec<ChangeRefusal>> {
    let mut refusals = Vec::new();
    // What decoding would cost, measured before anything is decoded (issue #19).
    let (mut batch_bytes, mut batch_ops) = (0usize, 0u64);
    for (i, raw) in raw_changes.iter().enumerate() {
        match crate::bounds::measure(raw) {
            Ok(Some(cost)) => {
                batch_bytes = batch_bytes.saturating_add(cost.decoded_bytes);
                batch_ops = batch_ops.saturating_add(cost.ops);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(vec![whole(
                    RefusalCode::TooBig,
                    format!("change #{i}: {e}"),
                )]);
            }
        }
        if batch_bytes > crate::bounds::MAX_BATCH_BYTES || batch_ops > crate::bounds::MAX_BATCH_OPS
        {
            return Err(vec![whole(
                RefusalCode::TooBig,
                format!(
                    "the batch passes {} decoded bytes or {} operations at change #{i}",
                    crate::bounds::MAX_BATCH_BYTES,
                    crate::bounds::MAX_BATCH_OPS
                ),
            )]);
        }
    }
    let mut changes = Vec::with_capacity(raw_changes.len());
    let mut seen = HashSet::new();
    for (i, raw) in raw_changes.iter().enumerate() {
        match Change::from_bytes(raw.clone()) {
            Ok(c) => {
                let already = before.is_some_and(|d| d.get_change_by_hash(&c.hash()).is_some());
                if !already && seen.insert(c.hash()) {
                    changes.push(c);
                }
            }
            Err(e) => refusals.push(whole(RefusalCode::Malformed, format!("change #{i}: {e}"))),
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }

    for c in &changes {
        if !author.actors.contains(c.actor_id()) {
            refusals.push(of(
                c.hash(),
                RefusalCode::ForeignActor,
                format!("actor {}", c.actor_id()),
            ));
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }

    // `clone`, not `fork`: in automerge 0.12 a fork of a fork can report non-minimal heads.
    let mut fork = before.cloned().unwrap_or_default();
    if changes.is_empty() {
        return match before {
            Some(_) => finish(fork, changes, false, kind, doc_id),
            None => Err(vec![whole(
                RefusalCode::Malformed,
                "empty batch for a new document".into(),
            )]),
        };
    }
    if let Err(e) = fork.apply_changes(changes.iter().cloned()) {
        return Err(vec![whole(RefusalCode::Malformed, e.to_string())]);
    }
    for c in &changes {
        if fork.get_change_by_hash(&c.hash()).is_none() {
            refusals.push(of(
                c.hash(),
                RefusalCode::MissingDependencies,
                "dependencies not found".into(),
            ));
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }

    let typed =
        TypedDoc::hydrate(&fork).map_err(|e| vec![whole(RefusalCode::Malformed, e.to_string())])?;
    let header = typed
        .header()
        .map_err(|e| vec![whole(RefusalCode::Malformed, e.to_string())])?;
    if header.id != doc_id || header.kind != kind {
        return Err(vec![whole(
            RefusalCode::WrongDocument,
            format!("document is {} {}", header.kind.as_str(), header.id),
        )]);
    }
    let scope_ok = in_scope(&header);
    let created = before.is_none();
    if created {
        if !scope_ok {
            return Err(vec![whole(
                RefusalCode::NotInScope,
                header.enterprise.to_string(),
            )]);
        }
        if !policy::may_create(author, kind, &header, scope_ok) {
            return Err(vec![whole(
                RefusalCode::NotPermitted,
                format!("{} may not create a {}", author.role, kind.as_str()),
            )]);
        }
    } else {
        if !scope_ok
            || policy::relation_uuid(author.role, &author.org, &header) == policy::Relation::None
        {
            return Err(vec![whole(
                RefusalCode::NotInScope,
                header.enterprise.to_string(),
            )]);
        }
        let old = before.map(doc::read_header).transpose();
        if !matches!(old, Ok(Some(ref h)) if *h == header) {
            return Err(vec![whole(
                RefusalCode::HeaderImmutable,
                "header differs".into(),
            )]);
        }
    }

    let prior = Prior::of(before);
    check_ops(
        &fork,
        &changes,
        kind,
        &header,
        author,
        scope_ok,
        created,
        &prior,
        &mut refusals,
    );
    check_photo_authors(&prior, &typed, author, &mut refusals);
    match &typed {
        TypedDoc::Hazard(h) => {
            check_events(&prior, &fork, &changes, &header, h, author, &mut refusals);
            if let Err(detail) = check_hazard_content(h) {
                refusals.push(whole(RefusalCode::Malformed, detail));
            }
            if let Err(e) = crate::limits::check_hazard(h) {
                refusals.push(whole(RefusalCode::TooLong, e.message()));
            }
        }
        TypedDoc::Visit(v) => {
            check_signatures(&prior, v, &mut refusals);
            if let Err(e) = crate::limits::check_visit(v) {
                refusals.push(whole(RefusalCode::TooLong, e.message()));
            }
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    Ok(Accepted {
        doc: std::sync::Arc::new(fork),
        new_changes: changes,
        header,
        typed,
        created,
    })
}

fn finish(
    doc: Automerge,
    new_changes: Vec<Change>,
    created: bool,
    kind: DocKind,
    doc_id: uuid::Uuid,
) -> Result<Accepted, Vec<ChangeRefusal>> {
    let typed =
        TypedDoc::hydrate(&doc).map_err(|e| vec![whole(RefusalCode::Malformed, e.to_string())])?;
    let header = typed
        .header()
        .map_err(|e| vec![whole(RefusalCode::Malformed, e.to_string())])?;
    if header.id != doc_id || header.kind != kind {
        return Err(vec![whole(
            RefusalCode::WrongDocument,
            header.id.to_string(),
        )]);
    }
    Ok(Accepted {
        doc: std::sync::Arc::new(doc),
        new_changes,
        header,
        typed,
        created,
    })
}

fn whole(code: RefusalCode, detail: String) -> ChangeRefusal {
    ChangeRefusal {
        change: None,
        code,
        detail,
    }
}

fn of(hash: ChangeHash, code: RefusalCode, detail: String) -> ChangeRefusal {
    ChangeRefusal {
        change: Some(hash.0),
        code,
        detail,
    }
}

/// Op-id ranges of the batch's changes: which change created a given object.
struct Origins<'a>(Vec<(&'a ActorId, u64, u64, ChangeHash)>);

impl<'a> Origins<'a> {
    fn new(changes: &'a [Change]) -> Self {
        Self(
            changes
                .iter()
                .map(|c| (c.actor_id(), c.start_op().get(), c.max_op(), c.hash()))
                .collect(),
        )
    }
    fn change_of(&self, obj: &ObjId) -> Option<ChangeHash> {
        match obj {
            ObjId::Root => None,
            ObjId::Id(counter, actor, _) => self
                .0
                .iter()
                .find(|(a, start, max, _)| *a == actor && (*start..=*max).contains(counter))
                .map(|(_, _, _, h)| *h),
        }
    }
}

/// What the document held before the batch that the rules depend on, read once per batch.
#[derive(Default)]
struct Prior {
    /// The hazard's recorded events.
    events: Vec<Event>,
    /// The hazard's grade and deadline are fixed by a notice.
    terms_fixed: bool,
    /// The hazard is closed.
    closed: bool,
    /// The visit bears the legacy single signature.
    signature: Option<doc::visit::Signature>,
    /// The visit's signatures list exists.
    has_signatures_list: bool,
    /// Ids of the signatures already recorded.
    signature_ids: Vec<doc::visit::ListSignature>,
    /// The photo references already recorded: hash and who added it.
    photos: HashSet<(String, String)>,
}

impl Prior {
    fn of(before: Option<&Automerge>) -> Self {
        let Some(before) = before else {
            return Self::default();
        };
        let typed = TypedDoc::hydrate(before);
        let photos = typed.as_ref().map_or_else(
            |_| HashSet::new(),
            |t| {
                t.photo_refs()
                    .into_iter()
                    .map(|p| (p.sha256.clone(), p.added_by.clone()))
                    .collect()
            },
        );
        let prior = match typed {
            Ok(TypedDoc::Hazard(h)) => {
                let status = h.status().ok();
                Self {
                    terms_fixed: status.as_ref().is_some_and(|s| s.terms_fixed),
                    closed: status.is_some_and(|s| s.state == HazardState::Closed),
                    events: h.events,
                    ..Self::default()
                }
            }
            Ok(TypedDoc::Visit(v)) => Self {
                signature: v.signature.clone(),
                has_signatures_list: crate::edit::has_root_key(before, "signatures"),
                signature_ids: v.signatures.clone(),
                ..Self::default()
            },
            Err(_) => Self::default(),
        };
        Self { photos, ..prior }
    }
}

/// The hazard as the author of `change` saw it: its status at the change's dependencies. A
/// rule that depends on where the hazard stands (terms fixed by the notice, closed) refuses an
/// edit only when its author knew; an edit made offline concurrently is kept, and the fold
/// decides what it counts for.
fn seen_status(fork: &Automerge, change: &Change) -> Option<HazardStatus> {
    let at = fork.fork_at(change.deps()).ok()?;
    doc::HazardDoc::hydrate_from(&at).ok()?.status().ok()
}

/// The append-only lists of each kind of document: items are inserted, never edited or removed.
fn append_only(kind: DocKind, top: &str) -> bool {
    matches!(
        (kind, top),
        (DocKind::Hazard, "events") | (DocKind::Visit, "signatures")
    )
}

#[allow(clippy::too_many_arguments)]
fn check_ops(
    fork: &Automerge,
    changes: &[Change],
    kind: DocKind,
    header: &Header,
    author: &Author,
    scope_ok: bool,
    created: bool,
    prior: &Prior,
    refusals: &mut Vec<ChangeRefusal>,
) {
    let origins = Origins::new(changes);
    let details = match kind {
        DocKind::Visit => VISIT_DETAIL_KEYS,
        DocKind::Hazard => HAZARD_DETAIL_KEYS,
    };
    let may_edit = created || policy::may_edit_details(author, header, scope_ok);
    for c in changes {
        let expanded = c.decode();
        let mut reasons: HashMap<(RefusalCode, String), ()> = HashMap::new();
        // Computed once per change, and only for a change that edits the details of a hazard
        // that is notified or closed now.
        let mut seen: Option<Option<HazardStatus>> = None;
        let mut seen_status = || {
            seen.get_or_insert_with(|| seen_status(fork, c))
                .as_ref()
                .map(|s| (s.terms_fixed, s.state == HazardState::Closed))
                .unwrap_or((false, false))
        };
        for op in &expanded.operations {
            let on_root = matches!(op.obj, automerge::legacy::ObjectId::Root);
            let path = match &op.obj {
                automerge::legacy::ObjectId::Root => match &op.key {
                    automerge::legacy::Key::Map(k) => Ok((k.to_string(), None)),
                    automerge::legacy::Key::Seq(_) => Err("sequence key on the root".to_string()),
                },
                automerge::legacy::ObjectId::Id(opid) => {
                    resolve(fork, &format!("{}@{}", opid.0, opid.1))
                }
            };
            let (top, event_obj) = match path {
                Ok(p) => p,
                Err(detail) => {
                    reasons.insert((RefusalCode::Malformed, detail), ());
                    continue;
                }
            };
            if HEADER_KEYS.contains(&top.as_str()) {
                if !created {
                    reasons.insert((RefusalCode::HeaderImmutable, top), ());
                }
            } else if append_only(kind, &top) {
                // Signatures are the agency's to record (the head signs on the inspector's
                // device); events are checked one by one in `check_events`.
                if top == "signatures" && !may_edit {
                    reasons.insert((RefusalCode::NotPermitted, top), ());
                    continue;
                }
                if on_root {
                    // Creating the list with the document (or, for signatures, on a document
                    // written before the list existed); replacing it later would drop history.
                    let first_list = top == "signatures" && !prior.has_signatures_list;
                    if !created && !first_list {
                        reasons.insert(
                            (
                                RefusalCode::EventsAppendOnly,
                                format!("{top} list replaced"),
                            ),
                            (),
                        );
                    }
                    continue;
                }
                match event_obj {
                    // An operation on the events list itself: only inserting a new event object.
                    None => {
                        let is_insert_of_map = op.insert
                            && matches!(
                                op.action,
                                automerge::legacy::OpType::Make(automerge::ObjType::Map)
                            );
                        if !is_insert_of_map {
                            reasons
                                .insert((RefusalCode::EventsAppendOnly, format!("{top} list")), ());
                        }
                    }
                    // Inside an event object: only one created by this batch.
                    Some(ev) => {
                        if origins.change_of(&ev).is_none() {
                            reasons.insert(
                                (RefusalCode::EventsAppendOnly, format!("{top} item {ev}")),
                                (),
                            );
                        }
                    }
                }
            } else if details.contains(&top.as_str()) {
                if !may_edit {
                    reasons.insert((RefusalCode::NotPermitted, top), ());
                } else if prior.closed && kind == DocKind::Hazard && seen_status().1 {
                    reasons.insert((RefusalCode::HazardClosed, top), ());
                } else if prior.terms_fixed
                    && matches!(top.as_str(), "grade" | "deadline")
                    && seen_status().0
                {
                    // Refused only when the author saw the notice: an edit made offline
                    // concurrently with it is kept, and the fold reads the notice's terms.
                    reasons.insert((RefusalCode::TermsFixed, top), ());
                } else if top == "signature" && prior.signature.is_some() {
                    reasons.insert((RefusalCode::SignatureImmutable, top), ());
                }
            } else {
                reasons.insert((RefusalCode::UnknownField, top), ());
            }
        }
        let mut reasons: Vec<_> = reasons.into_keys().collect();
        reasons.sort_by(|a, b| a.1.cmp(&b.1));
        for (code, detail) in reasons {
            refusals.push(of(c.hash(), code, detail));
        }
    }
}

/// Resolves an object to its root-level key and, when it lies inside the events list, the event
/// object that contains it (`None` when the object is the events list itself).
fn resolve(doc: &Automerge, obj: &str) -> Result<(String, Option<ObjId>), String> {
    let id = doc
        .import_obj(obj)
        .map_err(|e| format!("unknown object {obj}: {e}"))?;
    let parents = doc.parents(&id).map_err(|e| format!("object {obj}: {e}"))?;
    let mut child = id.clone();
    let mut below_child: Option<ObjId> = None;
    for p in parents {
        if p.obj == automerge::ROOT {
            let top = match p.prop {
                automerge::Prop::Map(k) => k,
                automerge::Prop::Seq(_) => return Err("sequence under root".into()),
            };
            // `child` is the root-level object; `below_child` the object directly inside it.
            let event_obj = if top == "events" || top == "signatures" {
                below_child
            } else {
                None
            };
            return Ok((top, event_obj));
        }
        below_child = Some(child);
        child = p.obj;
    }
    Err(format!("object {obj} is not reachable from the root"))
}

fn check_events(
    prior: &Prior,
    fork: &Automerge,
    changes: &[Change],
    header: &Header,
    hazard: &doc::HazardDoc,
    author: &Author,
    refusals: &mut Vec<ChangeRefusal>,
) {
    let after = hazard.events.as_slice();
    let before_events = &prior.events;
    let after_by_id: HashMap<&str, &Event> = after.iter().map(|e| (e.id.as_str(), e)).collect();
    if after_by_id.len() != after.len() {
        refusals.push(whole(RefusalCode::EventForged, "duplicate event id".into()));
    }
    for old in before_events {
        match after_by_id.get(old.id.as_str()) {
            Some(new) if *new == old => {}
            _ => refusals.push(whole(
                RefusalCode::EventsAppendOnly,
                format!("event {} changed", old.id),
            )),
        }
    }
    let old_ids: HashSet<&str> = before_events.iter().map(|e| e.id.as_str()).collect();
    let origins = Origins::new(changes);
    let events_obj = match fork.get(automerge::ROOT, "events") {
        Ok(Some((automerge::Value::Object(_), id))) => Some(id),
        _ => None,
    };
    for (idx, ev) in after.iter().enumerate() {
        if old_ids.contains(ev.id.as_str()) {
            continue;
        }
        let blame = events_obj
            .as_ref()
            .and_then(|list| fork.get(list, idx).ok().flatten())
            .and_then(|(_, obj)| origins.change_of(&obj));
        let refuse = |code, detail: String| ChangeRefusal {
            change: blame.map(|h| h.0),
            code,
            detail,
        };
        let forged = uuid::Uuid::parse_str(&ev.id).is_err()
            || ev.author != author.user.to_string()
            || ev.role != author.role
            || uuid::Uuid::parse_str(&ev.org).ok() != Some(author.org)
            || ev.device != author.device.to_string();
        if forged {
            refusals.push(refuse(RefusalCode::EventForged, format!("event {}", ev.id)));
            continue;
        }
        let relation = policy::relation_uuid(author.role, &author.org, header);
        if !policy::may_record(author.role, relation, &ev.kind) {
            refusals.push(refuse(
                RefusalCode::EventNotPermitted,
                format!("{} may not record {}", author.role, ev.kind.name()),
            ));
        }
        if ev.rules != Some(crate::rectification::RULES_VERSION) {
            refusals.push(refuse(RefusalCode::Outdated, format!("event {}", ev.id)));
            continue;
        }
        use crate::rectification::EventKind as K;
        let required = match &ev.kind {
            K::SignedFor { signer } => Some(("signer", signer)),
            K::ExtensionRequested { reason, .. }
            | K::ExtensionRefused { reason, .. }
            | K::Reopened { reason }
            | K::Regraded { reason, .. } => Some(("reason", reason)),
            K::ReportedToRegulator { to } => Some(("to", to)),
            _ => None,
        };
        if let Some((field, value)) = required
            && value.trim().is_empty()
        {
            refusals.push(refuse(
                RefusalCode::Required,
                format!(
                    "{}不能为空 / the {} is required",
                    crate::limits::field_label_zh(field),
                    crate::limits::field_label_en(field)
                ),
            ));
        }
        match &ev.kind {
            K::Notified => refusals.push(refuse(RefusalCode::Outdated, format!("event {}", ev.id))),
            K::NoticeIssued { grade, deadline } => {
                if Deadline::parse(deadline).is_err() {
                    refusals.push(refuse(RefusalCode::Malformed, "notice deadline".into()));
                }
                if *grade == crate::domain::Grade::Major
                    && !hazard.missing_five_in_place().is_empty()
                {
                    refusals.push(refuse(
                        RefusalCode::FiveInPlaceMissing,
                        hazard.missing_five_in_place().join(","),
                    ));
                }
            }
            K::RectificationSubmitted { note, photos } => {
                for p in photos {
                    if let Err(e) = p.validate() {
                        refusals.push(refuse(RefusalCode::Malformed, e.to_string()));
                    }
                }
                if photos.is_empty() && note.trim().is_empty() {
                    refusals.push(refuse(
                        RefusalCode::EvidenceMissing,
                        format!("event {}", ev.id),
                    ));
                }
            }
            K::ExtensionRequested { until, .. } | K::ExtensionGranted { until, .. }
                if Deadline::parse(until).is_err() =>
            {
                refusals.push(refuse(RefusalCode::Malformed, "extension date".into()));
            }
            _ => {}
        }
    }
}

/// The legacy single signature is set once and never changed or removed; recorded signatures
/// stay exactly as they were; a new one names real hazards by digest and carries a valid image.
/// A photo reference the batch adds names its author as the one who added it (or nobody): who
/// may see a photo is decided by whether the one who referenced it holds it (the server's photo
/// rules), so the name cannot be someone else's.
fn check_photo_authors(
    prior: &Prior,
    typed: &TypedDoc,
    author: &Author,
    refusals: &mut Vec<ChangeRefusal>,
) {
    let me = author.user.to_string();
    for p in typed.photo_refs() {
        // An empty name names nobody: such a reference can never show the photo.
        let own = p.added_by == me || p.added_by.is_empty();
        if !own
            && !prior
                .photos
                .contains(&(p.sha256.clone(), p.added_by.clone()))
        {
            refusals.push(whole(RefusalCode::PhotoForged, p.sha256.clone()));
            return;
        }
    }
}

fn check_signatures(prior: &Prior, v: &doc::VisitDoc, refusals: &mut Vec<ChangeRefusal>) {
    if let Some(old) = &prior.signature
        && v.signature.as_ref() != Some(old)
    {
        refusals.push(whole(RefusalCode::SignatureImmutable, "signature".into()));
    }
    for old in &prior.signature_ids {
        if !v.signatures.iter().any(|s| s == old) {
            refusals.push(whole(RefusalCode::SignatureImmutable, "signatures".into()));
        }
    }
    let mut ids = HashSet::new();
    for s in &v.signatures {
        if !ids.insert(s.id.as_str()) || uuid::Uuid::parse_str(&s.id).is_err() {
            refusals.push(whole(RefusalCode::Malformed, "signature id".into()));
        }
        if prior.signature_ids.iter().any(|o| o.id == s.id) {
            continue;
        }
        if s.signer_name.trim().is_empty() {
            refusals.push(whole(
                RefusalCode::Required,
                "签字人姓名不能为空 / the signer's name is required".into(),
            ));
        }
        if let Err(e) = s.image.validate() {
            refusals.push(whole(RefusalCode::Malformed, e.to_string()));
        }
        for h in &s.hazards {
            if uuid::Uuid::parse_str(&h.hazard).is_err()
                || !crate::domain::is_lowercase_sha256(&h.digest)
            {
                refusals.push(whole(RefusalCode::Malformed, "signed hazard".into()));
            }
        }
    }
}

fn check_hazard_content(h: &doc::HazardDoc) -> Result<(), String> {
    parse_category(&h.category).map_err(|e| e.to_string())?;
    Deadline::parse(&h.deadline).map_err(|e| e.to_string())?;
    for p in &h.photos {
        p.validate().map_err(|e| e.to_string())?;
    }
    Ok(())
}
