//! Phones of the bridge tests: an `InspectionClient` logged in on a test server, a general
//! hazard's input, and an inspector's phone with a synced visit and hazard.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mobile_bridge::InspectionClient;
use mobile_bridge::records::{GradeRecord, HazardInput, VisitKindRecord};

use crate::{PASSWORD, TestApp, users};

/// A phone logged in as `user`, its store in `dir/name`.
pub fn phone(
    app: &TestApp,
    dir: &std::path::Path,
    name: &str,
    user: &str,
) -> Arc<InspectionClient> {
    let c = InspectionClient::new(dir.join(name).display().to_string(), app.base.clone()).unwrap();
    c.login(user.into(), PASSWORD.into(), name.into(), "android".into())
        .unwrap();
    c
}

pub fn hazard_input() -> HazardInput {
    HazardInput {
        location: "配电房".into(),
        description: "配电柜未上锁".into(),
        category: "electrical".into(),
        grade: GradeRecord::General,
        criterion: String::new(),
        measure: "加锁并张贴警示标识".into(),
        deadline: "2026-04-30".into(),
        responsible_person: "王师傅".into(),
        funds_yuan: None,
        emergency_plan: String::new(),
    }
}

/// An inspector's phone with a synced visit and hazard in the seeded enterprise.
pub fn inspector_with_hazard(
    app: &TestApp,
    dir: &std::path::Path,
    enterprise: &str,
) -> (Arc<InspectionClient>, String) {
    let a = phone(app, dir, "phone-a", users::INSPECTOR);
    a.sync_now().unwrap();
    let visit = a
        .start_visit(
            enterprise.into(),
            VisitKindRecord::Routine,
            "一号车间".into(),
        )
        .unwrap();
    let hazard = a.add_hazard(visit, hazard_input()).unwrap();
    assert!(a.sync_now().unwrap().refused.is_empty());
    (a, hazard)
}
