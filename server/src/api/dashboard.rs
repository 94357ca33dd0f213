//! `GET /api/v1/dashboard`: the figures supervisors and agencies ask for — open, overdue and major
//! hazards, closure rate and time to close, by township, park, agency and enterprise, and by month.
//!
//! Counts are computed in SQL over `hazards_view`, limited to the caller's scope with the same
//! `h.enterprise_id IN (...)` clause as [`crate::api::hazards::list`], so a figure on the dashboard
//! always equals the length of the matching hazard list. Only portable SQL is used (`CASE`, `SUM`,
//! `COUNT`, `GROUP BY`) so SQLite and PostgreSQL agree. The median and the monthly trend need China
//! dates of millisecond timestamps, which differ in syntax between the two databases, so they are
//! computed in Rust from the `(created_at, closed_at)` pairs.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::auth::AuthUser;
use crate::db::with_pool;
use crate::error::{ApiError, Json};
use crate::{AppState, scope};

/// The counts of one group (or of everything in scope).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// All hazards.
    pub total: i64,
    /// Not closed yet.
    pub open: i64,
    /// Rectification still owed and the deadline has passed (China date).
    pub overdue: i64,
    /// Major hazards not closed yet.
    pub major_open: i64,
    /// All major hazards.
    pub major: i64,
    /// Closed (销号).
    pub closed: i64,
}

/// Figures of one township, park, agency or enterprise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Its id (for a park: its name; empty for enterprises outside any park).
    pub id: String,
    /// Its display name.
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// Hazards found and closed in one month (China time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Month {
    /// `YYYY-MM`.
    pub month: String,
    pub created: i64,
    pub closed: i64,
}

/// The dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// The China date the overdue figures are computed for.
    pub today: String,
    #[serde(flatten)]
    pub totals: Figures,
    /// closed / total, 0 when there is nothing.
    pub closure_rate: f64,
    /// Median of (closed_at - created_at) over closed hazards, in days; `None` when none closed.
    pub median_days_to_close: Option<f64>,
    /// Hazards per state.
    pub by_state: BTreeMap<String, i64>,
    pub by_township: Vec<Group>,
    pub by_park: Vec<Group>,
    pub by_agency: Vec<Group>,
    pub by_enterprise: Vec<Group>,
    pub by_month: Vec<Month>,
}

/// The select list of one figures row; `$today` is the bind index of today's date.
fn figures_sql(today: usize) -> String {
    format!(
        "COUNT(*), \
         SUM(CASE WHEN h.state <> 'closed' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN h.state IN ('open','notified','in_progress') AND h.current_deadline < ${today} THEN 1 ELSE 0 END), \
         SUM(CASE WHEN h.grade = 'major' AND h.state <> 'closed' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN h.grade = 'major' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN h.state = 'closed' THEN 1 ELSE 0 END)"
    )
}

fn figures_at(row: &impl FiguresRow, first: usize) -> Figures {
    Figures {
        total: row.int(first),
        open: row.int(first + 1),
        overdue: row.int(first + 2),
        major_open: row.int(first + 3),
        major: row.int(first + 4),
        closed: row.int(first + 5),
    }
}

/// Reads a possibly-NULL integer (a `SUM` over no rows is NULL) from either backend's row.
trait FiguresRow {
    fn int(&self, i: usize) -> i64;
}

impl FiguresRow for sqlx::sqlite::SqliteRow {
    fn int(&self, i: usize) -> i64 {
        self.try_get::<Option<i64>, _>(i)
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

impl FiguresRow for sqlx::postgres::PgRow {
    fn int(&self, i: usize) -> i64 {
        self.try_get::<Option<i64>, _>(i)
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

fn scope_clause(n: usize) -> String {
    if n == 0 {
        return "1 = 0".into();
    }
    let ph: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("h.enterprise_id IN ({})", ph.join(","))
}

/// China calendar month (`YYYY-MM`) of a millisecond timestamp.
fn china_month(ms: i64) -> String {
    let date = jiff::Timestamp::from_millisecond(ms)
        .map(crate::clock::china_date)
        .unwrap_or_default();
    format!("{:04}-{:02}", date.year(), date.month())
}

/// The median of `values` (sorted in place); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// `GET /api/v1/dashboard`.
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Dashboard>, ApiError> {
    let scope = scope::scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    let today = crate::clock::china_date(state.clock.now()).to_string();
    let t = ids.len() + 1;
    let from = format!(
        "FROM hazards_view h LEFT JOIN enterprises e ON e.id = h.enterprise_id WHERE {}",
        scope_clause(ids.len())
    );
    let fig = figures_sql(t);
    let totals_sql = format!("SELECT {fig} {from}");
    // Each group query: id, name, then the figures.
    let group_sql = |id: &str, name: &str| {
        format!(
            "SELECT {id}, COALESCE({name}, ''), {fig} {from} GROUP BY {id}, {name} ORDER BY COUNT(*) DESC, {id}"
        )
    };
    let org_name = |col: &str| format!("(SELECT o.name FROM organisations o WHERE o.id = {col})");
    let township_sql = group_sql("h.township_id", &org_name("h.township_id"));
    let agency_sql = group_sql("h.agency_id", &org_name("h.agency_id"));
    let enterprise_sql = group_sql("h.enterprise_id", &org_name("h.enterprise_id"));
    let park_sql = format!(
        "SELECT COALESCE(e.park, ''), COALESCE(e.park, ''), {fig} {from} GROUP BY e.park ORDER BY COUNT(*) DESC"
    );
    let state_sql = format!("SELECT h.state, COUNT(*) {from} GROUP BY h.state");
    let times_sql = format!("SELECT h.created_at, h.closed_at, h.state {from}");

    let binds: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(today.as_str()))
        .collect();
    let scope_binds = &binds[..ids.len()];

    let (totals, groups, by_state, times) = with_pool!(&state.db, pool => {
        let q = |sql: &str, binds: &[&str]| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
            for b in binds {
                q = q.bind(b.to_string());
            }
            q
        };
        let totals = q(&totals_sql, &binds)
            .fetch_one(pool)
            .await
            .map_err(crate::db::DbError::from)?;
        let totals = figures_at(&totals, 0);
        let mut groups = Vec::new();
        for sql in [&township_sql, &park_sql, &agency_sql, &enterprise_sql] {
            let rows = q(sql, &binds)
                .fetch_all(pool)
                .await
                .map_err(crate::db::DbError::from)?;
            groups.push(
                rows.iter()
                    .map(|r| Group {
                        id: r.try_get::<Option<String>, _>(0).ok().flatten().unwrap_or_default(),
                        name: r.try_get::<Option<String>, _>(1).ok().flatten().unwrap_or_default(),
                        figures: figures_at(r, 2),
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let by_state: BTreeMap<String, i64> = q(&state_sql, scope_binds)
            .fetch_all(pool)
            .await
            .map_err(crate::db::DbError::from)?
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect();
        let times: Vec<(i64, Option<i64>, String)> = q(&times_sql, scope_binds)
            .fetch_all(pool)
            .await
            .map_err(crate::db::DbError::from)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        (totals, groups, by_state, times)
    });
    let mut groups = groups.into_iter();
    let mut next = || groups.next().unwrap_or_default();
    let (by_township, by_park, by_agency, by_enterprise) = (next(), next(), next(), next());

    let mut durations: Vec<f64> = Vec::new();
    let mut months: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (created, closed_at, st) in &times {
        months.entry(china_month(*created)).or_default().0 += 1;
        if st == "closed"
            && let Some(closed) = closed_at
        {
            months.entry(china_month(*closed)).or_default().1 += 1;
            durations.push((closed - created).max(0) as f64 / 86_400_000.0);
        }
    }
    let median_days_to_close = median(&mut durations).map(|d| (d * 10.0).round() / 10.0);
    let closure_rate = if totals.total == 0 {
        0.0
    } else {
        totals.closed as f64 / totals.total as f64
    };
    Ok(Json(Dashboard {
        today,
        closure_rate,
        median_days_to_close,
        totals,
        by_state,
        by_township,
        by_park,
        by_agency,
        by_enterprise,
        by_month: months
            .into_iter()
            .map(|(month, (created, closed))| Month {
                month,
                created,
                closed,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn months_are_china_months() {
        // 2026-02-28T16:30Z is 1 March 00:30 in Beijing.
        let ms = jiff::Timestamp::from_second(1_772_296_200)
            .unwrap()
            .as_millisecond();
        assert_eq!(china_month(ms), "2026-03");
    }
}
