//! `GET /api/v1/dashboard`: the figures supervisors and agencies ask for — open, overdue and major
//! hazards, closure rate and time to close, by township, park, agency and enterprise, and by month.
//!
//! Counts are read from tallies that triggers on `hazards_view` keep in the same transaction as
//! the rows they count (migration 0007: per enterprise, agency, township, state and grade; per
//! China month; per tenth of a day to close), limited to the caller's scope with the same
//! `enterprise_id IN (...)` rule as [`crate::api::hazards::list`], so a figure on the dashboard
//! always equals the length of the matching hazard list while the work no longer grows with the
//! number of hazards. Overdue depends on today's date and is counted from `hazards_view` through
//! its `(state, current_deadline)` index. The median time to close is the median of closing times
//! rounded to a tenth of a day.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
pub use crate::db::DashboardSql;
use crate::db::TallyRow;
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
    /// Major hazards whose agency's report came after the window ([`crate::config::Config::major_report_window`]).
    #[serde(default)]
    pub major_reports_late: i64,
    /// Major hazards whose window has passed without the agency's report.
    #[serde(default)]
    pub major_reports_missing: i64,
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

/// The median of a histogram of `(value, count)` pairs sorted by value; `None` when empty.
pub fn histogram_median(buckets: &[(i64, i64)]) -> Option<f64> {
    let total: i64 = buckets.iter().map(|(_, n)| (*n).max(0)).sum();
    if total == 0 {
        return None;
    }
    // The values at 0-based ranks `lo` and `hi` of the sorted multiset.
    let (lo, hi) = ((total - 1) / 2, total / 2);
    let at = |rank: i64| {
        let mut seen = 0;
        for (value, n) in buckets {
            seen += (*n).max(0);
            if rank < seen {
                return *value as f64;
            }
        }
        buckets.last().map_or(0.0, |(v, _)| *v as f64)
    };
    Some((at(lo) + at(hi)) / 2.0)
}

impl TallyRow {
    fn figures(&self) -> Figures {
        Figures {
            total: self.total,
            open: self.total - self.closed,
            overdue: 0,
            major_open: self.major_open,
            major: self.major,
            closed: self.closed,
        }
    }
}

/// Figures keyed by group id, with the group's display name.
#[derive(Default)]
struct Grouped(BTreeMap<String, (String, Figures)>);

impl Grouped {
    fn entry(&mut self, id: &str, name: &str) -> &mut Figures {
        &mut self
            .0
            .entry(id.to_owned())
            .or_insert_with(|| (name.to_owned(), Figures::default()))
            .1
    }

    /// Largest first, then by id, as the lists show them.
    fn into_groups(self) -> Vec<Group> {
        let mut out: Vec<Group> = self
            .0
            .into_iter()
            .filter(|(_, (_, f))| f.total > 0)
            .map(|(id, (name, figures))| Group { id, name, figures })
            .collect();
        out.sort_by(|a, b| b.figures.total.cmp(&a.figures.total).then(a.id.cmp(&b.id)));
        out
    }
}

impl std::ops::AddAssign<&Figures> for Figures {
    fn add_assign(&mut self, o: &Figures) {
        self.total += o.total;
        self.open += o.open;
        self.overdue += o.overdue;
        self.major_open += o.major_open;
        self.major += o.major;
        self.closed += o.closed;
    }
}

/// `GET /api/v1/dashboard`.
///
/// The counts come from `hazard_tallies` (kept by triggers on `hazards_view`, migration 0007), a
/// few rows per enterprise whatever the number of hazards, summed per group in SQL; overdue
/// depends on today's date, so it is counted from `hazards_view` through the covering index
/// `hazards_view_overdue` (migration 0008), which visits only the overdue rows and never the
/// table. Months and the median come from their own tallies.
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Dashboard>, ApiError> {
    let scope = scope::read_scope_of(&state.db, state.clock.as_ref(), &user).await?;
    let ids: Vec<String> = scope.enterprise_ids().iter().cloned().collect();
    let today = crate::clock::china_date(state.clock.now()).to_string();
    let crate::db::DashboardRows {
        tallies,
        by_state,
        overdue,
        months,
        closes,
    } = state.db.dashboard_rows(&ids, &today).await?;
    let months: Vec<Month> = months
        .into_iter()
        .map(|(month, created, closed)| Month {
            month,
            created,
            closed,
        })
        .collect();

    let mut totals = Figures::default();
    let (mut townships, mut parks, mut agencies, mut enterprises) = (
        Grouped::default(),
        Grouped::default(),
        Grouped::default(),
        Grouped::default(),
    );
    // The park of each enterprise, for the overdue rows (which carry no names).
    let mut park_of: BTreeMap<&str, &str> = BTreeMap::new();
    for t in &tallies {
        let figures = t.figures();
        totals += &figures;
        for f in [
            townships.entry(&t.township, &t.township_name),
            parks.entry(&t.park, &t.park),
            agencies.entry(&t.agency, &t.agency_name),
            enterprises.entry(&t.enterprise, &t.enterprise_name),
        ] {
            *f += &figures;
        }
        park_of.insert(&t.enterprise, &t.park);
    }
    for (enterprise, agency, township, n) in &overdue {
        totals.overdue += n;
        let park = park_of.get(enterprise.as_str()).copied().unwrap_or("");
        for f in [
            townships.entry(township, ""),
            parks.entry(park, park),
            agencies.entry(agency, ""),
            enterprises.entry(enterprise, ""),
        ] {
            f.overdue += n;
        }
    }
    let median_days_to_close = histogram_median(&closes).map(|tenths| (tenths).round() / 10.0);
    let closure_rate = if totals.total == 0 {
        0.0
    } else {
        totals.closed as f64 / totals.total as f64
    };
    let reports = crate::api::hazards::major_report_rows(&state, &user).await?;
    let count = |s: &str| reports.iter().filter(|r| r.report_status == s).count() as i64;
    Ok(Json(Dashboard {
        major_reports_late: count("late"),
        major_reports_missing: count("missing"),
        today,
        closure_rate,
        median_days_to_close,
        totals,
        by_state,
        by_township: townships.into_groups(),
        by_park: parks.into_groups(),
        by_agency: agencies.into_groups(),
        by_enterprise: enterprises.into_groups(),
        by_month: months,
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
    fn median_of_a_histogram() {
        assert_eq!(histogram_median(&[]), None);
        assert_eq!(histogram_median(&[(5, 0)]), None);
        // 1, 2, 2, 9 → (2 + 2) / 2
        assert_eq!(histogram_median(&[(1, 1), (2, 2), (9, 1)]), Some(2.0));
        // 1, 3 → 2
        assert_eq!(histogram_median(&[(1, 1), (3, 1)]), Some(2.0));
        // 1, 1, 1, 7, 7 → 1
        assert_eq!(histogram_median(&[(1, 3), (7, 2)]), Some(1.0));
        // Agrees with the plain median over the expanded values.
        let hist = [(0, 2), (4, 3), (10, 1), (11, 4)];
        let mut flat: Vec<f64> = hist
            .iter()
            .flat_map(|(v, n)| std::iter::repeat_n(*v as f64, *n as usize))
            .collect();
        assert_eq!(histogram_median(&hist), median(&mut flat));
    }
}
