//! A small world for tests: one township, two agencies, one enterprise under contract with the
//! first agency, and a user of every role with an enrolled device.
#![allow(clippy::unwrap_used, dead_code)]

use sync_core::automerge::{ActorId, Automerge};
use sync_core::doc::visit::VisitKind;
use sync_core::doc::{DocKind, HazardDoc, Header, VisitDoc};
use sync_core::domain::{Author, Deadline, Grade, Role};
use sync_core::ids::*;

pub struct World {
    pub township: TownshipId,
    pub agency: AgencyId,
    pub other_agency: AgencyId,
    pub enterprise: EnterpriseId,
    pub inspector: Author,
    pub inspector2: Author,
    pub inspector3: Author,
    pub foreign_inspector: Author,
    pub manager: Author,
    pub supervisor: Author,
    pub other_supervisor: Author,
}

fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

fn author(n: u128, role: Role, org: uuid::Uuid) -> Author {
    Author {
        user: UserId::from_uuid(uuid(0x1000 + n)),
        role,
        org,
        device: DeviceId::from_uuid(uuid(0x2000 + n)),
        actors: vec![ActorId::from(uuid(0x3000 + n).as_bytes().to_vec())],
    }
}

impl World {
    pub fn new() -> Self {
        let township = TownshipId::from_uuid(uuid(1));
        let agency = AgencyId::from_uuid(uuid(2));
        let other_agency = AgencyId::from_uuid(uuid(3));
        let enterprise = EnterpriseId::from_uuid(uuid(4));
        Self {
            township,
            agency,
            other_agency,
            enterprise,
            inspector: author(1, Role::Inspector, *agency.as_uuid()),
            inspector2: author(2, Role::Inspector, *agency.as_uuid()),
            inspector3: author(3, Role::Inspector, *agency.as_uuid()),
            foreign_inspector: author(4, Role::Inspector, *other_agency.as_uuid()),
            manager: author(5, Role::EnterpriseManager, *enterprise.as_uuid()),
            supervisor: author(6, Role::Supervisor, *township.as_uuid()),
            other_supervisor: author(7, Role::Supervisor, uuid(99)),
        }
    }

    /// The enterprises each author may read.
    pub fn scope(&self, a: &Author) -> sync_core::engine::Reach {
        let ok = match a.role {
            Role::Inspector | Role::AgencyAdmin => a.org == *self.agency.as_uuid(),
            Role::EnterpriseManager => a.org == *self.enterprise.as_uuid(),
            Role::Supervisor => a.org == *self.township.as_uuid(),
        };
        if ok {
            [(self.enterprise, self.township)].into_iter().collect()
        } else {
            sync_core::engine::Reach::default()
        }
    }

    pub fn header(&self, kind: DocKind, id: uuid::Uuid, by: &Author) -> Header {
        Header {
            kind,
            id,
            schema: sync_core::doc::SCHEMA_VERSION,
            enterprise: self.enterprise,
            agency: self.agency,
            township: self.township,
            created_by: by.user,
            created_at: 1_760_000_000_000,
        }
    }

    /// Issues the notice of a hazard as the inspector.
    pub fn notify(&self, doc: &Automerge) -> (Automerge, Vec<u8>) {
        let e = sync_core::edit::notify(
            doc,
            &self.inspector,
            EventId::new_random(),
            1_760_000_050_000,
        )
        .expect("notify");
        (e.doc, e.change.expect("a change"))
    }

    pub fn visit(&self, id: VisitId) -> (VisitDoc, Automerge, Vec<u8>) {
        let h = self.header(DocKind::Visit, *id.as_uuid(), &self.inspector);
        let v = VisitDoc::new(&h, VisitKind::Routine, 1_760_000_000_000);
        let e = sync_core::edit::new_visit(&v, &self.inspector, 1_760_000_000_000)
            .expect("create visit");
        (v, e.doc, e.change.expect("a change"))
    }

    pub fn hazard(&self, id: HazardId, visit: VisitId, grade: Grade) -> (Automerge, Vec<u8>) {
        let h = self.header(DocKind::Hazard, *id.as_uuid(), &self.inspector);
        let mut doc = HazardDoc::new(
            &h,
            visit,
            grade,
            Deadline::parse("2026-03-01").expect("date"),
        );
        doc.location = "一号车间".into();
        doc.category = "electrical".into();
        doc.responsible_person = "李四".into();
        doc.measure = "加装漏电保护器".into();
        doc.funds_yuan = Some(5_000);
        doc.emergency_plan = "停用该配电箱，设置警示".into();
        let e = sync_core::edit::new_hazard(&doc, &self.inspector, 1_760_000_000_000)
            .expect("create hazard");
        (e.doc, e.change.expect("a change"))
    }
}
