//! The read models the API lists and shows (`hazards_view`, `hazard_events_view`,
//! `visits_view`, `major_hazard_reports`): each query limited to the enterprises given, and
//! to one agency's documents where the caller is agency staff. The handlers in
//! `crate::api::hazards` decide the scope and parse the filters; the SQL is here.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::filter::{Filter, bind_filter};
use super::{Db, DbError, with_pool};

/// States in which a rectification is still owed (the deadline applies).
const OWED: &str = "('open','notified','in_progress')";

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

/// The hazards of `enterprises` (the caller's scope), narrowed by the filters a list and the
/// ledger share; `own_agency` keeps agency staff to their own agency's.
#[derive(Debug, Clone, Default)]
pub struct HazardFilters {
    pub enterprises: Vec<String>,
    pub own_agency: Option<String>,
    pub township: Option<String>,
    pub agency: Option<String>,
    pub enterprise: Option<String>,
    pub grade: Option<String>,
    pub state: Option<String>,
}

impl HazardFilters {
    /// The clause over `hazards_view h`.
    pub(crate) fn filter(&self) -> Filter {
        let mut f = Filter::within("h.enterprise_id", &self.enterprises);
        f.eq("h.agency_id", self.own_agency.as_deref())
            .eq("h.township_id", self.township.as_deref())
            .eq("h.agency_id", self.agency.as_deref())
            .eq("h.enterprise_id", self.enterprise.as_deref())
            .eq("h.grade", self.grade.as_deref())
            .eq("h.state", self.state.as_deref());
        f
    }
}

/// Which hazards a list holds, newest first.
#[derive(Debug, Clone, Default)]
pub struct HazardListQuery {
    pub filters: HazardFilters,
    /// Overdue on `today` (or not), when set.
    pub overdue: Option<bool>,
    /// Today in China, `YYYY-MM-DD`: what overdue is judged by.
    pub today: String,
    pub limit: u32,
    pub offset: u32,
}

/// One visit, or the visits of one enterprise.
#[derive(Debug, Clone)]
pub enum VisitKey {
    Id(String),
    Enterprise(String),
}

/// Which visits a list holds: those of `enterprises`, narrowed by `key` and by the start
/// instants `from` (inclusive) and `until` (exclusive), newest first, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct VisitListQuery {
    pub enterprises: Vec<String>,
    pub own_agency: Option<String>,
    pub key: Option<VisitKey>,
    pub from: Option<i64>,
    pub until: Option<i64>,
    pub limit: u32,
}

/// A major hazard's report as stored, with the hazard's grade now.
#[derive(Debug, Clone)]
pub struct MajorReportRow {
    pub hazard_id: String,
    pub township_id: String,
    pub enterprise_id: String,
    pub reported_at: i64,
    pub found_at: Option<i64>,
    pub claimed: Option<i64>,
    pub received: Option<i64>,
    pub grade: String,
}

impl Db {
    /// A list of hazards, newest first.
    pub async fn hazard_list(&self, q: &HazardListQuery) -> Result<Vec<HazardRow>, DbError> {
        let mut f = q.filters.filter();
        if let Some(overdue) = q.overdue {
            f.and_with(q.today.clone(), |today| {
                let test = format!("h.state IN {OWED} AND h.current_deadline < {today}");
                if overdue {
                    test
                } else {
                    format!("NOT ({test})")
                }
            });
        }
        let sql = format!(
            "SELECT {HAZARD_COLUMNS} FROM hazards_view h LEFT JOIN organisations o ON o.id = h.enterprise_id \
             WHERE {} ORDER BY h.created_at DESC, h.id LIMIT {} OFFSET {}",
            f.sql, q.limit, q.offset
        );
        let today = q.today.as_str();
        Ok(with_pool!(self, pool => {
            bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), f)
                .fetch_all(pool).await?
                .into_iter()
                .map(|r| hazard_row!(r, today))
                .collect::<Vec<_>>()
        }))
    }

    /// One hazard's row, whoever may read it (the caller checks the scope).
    pub async fn hazard_row(&self, id: &str, today: &str) -> Result<Option<HazardRow>, DbError> {
        let sql = format!(
            "SELECT {HAZARD_COLUMNS} FROM hazards_view h LEFT JOIN organisations o ON o.id = h.enterprise_id WHERE h.id = $1"
        );
        Ok(with_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await?
                .map(|r| hazard_row!(r, today))
        }))
    }

    /// The hazards found on a visit, in the order found.
    pub async fn hazards_of_visit(
        &self,
        visit_id: &str,
        today: &str,
    ) -> Result<Vec<HazardRow>, DbError> {
        let sql = format!(
            "SELECT {HAZARD_COLUMNS} FROM hazards_view h LEFT JOIN organisations o ON o.id = h.enterprise_id WHERE h.visit_id = $1 ORDER BY h.created_at"
        );
        Ok(with_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(visit_id).fetch_all(pool).await?
                .into_iter().map(|r| hazard_row!(r, today)).collect::<Vec<_>>()
        }))
    }

    /// An enterprise's hazards in the order found: one agency's only when `own_agency` is set.
    pub async fn hazards_of_enterprise(
        &self,
        enterprise: &str,
        own_agency: Option<&str>,
        today: &str,
    ) -> Result<Vec<HazardRow>, DbError> {
        let sql = format!(
            "SELECT {HAZARD_COLUMNS} FROM hazards_view h LEFT JOIN organisations o ON o.id = h.enterprise_id \
             WHERE h.enterprise_id = $1 AND ($2 = '' OR h.agency_id = $2) ORDER BY h.created_at"
        );
        let agency = own_agency.unwrap_or("");
        Ok(with_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(enterprise).bind(agency).fetch_all(pool).await?
                .into_iter().map(|r| hazard_row!(r, today)).collect::<Vec<_>>()
        }))
    }

    /// A hazard's events as projected, in document order.
    pub async fn hazard_history(&self, id: &str) -> Result<Vec<EventRow>, DbError> {
        Ok(with_pool!(self, pool => {
            sqlx::query("SELECT event_id, at, author, role, device, kind, detail, ignored FROM hazard_events_view WHERE hazard_id = $1 ORDER BY position")
                .bind(id)
                .fetch_all(pool)
                .await?
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

    /// A list of visits, newest first.
    pub async fn visit_list(&self, q: &VisitListQuery) -> Result<Vec<VisitRow>, DbError> {
        let mut f = Filter::within("h.enterprise_id", &q.enterprises);
        match &q.key {
            Some(VisitKey::Id(id)) => f.eq("h.id", Some(id)),
            Some(VisitKey::Enterprise(e)) => f.eq("h.enterprise_id", Some(e)),
            None => &mut f,
        }
        .eq("h.agency_id", q.own_agency.as_deref())
        .cmp("h.started_at", ">=", q.from)
        .cmp("h.started_at", "<", q.until);
        let sql = format!(
            "SELECT id, enterprise_id, agency_id, township_id, visit_kind, inspectors, started_at, ended_at, place, \
             checklist_total, checklist_failed, signed_by FROM visits_view h WHERE {} ORDER BY started_at DESC LIMIT {}",
            f.sql, q.limit
        );
        Ok(with_pool!(self, pool => {
            let query = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), f);
            query.fetch_all(pool).await?
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

    /// The major-hazard reports of `enterprises` (one agency's only when `own_agency` is
    /// set), the latest first.
    pub async fn major_reports(
        &self,
        enterprises: &[String],
        own_agency: Option<&str>,
    ) -> Result<Vec<MajorReportRow>, DbError> {
        let mut f = Filter::within("r.enterprise_id", enterprises);
        f.eq("h.agency_id", own_agency);
        let sql = format!(
            "SELECT r.hazard_id, r.township_id, r.enterprise_id, r.reported_at, r.found_at, r.report_claimed_at, \
             r.report_received_at, COALESCE(h.grade, 'major') FROM major_hazard_reports r \
             LEFT JOIN hazards_view h ON h.id = r.hazard_id WHERE {} ORDER BY r.reported_at DESC",
            f.sql
        );
        Ok(with_pool!(self, pool => {
            let query = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), f);
            query.fetch_all(pool).await?
                .into_iter()
                .map(|r| MajorReportRow {
                    hazard_id: r.get(0),
                    township_id: r.get(1),
                    enterprise_id: r.get(2),
                    reported_at: r.get(3),
                    found_at: r.get(4),
                    claimed: r.get(5),
                    received: r.get(6),
                    grade: r.get(7),
                })
                .collect::<Vec<_>>()
        }))
    }

    /// The enterprise a visit or hazard of the read models belongs to (`None`: no such
    /// document projected).
    pub async fn document_enterprise(
        &self,
        kind: sync_core::doc::DocKind,
        id: &str,
    ) -> Result<Option<String>, DbError> {
        let sql = match kind {
            sync_core::doc::DocKind::Visit => "SELECT enterprise_id FROM visits_view WHERE id = $1",
            sync_core::doc::DocKind::Hazard => {
                "SELECT enterprise_id FROM hazards_view WHERE id = $1"
            }
        };
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await?
        }))
    }

    /// An organisation's name, empty when there is none with `id`.
    pub async fn organisation_name(&self, id: &str) -> Result<String, DbError> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>("SELECT name FROM organisations WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
                .unwrap_or_default()
        }))
    }

    /// Who wrote with each Automerge actor: (actor, (device id, device name, platform, user id,
    /// display name, role)) for the actors that are enrolled devices.
    pub async fn devices_by_actor(
        &self,
        actors: &[String],
    ) -> Result<Vec<(String, DeviceAuthor)>, DbError> {
        if actors.is_empty() {
            return Ok(Vec::new());
        }
        let ph: Vec<String> = (1..=actors.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT d.actor_id, d.id, d.name, d.platform, u.id, u.display_name, u.role \
             FROM devices d JOIN users u ON u.id = d.user_id WHERE d.actor_id IN ({})",
            ph.join(",")
        );
        Ok(with_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for a in actors {
                q = q.bind(a);
            }
            q.fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    (
                        r.get::<String, _>(0),
                        DeviceAuthor {
                            device_id: r.get(1),
                            device_name: r.get(2),
                            platform: r.get(3),
                            user_id: r.get(4),
                            display_name: r.get(5),
                            role: r.get(6),
                        },
                    )
                })
                .collect::<Vec<_>>()
        }))
    }
}

/// The device and user behind an Automerge actor.
#[derive(Debug, Clone)]
pub struct DeviceAuthor {
    pub device_id: String,
    pub device_name: String,
    pub platform: String,
    pub user_id: String,
    pub display_name: String,
    pub role: String,
}

/// A hazard as the monthly statistics count it: (township, township name, found at, grade,
/// state, closed at, current deadline).
pub type StatisticsHazard = (
    String,
    String,
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
);

impl Db {
    /// The hazards of `enterprises` (one agency's when `own_agency` is set) found in
    /// [`from`, `until`), at most `limit`, for the monthly statistics.
    pub async fn statistics_hazards(
        &self,
        enterprises: &[String],
        own_agency: Option<&str>,
        from: Option<i64>,
        until: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StatisticsHazard>, DbError> {
        let mut f = Filter::within("h.enterprise_id", enterprises);
        f.eq("h.agency_id", own_agency)
            .cmp("h.created_at", ">=", from)
            .cmp("h.created_at", "<", until);
        let sql = format!(
            "SELECT h.township_id, COALESCE(t.name, ''), h.created_at, h.grade, h.state, h.closed_at, h.current_deadline \
             FROM hazards_view h LEFT JOIN organisations t ON t.id = h.township_id WHERE {} LIMIT {limit}",
            f.sql
        );
        Ok(with_pool!(self, pool => {
            let q = bind_filter!(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())), f);
            q.fetch_all(pool).await?
        }))
    }
}
