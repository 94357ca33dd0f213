//! The queries behind the hazard ledger (隐患排查治理台账, [`crate::ledger`]): the hazards of a
//! scope with their visit, enterprise, agency and township, the events the ledger reports
//! (re-inspections and reports to the regulator, only those that took effect), and the display
//! names of the people named. One SQL text per query serves both backends.

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;

use super::filter::{Filter, bind_filter};
use super::{Db, DbResult, with_pool};

/// What to select: the caller's scope (already computed) and the filters.
#[derive(Debug, Clone, Default)]
pub struct LedgerQuery {
    /// The scope (nothing outside `enterprises` is returned) and the filters.
    pub filters: super::HazardFilters,
    /// Found at or after (epoch ms).
    pub found_from: Option<i64>,
    /// Found before (epoch ms).
    pub found_until: Option<i64>,
    /// At most this many hazards (the caller asks for one more to learn that there are more).
    pub limit: usize,
}

/// One hazard as the read model holds it, with the names around it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerHazard {
    pub id: String,
    pub created_at: i64,
    pub enterprise_id: String,
    pub enterprise_name: String,
    pub agency_name: String,
    pub township_name: String,
    pub location: String,
    /// The visit's inspectors (user ids), as the visit lists them.
    pub inspectors: Vec<String>,
    /// Who signed the visit record for the enterprise.
    pub signed_by: Option<String>,
    pub description: String,
    pub category: String,
    pub grade: String,
    pub measure: String,
    pub funds_yuan: Option<i64>,
    pub responsible_person: String,
    pub deadline: Option<String>,
    pub state: String,
    pub closed_at: Option<i64>,
    /// When the server reported the major hazard to its township.
    pub auto_reported_at: Option<i64>,
}

/// An event of a hazard that took effect: a re-inspection or a report to the regulator.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEvent {
    pub hazard_id: String,
    pub kind: String,
    pub at: i64,
    pub author: String,
    pub detail: serde_json::Value,
}

/// Builds `WHERE …` over `hazards_view h` with its parameters.
fn where_clause(q: &LedgerQuery) -> Filter {
    let mut f = q.filters.filter();
    f.cmp("h.created_at", ">=", q.found_from)
        .cmp("h.created_at", "<", q.found_until);
    f
}

impl Db {
    /// The hazards of the ledger, oldest first (the order of a paper ledger).
    pub async fn ledger_hazards(&self, q: &LedgerQuery) -> DbResult<Vec<LedgerHazard>> {
        let filter = where_clause(q);
        let sql = format!(
            "SELECT h.id, h.created_at, h.enterprise_id, COALESCE(e.name, ''), COALESCE(a.name, ''), \
             COALESCE(t.name, ''), h.location, COALESCE(v.inspectors, '[]'), v.signed_by, h.description, \
             h.category, h.grade, h.measure, h.funds_yuan, h.responsible_person, h.current_deadline, \
             h.state, h.closed_at, m.reported_at \
             FROM hazards_view h \
             LEFT JOIN organisations e ON e.id = h.enterprise_id \
             LEFT JOIN organisations a ON a.id = h.agency_id \
             LEFT JOIN organisations t ON t.id = h.township_id \
             LEFT JOIN visits_view v ON v.id = h.visit_id \
             LEFT JOIN major_hazard_reports m ON m.hazard_id = h.id \
             WHERE {} ORDER BY h.created_at, h.id LIMIT {}",
            filter.sql, q.limit
        );
        Ok(with_pool!(self, pool => {
            let query = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), filter);
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| {
                    let inspectors: String = r.get(7);
                    LedgerHazard {
                        id: r.get(0),
                        created_at: r.get(1),
                        enterprise_id: r.get(2),
                        enterprise_name: r.get(3),
                        agency_name: r.get(4),
                        township_name: r.get(5),
                        location: r.get(6),
                        inspectors: serde_json::from_str(&inspectors).unwrap_or_default(),
                        signed_by: r.get(8),
                        description: r.get(9),
                        category: r.get(10),
                        grade: r.get(11),
                        measure: r.get(12),
                        funds_yuan: r.get(13),
                        responsible_person: r.get(14),
                        deadline: r.get(15),
                        state: r.get(16),
                        closed_at: r.get(17),
                        auto_reported_at: r.get(18),
                    }
                })
                .collect()
        }))
    }

    /// The re-inspections and reports to the regulator that took effect, of the hazards the same
    /// query selects, in each hazard's order.
    pub async fn ledger_events(&self, q: &LedgerQuery) -> DbResult<Vec<LedgerEvent>> {
        let filter = where_clause(q);
        let sql = format!(
            "SELECT ev.hazard_id, ev.kind, ev.at, ev.author, ev.detail \
             FROM hazard_events_view ev JOIN hazards_view h ON h.id = ev.hazard_id \
             WHERE {} AND ev.kind IN ('verified', 'reported_to_regulator') AND ev.ignored IS NULL \
             ORDER BY ev.hazard_id, ev.position",
            filter.sql
        );
        Ok(with_pool!(self, pool => {
            let query = bind_filter!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), filter);
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| {
                    let detail: String = r.get(4);
                    LedgerEvent {
                        hazard_id: r.get(0),
                        kind: r.get(1),
                        at: r.get(2),
                        author: r.get(3),
                        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    }
                })
                .collect()
        }))
    }

    /// Display names of the users `ids` (unknown ids are left out).
    pub async fn display_names(&self, ids: &BTreeSet<String>) -> DbResult<HashMap<String, String>> {
        let mut names = HashMap::with_capacity(ids.len());
        let ids: Vec<&String> = ids.iter().collect();
        for chunk in ids.chunks(500) {
            let ph: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, display_name FROM users WHERE id IN ({})",
                ph.join(",")
            );
            let rows: Vec<(String, String)> = with_pool!(self, pool => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(pool).await?
            });
            names.extend(rows);
        }
        Ok(names)
    }
}
