//! Making edits: the typed way phones, the web and tests change documents.
//!
//! An edit hydrates the typed document, lets the caller change it, and reconciles it back as one
//! Automerge change made by the author's actor. [`checked`] then runs the very validation the
//! server will run ([`crate::validate`]), so an edit the policy forbids is refused before it is
//! committed locally.

use automerge::{ActorId, Automerge, ReadDoc, transaction::CommitOptions};
use autosurgeon::{Hydrate, Reconcile};

use crate::doc::{DocError, DocKind, HazardDoc, Header, VisitDoc};
use crate::domain::Author;
use crate::rectification::{Event, EventKind};
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

/// Hydrates `T` from `doc`, applies `f`, and writes it back as one change.
pub fn modify<T: Reconcile + Hydrate>(
    doc: &Automerge,
    actor: &ActorId,
    at_ms: i64,
    f: impl FnOnce(&mut T),
) -> Result<Edited, EditError> {
    let mut value: T = autosurgeon::hydrate(doc).map_err(|e| DocError::Shape {
        kind: "document",
        detail: e.to_string(),
    })?;
    f(&mut value);
    write(Some(doc), actor, &value, at_ms)
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

/// Appends a rectification event recorded by `author`, checked against the policy.
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
    let event = Event {
        id: event_id.to_string(),
        at: at_ms,
        author: author.user.to_string(),
        role: author.role,
        org: author.org.hyphenated().to_string(),
        device: author.device.to_string(),
        kind,
    };
    let edited = modify::<HazardDoc>(doc, first_actor(author)?, at_ms, |h| h.events.push(event))?;
    checked(Some(doc), edited, &header, author, true)
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
