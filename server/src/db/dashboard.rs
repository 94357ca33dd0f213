//! The dashboard's queries (`crate::api::dashboard` sums and shapes what they return): the
//! tallies kept by triggers on `hazards_view` (migration 0007), the overdue hazards counted
//! through the covering index of migration 0008, and the month and time-to-close tallies.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Db, DbError, with_pool};

/// Reads a possibly-NULL integer or text from a row of either backend (NULL reads as 0 or "").
trait FiguresRow {
    fn int(&self, i: usize) -> i64;
    fn text(&self, i: usize) -> String;
}

impl<R> FiguresRow for R
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn int(&self, i: usize) -> i64 {
        self.try_get::<Option<i64>, _>(i)
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    fn text(&self, i: usize) -> String {
        self.try_get::<Option<String>, _>(i)
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

fn scope_clause(column: &str, n: usize) -> String {
    if n == 0 {
        return "1 = 0".into();
    }
    format!("{column} IN ({})", super::filter::placeholders(1, n))
}

/// The tallies of one (enterprise, agency, township) in scope, summed over states and grades,
/// with the names the groups show.
#[derive(Debug, Clone)]
pub struct TallyRow {
    pub enterprise: String,
    pub agency: String,
    pub township: String,
    pub total: i64,
    pub closed: i64,
    pub major: i64,
    pub major_open: i64,
    pub park: String,
    pub enterprise_name: String,
    pub agency_name: String,
    pub township_name: String,
}

/// The SQL the dashboard runs for a scope of `n` enterprises: binds `$1..$n` are the enterprise
/// ids and, in `overdue`, `$n+1` is today's China date. Public so the benchmark runs exactly these.
#[derive(Debug, Clone)]
pub struct DashboardSql {
    /// Tallies in scope summed per (enterprise, agency, township), with the names of the groups.
    pub tallies: String,
    /// Hazards in scope per state.
    pub states: String,
    /// Overdue hazards per enterprise, agency and township.
    pub overdue: String,
    /// Found and closed per China month.
    pub months: String,
    /// Closed hazards per tenth of a day to close.
    pub closes: String,
}

impl DashboardSql {
    /// The queries for a scope of `n` enterprises.
    pub fn new(n: usize) -> Self {
        DashboardSql {
            // Summed in SQL (the primary key's order streams the GROUP BY) so that a few hundred
            // rows cross into Rust rather than one per state and grade; names are joined to the
            // sums, once per group.
            tallies: format!(
                "SELECT g.enterprise_id, g.agency_id, g.township_id, g.total, g.closed, g.major, g.major_open, \
         COALESCE(e.park, ''), COALESCE(oe.name, ''), COALESCE(oa.name, ''), COALESCE(ot.name, '') \
         FROM (SELECT enterprise_id, agency_id, township_id, \
                 CAST(SUM(n) AS BIGINT) AS total, \
                 CAST(SUM(CASE WHEN state = 'closed' THEN n ELSE 0 END) AS BIGINT) AS closed, \
                 CAST(SUM(CASE WHEN grade = 'major' THEN n ELSE 0 END) AS BIGINT) AS major, \
                 CAST(SUM(CASE WHEN grade = 'major' AND state <> 'closed' THEN n ELSE 0 END) AS BIGINT) AS major_open \
               FROM hazard_tallies WHERE n > 0 AND {} \
               GROUP BY enterprise_id, agency_id, township_id) g \
         LEFT JOIN enterprises e ON e.id = g.enterprise_id \
         LEFT JOIN organisations oe ON oe.id = g.enterprise_id \
         LEFT JOIN organisations oa ON oa.id = g.agency_id \
         LEFT JOIN organisations ot ON ot.id = g.township_id",
                scope_clause("enterprise_id", n)
            ),
            states: format!(
                "SELECT state, CAST(SUM(n) AS BIGINT) FROM hazard_tallies WHERE n > 0 AND {} GROUP BY state",
                scope_clause("enterprise_id", n)
            ),
            overdue: format!(
                "SELECT h.enterprise_id, h.agency_id, h.township_id, COUNT(*) FROM hazards_view h \
         WHERE h.state IN ('open','notified','in_progress') AND h.current_deadline < ${} AND {} \
         GROUP BY h.enterprise_id, h.agency_id, h.township_id",
                n + 1,
                scope_clause("h.enterprise_id", n)
            ),
            months: format!(
                "SELECT month, CAST(SUM(created) AS BIGINT), CAST(SUM(closed) AS BIGINT) FROM hazard_month_tallies WHERE {} \
         GROUP BY month HAVING SUM(created) > 0 OR SUM(closed) > 0 ORDER BY month",
                scope_clause("enterprise_id", n)
            ),
            closes: format!(
                "SELECT tenths, CAST(SUM(n) AS BIGINT) FROM hazard_close_tallies WHERE {} \
         GROUP BY tenths HAVING SUM(n) > 0 ORDER BY tenths",
                scope_clause("enterprise_id", n)
            ),
        }
    }
}

/// What the dashboard's queries return for a scope.
#[derive(Debug, Default)]
pub struct DashboardRows {
    pub tallies: Vec<TallyRow>,
    /// Hazards per state (states with none left out).
    pub by_state: BTreeMap<String, i64>,
    /// (enterprise, agency, township, overdue hazards).
    pub overdue: Vec<(String, String, String, i64)>,
    /// (China month, found, closed).
    pub months: Vec<(String, i64, i64)>,
    /// (tenths of a day to close, hazards).
    pub closes: Vec<(i64, i64)>,
}

impl Db {
    /// The dashboard's rows for the hazards of `enterprises`, overdue judged on `today`
    /// (China, `YYYY-MM-DD`).
    pub async fn dashboard_rows(
        &self,
        enterprises: &[String],
        today: &str,
    ) -> Result<DashboardRows, DbError> {
        let DashboardSql {
            tallies: tally_sql,
            states: state_sql,
            overdue: overdue_sql,
            months: month_sql,
            closes: close_sql,
        } = DashboardSql::new(enterprises.len());
        let scope_binds: Vec<&str> = enterprises.iter().map(String::as_str).collect();
        let overdue_binds: Vec<&str> = scope_binds
            .iter()
            .copied()
            .chain(std::iter::once(today))
            .collect();

        let (tallies, by_state, overdue, months, closes) = with_pool!(self, pool => {
            let q = |sql: &str, binds: &[&str]| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    q = q.bind(b.to_string());
                }
                q
            };
            let s = |r: &_, i| FiguresRow::text(r, i);
            let tallies: Vec<TallyRow> = q(&tally_sql, &scope_binds)
                .fetch_all(pool)
                .await
                ?
                .iter()
                .map(|r| TallyRow {
                    enterprise: s(r, 0),
                    agency: s(r, 1),
                    township: s(r, 2),
                    total: r.int(3),
                    closed: r.int(4),
                    major: r.int(5),
                    major_open: r.int(6),
                    park: s(r, 7),
                    enterprise_name: s(r, 8),
                    agency_name: s(r, 9),
                    township_name: s(r, 10),
                })
                .collect();
            let by_state: BTreeMap<String, i64> = q(&state_sql, &scope_binds)
                .fetch_all(pool)
                .await
                ?
                .iter()
                .map(|r| (s(r, 0), r.int(1)))
                .filter(|(_, n)| *n > 0)
                .collect();
            let overdue: Vec<(String, String, String, i64)> = q(&overdue_sql, &overdue_binds)
                .fetch_all(pool)
                .await
                ?
                .iter()
                .map(|r| (s(r, 0), s(r, 1), s(r, 2), r.int(3)))
                .collect();
            let months: Vec<(String, i64, i64)> = q(&month_sql, &scope_binds)
                .fetch_all(pool)
                .await
                ?
                .iter()
                .map(|r| (s(r, 0), r.int(1), r.int(2)))
                .collect();
            let closes: Vec<(i64, i64)> = q(&close_sql, &scope_binds)
                .fetch_all(pool)
                .await
                ?
                .iter()
                .map(|r| (r.int(0), r.int(1)))
                .collect();
            (tallies, by_state, overdue, months, closes)
        });
        Ok(DashboardRows {
            tallies,
            by_state,
            overdue,
            months,
            closes,
        })
    }
}
