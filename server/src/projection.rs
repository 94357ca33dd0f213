//! Read models: accepted documents projected into SQL tables for lists, filters and dashboards.
//!
//! The documents are the truth; these tables are a view that [`rebuild`] can recreate from the
//! change log at any time (a test rebuilds and compares). A hazard's state is the sync-core fold
//! of its events; overdue is not stored but computed at query time from `current_deadline` and
//! the injected clock, so it is never stale.

use sync_core::doc::{HazardDoc, TypedDoc, VisitDoc};
use sync_core::domain::{Deadline, PhotoRef};
use sync_core::rectification::fold;
use sync_core::store::DocumentStore;

use crate::db::Db;
use crate::db::plan::{Arg, Plan};

/// A projection failure.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Database failure.
    #[error("projection database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The document could not be read.
    #[error("projection of an unreadable document: {0}")]
    Doc(String),
    /// Store failure during rebuild.
    #[error(transparent)]
    Store(#[from] sync_core::store::StoreError),
    /// A plan's statements failed.
    #[error("projection database error: {0}")]
    Plan(#[from] crate::db::DbError),
}

/// Serialises the projection of one document (striped by id): see [`project_current`].
static PROJECTION_LOCKS: std::sync::LazyLock<Vec<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(|| (0..64).map(|_| tokio::sync::Mutex::new(())).collect());

/// Projects document `id` as the hub holds it now, one projection of a document at a time.
///
/// Two syncs of one document (two phones, or a phone and a web action) finish in any order:
/// projecting each batch's own copy let the older copy be written last, leaving the tables
/// behind the document (found by the field simulator: a hazard closed in every replica showed
/// `in_progress` without the last events). Under the lock each projection reads the latest
/// document, so the last write always includes every change accepted before it.
///
/// `hydrated` is the caller's typed copy with the heads it was read from (the validator's): when
/// the hub's copy still has those heads — nothing else landed in between, the usual case — it is
/// projected as is instead of hydrating the same document again.
pub async fn project_current(
    hub: &sync_core::engine::Hub<Db>,
    db: &Db,
    id: uuid::Uuid,
    hydrated: Option<(&[sync_core::automerge::ChangeHash], &TypedDoc)>,
    now_ms: i64,
) -> Result<(), ProjectionError> {
    let stripe = id.as_u128() as usize % PROJECTION_LOCKS.len();
    let _guard = PROJECTION_LOCKS[stripe].lock().await;
    let doc = hub
        .load_shared(id)
        .await
        .map_err(|e| ProjectionError::Doc(e.to_string()))?
        .ok_or_else(|| ProjectionError::Doc(format!("document {id} is not in the store")))?;
    let heads = doc.get_heads();
    match hydrated {
        Some((h, typed)) if heads == h => project(db, typed, &heads, now_ms).await.map(drop),
        _ => {
            let typed = TypedDoc::hydrate(&doc).map_err(|e| ProjectionError::Doc(e.to_string()))?;
            project(db, &typed, &heads, now_ms).await.map(drop)
        }
    }
}

/// Projects one document, read from a copy with `heads`, which the read model records
/// (`documents.projected_heads`) in the same transaction: where they differ from the stored
/// heads the reconciler ([`crate::reconcile`]) projects the document again. `now_ms` is when the
/// server saw it (major-hazard report time).
///
/// Only the latest copy is written: the first statement records the heads only while they are
/// the document's stored heads, and locks its row. A copy that another request (or another
/// server instance) has since moved past is superseded, not written: the request that stored
/// the newer changes projects them (or, failing that, the reconciler does). So the read model
/// never goes back to an older copy, whichever projection commits last. Returns whether the
/// copy was written.
pub async fn project(
    db: &Db,
    typed: &TypedDoc,
    heads: &[sync_core::automerge::ChangeHash],
    now_ms: i64,
) -> Result<bool, ProjectionError> {
    let mut plan = Plan::default();
    // First, so that the document's row is locked before any read-model row: a projection
    // waits here behind an append of the same document, never while it holds tally rows.
    // (A document stored before its heads were recorded has none: any copy goes.)
    plan.guard(
        "UPDATE documents SET projected_heads = $1 WHERE id = $2 AND (heads IS NULL OR heads = $1)",
        vec![
            Arg::from(crate::db::heads_text(heads.iter().map(|h| &h.0))),
            Arg::from(typed_id(typed)),
        ],
    );
    match typed {
        TypedDoc::Visit(v) => plan_visit(&mut plan, v, now_ms),
        TypedDoc::Hazard(h) => plan_hazard(&mut plan, h, now_ms)?,
    }
    match plan.run(db).await {
        Ok(()) => Ok(true),
        Err(crate::db::DbError::Unchanged) => {
            tracing::debug!(
                doc = typed_id(typed),
                "projection superseded by a newer copy"
            );
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

fn typed_id(typed: &TypedDoc) -> &str {
    match typed {
        TypedDoc::Visit(v) => &v.id,
        TypedDoc::Hazard(h) => &h.id,
    }
}

fn plan_visit(plan: &mut Plan, v: &VisitDoc, now_ms: i64) {
    let total = v.checklist.len() as i64;
    let failed = v
        .checklist
        .iter()
        .filter(|i| i.result == sync_core::doc::visit::CheckResult::Fail)
        .count() as i64;
    let inspectors = serde_json::to_string(&v.inspectors).unwrap_or_else(|_| "[]".into());
    let kind = match v.visit_kind {
        sync_core::doc::visit::VisitKind::First => "first",
        sync_core::doc::visit::VisitKind::Routine => "routine",
        sync_core::doc::visit::VisitKind::Reinspection => "reinspection",
    };
    let signed_by = v.latest_signature().map(|s| s.signer_name);
    plan.push(
        "INSERT INTO visits_view (id, enterprise_id, agency_id, township_id, visit_kind, created_by, inspectors, \
         started_at, ended_at, place, checklist_total, checklist_failed, signed_by, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) \
         ON CONFLICT (id) DO UPDATE SET visit_kind = excluded.visit_kind, inspectors = excluded.inspectors, \
         started_at = excluded.started_at, ended_at = excluded.ended_at, place = excluded.place, \
         checklist_total = excluded.checklist_total, checklist_failed = excluded.checklist_failed, \
         signed_by = excluded.signed_by, updated_at = excluded.updated_at",
        vec![
            Arg::from(&v.id),
            Arg::from(&v.enterprise_id),
            Arg::from(&v.agency_id),
            Arg::from(&v.township_id),
            Arg::from(kind),
            Arg::from(&v.created_by),
            Arg::from(inspectors),
            Arg::from(v.started_at),
            Arg::from(v.ended_at),
            Arg::from(&v.place),
            Arg::from(total),
            Arg::from(failed),
            Arg::from(signed_by),
            Arg::from(now_ms),
        ],
    );
    let refs: Vec<&PhotoRef> = v
        .signature
        .iter()
        .map(|s| &s.image)
        .chain(v.signatures.iter().map(|s| &s.image))
        .collect();
    plan_photo_refs(plan, &v.id, &v.enterprise_id, &refs);
}

/// Records which photos a document references: who may see a photo follows from it. The
/// camera original's hash is kept beside the uploaded copy's, so an original produced as
/// evidence can be matched to the copy the platform holds. A reference seen again fills a
/// missing original hash but never replaces one.
///
/// A reference new to the document, added by someone who holds no copy of the photo, is
/// recorded as a claim first: it shows the photo to nobody until its claimant uploads the bytes
/// (`photo_holders`). Referencing another agency's photo by its hash thus reveals nothing.
fn plan_photo_refs(plan: &mut Plan, doc_id: &str, enterprise_id: &str, photos: &[&PhotoRef]) {
    for p in photos {
        plan.push(
            "INSERT INTO photo_claims (sha256, doc_id, user_id) SELECT $1, $2, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM photo_refs WHERE sha256 = $1 AND doc_id = $2) \
             AND NOT EXISTS (SELECT 1 FROM photo_holders WHERE sha256 = $1 AND user_id = $3) \
             ON CONFLICT DO NOTHING",
            vec![
                Arg::from(&p.sha256),
                Arg::from(doc_id),
                Arg::from(&p.added_by),
            ],
        );
        plan.push(
            "INSERT INTO photo_refs (sha256, doc_id, enterprise_id, original_sha256) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sha256, doc_id) DO UPDATE SET original_sha256 = excluded.original_sha256 \
             WHERE photo_refs.original_sha256 IS NULL AND excluded.original_sha256 IS NOT NULL",
            vec![
                Arg::from(&p.sha256),
                Arg::from(doc_id),
                Arg::from(enterprise_id),
                Arg::from(p.original_sha256.as_deref()),
            ],
        );
    }
}

/// Every photo a hazard references: as found, and as evidence in its history.
pub fn hazard_photos(h: &HazardDoc) -> Vec<&PhotoRef> {
    let mut out: Vec<&PhotoRef> = h.photos.iter().collect();
    for ev in &h.events {
        if let sync_core::rectification::EventKind::RectificationSubmitted { photos, .. } = &ev.kind
        {
            out.extend(photos.iter());
        }
    }
    out
}

fn plan_hazard(plan: &mut Plan, h: &HazardDoc, now_ms: i64) -> Result<(), ProjectionError> {
    let header = h
        .header()
        .map_err(|e| ProjectionError::Doc(e.to_string()))?;
    let status = fold(
        &header,
        h.grade,
        Deadline::parse(&h.deadline).ok(),
        &h.events,
    );
    let current_deadline = status.deadline.map(|d| d.to_string());
    plan.push(
        "INSERT INTO hazards_view (id, visit_id, enterprise_id, agency_id, township_id, location, description, \
         category, grade, criterion, measure, deadline, current_deadline, responsible_person, state, created_at, \
         closed_at, reported_at, under_supervision, photo_count, updated_at, funds_yuan) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22) \
         ON CONFLICT (id) DO UPDATE SET location = excluded.location, description = excluded.description, \
         category = excluded.category, grade = excluded.grade, criterion = excluded.criterion, \
         measure = excluded.measure, deadline = excluded.deadline, current_deadline = excluded.current_deadline, \
         responsible_person = excluded.responsible_person, state = excluded.state, closed_at = excluded.closed_at, \
         reported_at = excluded.reported_at, under_supervision = excluded.under_supervision, \
         photo_count = excluded.photo_count, updated_at = excluded.updated_at, funds_yuan = excluded.funds_yuan",
        vec![
            Arg::from(&h.id),
            Arg::from(&h.visit_id),
            Arg::from(&h.enterprise_id),
            Arg::from(&h.agency_id),
            Arg::from(&h.township_id),
            Arg::from(&h.location),
            Arg::from(h.description.as_str()),
            Arg::from(&h.category),
            // The grade in force: the notice's and later regrades', not an edited field.
            Arg::from(status.grade.as_str()),
            Arg::from(h.criterion.clone()),
            Arg::from(h.measure.as_str()),
            Arg::from(&h.deadline),
            Arg::from(current_deadline),
            Arg::from(&h.responsible_person),
            Arg::from(status.state.as_str()),
            Arg::from(h.created_at),
            Arg::from(status.closed_at),
            Arg::from(status.reported_at),
            Arg::from(i64::from(status.under_supervision)),
            Arg::from(h.photos.len() as i64),
            Arg::from(now_ms),
            Arg::from(h.funds_yuan),
        ],
    );
    plan.push(
        "DELETE FROM hazard_events_view WHERE hazard_id = $1",
        vec![Arg::from(&h.id)],
    );
    for (i, (ev, outcome)) in h.events.iter().zip(&status.outcomes).enumerate() {
        plan.push(
            "INSERT INTO hazard_events_view (hazard_id, position, event_id, at, author, role, device, kind, detail, ignored) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
            vec![
                Arg::from(&h.id),
                Arg::from(i as i64),
                Arg::from(&ev.id),
                Arg::from(ev.at),
                Arg::from(&ev.author),
                Arg::from(ev.role.as_str()),
                Arg::from(&ev.device),
                Arg::from(ev.kind.name()),
                Arg::from(event_detail(&ev.kind)),
                Arg::from(outcome.ignored.map(|w| w.message())),
            ],
        );
    }
    // Events out: every event that took effect, once (a projection run again adds nothing), and
    // a delivery of each to every webhook of the hazard's enterprise, agency and township that
    // existed when the event was first seen (`crate::webhooks`).
    plan.push(
        "INSERT INTO webhook_events (hazard_id, event_id, kind, enterprise_id, agency_id, township_id, detail, at, author, created_at) \
         SELECT ev.hazard_id, ev.event_id, 'hazard.' || ev.kind, $2, $3, $4, ev.detail, ev.at, ev.author, $5 \
         FROM hazard_events_view ev WHERE ev.hazard_id = $1 AND ev.ignored IS NULL \
         ON CONFLICT (hazard_id, event_id) DO NOTHING",
        vec![
            Arg::from(&h.id),
            Arg::from(&h.enterprise_id),
            Arg::from(&h.agency_id),
            Arg::from(&h.township_id),
            Arg::from(now_ms),
        ],
    );
    plan.push(crate::webhooks::FAN_OUT_HAZARD, vec![Arg::from(&h.id)]);
    if status.grade == sync_core::domain::Grade::Major {
        // Reported to the township the first time the server sees the hazard as major.
        plan.push(
            "INSERT INTO major_hazard_reports (hazard_id, township_id, enterprise_id, reported_at) VALUES ($1,$2,$3,$4) \
             ON CONFLICT (hazard_id) DO NOTHING",
            vec![
                Arg::from(&h.id),
                Arg::from(&h.township_id),
                Arg::from(&h.enterprise_id),
                Arg::from(now_ms),
            ],
        );
        // The report clock: found (device), reported by the agency (device), and the first time
        // the server received that report (kept: a later projection or a rebuild does not move
        // it).
        plan.push(
            "UPDATE major_hazard_reports SET found_at = $2, report_claimed_at = $3, \
             report_received_at = CASE WHEN $3 IS NULL THEN NULL ELSE COALESCE(report_received_at, $4) END \
             WHERE hazard_id = $1",
            vec![
                Arg::from(&h.id),
                Arg::from(status.major_since),
                Arg::from(status.reported_at),
                Arg::from(now_ms),
            ],
        );
    }
    plan_photo_refs(plan, &h.id, &h.enterprise_id, &hazard_photos(h));
    Ok(())
}

/// A JSON rendering of an event's payload for the history view.
pub fn event_detail(kind: &sync_core::rectification::EventKind) -> String {
    use sync_core::rectification::EventKind::*;
    let v = match kind {
        Notified => serde_json::json!({}),
        NoticeIssued { grade, deadline } => {
            serde_json::json!({ "grade": grade.as_str(), "deadline": deadline })
        }
        Regraded { grade, reason } => {
            serde_json::json!({ "grade": grade.as_str(), "reason": reason })
        }
        SignedFor { signer } => serde_json::json!({ "signer": signer }),
        ExtensionRequested { until, reason } => {
            serde_json::json!({ "until": until, "reason": reason })
        }
        ExtensionGranted { request, until } => {
            serde_json::json!({ "request": request, "until": until })
        }
        ExtensionRefused { request, reason } => {
            serde_json::json!({ "request": request, "reason": reason })
        }
        RectificationSubmitted { note, photos } => serde_json::json!({
            "note": note,
            "photos": photos.iter().map(|p| p.sha256.clone()).collect::<Vec<_>>(),
        }),
        Verified { accepted, note } => serde_json::json!({ "accepted": accepted, "note": note }),
        ReportedToRegulator { to } => serde_json::json!({ "to": to }),
        SupervisionPut { note } | SupervisionLifted { note } | Closed { note } => {
            serde_json::json!({ "note": note })
        }
        Reopened { reason } => serde_json::json!({ "reason": reason }),
    };
    v.to_string()
}

/// Drops every projected row and projects every document again from the change log.
/// Major-hazard reports keep their original time.
pub async fn rebuild(db: &Db, now_ms: i64) -> Result<usize, ProjectionError> {
    let mut clear = Plan::default();
    for sql in [
        "DELETE FROM visits_view",
        "DELETE FROM hazards_view",
        "DELETE FROM hazard_events_view",
        "UPDATE documents SET projected_heads = NULL",
    ] {
        clear.push(sql, Vec::new());
    }
    clear.run(db).await?;
    let ids = db.document_ids().await?;
    let mut n = 0;
    for id in ids {
        let id = uuid::Uuid::parse_str(&id).map_err(|e| ProjectionError::Doc(e.to_string()))?;
        let Some(loaded) = db.load(id).await? else {
            continue;
        };
        let doc = loaded.into_automerge()?;
        let typed = TypedDoc::hydrate(&doc).map_err(|e| ProjectionError::Doc(e.to_string()))?;
        project(db, &typed, &doc.get_heads(), now_ms).await?;
        n += 1;
    }
    Ok(n)
}
