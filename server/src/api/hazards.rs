//! Read API over the projections: hazards, visits, the enterprise file (一企一档) and major-hazard
//! reports. Every query is limited to the caller's scope; an id outside it answers 404, so the
//! existence of another tenant's data is not revealed.

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::auth::AuthUser;
use crate::db::with_pool;
use crate::error::{ApiError, Json};
use crate::{AppState, scope};

/// States in which a rectification is still owed (the deadline applies).
const OWED: &str = "('open','notified','in_progress')";

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

/// One hazard in a list.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct HazardRow {
    pub id: String,
    pub visit_id: String,
    pub enterprise_id: String,
    pub enterprise_name: String,
    pub agency_id: String,
    pub township_id: String,
    pub location: String,
    pub description: String,
    pub category: String,
    pub grade: String,
    pub criterion: String,
    pub measure: String,
    pub deadline: Option<String>,
    pub responsible_person: String,
    pub state: String,
    pub overdue: bool,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub reported_at: Option<i64>,
    pub under_supervision: bool,
    pub photo_count: i64,
}

/// One event in a hazard's history.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct EventRow {
    pub event_id: String,
    pub at: i64,
    pub author: String,
    pub role: String,
    pub device: String,
    pub kind: String,
    pub detail: serde_json::Value,
    /// Why the event had no effect, when it had none.
    pub ignored: Option<String>,
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

fn scope_clause(ids: &[String], first: usize) -> String {
    if ids.is_empty() {
        return "1 = 0".into();
    }
    let ph: Vec<String> = (first..first + ids.len())
        .map(|i| format!("${i}"))
        .collect();
    format!("h.enterprise_id IN ({})", ph.join(","))
}

const HAZARD_COLUMNS: &str = "h.id, h.visit_id, h.enterprise_id, COALESCE(o.name, ''), h.agency_id, h.township_id, h.location, \
     h.description, h.category, h.grade, h.criterion, h.measure, h.current_deadline, h.responsible_person, h.state, \
     h.created_at, h.closed_at, h.reported_at, h.under_supervision, h.photo_count";

macro_rules! hazard_row {
    ($row:expr, $today:expr) => {{
        let row = $row;
        let state: String = row.get(14);
        let deadline: Option<String> = row.get(12);
        let owed = matches!(state.as_str(), "open" | "notified" | "in_progress");
        HazardRow {
            id: row.get(0),
            visit_id: row.get(1),
            enterprise_id: row.get(2),
            enterprise_name: row.get(3),
            agency_id: row.get(4),
            township_id: row.get(5),
            location: row.get(6),
            description: row.get(7),
            category: row.get(8),
            grade: row.get(9),
            criterion: row.get(10),
            measure: row.get(11),
            overdue: owed && deadline.as_deref().is_some_and(|d| d < $today),
            deadline,
            responsible_person: row.get(13),
            state,
            created_at: row.get(15),
            closed_at: row.get(16),
            reported_at: row.get(17),
            under_supervision: row.get::<i64, _>(18) != 0,
            photo_count: row.get(19),
        }
    }};
}

/// `GET /api/v1/hazards`: hazards in scope, filtered.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(f): Query<HazardFilter>,
) -> Result<Json<Vec<HazardRow>>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    let today = today(&state);
    let mut binds: Vec<String> = ids.clone();
    let mut sql = format!(
        "SELECT {HAZARD_COLUMNS} FROM hazards_view h LEFT JOIN organisations o ON o.id = h.enterprise_id WHERE {}",
        scope_clause(&ids, 1)
    );
    let add = |col: &str, v: &Option<String>, binds: &mut Vec<String>, sql: &mut String| {
        if let Some(v) = v {
            binds.push(v.clone());
            sql.push_str(&format!(" AND {col} = ${}", binds.len()));
        }
    };
    add("h.township_id", &f.township, &mut binds, &mut sql);
    add("h.agency_id", &f.agency, &mut binds, &mut sql);
    let own = scope::own_agency(&user).map(str::to_owned);
    add("h.agency_id", &own, &mut binds, &mut sql);
    add("h.enterprise_id", &f.enterprise, &mut binds, &mut sql);
    if let Some(g) = &f.grade {
        sync_core::domain::Grade::parse(g).map_err(|e| {
            ApiError::invalid("bad_filter", format!("筛选条件无效：{e}"), e.to_string())
        })?;
    }
    add("h.grade", &f.grade, &mut binds, &mut sql);
    add("h.state", &f.state, &mut binds, &mut sql);
    match f.overdue {
        Some(true) => {
            binds.push(today.clone());
            sql.push_str(&format!(
                " AND h.state IN {OWED} AND h.current_deadline < ${}",
                binds.len()
            ));
        }
        Some(false) => {
            binds.push(today.clone());
            sql.push_str(&format!(
                " AND NOT (h.state IN {OWED} AND h.current_deadline < ${})",
                binds.len()
            ));
        }
        None => {}
    }
    let limit = f.limit.unwrap_or(200).min(1000);
    let offset = f.offset.unwrap_or(0);
    sql.push_str(&format!(
        " ORDER BY h.created_at DESC, h.id LIMIT {limit} OFFSET {offset}"
    ));
    let rows = with_pool!(&state.db, pool => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for b in &binds {
            q = q.bind(b);
        }
        q.fetch_all(pool).await.map_err(crate::db::DbError::from)?
            .into_iter()
            .map(|r| hazard_row!(r, today.as_str()))
            .collect::<Vec<_>>()
    });
    Ok(Json(rows))
}

/// Loads one hazard row if it is in scope.
pub async fn hazard_in_scope(
    state: &AppState,
    user: &AuthUser,
    id: &str,
) -> Result<HazardRow, ApiError> {
    let today = today(state);
    let sql = format!(
        "SELECT {HAZARD_COLUMNS} FROM hazards_view h LEFT JOIN organisations o ON o.id = h.enterprise_id WHERE h.id = $1"
    );
    let row = with_pool!(&state.db, pool => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await.map_err(crate::db::DbError::from)?
            .map(|r| hazard_row!(r, today.as_str()))
    });
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
    Ok(with_pool!(&state.db, pool => {
        sqlx::query("SELECT event_id, at, author, role, device, kind, detail, ignored FROM hazard_events_view WHERE hazard_id = $1 ORDER BY position")
            .bind(id)
            .fetch_all(pool)
            .await
            .map_err(crate::db::DbError::from)?
            .into_iter()
            .map(|r| {
                let detail: String = r.get(6);
                EventRow {
                    event_id: r.get(0),
                    at: r.get(1),
                    author: r.get(2),
                    role: r.get(3),
                    device: r.get(4),
                    kind: r.get(5),
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    ignored: r.get(7),
                }
            })
            .collect::<Vec<_>>()
    }))
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

/// One visit in a list.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct VisitRow {
    pub id: String,
    pub enterprise_id: String,
    pub agency_id: String,
    pub township_id: String,
    pub visit_kind: String,
    pub inspectors: Vec<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub place: String,
    pub checklist_total: i64,
    pub checklist_failed: i64,
    pub signed_by: Option<String>,
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
    extra: Option<(&str, &str)>,
    started: StartedBetween,
    limit: u32,
) -> Result<Vec<VisitRow>, ApiError> {
    let mut binds: Vec<String> = ids.to_vec();
    let mut sql = format!(
        "SELECT id, enterprise_id, agency_id, township_id, visit_kind, inspectors, started_at, ended_at, place, \
         checklist_total, checklist_failed, signed_by FROM visits_view h WHERE {}",
        scope_clause(ids, 1)
    );
    for (col, v) in extra
        .into_iter()
        .chain(own_agency.map(|a| ("h.agency_id", a)))
    {
        binds.push(v.to_owned());
        sql.push_str(&format!(" AND {col} = ${}", binds.len()));
    }
    // The instants are bound as integers, after the text parameters.
    let mut instants: Vec<i64> = Vec::new();
    for (op, v) in [(">=", started.from), ("<", started.until)] {
        if let Some(v) = v {
            instants.push(v);
            sql.push_str(&format!(
                " AND h.started_at {op} ${}",
                binds.len() + instants.len()
            ));
        }
    }
    sql.push_str(&format!(" ORDER BY started_at DESC LIMIT {limit}"));
    Ok(with_pool!(&state.db, pool => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for b in &binds {
            q = q.bind(b);
        }
        for v in &instants {
            q = q.bind(*v);
        }
        q.fetch_all(pool).await.map_err(crate::db::DbError::from)?
            .into_iter()
            .map(|r| {
                let inspectors: String = r.get(5);
                VisitRow {
                    id: r.get(0),
                    enterprise_id: r.get(1),
                    agency_id: r.get(2),
                    township_id: r.get(3),
                    visit_kind: r.get(4),
                    inspectors: serde_json::from_str(&inspectors).unwrap_or_default(),
                    started_at: r.get(6),
                    ended_at: r.get(7),
                    place: r.get(8),
                    checklist_total: r.get(9),
                    checklist_failed: r.get(10),
                    signed_by: r.get(11),
                }
            })
            .collect::<Vec<_>>()
    }))
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
    let extra = f.enterprise.as_deref().map(|e| ("h.enterprise_id", e));
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
        Some(("h.id", &id)),
        StartedBetween::default(),
        1,
    )
    .await?
    .into_iter()
    .next()
    .ok_or_else(|| ApiError::not_found("没有这次检查", "no such visit"))?;
    let today = today(&state);
    let sql = format!(
        "SELECT {HAZARD_COLUMNS} FROM hazards_view h LEFT JOIN organisations o ON o.id = h.enterprise_id WHERE h.visit_id = $1 ORDER BY h.created_at"
    );
    let hazards = with_pool!(&state.db, pool => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(&id).fetch_all(pool).await.map_err(crate::db::DbError::from)?
            .into_iter().map(|r| hazard_row!(r, today.as_str())).collect::<Vec<_>>()
    });
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
    let sql = format!(
        "SELECT {HAZARD_COLUMNS} FROM hazards_view h LEFT JOIN organisations o ON o.id = h.enterprise_id \
         WHERE h.enterprise_id = $1 AND ($2 = '' OR h.agency_id = $2) ORDER BY h.created_at"
    );
    let agency = own.unwrap_or("").to_owned();
    let rows = with_pool!(&state.db, pool => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(&id).bind(&agency).fetch_all(pool).await.map_err(crate::db::DbError::from)?
            .into_iter().map(|r| hazard_row!(r, today.as_str())).collect::<Vec<_>>()
    });
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
    let mut binds: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    let mut sql = format!(
        "SELECT r.hazard_id, r.township_id, r.enterprise_id, r.reported_at, r.found_at, r.report_claimed_at, \
         r.report_received_at, COALESCE(h.grade, 'major') FROM major_hazard_reports r \
         LEFT JOIN hazards_view h ON h.id = r.hazard_id WHERE {}",
        scope_clause(&binds, 1).replace("h.enterprise_id", "r.enterprise_id")
    );
    if let Some(a) = scope::own_agency(user) {
        binds.push(a.to_owned());
        sql.push_str(&format!(" AND h.agency_id = ${}", binds.len()));
    }
    sql.push_str(" ORDER BY r.reported_at DESC");
    let now = crate::clock::to_millis(state.clock.now());
    let window = i64::try_from(state.config.major_report_window.as_millis()).unwrap_or(i64::MAX);
    Ok(with_pool!(&state.db, pool => {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for b in &binds {
            q = q.bind(b);
        }
        q.fetch_all(pool).await.map_err(crate::db::DbError::from)?
            .into_iter()
            .map(|r| {
                let reported_at: i64 = r.get(3);
                let found_at: Option<i64> = r.get(4);
                let claimed: Option<i64> = r.get(5);
                let received: Option<i64> = r.get(6);
                let grade: String = r.get(7);
                let (status, received_late) =
                    report_status(found_at.unwrap_or(reported_at), claimed, received, now, window);
                MajorReport {
                    hazard_id: r.get(0),
                    township_id: r.get(1),
                    enterprise_id: r.get(2),
                    reported_at,
                    found_at,
                    report_claimed_at: claimed,
                    report_received_at: received,
                    report_status: if grade == "major" { status } else { "not_major" }.to_owned(),
                    received_late,
                }
            })
            .collect::<Vec<_>>()
    }))
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
