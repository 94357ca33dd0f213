//! Read API over the projections: hazards, visits, the enterprise file (一企一档) and major-hazard
//! reports. Every query is limited to the caller's scope; an id outside it answers 404, so the
//! existence of another tenant's data is not revealed.

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::db::VisitKey;
pub use crate::db::{EventRow, HazardRow, VisitRow};
use crate::error::{ApiError, Json};
use crate::{AppState, scope};

/// Filters for `GET /api/v1/hazards`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HazardFilter {
    township: Option<String>,
    agency: Option<String>,
    enterprise: Option<String>,
    grade: Option<String>,
    state: Option<String>,
    overdue: Option<bool>,
    limit: Option<u32>,
    offset: Option<u32>,
}

/// Whether the signed-in user may take an action now ([`sync_core::actions`]): the pages
/// build their forms from this alone.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct ActionView {
    /// Stable name (`notify`, `close`, ...).
    pub action: String,
    /// Label, Chinese first.
    pub label: String,
    /// Whether it is possible now.
    pub allowed: bool,
    /// When not: the rule's code and message.
    pub why_not: Option<String>,
    pub reason: Option<String>,
}

/// A field that holds concurrent values.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct ConflictView {
    pub field: String,
    /// The field's name, Chinese first.
    pub label: String,
    pub values: Vec<String>,
}

/// A hazard with its whole history.
#[derive(Debug, Serialize, Deserialize)]
pub struct HazardDetail {
    pub hazard: HazardRow,
    pub history: Vec<EventRow>,
    pub photos: Vec<sync_core::domain::PhotoRef>,
    /// What the signed-in user may do now, and why not.
    #[serde(default)]
    pub actions: Vec<ActionView>,
    /// Fields that hold two or more concurrent values.
    #[serde(default)]
    pub conflicts: Vec<ConflictView>,
    /// The extension request waiting for an answer, if any.
    #[serde(default)]
    pub pending_extension: Option<PendingExtension>,
}

/// An extension request waiting for an answer.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct PendingExtension {
    /// The request's event id.
    pub request: String,
    /// The date asked for.
    pub until: String,
}

/// The detail of a hazard in scope as the signed-in user sees it, from the projection and, for
/// the actions and conflicts, the document (`doc` when the caller has it already).
pub async fn detail(
    state: &AppState,
    user: &AuthUser,
    id: &str,
    doc: Option<&sync_core::automerge::Automerge>,
) -> Result<Json<HazardDetail>, ApiError> {
    let hazard = hazard_in_scope(state, user, id).await?;
    let history = history(state, id).await?;
    let loaded;
    let doc = match doc {
        Some(d) => Some(d),
        None => {
            loaded = match uuid::Uuid::parse_str(id) {
                Ok(uid) => state.hub.load_shared(uid).await.ok().flatten(),
                Err(_) => None,
            };
            loaded.as_deref()
        }
    };
    let typed = doc.and_then(|d| sync_core::doc::HazardDoc::hydrate_from(d).ok());
    let (photos, actions) = match &typed {
        Some(h) => (h.photos.clone(), actions_for(user, h)),
        None => (Vec::new(), Vec::new()),
    };
    let pending_extension = typed
        .as_ref()
        .and_then(|h| h.status().ok())
        .and_then(|s| s.pending_extension)
        .map(|(request, until)| PendingExtension {
            request,
            until: until.to_string(),
        });
    let conflicts = doc
        .map(sync_core::edit::conflicts)
        .unwrap_or_default()
        .into_iter()
        .map(|c| ConflictView {
            field: c.field.to_owned(),
            label: format!(
                "{} / {}",
                sync_core::limits::field_label_zh(c.field),
                sync_core::limits::field_label_en(c.field)
            ),
            values: c.values,
        })
        .collect();
    Ok(Json(HazardDetail {
        hazard,
        history,
        photos,
        actions,
        conflicts,
        pending_extension,
    }))
}

/// `allowed_actions` for the signed-in user (already known to have the hazard in scope).
fn actions_for(user: &AuthUser, h: &sync_core::doc::HazardDoc) -> Vec<ActionView> {
    let (Ok(uid), Ok(org)) = (
        sync_core::ids::UserId::parse(&user.user_id),
        uuid::Uuid::parse_str(&user.org_id),
    ) else {
        return Vec::new();
    };
    let author = sync_core::domain::Author {
        user: uid,
        role: user.role,
        org,
        device: sync_core::ids::DeviceId::from_uuid(uuid::Uuid::nil()),
        actors: Vec::new(),
    };
    sync_core::actions::allowed_actions(&author, h, true)
        .into_iter()
        .map(|a| ActionView {
            action: a.action.as_str().to_owned(),
            label: a.action.label().to_owned(),
            allowed: a.allowed(),
            why_not: a.why_not.map(|w| w.code().to_owned()),
            reason: a.why_not.map(|w| w.message().to_owned()),
        })
        .collect()
}

fn today(state: &AppState) -> String {
    crate::clock::china_date(state.clock.now()).to_string()
}

/// `GET /api/v1/hazards`: hazards in scope, filtered.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(f): Query<HazardFilter>,
) -> Result<Json<Vec<HazardRow>>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    if let Some(g) = &f.grade {
        sync_core::domain::Grade::parse(g).map_err(|e| {
            ApiError::invalid("bad_filter", format!("筛选条件无效：{e}"), e.to_string())
        })?;
    }
    let query = crate::db::HazardListQuery {
        filters: crate::db::HazardFilters {
            enterprises: ids,
            own_agency: scope::own_agency(&user).map(str::to_owned),
            township: f.township,
            agency: f.agency,
            enterprise: f.enterprise,
            grade: f.grade,
            state: f.state,
        },
        overdue: f.overdue,
        today: today(&state),
        limit: f.limit.unwrap_or(200).min(1000),
        offset: f.offset.unwrap_or(0),
    };
    Ok(Json(state.db.hazard_list(&query).await?))
}

/// Loads one hazard row if it is in scope.
pub async fn hazard_in_scope(
    state: &AppState,
    user: &AuthUser,
    id: &str,
) -> Result<HazardRow, ApiError> {
    let row = state.db.hazard_row(id, &today(state)).await?;
    let not_found = || ApiError::not_found("没有这个隐患", "no such hazard");
    let row = row.ok_or_else(not_found)?;
    if scope::own_agency(user).is_some_and(|a| a != row.agency_id) {
        return Err(not_found());
    }
    if !scope::may_read_enterprise(&state.db, state.clock.as_ref(), user, &row.enterprise_id)
        .await?
    {
        return Err(not_found());
    }
    Ok(row)
}

/// The history rows of a hazard.
pub async fn history(state: &AppState, id: &str) -> Result<Vec<EventRow>, ApiError> {
    Ok(state.db.hazard_history(id).await?)
}

/// `GET /api/v1/hazards/{id}`: one hazard with its whole history, what the signed-in user may
/// do with it now, and the fields that hold concurrent values.
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<HazardDetail>, ApiError> {
    detail(&state, &user, &id, None).await
}

/// Filters for `GET /api/v1/visits`. `from` and `to` are calendar dates (`YYYY-MM-DD`) in China
/// Standard Time, both inclusive, on the visit's start.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitFilter {
    enterprise: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
}

/// Start times in milliseconds: `from` inclusive, `until` exclusive.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StartedBetween {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

/// Parses one date of a filter: exactly `YYYY-MM-DD`, a real calendar day.
fn filter_date(name: &str, value: &str) -> Result<jiff::civil::Date, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "bad_date",
            format!("日期参数 {name} 无效，应为 YYYY-MM-DD 格式的日期：{value}"),
            format!("{name} must be a date as YYYY-MM-DD, got {value:?}"),
        )
    };
    let shape = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape {
        return Err(bad());
    }
    value.parse::<jiff::civil::Date>().map_err(|_| bad())
}

/// Turns `from`/`to` (China dates, inclusive) into a range of start instants.
pub fn started_between(from: Option<&str>, to: Option<&str>) -> Result<StartedBetween, ApiError> {
    let from = from
        .filter(|v| !v.is_empty())
        .map(|v| filter_date("from", v))
        .transpose()?;
    let to = to
        .filter(|v| !v.is_empty())
        .map(|v| filter_date("to", v))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::bad_request(
            "bad_date_range",
            format!("开始日期 {f} 晚于结束日期 {t}"),
            format!("from ({f}) is after to ({t})"),
        ));
    }
    let midnight = |d: jiff::civil::Date| -> Result<i64, ApiError> {
        d.to_zoned(crate::clock::china_standard_time())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| {
                ApiError::bad_request(
                    "bad_date",
                    format!("日期超出范围：{d}"),
                    format!("date out of range: {d} ({e})"),
                )
            })
    };
    let next_day = |d: jiff::civil::Date| {
        d.tomorrow().map_err(|_| {
            ApiError::bad_request(
                "bad_date",
                format!("日期超出范围：{d}"),
                format!("date out of range: {d}"),
            )
        })
    };
    Ok(StartedBetween {
        from: from.map(midnight).transpose()?,
        until: to.map(|t| next_day(t).and_then(midnight)).transpose()?,
    })
}

async fn visits_where(
    state: &AppState,
    ids: &[String],
    own_agency: Option<&str>,
    key: Option<VisitKey>,
    started: StartedBetween,
    limit: u32,
) -> Result<Vec<VisitRow>, ApiError> {
    let query = crate::db::VisitListQuery {
        enterprises: ids.to_vec(),
        own_agency: own_agency.map(str::to_owned),
        key,
        from: started.from,
        until: started.until,
        limit,
    };
    Ok(state.db.visit_list(&query).await?)
}

/// `GET /api/v1/visits`: visits in scope, newest first; `?enterprise=`, `?from=`/`?to=` (China
/// dates, inclusive; a malformed date or `from` after `to` is 400), `?limit=`.
pub async fn visits(
    State(state): State<AppState>,
    user: AuthUser,
    Query(f): Query<VisitFilter>,
) -> Result<Json<Vec<VisitRow>>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    let started = started_between(f.from.as_deref(), f.to.as_deref())?;
    let extra = f.enterprise.map(VisitKey::Enterprise);
    Ok(Json(
        visits_where(
            &state,
            &ids,
            scope::own_agency(&user),
            extra,
            started,
            f.limit.unwrap_or(200).min(1000),
        )
        .await?,
    ))
}

/// A visit with its hazards.
#[derive(Debug, Serialize, Deserialize)]
pub struct VisitDetail {
    pub visit: VisitRow,
    pub hazards: Vec<HazardRow>,
}

/// `GET /api/v1/visits/{id}`.
pub async fn visit(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<VisitDetail>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    let visit = visits_where(
        &state,
        &ids,
        scope::own_agency(&user),
        Some(VisitKey::Id(id.clone())),
        StartedBetween::default(),
        1,
    )
    .await?
    .into_iter()
    .next()
    .ok_or_else(|| ApiError::not_found("没有这次检查", "no such visit"))?;
    let today = today(&state);
    let hazards = state.db.hazards_of_visit(&id, &today).await?;
    Ok(Json(VisitDetail { visit, hazards }))
}

/// The enterprise file (一企一档).
#[derive(Debug, Serialize, Deserialize)]
pub struct EnterpriseFile {
    pub enterprise: serde_json::Value,
    pub visits: Vec<VisitRow>,
    pub hazards: Vec<HazardDetail>,
}

/// `GET /api/v1/enterprises/{id}/file`.
pub async fn enterprise_file(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<EnterpriseFile>, ApiError> {
    Ok(Json(build_enterprise_file(&state, &user, &id).await?))
}

/// The enterprise file of `id` as `user` may read it: the enterprise, its visits, and its
/// hazards with their histories and photos (as found, and the evidence submitted).
pub async fn build_enterprise_file(
    state: &AppState,
    user: &AuthUser,
    id: &str,
) -> Result<EnterpriseFile, ApiError> {
    let (state, user, id) = (state.clone(), user.clone(), id.to_owned());
    if !scope::may_read_enterprise(&state.db, state.clock.as_ref(), &user, &id).await? {
        return Err(ApiError::not_found("没有这家企业", "no such enterprise"));
    }
    let enterprise = state
        .db
        .enterprise_by_id(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("没有这家企业", "no such enterprise"))?;
    let own = scope::own_agency(&user);
    let visits = visits_where(
        &state,
        std::slice::from_ref(&id),
        own,
        None,
        StartedBetween::default(),
        10_000,
    )
    .await?;
    let today = today(&state);
    // Agency staff read their own agency's hazards; everyone else all of the enterprise's.
    let rows = state.db.hazards_of_enterprise(&id, own, &today).await?;
    let mut hazards = Vec::with_capacity(rows.len());
    for hazard in rows {
        let history = history(&state, &hazard.id).await?;
        let photos = match uuid::Uuid::parse_str(&hazard.id) {
            Ok(uid) => state
                .hub
                .load_shared(uid)
                .await
                .ok()
                .flatten()
                .and_then(|d| sync_core::doc::HazardDoc::hydrate_from(&d).ok())
                .map(|h| {
                    crate::projection::hazard_photos(&h)
                        .into_iter()
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        hazards.push(HazardDetail {
            hazard,
            history,
            photos,
            actions: Vec::new(),
            conflicts: Vec::new(),
            pending_extension: None,
        });
    }
    Ok(EnterpriseFile {
        enterprise: serde_json::to_value(&enterprise).unwrap_or(serde_json::Value::Null),
        visits,
        hazards,
    })
}

/// Photos one enterprise file ZIP holds at most, and their bytes.
const ZIP_MAX_PHOTOS: usize = 5_000;
const ZIP_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// `GET /api/v1/enterprises/{id}/file.zip`: the enterprise file (一企一档) as one ZIP: the file
/// as JSON, its hazard ledger as CSV (UTF-8 with BOM) and the display copy of every photo the
/// caller may see, named by its SHA-256. Written to a temporary file and streamed, so the
/// photos are never all in memory.
pub async fn enterprise_file_zip(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let file = build_enterprise_file(&state, &user, &id).await?;
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let query = crate::ledger::query_of(
        &crate::ledger::LedgerFilter {
            enterprise: Some(id.clone()),
            ..Default::default()
        },
        scope.enterprise_ids().iter().cloned().collect(),
        scope::own_agency(&user).map(str::to_owned),
    )?;
    let ledger = crate::ledger::to_csv(
        &crate::ledger::rows(
            &state.db,
            &query,
            crate::clock::china_date(state.clock.now()),
        )
        .await?,
    )?;
    let mut hashes: Vec<String> = file
        .hazards
        .iter()
        .flat_map(|h| h.photos.iter().map(|p| p.sha256.clone()))
        .collect();
    hashes.sort();
    hashes.dedup();
    if hashes.len() > ZIP_MAX_PHOTOS {
        return Err(ApiError::invalid(
            "file_too_large",
            format!("该企业档案的照片超过 {ZIP_MAX_PHOTOS} 张，请按日期分批导出"),
            format!("the file has more than {ZIP_MAX_PHOTOS} photos"),
        ));
    }
    let mut photos = Vec::new();
    for sha in hashes {
        let Ok(hash) = sha.parse::<crate::photos::PhotoHash>() else {
            continue;
        };
        if crate::api::photos::may_see(&state, &user, &sha).await?
            && state.photos.is_stored(hash).await.unwrap_or(false)
        {
            photos.push((
                sha,
                state
                    .photos
                    .variant_path(hash, crate::photos::Variant::Display),
            ));
        }
    }
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("enterprise file JSON: {e}")))?;
    let spool = state
        .config
        .data_dir
        .join(format!("export-{}.zip", uuid::Uuid::new_v4().simple()));
    let zip_file = tokio::task::spawn_blocking(move || -> anyhow::Result<std::fs::File> {
        use std::io::Write as _;
        use zip::write::SimpleFileOptions;
        let out = std::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&spool)?;
        // Unlinked at once: the open file is read to the end and then goes with it.
        let removed = std::fs::remove_file(&spool);
        let mut zip = zip::ZipWriter::new(out);
        let deflated = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(false);
        // JPEGs are compressed already.
        let stored = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        zip.start_file("一企一档.json", deflated)?;
        zip.write_all(&json)?;
        zip.start_file("隐患台账.csv", deflated)?;
        zip.write_all(&ledger)?;
        let mut total: u64 = 0;
        for (sha, path) in photos {
            let bytes = std::fs::read(&path)?;
            total += bytes.len() as u64;
            if total > ZIP_MAX_BYTES {
                anyhow::bail!("the photos exceed {ZIP_MAX_BYTES} bytes");
            }
            zip.start_file(format!("photos/{sha}.jpg"), stored)?;
            zip.write_all(&bytes)?;
        }
        let mut out = zip.finish()?;
        removed?;
        use std::io::Seek as _;
        out.seek(std::io::SeekFrom::Start(0))?;
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("enterprise file task: {e}")))?
    .map_err(|e| ApiError::Internal(e.context("enterprise file ZIP")))?;
    let len = zip_file.metadata().map(|m| m.len()).unwrap_or(0);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::from_std(zip_file),
    ));
    let name = file.enterprise["name"].as_str().unwrap_or("").to_owned();
    let mut response = crate::api::ledger::attachment(
        Vec::new(),
        "application/zip",
        &format!("一企一档-{name}"),
        "enterprise-file",
        &format!("{}.zip", crate::clock::china_date(state.clock.now())),
    );
    *response.body_mut() = body;
    if let Ok(v) = axum::http::HeaderValue::from_str(&len.to_string()) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_LENGTH, v);
    }
    Ok(response)
}

/// A major hazard reported to a township: automatically when the server first saw it, and by
/// the agency, whose report is due within the configured window of finding it.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct MajorReport {
    pub hazard_id: String,
    pub township_id: String,
    pub enterprise_id: String,
    /// When the server first saw the hazard as major (the automatic report), ms.
    pub reported_at: i64,
    /// When it was found (device time), ms.
    #[serde(default)]
    pub found_at: Option<i64>,
    /// When the agency says it reported it (device time), ms.
    #[serde(default)]
    pub report_claimed_at: Option<i64>,
    /// When the server first received the agency's report (server time), ms.
    #[serde(default)]
    pub report_received_at: Option<i64>,
    /// `on_time`, `late`, `missing` (the window has passed without a report), `pending`
    /// (within the window, not reported yet) or `not_major` (downgraded since).
    #[serde(default)]
    pub report_status: String,
    /// The server received the report after the window, whatever time the device claims.
    #[serde(default)]
    pub received_late: bool,
}

/// The state of a major hazard's report at `now`, given when it was found and reported.
pub fn report_status(
    found: i64,
    claimed: Option<i64>,
    received: Option<i64>,
    now: i64,
    window_ms: i64,
) -> (&'static str, bool) {
    let received_late = received.is_some_and(|r| r - found > window_ms);
    let status = match claimed {
        Some(c) if c - found > window_ms => "late",
        Some(_) => "on_time",
        None if now - found > window_ms => "missing",
        None => "pending",
    };
    (status, received_late)
}

/// The major-hazard reports of the caller's scope (agency staff: their own agency's).
pub async fn major_report_rows(
    state: &AppState,
    user: &AuthUser,
) -> Result<Vec<MajorReport>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    let rows = state
        .db
        .major_reports(&ids, scope::own_agency(user))
        .await?;
    let now = crate::clock::to_millis(state.clock.now());
    let window = i64::try_from(state.config.major_report_window.as_millis()).unwrap_or(i64::MAX);
    Ok(rows
        .into_iter()
        .map(|r| {
            let (status, received_late) = report_status(
                r.found_at.unwrap_or(r.reported_at),
                r.claimed,
                r.received,
                now,
                window,
            );
            MajorReport {
                hazard_id: r.hazard_id,
                township_id: r.township_id,
                enterprise_id: r.enterprise_id,
                reported_at: r.reported_at,
                found_at: r.found_at,
                report_claimed_at: r.claimed,
                report_received_at: r.received,
                report_status: if r.grade == "major" {
                    status
                } else {
                    "not_major"
                }
                .to_owned(),
                received_late,
            }
        })
        .collect())
}

/// `GET /api/v1/reports/major`: major hazards reported to the caller's township (supervisors),
/// or of the caller's scope (others), with the state of the agency's report.
pub async fn major_reports(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<MajorReport>>, ApiError> {
    Ok(Json(major_report_rows(&state, &user).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visit_dates_are_whole_china_days() {
        let r = started_between(Some("2026-02-10"), Some("2026-02-10")).unwrap();
        // 2026-02-10 00:00 and 2026-02-11 00:00 in Beijing (UTC+8).
        assert_eq!(r.from, Some(1_770_652_800_000));
        assert_eq!(r.until, Some(1_770_739_200_000));
        assert_eq!(
            started_between(None, Some("")).unwrap(),
            StartedBetween::default()
        );
    }

    #[test]
    fn malformed_dates_and_reversed_ranges_are_refused() {
        for (from, to) in [
            (Some("2026-2-10"), None),
            (Some("2026-02-30"), None),
            (None, Some("20260210")),
            (None, Some("2026-02-10T00:00")),
            (Some("yesterday"), None),
        ] {
            let e = started_between(from, to).unwrap_err();
            assert_eq!(
                e.status(),
                axum::http::StatusCode::BAD_REQUEST,
                "{from:?} {to:?}"
            );
        }
        let e = started_between(Some("2026-02-11"), Some("2026-02-10")).unwrap_err();
        assert!(matches!(
            e,
            ApiError::BadRequest {
                code: "bad_date_range",
                ..
            }
        ));
    }
}
