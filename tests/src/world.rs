//! A populated world for the web pages' tests (Rust and browser): the seeded organisations plus
//! visits and hazards recorded on phones and synced, with a photo, a signature, a checklist, and
//! hazards in several states (one overdue, one closed, one submitted), and one visit of another
//! township that nobody here may see.

use serde_json::{Value, json};
use sync_core::doc::visit::{CheckResult, ChecklistItem, Signature, VisitKind};
use sync_core::doc::{DocKind, HazardDoc, Header, VisitDoc};
use sync_core::domain::{Deadline, Grade, PhotoRef};
use sync_core::edit;
use sync_core::ids::{AgencyId, EnterpriseId, EventId, HazardId, TownshipId, VisitId};
use sync_core::rectification::EventKind;

use crate::{Phone, Seed, TestApp, users};

/// 2026-02-10 10:00 in China, when the hazards were found.
pub const FOUND: i64 = 1_770_688_800_000;
/// Days between finding and closing the closed hazard (closed at [`crate::NOW`]).
pub const DAYS_TO_CLOSE: f64 = 28.0;

/// Ids of what [`populate`] made.
#[derive(Debug, Clone)]
pub struct World {
    pub seed: Seed,
    pub enterprise_name: String,
    pub visit: String,
    /// Major, notified, with a photo; the browser walk submits, verifies and closes it.
    pub major: String,
    /// General, deadline 2026-03-05: overdue on 2026-03-10.
    pub overdue: String,
    /// General, closed 28 days after it was found.
    pub closed: String,
    /// General, rectification submitted, awaiting verification.
    pub submitted: String,
    /// The hazard descriptions of `visit`, in order.
    pub descriptions: Vec<String>,
    /// SHA-256 of the photo of `major` (the uploaded copy).
    pub photo: String,
    /// SHA-256 of the camera original that photo was prepared from, as a phone records it.
    pub photo_original: String,
    pub other_visit: String,
    pub other_hazard: String,
}

impl World {
    /// The world as one JSON object (the seed binary prints it).
    pub fn to_json(&self, base: &str) -> Value {
        json!({
            "base": base,
            "password": crate::PASSWORD,
            "township": self.seed.township,
            "other_township": self.seed.other_township,
            "agency": self.seed.agency,
            "enterprise": self.seed.enterprise,
            "enterprise_name": self.enterprise_name,
            "other_enterprise": self.seed.other_enterprise,
            "visit": self.visit,
            "major": self.major,
            "overdue": self.overdue,
            "closed": self.closed,
            "submitted": self.submitted,
            "descriptions": self.descriptions,
            "photo": self.photo,
            "photo_original": self.photo_original,
            "other_visit": self.other_visit,
            "other_hazard": self.other_hazard,
        })
    }
}

/// A small real JPEG (a colour gradient), so photo processing and thumbnails work on it.
pub fn tiny_jpeg(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, seed.wrapping_mul(37)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Uploads a photo in one chunk with `token`; returns its reference.
pub async fn upload_photo(app: &TestApp, token: &str, bytes: &[u8], added_by: &str) -> PhotoRef {
    let sha = sha256_hex(bytes);
    let r = app
        .client
        .put(format!("{}/api/v1/photos/{sha}?offset=0", app.base))
        .bearer_auth(token)
        .header("x-photo-size", bytes.len().to_string())
        .header("content-type", "image/jpeg")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload");
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(
        status.is_success() && body["complete"] == true,
        "photo upload: {status} {body}"
    );
    PhotoRef {
        sha256: sha,
        size: bytes.len() as u64,
        media_type: "image/jpeg".into(),
        captured_at: Some(FOUND),
        gps: None,
        added_by: added_by.to_owned(),
        original_sha256: None,
        exif_unreadable: None,
    }
}

/// Posts a web action; panics unless it is accepted.
pub async fn act(app: &TestApp, token: &str, hazard: &str, body: Value) {
    let r = app
        .client
        .post(format!("{}/api/v1/hazards/{hazard}/events", app.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("action");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "{body}: {status} {text}");
}

struct Place<'a> {
    enterprise: &'a str,
    agency: &'a str,
    township: &'a str,
}

fn header(p: &Place<'_>, kind: DocKind, id: uuid::Uuid, phone: &Phone) -> Header {
    Header {
        kind,
        id,
        schema: sync_core::doc::SCHEMA_VERSION,
        enterprise: EnterpriseId::parse(p.enterprise).expect("enterprise id"),
        agency: AgencyId::parse(p.agency).expect("agency id"),
        township: TownshipId::parse(p.township).expect("township id"),
        created_by: phone.author.user,
        created_at: FOUND,
    }
}

struct NewHazard<'a> {
    grade: Grade,
    deadline: &'a str,
    location: &'a str,
    description: &'a str,
    criterion: &'a str,
    measure: &'a str,
    photos: Vec<PhotoRef>,
}

fn add_hazard(phone: &mut Phone, p: &Place<'_>, visit: VisitId, n: NewHazard<'_>) -> HazardId {
    let hid = HazardId::new_random();
    let mut doc = HazardDoc::new(
        &header(p, DocKind::Hazard, *hid.as_uuid(), phone),
        visit,
        n.grade,
        Deadline::parse(n.deadline).expect("deadline"),
    );
    doc.location = n.location.into();
    doc.description = n.description.into();
    doc.category = "machinery".into();
    doc.criterion = n.criterion.into();
    doc.measure = n.measure.into();
    doc.responsible_person = "王厂长".into();
    if n.grade == Grade::Major {
        doc.funds_yuan = Some(50_000);
        doc.emergency_plan = "停用冲床，设置警戒区，专人监护".into();
    }
    doc.photos = n.photos;
    let made = edit::new_hazard(&doc, &phone.author, FOUND).expect("new hazard");
    let notified = edit::record_event(
        &made.doc,
        &phone.author,
        EventId::new_random(),
        FOUND,
        EventKind::Notified,
    )
    .expect("notified");
    phone.hold(DocKind::Hazard, *hid.as_uuid(), notified.doc);
    hid
}

fn add_visit(
    phone: &mut Phone,
    p: &Place<'_>,
    place: &str,
    signature: Option<Signature>,
) -> VisitId {
    add_visit_at(phone, p, place, signature, FOUND)
}

fn add_visit_at(
    phone: &mut Phone,
    p: &Place<'_>,
    place: &str,
    signature: Option<Signature>,
    started_at: i64,
) -> VisitId {
    let vid = VisitId::new_random();
    let mut visit = VisitDoc::new(
        &header(p, DocKind::Visit, *vid.as_uuid(), phone),
        VisitKind::Routine,
        started_at,
    );
    visit.place = place.into();
    visit.checklist = vec![
        ChecklistItem {
            id: "c1".into(),
            title: "安全生产责任制是否建立".into(),
            result: CheckResult::Pass,
            note: String::new(),
        },
        ChecklistItem {
            id: "c2".into(),
            title: "冲压设备安全防护装置是否有效".into(),
            result: CheckResult::Fail,
            note: "光电保护失效".into(),
        },
        ChecklistItem {
            id: "c3".into(),
            title: "有限空间作业审批".into(),
            result: CheckResult::NotApplicable,
            note: String::new(),
        },
    ];
    visit.signature = signature;
    let v = edit::new_visit(&visit, &phone.author, FOUND).expect("new visit");
    phone.hold(DocKind::Visit, *vid.as_uuid(), v.doc);
    vid
}

/// Seeds the organisations and users, then records and syncs the visits and hazards.
pub async fn populate(app: &TestApp) -> World {
    let seed = app.seed().await;
    let mut inspector = app.phone(users::INSPECTOR).await;
    let user = inspector.session.user_id.clone();
    let mut photo = upload_photo(app, &inspector.session.token, &tiny_jpeg(1), &user).await;
    // As the phone bridge does: the upload is a downscaled copy of a camera original it keeps.
    let photo_original = sha256_hex(b"camera original of the major hazard");
    photo.original_sha256 = Some(photo_original.clone());
    let signature_image = upload_photo(app, &inspector.session.token, &tiny_jpeg(2), &user).await;
    let here = Place {
        enterprise: &seed.enterprise,
        agency: &seed.agency,
        township: &seed.township,
    };
    let visit = add_visit(
        &mut inspector,
        &here,
        "一号冲压车间",
        Some(Signature {
            signer_name: "王厂长".into(),
            image: signature_image,
            signed_at: FOUND,
        }),
    );
    let descriptions = [
        "冲床光电保护装置失效",
        "配电箱未上锁且无警示标识",
        "灭火器压力不足",
        "车间通道堆放物料",
    ];
    let major = add_hazard(
        &mut inspector,
        &here,
        visit,
        NewHazard {
            grade: Grade::Major,
            deadline: "2026-03-20",
            location: "冲压车间 3 号冲床",
            description: descriptions[0],
            criterion: "工贸企业重大事故隐患判定标准 第十条",
            measure: "立即停用并修复光电保护装置",
            photos: vec![photo.clone()],
        },
    );
    let general = |d: &'static str, deadline: &'static str, loc: &'static str| NewHazard {
        grade: Grade::General,
        deadline,
        location: loc,
        description: d,
        criterion: "GB 50058",
        measure: "按规范整改",
        photos: vec![],
    };
    let overdue = add_hazard(
        &mut inspector,
        &here,
        visit,
        general(descriptions[1], "2026-03-05", "配电室"),
    );
    let closed = add_hazard(
        &mut inspector,
        &here,
        visit,
        general(descriptions[2], "2026-03-08", "仓库"),
    );
    let submitted = add_hazard(
        &mut inspector,
        &here,
        visit,
        general(descriptions[3], "2026-03-25", "二号车间"),
    );
    let resp = app.sync(&mut inspector).await;
    assert!(resp.refused.is_empty(), "{:?}", resp.refused);

    // The enterprise and the inspector act from the web, through the same policy.
    let manager = app.login(users::MANAGER).await;
    let web_inspector = app.login(users::INSPECTOR).await;
    for h in [closed, submitted] {
        act(
            app,
            &manager.token,
            &h.to_string(),
            json!({"kind": "rectification_submitted", "note": "已整改完毕", "photos": []}),
        )
        .await;
    }
    act(
        app,
        &web_inspector.token,
        &closed.to_string(),
        json!({"kind": "verified", "accepted": true, "note": "复查合格"}),
    )
    .await;
    act(
        app,
        &web_inspector.token,
        &closed.to_string(),
        json!({"kind": "closed", "note": "销号"}),
    )
    .await;

    // Another township's visit.
    let mut other = app.phone(users::OTHER_INSPECTOR).await;
    let there = Place {
        enterprise: &seed.other_enterprise,
        agency: &seed.other_agency,
        township: &seed.other_township,
    };
    let other_visit = add_visit(&mut other, &there, "河西五金厂车间", None);
    let other_hazard = add_hazard(
        &mut other,
        &there,
        other_visit,
        NewHazard {
            grade: Grade::Major,
            deadline: "2026-03-01",
            location: "河西",
            description: "粉尘涉爆除尘系统未设置泄爆装置",
            criterion: "粉尘防爆",
            measure: "加装泄爆装置",
            photos: vec![],
        },
    );
    let resp = app.sync(&mut other).await;
    assert!(resp.refused.is_empty(), "{:?}", resp.refused);

    World {
        seed,
        enterprise_name: "宏达机械厂".into(),
        visit: visit.to_string(),
        major: major.to_string(),
        overdue: overdue.to_string(),
        closed: closed.to_string(),
        submitted: submitted.to_string(),
        descriptions: descriptions.iter().map(|d| (*d).to_owned()).collect(),
        photo: photo.sha256,
        photo_original,
        other_visit: other_visit.to_string(),
        other_hazard: other_hazard.to_string(),
    }
}

/// Records and syncs one visit of the seeded enterprise per start time (milliseconds), by the
/// inspector; returns their ids in the same order.
pub async fn visits_started_at(app: &TestApp, seed: &Seed, started: &[i64]) -> Vec<String> {
    let mut inspector = app.phone(users::INSPECTOR).await;
    let here = Place {
        enterprise: &seed.enterprise,
        agency: &seed.agency,
        township: &seed.township,
    };
    let ids: Vec<VisitId> = started
        .iter()
        .map(|&at| add_visit_at(&mut inspector, &here, "仓库", None, at))
        .collect();
    let resp = app.sync(&mut inspector).await;
    assert!(resp.refused.is_empty(), "{:?}", resp.refused);
    ids.iter().map(ToString::to_string).collect()
}

/// Holds a new visit of the seeded enterprise on `phone`, not synced yet; returns its id.
pub fn record_visit(phone: &mut Phone, seed: &Seed, started_at: i64) -> String {
    let here = Place {
        enterprise: &seed.enterprise,
        agency: &seed.agency,
        township: &seed.township,
    };
    add_visit_at(phone, &here, "仓库", None, started_at).to_string()
}

/// A signed visit of the seeded enterprise whose one hazard has two photos: one uploaded, one
/// the phone has not uploaded yet. Returns the visit id and the missing photo's hash.
pub async fn visit_with_a_photo_not_uploaded(app: &TestApp, seed: &Seed) -> (String, String) {
    let mut inspector = app.phone(users::INSPECTOR).await;
    let user = inspector.session.user_id.clone();
    let uploaded = upload_photo(app, &inspector.session.token, &tiny_jpeg(3), &user).await;
    let missing_bytes = tiny_jpeg(4);
    let missing = PhotoRef {
        sha256: sha256_hex(&missing_bytes),
        size: missing_bytes.len() as u64,
        media_type: "image/jpeg".into(),
        captured_at: Some(FOUND),
        gps: None,
        added_by: user.clone(),
        original_sha256: None,
        exif_unreadable: None,
    };
    let signature_image = upload_photo(app, &inspector.session.token, &tiny_jpeg(5), &user).await;
    let here = Place {
        enterprise: &seed.enterprise,
        agency: &seed.agency,
        township: &seed.township,
    };
    let visit = add_visit(
        &mut inspector,
        &here,
        "二号车间",
        Some(Signature {
            signer_name: "李主任".into(),
            image: signature_image,
            signed_at: FOUND,
        }),
    );
    add_hazard(
        &mut inspector,
        &here,
        visit,
        NewHazard {
            grade: Grade::General,
            deadline: "2026-03-30",
            location: "二号车间东侧",
            description: "砂轮机防护罩缺失",
            criterion: "GB 4674",
            measure: "加装防护罩",
            photos: vec![uploaded, missing.clone()],
        },
    );
    let resp = app.sync(&mut inspector).await;
    assert!(resp.refused.is_empty(), "{:?}", resp.refused);
    (visit.to_string(), missing.sha256)
}
