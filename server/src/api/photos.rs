//! Photo routes: resumable content-addressed upload, status, and serving the display copy and
//! thumbnail to users who may see a document that references the photo.
//!
//! - `PUT /api/v1/photos/{sha256}?offset=N` with `x-photo-size: <total>` and the chunk as the
//!   body, streamed to disk (never held in memory). Answers `{received, size, complete}`; a wrong
//!   offset is 409 with `expected`. When the last byte arrives the hash is verified and the photo
//!   processed (type sniffed, dimensions guarded, orientation applied, EXIF kept in the database
//!   and stripped from what is served).
//! - `GET /api/v1/photos/{sha256}/status`: `{received, size, complete}`, 404 when unknown.
//! - `GET /api/v1/photos/{sha256}` and `/thumb`: JPEG, only if a document in the caller's scope
//!   references the photo (or the caller uploaded it).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::model::Role;
use crate::photos::{
    BeginOutcome, FinishOutcome, PhotoError, PhotoHash, ProofOutcome, UploadStatus, Variant,
    WriteOutcome,
};
use crate::{AppState, scope};

/// Upload progress.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    /// Bytes stored so far (the offset to send next).
    pub received: u64,
    /// Total size.
    pub size: u64,
    /// Stored, verified and processed.
    pub complete: bool,
}

/// Query of a chunk upload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkQuery {
    offset: u64,
}

fn photo_error(e: PhotoError) -> Response {
    let code = e.code();
    let status = match &e {
        PhotoError::WrongOffset { expected, .. } => {
            let body = serde_json::json!({
                "error": code,
                "message": format!("上传位置错误，应从 {expected} 字节续传 / wrong offset, resume at byte {expected}"),
                "expected": expected,
            });
            return (StatusCode::CONFLICT, axum::Json(body)).into_response();
        }
        PhotoError::StorageFull { .. } => {
            tracing::error!(error = %e, "photo storage full");
            return ApiError::StorageFull {
                zh: "服务器存储空间已满，照片未保存，请稍后重新上传".into(),
                en: "the server's storage is full: the photo was not kept, upload it again later"
                    .into(),
            }
            .into_response();
        }
        _ if !e.is_client_error() => {
            tracing::error!(error = %e, "photo store failure");
            return ApiError::Internal(anyhow::anyhow!(e.to_string())).into_response();
        }
        PhotoError::TooLarge { .. } | PhotoError::ExceedsDeclaredSize { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        PhotoError::UnsupportedType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        PhotoError::NotStored(_) | PhotoError::UploadNotFound(_) => StatusCode::NOT_FOUND,
        PhotoError::SizeConflict { .. } => StatusCode::CONFLICT,
        PhotoError::UnfinishedQuota {
            max_uploads,
            max_bytes,
            ..
        } => {
            let body = serde_json::json!({
                "error": code,
                "message": format!(
                    "您未完成的照片上传已达上限（{max_uploads} 张或 {mib} MiB），请先续传完成已开始的照片，未续传的将在过期后清除 / {e}",
                    mib = max_bytes / (1024 * 1024),
                ),
            });
            let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("600"),
            );
            return response;
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let body =
        serde_json::json!({ "error": code, "message": format!("照片被拒绝 / photo refused: {e}") });
    (status, axum::Json(body)).into_response()
}

fn parse_hash(sha: &str) -> Result<PhotoHash, Box<Response>> {
    sha.parse::<PhotoHash>()
        .map_err(|e| Box::new(photo_error(e)))
}

/// `PUT /api/v1/photos/{sha256}?offset=N`.
pub async fn put_chunk(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha): Path<String>,
    Query(q): Query<ChunkQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !matches!(user.role, Role::Inspector | Role::EnterpriseManager) {
        return ApiError::forbidden("您的角色不能上传照片", "your role may not upload photos")
            .into_response();
    }
    let hash = match parse_hash(&sha) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let Some(size) = headers
        .get("x-photo-size")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return ApiError::bad_request(
            "missing_photo_size",
            "缺少 x-photo-size 请求头（照片总字节数）",
            "missing x-photo-size header (total bytes of the photo)",
        )
        .into_response();
    };
    let hint = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let store = &state.photos;
    let starter = uuid::Uuid::parse_str(&user.user_id).ok();
    match store.begin_upload(hash, size, hint, starter).await {
        Ok(BeginOutcome::AlreadyStored) => {
            match state.db.holds_photo(&hash.to_string(), &user.user_id).await {
                Ok(true) => {}
                Ok(false) => return prove(&state, &user, hash, q.offset, size, body).await,
                Err(e) => return ApiError::from(e).into_response(),
            }
            // Read the body the phone is sending before answering: answering first left the
            // connection to be closed under the client, whose next request on it failed
            // (issue #19). Bounded by the declared size and the photo limit.
            drain(body, size.min(store.config().max_photo_bytes)).await;
            return axum::Json(Progress {
                received: size,
                size,
                complete: true,
            })
            .into_response();
        }
        Ok(BeginOutcome::Ready { .. }) => {}
        Err(e) => return photo_error(e),
    }
    let received = match store
        .write_chunk(hash, q.offset, body.into_data_stream())
        .await
    {
        Ok(WriteOutcome::AlreadyStored) => size,
        Ok(WriteOutcome::Progress { received, .. }) => received,
        Err(e) => return photo_error(e),
    };
    if received < size {
        // Whoever started an upload may ask where it stands and resume it. Recorded for the
        // chunk at offset 0 only (one write per upload, not per chunk): a later chunk comes from
        // someone who knew the offset, so was concerned already.
        if q.offset == 0
            && let Err(e) = state
                .db
                .add_photo_sender(&hash.to_string(), &user.user_id)
                .await
        {
            return ApiError::from(e).into_response();
        }
        return axum::Json(Progress {
            received,
            size,
            complete: false,
        })
        .into_response();
    }
    match store.finish(hash).await {
        Ok(outcome) => {
            if let FinishOutcome::Stored(meta) = &outcome {
                state.metrics.photo_stored(meta.byte_size);
            }
            if let FinishOutcome::Stored(meta) | FinishOutcome::AlreadyStored(meta) = &outcome
                && let Err(e) = record_meta(&state, &user, meta).await
            {
                tracing::error!(error = %e, "recording photo metadata failed");
                return e.into_response();
            }
            axum::Json(Progress {
                received: size,
                size,
                complete: true,
            })
            .into_response()
        }
        Err(e) => photo_error(e),
    }
}

/// A stored photo sent by someone who did not upload it: the bytes are a proof that they hold
/// it (they may have taken the same file), checked against the stored photo and discarded.
/// Until the last byte matches, the answer is what a new upload would get, so the upload
/// protocol tells nobody that a photo exists.
async fn prove(
    state: &AppState,
    user: &AuthUser,
    hash: PhotoHash,
    offset: u64,
    size: u64,
    body: Body,
) -> Response {
    let Ok(who) = uuid::Uuid::parse_str(&user.user_id) else {
        return ApiError::Internal(anyhow::anyhow!("user id {} is not a UUID", user.user_id))
            .into_response();
    };
    match state
        .photos
        .prove_chunk(hash, who, offset, size, body.into_data_stream())
        .await
    {
        Ok(ProofOutcome::Progress { received }) => axum::Json(Progress {
            received,
            size,
            complete: false,
        })
        .into_response(),
        Ok(ProofOutcome::Proven) => {
            if let Err(e) = state
                .db
                .add_photo_holder(&hash.to_string(), &user.user_id)
                .await
            {
                return ApiError::from(e).into_response();
            }
            axum::Json(Progress {
                received: size,
                size,
                complete: true,
            })
            .into_response()
        }
        // Told apart from a new upload only by what a new upload would also answer.
        Err(PhotoError::SizeConflict { .. }) => photo_error(PhotoError::HashMismatch {
            expected: hash,
            actual: hash,
        }),
        Err(e) => photo_error(e),
    }
}

/// Reads and discards up to `limit` bytes of `body`; stops at the first error or past the limit
/// (the connection then closes, as before).
async fn drain(body: Body, limit: u64) {
    use futures_util::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        read += chunk.len() as u64;
        if read > limit {
            break;
        }
    }
}

async fn record_meta(
    state: &AppState,
    user: &AuthUser,
    meta: &crate::photos::PhotoMeta,
) -> Result<(), ApiError> {
    let now = crate::clock::to_millis(state.clock.now());
    state.db.record_photo(meta, &user.user_id, now).await?;
    state
        .db
        .add_photo_holder(&meta.sha256.to_string(), &user.user_id)
        .await?;
    Ok(())
}

/// `GET /api/v1/photos/{sha256}/status`.
pub async fn status(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha): Path<String>,
) -> Response {
    let hash = match parse_hash(&sha) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let unknown = || ApiError::not_found("没有这张照片", "no such photo").into_response();
    let status = match state.photos.upload_status(hash).await {
        Ok(status) => status,
        Err(e) => return photo_error(e),
    };
    // Only those the photo concerns learn where it stands: whoever may see it, and whoever
    // referenced it and is expected to upload it. To anyone else every photo is unknown.
    let concerned = match &status {
        UploadStatus::NotStarted => Ok(true),
        UploadStatus::Stored => may_see(&state, &user, &hash.to_string()).await,
        UploadStatus::InProgress { .. } => {
            match state
                .db
                .uploads_photo(&hash.to_string(), &user.user_id)
                .await
            {
                Ok(true) => Ok(true),
                Ok(false) => may_see(&state, &user, &hash.to_string()).await,
                Err(e) => Err(e.into()),
            }
        }
    };
    match concerned {
        Ok(true) => {}
        Ok(false) => {
            return match (status, uuid::Uuid::parse_str(&user.user_id)) {
                // A proof of holding under way: where it stands.
                (UploadStatus::Stored, Ok(who)) => {
                    match state.photos.proof_received(hash, who).await {
                        Ok(Some(received)) => axum::Json(Progress {
                            received,
                            size: state
                                .photos
                                .meta(hash)
                                .await
                                .ok()
                                .flatten()
                                .map_or(0, |m| m.byte_size),
                            complete: false,
                        })
                        .into_response(),
                        Ok(None) => unknown(),
                        Err(e) => photo_error(e),
                    }
                }
                _ => unknown(),
            };
        }
        Err(e) => return e.into_response(),
    }
    match Ok::<_, PhotoError>(status) {
        Ok(UploadStatus::NotStarted) => unknown(),
        // Every byte arrived but the request that carried the last one was cut off before the
        // photo was verified and processed: finish it now, so the phone need not resend.
        Ok(UploadStatus::InProgress {
            received,
            expected_size,
        }) if received >= expected_size => match state.photos.finish(hash).await {
            Ok(outcome) => {
                if let Err(e) = record_meta(&state, &user, outcome.meta()).await {
                    return e.into_response();
                }
                axum::Json(Progress {
                    received,
                    size: expected_size,
                    complete: true,
                })
                .into_response()
            }
            Err(e) => photo_error(e),
        },
        Ok(UploadStatus::InProgress {
            received,
            expected_size,
        }) => axum::Json(Progress {
            received,
            size: expected_size,
            complete: false,
        })
        .into_response(),
        Ok(UploadStatus::Stored) => {
            let size = state
                .photos
                .meta(hash)
                .await
                .ok()
                .flatten()
                .map(|m| m.byte_size)
                .unwrap_or(0);
            axum::Json(Progress {
                received: size,
                size,
                complete: true,
            })
            .into_response()
        }
        Err(e) => photo_error(e),
    }
}

/// Whether `user` may see the photo: they hold it (uploaded its bytes), or a document they may
/// read references it and the reference is vouched for (`crate::db::Db::photo_ref_enterprises`).
pub(crate) async fn may_see(
    state: &AppState,
    user: &AuthUser,
    sha: &str,
) -> Result<bool, ApiError> {
    if state.db.holds_photo(sha, &user.user_id).await? {
        return Ok(true);
    }
    // Agency staff see the photos of their own agency's documents only.
    let enterprises = state
        .db
        .photo_ref_enterprises(sha, scope::own_agency(user))
        .await?;
    for e in enterprises {
        if scope::may_read_enterprise(&state.db, state.clock.as_ref(), user, &e).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn serve_variant(state: AppState, user: AuthUser, sha: String, variant: Variant) -> Response {
    let hash = match parse_hash(&sha) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    match may_see(&state, &user, &hash.to_string()).await {
        Ok(true) => {}
        Ok(false) => return ApiError::not_found("没有这张照片", "no such photo").into_response(),
        Err(e) => return e.into_response(),
    }
    match state.photos.open_variant(hash, variant).await {
        Ok((file, len)) => {
            let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
            (
                [
                    (CONTENT_TYPE, "image/jpeg".to_owned()),
                    (CONTENT_LENGTH, len.to_string()),
                    (
                        CACHE_CONTROL,
                        "private, max-age=31536000, immutable".to_owned(),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => photo_error(e),
    }
}

/// `GET /api/v1/photos/{sha256}`: the display copy.
pub async fn display(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha): Path<String>,
) -> Response {
    serve_variant(state, user, sha, Variant::Display).await
}

/// `GET /api/v1/photos/{sha256}/thumb`: the thumbnail.
pub async fn thumb(
    State(state): State<AppState>,
    user: AuthUser,
    Path(sha): Path<String>,
) -> Response {
    serve_variant(state, user, sha, Variant::Thumbnail).await
}
