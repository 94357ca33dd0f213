//! Which enterprises a user may see.
//!
//! Every read and every synced change is filtered through this, so it is computed in one place:
//! - inspectors and agency admins see the enterprises that have a contract with their agency in force
//!   today (in China Standard Time, per the injected clock; both ends of the term included);
//! - an enterprise manager sees their own enterprise;
//! - a supervisor sees the enterprises of their township.
//!
//! Within an enterprise, agency staff read only their own agency's documents ([`own_agency`];
//! the sync hub applies the same rule with `sync_core::policy::may_read`).

use std::collections::{BTreeMap, BTreeSet};

use sync_core::engine::Reach;
use sync_core::ids::{EnterpriseId, TownshipId};

use jiff::civil::Date;

use crate::auth::AuthUser;
use crate::clock::{Clock, china_date};
use crate::db::{Db, DbResult, ScopeRule};
use crate::model::Role;

/// The enterprises a user may see, evaluated at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    rule: ScopeRule,
    enterprise_ids: BTreeSet<String>,
    /// Each enterprise's township, as registered.
    townships: BTreeMap<String, String>,
}

impl Scope {
    pub fn contains(&self, enterprise_id: &str) -> bool {
        self.enterprise_ids.contains(enterprise_id)
    }

    pub fn enterprise_ids(&self) -> &BTreeSet<String> {
        &self.enterprise_ids
    }

    /// The scope as the sync hub checks documents against it: each enterprise with the
    /// township it is registered in.
    pub fn reach(&self) -> Reach {
        self.townships
            .iter()
            .filter_map(|(e, t)| Some((EnterpriseId::parse(e).ok()?, TownshipId::parse(t).ok()?)))
            .collect()
    }

    fn of(rule: ScopeRule, rows: Vec<(String, String)>) -> Self {
        let townships: BTreeMap<String, String> = rows.into_iter().collect();
        Self {
            rule,
            enterprise_ids: townships.keys().cloned().collect(),
            townships,
        }
    }

    /// The rule the set was computed from, e.g. to run further queries with the same filter.
    pub fn rule(&self) -> &ScopeRule {
        &self.rule
    }
}

/// The rule for a user with `role` in organisation `org_id` on the China date `today`: what
/// they may work on (agency staff: enterprises under a contract in force).
pub fn scope_rule(role: Role, org_id: &str, today: Date) -> ScopeRule {
    rule(role, org_id, today, false)
}

fn rule(role: Role, org_id: &str, today: Date, or_ended: bool) -> ScopeRule {
    match role {
        Role::Inspector | Role::AgencyAdmin => ScopeRule::ContractedWith {
            agency_id: org_id.to_owned(),
            today,
            or_ended,
        },
        Role::EnterpriseManager => ScopeRule::Enterprise {
            enterprise_id: org_id.to_owned(),
        },
        Role::Supervisor => ScopeRule::Township {
            township_id: org_id.to_owned(),
        },
    }
}

fn rule_now(clock: &dyn Clock, user: &AuthUser) -> ScopeRule {
    scope_rule(user.role, &user.org_id, china_date(clock.now()))
}

/// The agency whose work alone `user` may read, for agency staff: another agency serving the
/// same enterprise keeps its visits and hazards to itself (the enterprise and its township see
/// both). `None` for every other role.
pub fn own_agency(user: &AuthUser) -> Option<&str> {
    matches!(user.role, Role::Inspector | Role::AgencyAdmin).then_some(user.org_id.as_str())
}

/// The enterprises `user` may *read* now: their scope, and for agency staff also the
/// enterprises whose contract has ended, so a former agency keeps reading its own records
/// (only its own: [`own_agency`]). Writes, and what a phone receives, use [`scope_of`].
pub async fn read_scope_of(db: &Db, clock: &dyn Clock, user: &AuthUser) -> DbResult<Scope> {
    let rule = rule(user.role, &user.org_id, china_date(clock.now()), true);
    let rows = db.scope_townships(&rule).await?;
    Ok(Scope::of(rule, rows))
}

/// Whether `user` may read the enterprise `enterprise_id`'s records now ([`read_scope_of`]).
pub async fn may_read_enterprise(
    db: &Db,
    clock: &dyn Clock,
    user: &AuthUser,
    enterprise_id: &str,
) -> DbResult<bool> {
    let rule = rule(user.role, &user.org_id, china_date(clock.now()), true);
    db.scope_admits(&rule, enterprise_id).await
}

/// The set of enterprise ids `user` may work on now.
pub async fn scope_of(db: &Db, clock: &dyn Clock, user: &AuthUser) -> DbResult<Scope> {
    let rule = rule_now(clock, user);
    let rows = db.scope_townships(&rule).await?;
    Ok(Scope::of(rule, rows))
}

/// Whether `user` may see the enterprise `enterprise_id` now, without listing the whole scope.
pub async fn may_see_enterprise(
    db: &Db,
    clock: &dyn Clock,
    user: &AuthUser,
    enterprise_id: &str,
) -> DbResult<bool> {
    db.scope_admits(&rule_now(clock, user), enterprise_id).await
}
