//! Small scenarios the end-to-end tests share: an inspector's phone records a visit with a
//! hazard offline, events are added to it, the API is asked for its state.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use sync_core::doc::visit::VisitKind;
use sync_core::doc::{DocKind, HazardDoc, Header, VisitDoc};
use sync_core::domain::{Deadline, Grade};
use sync_core::edit;
use sync_core::ids::{AgencyId, EnterpriseId, EventId, HazardId, TownshipId, UserId, VisitId};
use sync_core::rectification::EventKind;

use crate::{Phone, Seed, TestApp};

/// The time the scenarios record at: 2026-03-10.
pub const T: i64 = 1_773_108_000_000; // 2026-03-10

/// The header of a document of the seed's enterprise, agency and township, created by
/// `phone`'s user at [`T`].
pub fn header(seed: &Seed, kind: DocKind, id: uuid::Uuid, phone: &Phone) -> Header {
    header_by(seed, kind, id, phone.author.user)
}

/// [`header`] for a document created by `created_by`.
pub fn header_by(seed: &Seed, kind: DocKind, id: uuid::Uuid, created_by: UserId) -> Header {
    Header {
        kind,
        id,
        schema: sync_core::doc::SCHEMA_VERSION,
        enterprise: EnterpriseId::parse(&seed.enterprise).unwrap(),
        agency: AgencyId::parse(&seed.agency).unwrap(),
        township: TownshipId::parse(&seed.township).unwrap(),
        created_by,
        created_at: T,
    }
}

/// The inspector records a visit with a hazard on the phone (offline: nothing is sent).
pub fn record_visit(
    seed: &Seed,
    phone: &mut Phone,
    grade: Grade,
    deadline: &str,
) -> (VisitId, HazardId) {
    let vid = VisitId::new_random();
    let mut visit = VisitDoc::new(
        &header(seed, DocKind::Visit, *vid.as_uuid(), phone),
        VisitKind::Routine,
        T,
    );
    visit.place = "一号车间".into();
    let v = edit::new_visit(&visit, &phone.author, T).unwrap();
    phone.hold(DocKind::Visit, *vid.as_uuid(), v.doc);

    let hid = HazardId::new_random();
    let mut hazard = HazardDoc::new(
        &header(seed, DocKind::Hazard, *hid.as_uuid(), phone),
        vid,
        grade,
        Deadline::parse(deadline).unwrap(),
    );
    hazard.location = "冲压车间".into();
    hazard.description = "冲床光电保护装置失效".into();
    hazard.category = "machinery".into();
    hazard.criterion = "工贸企业重大事故隐患判定标准 第十条".into();
    hazard.measure = "立即停用并修复光电保护装置".into();
    hazard.responsible_person = "王厂长".into();
    hazard.funds_yuan = Some(30_000);
    hazard.emergency_plan = "停用冲床，设置警戒区，专人监护".into();
    let h = edit::new_hazard(&hazard, &phone.author, T).unwrap();
    let h = edit::record_event(
        &h.doc,
        &phone.author,
        EventId::new_random(),
        T,
        EventKind::Notified,
    )
    .unwrap();
    phone.hold(DocKind::Hazard, *hid.as_uuid(), h.doc);
    (vid, hid)
}

pub fn event(phone: &mut Phone, hid: HazardId, kind: EventKind) {
    let d = &phone.replica.docs[hid.as_uuid()].doc;
    let e = edit::record_event(d, &phone.author, EventId::new_random(), T, kind).unwrap();
    phone.replica.docs.get_mut(hid.as_uuid()).unwrap().doc = e.doc;
}

pub async fn hazard_state(app: &TestApp, token: &str, hid: HazardId) -> String {
    let (status, body) = app.get(token, &format!("/api/v1/hazards/{hid}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["hazard"]["state"].as_str().unwrap().to_owned()
}
