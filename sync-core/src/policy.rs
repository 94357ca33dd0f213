//! Who may change what at all. The phone runs these rules before it commits an edit, the server
//! before it accepts a batch, [`crate::actions::allowed_actions`] before an interface offers an
//! action, and the rectification fold before it lets an event take effect; *when* an event
//! takes effect (state, grade, pending request) is the fold's (`rectification::apply_v2`, ADR
//! 0009).
//!
//! | part of a document            | who may write it                                        |
//! |-------------------------------|---------------------------------------------------------|
//! | header (ids, kind, creator)   | written once by the creating inspector, then nobody     |
//! | visit and hazard details      | inspectors of the agency under contract                 |
//! | hazard events                 | appended only; which kinds by whom: [`may_record`]      |
//! | grade and deadline            | details until the notice; then only by events           |
//! | visit signatures              | appended only, by inspectors of the agency              |
//!
//! Relationship to a document comes from the author's organisation and the document's header:
//! an inspector's agency must be the document's agency (and the enterprise in its contracted
//! scope), an enterprise manager's enterprise the document's enterprise, a supervisor's township
//! the document's township.

use crate::doc::{DocKind, Header};
use crate::domain::{Author, Role};
use crate::rectification::EventKind;

/// How an author's organisation relates to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The author belongs to the document's agency.
    Agency,
    /// The author belongs to the document's enterprise.
    Enterprise,
    /// The author belongs to the document's township.
    Township,
    /// No relation: the author may do nothing with the document.
    None,
}

/// The relation of an author (role + organisation id as text or UUID) to a document header.
pub fn relation(role: Role, org: &str, header: &Header) -> Relation {
    let Ok(org) = uuid::Uuid::parse_str(org) else {
        return Relation::None;
    };
    relation_uuid(role, &org, header)
}

/// Like [`relation`] with a parsed organisation id.
pub fn relation_uuid(role: Role, org: &uuid::Uuid, header: &Header) -> Relation {
    match role {
        Role::Inspector | Role::AgencyAdmin if org == header.agency.as_uuid() => Relation::Agency,
        Role::EnterpriseManager if org == header.enterprise.as_uuid() => Relation::Enterprise,
        Role::Supervisor if org == header.township.as_uuid() => Relation::Township,
        _ => Relation::None,
    }
}

/// Whether `author` may see a document at all, given whether the document's enterprise is in
/// the author's scope (active contract for agency staff).
pub fn may_read(
    author_role: Role,
    author_org: &uuid::Uuid,
    header: &Header,
    in_scope: bool,
) -> bool {
    in_scope && relation_uuid(author_role, author_org, header) != Relation::None
}

/// Whether `author` may create a document of `kind` with this header.
pub fn may_create(author: &Author, kind: DocKind, header: &Header, in_scope: bool) -> bool {
    let _ = kind;
    author.role == Role::Inspector
        && in_scope
        && relation_uuid(author.role, &author.org, header) == Relation::Agency
        && header.created_by == author.user
}

/// Whether `author` may edit the details of a document.
pub fn may_edit_details(author: &Author, header: &Header, in_scope: bool) -> bool {
    author.role == Role::Inspector
        && in_scope
        && relation_uuid(author.role, &author.org, header) == Relation::Agency
}

/// Whether a role in a relation may record an event of this kind. State-dependent validity is
/// the fold's business ([`crate::rectification::fold`]); this is who may speak at all.
pub fn may_record(role: Role, relation: Relation, kind: &EventKind) -> bool {
    use EventKind::*;
    match (role, relation) {
        (Role::Inspector, Relation::Agency) => matches!(
            kind,
            Notified
                | NoticeIssued { .. }
                | Regraded { .. }
                | ExtensionGranted { .. }
                | ExtensionRefused { .. }
                | Verified { .. }
                | ReportedToRegulator { .. }
                | Closed { .. }
                | Reopened { .. }
        ),
        (Role::EnterpriseManager, Relation::Enterprise) => {
            matches!(
                kind,
                SignedFor { .. } | ExtensionRequested { .. } | RectificationSubmitted { .. }
            )
        }
        (Role::Supervisor, Relation::Township) => matches!(
            kind,
            ExtensionGranted { .. }
                | ExtensionRefused { .. }
                | Regraded { .. }
                | SupervisionPut { .. }
                | SupervisionLifted { .. }
                | Closed { .. }
                | Reopened { .. }
        ),
        _ => false,
    }
}

/// The event kinds a role may record on a document it relates to, by name: what a user
/// interface may offer (it still checks the current state through the fold).
pub fn recordable_kinds(role: Role, relation: Relation) -> Vec<&'static str> {
    sample_kinds()
        .into_iter()
        .filter(|k| may_record(role, relation, k))
        .map(|k| k.name())
        .collect()
}

/// One value of every event kind (for tables and property tests).
pub fn sample_kinds() -> Vec<EventKind> {
    use EventKind::*;
    vec![
        Notified,
        NoticeIssued {
            grade: crate::domain::Grade::General,
            deadline: String::new(),
        },
        Regraded {
            grade: crate::domain::Grade::General,
            reason: String::new(),
        },
        SignedFor {
            signer: String::new(),
        },
        ExtensionRequested {
            until: String::new(),
            reason: String::new(),
        },
        ExtensionGranted {
            request: String::new(),
            until: String::new(),
        },
        ExtensionRefused {
            request: String::new(),
            reason: String::new(),
        },
        RectificationSubmitted {
            note: String::new(),
            photos: vec![],
        },
        Verified {
            accepted: true,
            note: String::new(),
        },
        Verified {
            accepted: false,
            note: String::new(),
        },
        ReportedToRegulator { to: String::new() },
        SupervisionPut {
            note: String::new(),
        },
        SupervisionLifted {
            note: String::new(),
        },
        Closed {
            note: String::new(),
        },
        Reopened {
            reason: String::new(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_enterprise_submits_evidence_and_asks_for_time() {
        let submit = EventKind::RectificationSubmitted {
            note: String::new(),
            photos: vec![],
        };
        assert!(may_record(
            Role::EnterpriseManager,
            Relation::Enterprise,
            &submit
        ));
        assert!(!may_record(Role::Inspector, Relation::Agency, &submit));
        assert!(!may_record(Role::Supervisor, Relation::Township, &submit));
        assert!(!may_record(
            Role::EnterpriseManager,
            Relation::None,
            &submit
        ));
    }

    #[test]
    fn only_an_inspector_of_the_agency_verifies() {
        let verify = EventKind::Verified {
            accepted: true,
            note: String::new(),
        };
        assert!(may_record(Role::Inspector, Relation::Agency, &verify));
        assert!(!may_record(Role::Inspector, Relation::None, &verify));
        assert!(!may_record(Role::Supervisor, Relation::Township, &verify));
        assert!(!may_record(Role::AgencyAdmin, Relation::Agency, &verify));
    }
}
