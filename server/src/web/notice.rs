//! A visit's full record (checklist, signature, hazards with photos, funds and emergency plan) and
//! the rectification notice (整改通知书) built from it, as JSON for the printable page and as a PDF.
//!
//! `GET /api/v1/visits/{id}/record` reads the visit and hazard documents (the projections do not
//! hold checklists or photos); `GET /api/v1/visits/{id}/notice.pdf` renders the same record with
//! the hazards' photos and the signature image (thumbnails from the photo store). Both are
//! scope-limited through [`crate::api::hazards::visit`]; the photos drawn are only those the
//! visit's own documents reference.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sync_core::doc::{HazardDoc, VisitDoc};
use sync_core::domain::PhotoRef;

use super::pdf::{MAX_IMAGE_BYTES, NoticeImages, PhotoImage};
use crate::AppState;
use crate::api::hazards::{HazardRow, VisitRow};
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody, Json};
use crate::photos::{PhotoError, PhotoHash, Variant};

/// One checklist line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckLine {
    pub id: String,
    pub title: String,
    pub result: sync_core::doc::visit::CheckResult,
    pub note: String,
}

/// The enterprise head's signature on the hazard list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignatureInfo {
    pub signer_name: String,
    pub image: PhotoRef,
    pub signed_at: i64,
}

/// A hazard as the notice lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoticeHazard {
    #[serde(flatten)]
    pub row: HazardRow,
    pub funds_yuan: Option<i64>,
    pub emergency_plan: String,
    pub photos: Vec<PhotoRef>,
    /// Whether a signature covers the hazard as it is now: a hazard added or changed after
    /// signing is not covered. A visit signed before signatures named their hazards counts as
    /// signed for all of them.
    #[serde(default = "not_signed")]
    pub signed: sync_core::doc::visit::SignedState,
}

fn not_signed() -> sync_core::doc::visit::SignedState {
    sync_core::doc::visit::SignedState::NotSigned
}

/// A visit's whole record.
#[derive(Debug, Clone, Serialize)]
pub struct VisitRecord {
    pub visit: VisitRow,
    pub enterprise: Option<crate::db::Enterprise>,
    pub agency_name: String,
    pub township_name: String,
    pub checklist: Vec<CheckLine>,
    pub overall_assessment: String,
    pub notes: String,
    pub signature: Option<SignatureInfo>,
    pub hazards: Vec<NoticeHazard>,
}

async fn org_name(state: &AppState, id: &str) -> Result<String, ApiError> {
    Ok(state.db.organisation_name(id).await?)
}

async fn load(state: &AppState, id: &str) -> Option<sync_core::automerge::Automerge> {
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    state.hub.load(uuid).await.ok().flatten()
}

/// Assembles a visit's record if the visit is in the caller's scope (404 otherwise).
pub async fn visit_record(
    state: &AppState,
    user: AuthUser,
    id: String,
) -> Result<VisitRecord, ApiError> {
    let Json(detail) =
        crate::api::hazards::visit(State(state.clone()), user, Path(id.clone())).await?;
    let visit_doc = load(state, &id)
        .await
        .and_then(|d| VisitDoc::hydrate_from(&d).ok());
    let mut hazards = Vec::with_capacity(detail.hazards.len());
    for row in detail.hazards {
        let doc = load(state, &row.id)
            .await
            .and_then(|d| HazardDoc::hydrate_from(&d).ok());
        let signed = match (&visit_doc, &doc) {
            (Some(v), Some(_)) if v.signatures.is_empty() && v.signature.is_some() => {
                sync_core::doc::visit::SignedState::Signed
            }
            (Some(v), Some(h)) => v.signed_state(&h.id, &h.content_digest()),
            _ => sync_core::doc::visit::SignedState::NotSigned,
        };
        hazards.push(NoticeHazard {
            signed,
            funds_yuan: doc.as_ref().and_then(|h| h.funds_yuan),
            emergency_plan: doc
                .as_ref()
                .map(|h| h.emergency_plan.clone())
                .unwrap_or_default(),
            photos: doc.map(|h| h.photos).unwrap_or_default(),
            row,
        });
    }
    let visit = detail.visit;
    Ok(VisitRecord {
        enterprise: state.db.enterprise_by_id(&visit.enterprise_id).await?,
        agency_name: org_name(state, &visit.agency_id).await?,
        township_name: org_name(state, &visit.township_id).await?,
        checklist: visit_doc
            .as_ref()
            .map(|v| {
                v.checklist
                    .iter()
                    .map(|c| CheckLine {
                        id: c.id.clone(),
                        title: c.title.clone(),
                        result: c.result,
                        note: c.note.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        overall_assessment: visit_doc
            .as_ref()
            .map(|v| v.overall_assessment.to_string())
            .unwrap_or_default(),
        notes: visit_doc
            .as_ref()
            .map(|v| v.notes.to_string())
            .unwrap_or_default(),
        signature: visit_doc
            .and_then(|v| v.latest_signature())
            .map(|s| SignatureInfo {
                signer_name: s.signer_name,
                image: s.image,
                signed_at: s.signed_at,
            }),
        visit,
        hazards,
    })
}

/// `GET /api/v1/visits/{id}/record`.
pub async fn record(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<VisitRecord>, ApiError> {
    Ok(Json(visit_record(&state, user, id).await?))
}

/// A photo's thumbnail for the notice, or why there is none.
///
/// Only a reference that may show the photo draws it (see `crate::db::Db::photo_ref_vouched`):
/// a hash copied from another agency's record draws nothing.
async fn thumbnail(state: &AppState, doc_id: &str, photo: &PhotoRef) -> PhotoImage {
    use tokio::io::AsyncReadExt as _;
    let Ok(hash) = photo.sha256.parse::<PhotoHash>() else {
        return PhotoImage::Unreadable;
    };
    match state.db.photo_ref_vouched(&photo.sha256, doc_id).await {
        Ok(true) => {}
        Ok(false) => return PhotoImage::NotUploaded,
        Err(e) => {
            tracing::warn!(%hash, error = %e, "cannot tell whether a notice may show a photo");
            return PhotoImage::Unreadable;
        }
    }
    match state.photos.open_variant(hash, Variant::Thumbnail).await {
        Ok((file, len)) if len <= MAX_IMAGE_BYTES => {
            let mut bytes = Vec::with_capacity(len as usize);
            match file.take(MAX_IMAGE_BYTES).read_to_end(&mut bytes).await {
                Ok(_) => PhotoImage::Jpeg(bytes),
                Err(e) => {
                    tracing::warn!(%hash, error = %e, "thumbnail unreadable for a notice");
                    PhotoImage::Unreadable
                }
            }
        }
        Ok((_, len)) => {
            tracing::warn!(%hash, len, "thumbnail too large for a notice");
            PhotoImage::Unreadable
        }
        Err(PhotoError::NotStored(_)) => PhotoImage::NotUploaded,
        Err(e) => {
            tracing::warn!(%hash, error = %e, "thumbnail unavailable for a notice");
            PhotoImage::Unreadable
        }
    }
}

/// Reads the pictures the notice of `record` draws (see [`super::pdf::photos_to_draw`]).
pub async fn notice_images(state: &AppState, record: &VisitRecord) -> NoticeImages {
    let mut hazards = Vec::with_capacity(record.hazards.len());
    for (h, chosen) in record
        .hazards
        .iter()
        .zip(super::pdf::photos_to_draw(record))
    {
        let mut images = Vec::with_capacity(chosen.len());
        for photo in chosen.iter().filter_map(|&i| h.photos.get(i)) {
            images.push(thumbnail(state, &h.row.id, photo).await);
        }
        hazards.push(images);
    }
    let signature = match &record.signature {
        Some(s) => Some(thumbnail(state, &record.visit.id, &s.image).await),
        None => None,
    };
    NoticeImages { hazards, signature }
}

/// The CJK font for PDFs, or the 503 answer that says none is installed.
fn font_or_503() -> Result<super::pdf::FontFile, Box<Response>> {
    super::pdf::find_font().map_err(|tried| {
        tracing::error!(?tried, "no CJK font for PDFs");
        let body = ErrorBody {
            error: "pdf_font_missing",
            message: format!(
                "服务器未安装中文字体，无法生成 PDF（请安装 fonts-wqy-microhei 或设置 {var}）/ \
                 no CJK font installed for PDFs: install fonts-wqy-microhei or set {var} (tried {})",
                tried.join(", "),
                var = super::pdf::FONT_ENV,
            ),
        };
        Box::new((StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response())
    })
}

/// `GET /api/v1/enterprises/{id}/file.pdf`: the enterprise file (一企一档) as one PDF, with
/// the hazards' pictures (those the photo's reference may show).
pub async fn enterprise_file_pdf(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let file = crate::api::hazards::build_enterprise_file(&state, &user, &id).await?;
    let scope = crate::scope::read_scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let query = crate::ledger::query_of(
        &crate::ledger::LedgerFilter {
            enterprise: Some(id.clone()),
            ..Default::default()
        },
        scope.enterprise_ids().iter().cloned().collect(),
        crate::scope::own_agency(&user).map(str::to_owned),
    )?;
    let today = crate::clock::china_date(state.clock.now());
    let rows = crate::ledger::rows(&state.db, &query, today).await?;
    let font = match font_or_503() {
        Ok(font) => font,
        Err(response) => return Ok(*response),
    };
    let mut images = Vec::with_capacity(rows.len());
    for row in &rows {
        let photos = file
            .hazards
            .iter()
            .find(|h| h.hazard.id == row.hazard_id)
            .map(|h| h.photos.clone())
            .unwrap_or_default();
        let mut pictures = Vec::new();
        for p in photos.iter().take(super::pdf::FILE_PHOTOS_PER_HAZARD) {
            pictures.push(thumbnail(&state, &row.hazard_id, p).await);
        }
        images.push(pictures);
    }
    let text = |k: &str| file.enterprise[k].as_str().unwrap_or("").to_owned();
    let head = super::pdf::FileHead {
        name: text("name"),
        uscc: text("uscc"),
        address: text("address"),
        industry: text("industry"),
        made_on: today.to_string(),
    };
    let visits = file.visits;
    let bytes = tokio::task::spawn_blocking(move || {
        super::pdf::enterprise_file(&head, &visits, &rows, &images, font)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?
    .map_err(ApiError::Internal)?;
    Ok(crate::api::ledger::attachment(
        bytes,
        "application/pdf",
        "一企一档",
        "enterprise-file",
        &format!("{today}.pdf"),
    ))
}

/// `GET /api/v1/visits/{id}/notice.pdf`.
pub async fn notice_pdf(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = visit_record(&state, user, id.clone()).await?;
    let font = match font_or_503() {
        Ok(font) => font,
        Err(response) => return Ok(*response),
    };
    let images = notice_images(&state, &record).await;
    let bytes = tokio::task::spawn_blocking(move || super::pdf::notice(&record, &images, font))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?
        .map_err(ApiError::Internal)?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"notice-{}.pdf\"",
        id.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
