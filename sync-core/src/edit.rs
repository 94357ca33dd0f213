//! Making edits: the typed way phones, the web and tests change documents.
//!
//! An edit hydrates the typed document, lets the caller change it, and writes back as one
//! Automerge change made by the author's actor *only the fields the caller changed*: a detail
//! edit touches the keys whose value differs, an event is one insertion at the end of the
//! events list and touches nothing else. So a field that holds two concurrent values (two
//! inspectors set it offline) stays as it is until someone who may edit it picks one
//! ([`resolve_conflict`]), and a manager's event on such a hazard is not mistaken for an edit of
//! that field. [`checked`] then runs the very validation the server will run
//! ([`crate::validate`]), so an edit the policy forbids is refused before it is committed
//! locally.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ObjType, ReadDoc, ScalarValue, Value};
use autosurgeon::{Hydrate, Reconcile};

use crate::doc::{DocError, DocKind, HazardDoc, Header, VisitDoc};
use crate::domain::Author;
use crate::rectification::{Event, EventKind, Why};
use crate::validate::{self, ChangeRefusal};

/// An edit that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The document does not have the expected shape.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// Automerge refused the write.
    #[error("could not write the document: {0}")]
    Write(String),
    /// The policy refuses the edit.
    #[error("refused: {}", .0.iter().map(|r| format!("{} ({})", r.code.message(), r.detail)).collect::<Vec<_>>().join("; "))]
    Refused(Vec<ChangeRefusal>),
    /// The event is allowed to the author but would have no effect where the hazard stands
    /// (closing before acceptance, verifying before a submission): refused before recording.
    #[error("{0}")]
    NotNow(Why),
}

/// The result of an edit: the new document and the change it made (none if nothing changed).
#[derive(Debug)]
pub struct Edited {
    /// The document after the edit.
    pub doc: Automerge,
    /// The raw change, if anything changed.
    pub change: Option<Vec<u8>>,
}

/// Reconciles `value` into a fork of `doc` (or a new document) as one change by `actor`.
pub fn write<T: Reconcile>(
    doc: Option<&Automerge>,
    actor: &ActorId,
    value: &T,
    at_ms: i64,
) -> Result<Edited, EditError> {
    let mut fork = match doc {
        Some(d) => d.clone().with_actor(actor.clone()),
        None => Automerge::new().with_actor(actor.clone()),
    };
    let before = fork.get_heads();
    let mut tx = fork.transaction();
    autosurgeon::reconcile(&mut tx, value).map_err(|e| EditError::Write(e.to_string()))?;
    tx.commit_with(CommitOptions::default().with_time(at_ms / 1000));
    let change = if fork.get_heads() == before {
        None
    } else {
        fork.get_last_local_change().map(|c| c.raw_bytes().to_vec())
    };
    Ok(Edited { doc: fork, change })
}

/// A typed document whose top-level fields can be written one by one.
pub trait Fields: Reconcile + Hydrate + Clone {
    /// Writes into `tx` every root key whose value differs between `before` and `after`.
    fn write_changed(
        tx: &mut automerge::transaction::Transaction<'_>,
        before: &Self,
        after: &Self,
    ) -> Result<(), autosurgeon::ReconcileError>;
}

/// Implements [`Fields`] for a document type from the list of its root keys.
macro_rules! fields {
    ($ty:ty: $($field:ident),+ $(,)?) => {
        impl Fields for $ty {
            fn write_changed(
                tx: &mut automerge::transaction::Transaction<'_>,
                before: &Self,
                after: &Self,
            ) -> Result<(), autosurgeon::ReconcileError> {
                // Names every field (no `..`): a field added to the type and not to the list
                // does not compile, so an edit can never drop it silently.
                let Self { $($field: _),+ } = before;
                $(
                    if before.$field != after.$field {
                        autosurgeon::reconcile_prop(tx, automerge::ROOT, stringify!($field), &after.$field)?;
                    }
                )+
                Ok(())
            }
        }
    };
}

fields!(HazardDoc: schema, kind, id, visit_id, enterprise_id, agency_id, township_id, created_by,
    created_at, location, description, category, grade, criterion, measure, deadline,
    responsible_person, funds_yuan, emergency_plan, photos, events);

fields!(VisitDoc: schema, kind, id, enterprise_id, agency_id, township_id, created_by, created_at,
    visit_kind, inspectors, started_at, ended_at, place, gps, checklist, service_plan,
    overall_assessment, notes, signature, signatures);

/// Hydrates `T` from `doc`, applies `f`, and writes back as one change only the fields `f`
/// changed.
pub fn modify<T: Fields>(
    doc: &Automerge,
    actor: &ActorId,
    at_ms: i64,
    f: impl FnOnce(&mut T),
) -> Result<Edited, EditError> {
    let before: T = autosurgeon::hydrate(doc).map_err(|e| DocError::Shape {
        kind: "document",
        detail: e.to_string(),
    })?;
    let mut after = before.clone();
    f(&mut after);
    let mut fork = doc.clone().with_actor(actor.clone());
    let heads = fork.get_heads();
    let mut tx = fork.transaction();
    T::write_changed(&mut tx, &before, &after).map_err(|e| EditError::Write(e.to_string()))?;
    tx.commit_with(CommitOptions::default().with_time(at_ms / 1000));
    let change = if fork.get_heads() == heads {
        None
    } else {
        fork.get_last_local_change().map(|c| c.raw_bytes().to_vec())
    };
    Ok(Edited { doc: fork, change })
}

/// Validates an edit exactly as the server will, before it is committed locally.
pub fn checked(
    before: Option<&Automerge>,
    edited: Edited,
    header: &Header,
    author: &Author,
    in_scope: bool,
) -> Result<Edited, EditError> {
    let Some(change) = &edited.change else {
        return Ok(edited);
    };
    let scope = |_: &Header| in_scope;
    validate::validate_batch(
        before,
        header.id,
        header.kind,
        std::slice::from_ref(change),
        author,
        &scope,
    )
    .map_err(EditError::Refused)?;
    Ok(edited)
}

/// Creates a visit document.
pub fn new_visit(visit: &VisitDoc, author: &Author, at_ms: i64) -> Result<Edited, EditError> {
    let header = visit.header()?;
    let edited = write(None, first_actor(author)?, visit, at_ms)?;
    checked(None, edited, &header, author, true)
}

/// Creates a hazard document.
pub fn new_hazard(hazard: &HazardDoc, author: &Author, at_ms: i64) -> Result<Edited, EditError> {
    let header = hazard.header()?;
    let edited = write(None, first_actor(author)?, hazard, at_ms)?;
    checked(None, edited, &header, author, true)
}

/// Changes a visit's details as `author`, checked against the policy.
pub fn edit_visit(
    doc: &Automerge,
    author: &Author,
    at_ms: i64,
    f: impl FnOnce(&mut VisitDoc),
) -> Result<Edited, EditError> {
    let header = crate::doc::read_header(doc)?;
    let edited = modify::<VisitDoc>(doc, first_actor(author)?, at_ms, f)?;
    checked(Some(doc), edited, &header, author, true)
}

/// Changes a hazard's details as `author`, checked against the policy.
pub fn edit_hazard(
    doc: &Automerge,
    author: &Author,
    at_ms: i64,
    f: impl FnOnce(&mut HazardDoc),
) -> Result<Edited, EditError> {
    let header = crate::doc::read_header(doc)?;
    let edited = modify::<HazardDoc>(doc, first_actor(author)?, at_ms, f)?;
    checked(Some(doc), edited, &header, author, true)
}

/// Appends a rectification event recorded by `author`, checked against the policy and against
/// where the hazard stands: an event the fold would ignore is refused with the rule
/// ([`EditError::NotNow`]), so the user learns it now and not after the next sync.
///
/// The change is one insertion at the end of the events list; nothing else in the document is
/// written. [`EventKind::Notified`] is written as [`EventKind::NoticeIssued`] with the grade
/// and deadline the hazard holds now ([`notice_for`]).
pub fn record_event(
    doc: &Automerge,
    author: &Author,
    event_id: crate::ids::EventId,
    at_ms: i64,
    kind: EventKind,
) -> Result<Edited, EditError> {
    let header = crate::doc::read_header(doc)?;
    if header.kind != DocKind::Hazard {
        return Err(DocError::Shape {
            kind: "hazard",
            detail: "events are recorded on hazards".into(),
        }
        .into());
    }
    let hazard = HazardDoc::hydrate_from(doc)?;
    // Asked to notify, the event written is the notice with the terms the hazard holds now.
    let kind = match kind {
        EventKind::Notified => notice_for(&hazard),
        other => other,
    };
    let event = Event::by(author, event_id.to_string(), at_ms, kind);
    let edited = append_event(doc, first_actor(author)?, at_ms, &event)?;
    let edited = checked(Some(doc), edited, &header, author, true)?;
    let mut status = hazard.status()?;
    crate::rectification::step(&mut status, &header, &event).map_err(EditError::NotNow)?;
    Ok(edited)
}

/// Records the enterprise head's signature on a visit's hazard list: a new record beside any
/// earlier one, naming each of `hazards` with the digest of the content it has now.
pub fn sign_hazard_list(
    visit: &Automerge,
    hazards: &[HazardDoc],
    author: &Author,
    signature_id: uuid::Uuid,
    signer_name: &str,
    image: crate::domain::PhotoRef,
    at_ms: i64,
) -> Result<Edited, EditError> {
    let signature = crate::doc::visit::ListSignature {
        id: signature_id.hyphenated().to_string(),
        signer_name: signer_name.to_owned(),
        image,
        signed_at: at_ms,
        hazards: hazards
            .iter()
            .map(|h| crate::doc::visit::SignedHazard {
                hazard: h.id.clone(),
                digest: h.content_digest(),
            })
            .collect(),
    };
    edit_visit(visit, author, at_ms, |v| v.signatures.push(signature))
}

/// The notice for a hazard with the terms its details hold now (grade and deadline).
pub fn notice_for(hazard: &HazardDoc) -> EventKind {
    EventKind::NoticeIssued {
        grade: hazard.grade,
        deadline: hazard.deadline.clone(),
    }
}

/// Issues the rectification notice of a hazard with the terms its details hold now.
pub fn notify(
    doc: &Automerge,
    author: &Author,
    event_id: crate::ids::EventId,
    at_ms: i64,
) -> Result<Edited, EditError> {
    let hazard = HazardDoc::hydrate_from(doc)?;
    record_event(doc, author, event_id, at_ms, notice_for(&hazard))
}

/// Writes one event at the end of the events list, and nothing else.
fn append_event(
    doc: &Automerge,
    actor: &ActorId,
    at_ms: i64,
    event: &Event,
) -> Result<Edited, EditError> {
    let mut fork = doc.clone().with_actor(actor.clone());
    let list = match fork.get(automerge::ROOT, "events") {
        Ok(Some((Value::Object(ObjType::List), id))) => id,
        _ => {
            return Err(DocError::Shape {
                kind: "hazard",
                detail: "no events list".into(),
            }
            .into());
        }
    };
    let len = fork.length(&list);
    let mut tx = fork.transaction();
    autosurgeon::reconcile_insert(&mut tx, list.clone(), len, event)
        .map_err(|e| EditError::Write(e.to_string()))?;
    tx.commit_with(CommitOptions::default().with_time(at_ms / 1000));
    let change = fork.get_last_local_change().map(|c| c.raw_bytes().to_vec());
    Ok(Edited { doc: fork, change })
}

/// A detail field that holds more than one value: two people set it concurrently, offline.
/// Automerge keeps every value; one shows until someone who may edit the field picks one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldConflict {
    /// The field's key.
    pub field: &'static str,
    /// Every concurrent value, as text; the first is the one shown until resolved.
    pub values: Vec<String>,
}

/// Detail fields that hold a single value (texts that merge character by character cannot
/// conflict this way).
const SCALAR_FIELDS: &[&str] = &[
    "location",
    "category",
    "grade",
    "criterion",
    "deadline",
    "responsible_person",
    "funds_yuan",
    "emergency_plan",
    "place",
    "visit_kind",
    "started_at",
    "ended_at",
];

fn scalar_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Str(s) => s.to_string(),
        ScalarValue::Int(i) => i.to_string(),
        ScalarValue::Uint(u) => u.to_string(),
        ScalarValue::F64(f) => f.to_string(),
        ScalarValue::Boolean(b) => b.to_string(),
        ScalarValue::Null => String::new(),
        other => other.to_string(),
    }
}

/// The detail fields of a document that hold concurrent values.
pub fn conflicts(doc: &Automerge) -> Vec<FieldConflict> {
    let mut out = Vec::new();
    for field in SCALAR_FIELDS {
        let Ok(all) = doc.get_all(automerge::ROOT, *field) else {
            continue;
        };
        if all.len() < 2 {
            continue;
        }
        // `get` answers the value Automerge shows; list it first.
        let shown = doc
            .get(automerge::ROOT, *field)
            .ok()
            .flatten()
            .map(|(_, id)| id);
        let mut values: Vec<(bool, String)> = all
            .iter()
            .map(|(v, id)| {
                let text = match v {
                    Value::Scalar(s) => scalar_text(s),
                    Value::Object(_) => doc.text(id).unwrap_or_default(),
                };
                (Some(id) != shown.as_ref(), text)
            })
            .collect();
        values.sort();
        values.dedup_by(|a, b| a.1 == b.1);
        out.push(FieldConflict {
            field,
            values: values.into_iter().map(|(_, t)| t).collect(),
        });
    }
    out
}

/// Resolves a field that holds concurrent values by writing `value` over all of them (a text
/// field's value; `funds_yuan` as a number, empty for none). Checked against the policy like
/// any detail edit.
pub fn resolve_conflict(
    doc: &Automerge,
    author: &Author,
    at_ms: i64,
    field: &str,
    value: &str,
) -> Result<Edited, EditError> {
    let header = crate::doc::read_header(doc)?;
    let Some(field) = SCALAR_FIELDS.iter().find(|f| **f == field) else {
        return Err(EditError::Write(format!(
            "{field} is not a field that can be resolved"
        )));
    };
    let mut fork = doc.clone().with_actor(first_actor(author)?.clone());
    let mut tx = fork.transaction();
    let put = match *field {
        "funds_yuan" if value.trim().is_empty() => {
            tx.put(automerge::ROOT, *field, ScalarValue::Null)
        }
        "funds_yuan" => {
            let n: i64 = value.trim().parse().map_err(|_| {
                EditError::Write(
                    "整改资金须为整数（元） / funds must be a whole number of yuan".into(),
                )
            })?;
            tx.put(automerge::ROOT, *field, n)
        }
        "started_at" | "ended_at" => {
            let n: i64 = value.trim().parse().map_err(|_| {
                EditError::Write("时间须为毫秒数 / a time must be in milliseconds".into())
            })?;
            tx.put(automerge::ROOT, *field, n)
        }
        _ => tx.put(automerge::ROOT, *field, value),
    };
    put.map_err(|e| EditError::Write(e.to_string()))?;
    tx.commit_with(CommitOptions::default().with_time(at_ms / 1000));
    let change = fork.get_last_local_change().map(|c| c.raw_bytes().to_vec());
    let edited = Edited { doc: fork, change };
    // The result must still read as the schema says (a grade is `general` or `major`, ...).
    crate::doc::TypedDoc::hydrate(&edited.doc)?;
    checked(Some(doc), edited, &header, author, true)
}

/// Re-records what `doc` holds beyond `synced` (the changes the server is known to have) as one
/// change by `author`, for edits made on a device that can no longer send them: its agency
/// revoked it, and the user enrolled this phone again as a new device.
///
/// The content stays as it is. Events recorded on `from_device` that the server has not seen now
/// name the author's device (the server accepts new events only from the device that sends
/// them); their time stays the time they were recorded. The change's message says which device
/// the edits came from, so the history keeps it. The result is checked as the server will check
/// it, so an edit the rules no longer allow is refused here, not after the next sync.
pub fn rerecord(
    doc: &Automerge,
    synced: &[automerge::ChangeHash],
    author: &Author,
    from_device: &str,
    at_ms: i64,
) -> Result<Edited, EditError> {
    let actor = first_actor(author)?;
    let header = crate::doc::read_header(doc)?;
    let base = if synced.is_empty() {
        None
    } else {
        Some(
            doc.fork_at(synced)
                .map_err(|e| EditError::Write(e.to_string()))?,
        )
    };
    let message = format!("{RERECORDED_FROM}{from_device}");
    let edited = match crate::doc::TypedDoc::hydrate(doc)? {
        crate::doc::TypedDoc::Visit(visit) => {
            rewrite(base.as_ref(), actor, visit.as_ref(), at_ms, &message)?
        }
        crate::doc::TypedDoc::Hazard(mut hazard) => {
            let known: std::collections::HashSet<String> = match &base {
                Some(b) => HazardDoc::hydrate_from(b)?
                    .events
                    .into_iter()
                    .map(|e| e.id)
                    .collect(),
                None => std::collections::HashSet::new(),
            };
            let device = author.device.to_string();
            for e in hazard
                .events
                .iter_mut()
                .filter(|e| e.device == from_device && !known.contains(&e.id))
            {
                e.device.clone_from(&device);
            }
            rewrite(base.as_ref(), actor, hazard.as_ref(), at_ms, &message)?
        }
    };
    checked(base.as_ref(), edited, &header, author, true)
}

/// How the message of a re-recorded change begins; the old device's id follows.
pub const RERECORDED_FROM: &str = "re-recorded from device ";

/// Writes `value` over `base` (or into a new document) as one change by `actor` with `message`.
fn rewrite<T: Fields>(
    base: Option<&Automerge>,
    actor: &ActorId,
    value: &T,
    at_ms: i64,
    message: &str,
) -> Result<Edited, EditError> {
    let mut fork = match base {
        Some(b) => b.clone().with_actor(actor.clone()),
        None => Automerge::new().with_actor(actor.clone()),
    };
    let heads = fork.get_heads();
    let mut tx = fork.transaction();
    match base {
        Some(b) => {
            let before: T = autosurgeon::hydrate(b).map_err(|e| DocError::Shape {
                kind: "document",
                detail: e.to_string(),
            })?;
            T::write_changed(&mut tx, &before, value)
        }
        None => autosurgeon::reconcile(&mut tx, value),
    }
    .map_err(|e| EditError::Write(e.to_string()))?;
    tx.commit_with(
        CommitOptions::default()
            .with_time(at_ms / 1000)
            .with_message(message.to_owned()),
    );
    let change = if fork.get_heads() == heads {
        None
    } else {
        fork.get_last_local_change().map(|c| c.raw_bytes().to_vec())
    };
    Ok(Edited { doc: fork, change })
}

fn first_actor(author: &Author) -> Result<&ActorId, EditError> {
    author
        .actors
        .first()
        .ok_or_else(|| EditError::Write("no actor enrolled for this device".into()))
}

/// Whether a document has a given key at its root (cheap check without hydrating).
pub fn has_root_key(doc: &Automerge, key: &str) -> bool {
    matches!(doc.get(automerge::ROOT, key), Ok(Some(_)))
}
