//! Monthly statistics per area (township): hazards found, of which major, closed in the month,
//! and of those found, how many are still open and overdue now and the share closed; for any
//! role within its scope (agency staff: their agency's hazards only), as JSON and as an Excel
//! workbook. `GET /api/v1/statistics` and `/statistics.xlsx`, `from`/`to` as China dates on
//! when a hazard was found.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::error::{ApiError, Json};
use crate::{AppState, scope};

/// The most hazards one export counts; a wider selection is refused with a request to narrow it.
pub const MAX_HAZARDS: usize = 500_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatisticsFilter {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One township and month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonthRow {
    pub township_id: String,
    pub township: String,
    /// `YYYY-MM`, China Standard Time.
    pub month: String,
    pub found: u64,
    pub major_found: u64,
    /// Closed during the month (whenever found).
    pub closed_in_month: u64,
    /// Of those found in the month: not closed now.
    pub open_now: u64,
    /// Of those found in the month: owed and past the deadline now.
    pub overdue_now: u64,
    /// Of those found in the month: the share closed now (0 to 1).
    pub closure_rate: f64,
}

const HEADS: [(&str, &str); 9] = [
    ("乡镇（街道）", "Township"),
    ("月份", "Month"),
    ("发现隐患", "Found"),
    ("其中重大隐患", "Of which major"),
    ("当月销号", "Closed in the month"),
    ("当月发现尚未销号", "Found, still open"),
    ("当月发现已逾期", "Found, overdue now"),
    ("当月发现销号率", "Found, share closed"),
    ("乡镇编号", "Township id"),
];

fn month_of(ms: i64) -> String {
    crate::clock::from_millis(ms)
        .to_zoned(crate::clock::china_standard_time())
        .strftime("%Y-%m")
        .to_string()
}

async fn rows_for(
    state: &AppState,
    user: &AuthUser,
    f: &StatisticsFilter,
) -> Result<Vec<MonthRow>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = crate::api::hazards::started_between(f.from.as_deref(), f.to.as_deref())?;
    let hazards = state
        .db
        .statistics_hazards(
            &ids,
            scope::own_agency(user),
            found.from,
            found.until,
            MAX_HAZARDS + 1,
        )
        .await?;
    if hazards.len() > MAX_HAZARDS {
        return Err(ApiError::invalid(
            "statistics_too_large",
            format!("所选隐患超过 {MAX_HAZARDS} 条，请缩小日期范围"),
            format!("more than {MAX_HAZARDS} hazards selected: narrow the dates"),
        ));
    }
    let today = crate::clock::china_date(state.clock.now()).to_string();
    let in_range =
        |ms: i64| found.from.is_none_or(|f| ms >= f) && found.until.is_none_or(|u| ms < u);
    let mut by: BTreeMap<(String, String), MonthRow> = BTreeMap::new();
    fn entry<'a>(
        by: &'a mut BTreeMap<(String, String), MonthRow>,
        township: &str,
        name: &str,
        month: String,
    ) -> &'a mut MonthRow {
        by.entry((township.to_owned(), month.clone()))
            .or_insert_with(|| MonthRow {
                township_id: township.to_owned(),
                township: name.to_owned(),
                month,
                ..MonthRow::default()
            })
    }
    for (township, name, created_at, grade, state, closed_at, deadline) in &hazards {
        let row = entry(&mut by, township, name, month_of(*created_at));
        row.found += 1;
        row.major_found += u64::from(grade == "major");
        if state != "closed" {
            row.open_now += 1;
        }
        let owed = matches!(state.as_str(), "open" | "notified" | "in_progress");
        if owed && deadline.as_deref().is_some_and(|d| d < today.as_str()) {
            row.overdue_now += 1;
        }
        if let Some(at) = closed_at.filter(|at| in_range(*at)) {
            entry(&mut by, township, name, month_of(at)).closed_in_month += 1;
        }
    }
    Ok(by
        .into_values()
        .map(|mut r| {
            r.closure_rate = if r.found == 0 {
                0.0
            } else {
                (r.found - r.open_now) as f64 / r.found as f64
            };
            r
        })
        .collect())
}

/// `GET /api/v1/statistics`.
pub async fn json(
    State(state): State<AppState>,
    user: AuthUser,
    Query(f): Query<StatisticsFilter>,
) -> Result<Json<Vec<MonthRow>>, ApiError> {
    Ok(Json(rows_for(&state, &user, &f).await?))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("statistics workbook failed: {e}"))
}

/// The rows as a workbook: one sheet 月度统计, a bold frozen header, numbers as numbers.
pub fn to_xlsx(rows: &[MonthRow]) -> Result<Vec<u8>, ApiError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("月度统计").map_err(internal)?;
    let bold = Format::new().set_bold().set_text_wrap();
    let percent = Format::new().set_num_format("0.0%");
    for (c, (zh, en)) in HEADS.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, format!("{zh} / {en}"), &bold)
            .map_err(internal)?;
        sheet
            .set_column_width(c as u16, if c == 8 { 38.0 } else { 16.0 })
            .map_err(internal)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = (i + 1) as u32;
        sheet.write_string(row, 0, &r.township).map_err(internal)?;
        sheet.write_string(row, 1, &r.month).map_err(internal)?;
        for (c, v) in [
            r.found,
            r.major_found,
            r.closed_in_month,
            r.open_now,
            r.overdue_now,
        ]
        .into_iter()
        .enumerate()
        {
            sheet
                .write_number(row, (c + 2) as u16, v as f64)
                .map_err(internal)?;
        }
        sheet
            .write_number_with_format(row, 7, r.closure_rate, &percent)
            .map_err(internal)?;
        sheet
            .write_string(row, 8, &r.township_id)
            .map_err(internal)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(internal)?;
    book.save_to_buffer().map_err(internal)
}

/// `GET /api/v1/statistics.xlsx`.
pub async fn xlsx(
    State(state): State<AppState>,
    user: AuthUser,
    Query(f): Query<StatisticsFilter>,
) -> Result<Response, ApiError> {
    let rows = rows_for(&state, &user, &f).await?;
    let body = tokio::task::spawn_blocking(move || to_xlsx(&rows))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("statistics task failed: {e}")))??;
    let today = crate::clock::china_date(state.clock.now());
    Ok(crate::api::ledger::attachment(
        body,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "月度统计",
        "monthly-statistics",
        &format!("{today}.xlsx"),
    ))
}
