//! `POST /api/v1/imports/{kind}`: the bulk imports of [`crate::import`] from the web, each within
//! the caller's own area. The body is the file itself (CSV in UTF-8, GBK or UTF-16, or an Excel
//! workbook). A township's supervisor imports the enterprises of the township and the
//! township's users; an agency's admin imports the agency's users and contracts. A row outside
//! that area is a row error, so the file is refused whole; nothing is stored unless every row
//! holds.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::import::{self, Kind, Within};
use crate::model::{OrgKind, Role};

/// The largest file taken, as the command line's ([`crate::table::MAX_FILE_BYTES`]).
pub const MAX_BODY: usize = crate::table::MAX_FILE_BYTES + 1024;

fn who_may(kind: Kind, user: &AuthUser) -> Result<Within, ApiError> {
    let own = user.org_id.clone();
    match (kind, user.role) {
        (Kind::Enterprises, Role::Supervisor) => Ok(Within::Township(own)),
        (Kind::Users, Role::Supervisor) => Ok(Within::Organisation(OrgKind::Township, own)),
        (Kind::Users | Kind::Contracts, Role::AgencyAdmin) => {
            Ok(Within::Organisation(OrgKind::Agency, own))
        }
        (Kind::Enterprises, _) => Err(ApiError::forbidden(
            "只有乡镇（街道）监管人员可导入本辖区的企业",
            "only a township's supervisors import its enterprises",
        )),
        (Kind::Users, _) => Err(ApiError::forbidden(
            "只有机构管理员和监管人员可导入本单位的用户",
            "only agency admins and supervisors import their organisation's users",
        )),
        (Kind::Contracts, _) => Err(ApiError::forbidden(
            "只有机构管理员可导入本机构的合同",
            "only agency admins import their agency's contracts",
        )),
    }
}

/// Imports the file in the body; 200 with the rows stored, or 422 `import_rejected` with every
/// row error (nothing stored), or 422 `import_unreadable` when the file is not a table of the
/// kind.
pub async fn import(
    State(state): State<AppState>,
    user: AuthUser,
    Path(kind): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = match kind.as_str() {
        "enterprises" => Kind::Enterprises,
        "users" => Kind::Users,
        "contracts" => Kind::Contracts,
        _ => return Err(ApiError::not_found("没有这种导入", "no such import")),
    };
    let within = who_may(kind, &user)?;
    if body.is_empty() {
        return Err(ApiError::invalid(
            "import_empty",
            "请选择要导入的文件",
            "the body is empty: send the file",
        ));
    }
    let progress = indicatif::ProgressBar::hidden();
    let report = import::import(
        kind,
        &state.db,
        state.clock.as_ref(),
        &body,
        &within,
        &progress,
    )
    .await
    .map_err(|e| match e.downcast_ref::<import::Unreadable>() {
        Some(why) => ApiError::invalid("import_unreadable", why.0.clone(), why.0.clone()),
        None => ApiError::Internal(e),
    })?;
    let (zh, en) = kind.labels();
    if !report.errors.is_empty() {
        let errors: Vec<_> = report
            .errors
            .iter()
            .map(|e| json!({"row": e.row, "column": e.column, "message": e.message, "text": e.to_string()}))
            .collect();
        let n = report.errors.len();
        let body = json!({
            "error": "import_rejected",
            "message": format!("有 {n} 处问题，未导入任何{} / {n} problem(s): no {en} imported", zh.trim_start_matches(['家', '个', '份'])),
            "encoding": report.encoding,
            "errors": errors,
        });
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response());
    }
    let rows: Vec<_> = report
        .imported
        .iter()
        .map(|r| json!({"row": r.row, "id": r.id, "key": r.key}))
        .collect();
    let n = rows.len();
    tracing::info!(user = %user.user_id, kind = en, rows = n, "imported from the web");
    Ok(axum::Json(json!({
        "message": format!("已导入 {n} {zh} / {n} {en} imported"),
        "encoding": report.encoding,
        "imported": rows,
    }))
    .into_response())
}
