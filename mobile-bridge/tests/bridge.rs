//! The bridge's own tests: the SQLite store runs sync-core's conformance suite, edits survive a
//! restart, and photo intake reads EXIF, hashes and downscales as documented.
#![allow(clippy::unwrap_used)]

use mobile_bridge::records::{
    CheckResultRecord, ChecklistItemRecord, GradeRecord, HazardInput, HazardStateRecord, ItemState,
    VisitKindRecord, VisitPatch,
};
use mobile_bridge::store::{EnterpriseRow, LocalStore, SessionRow};
use mobile_bridge::{InspectionClient, photo};

// The store is blocking, so its futures are ready at once: sync-core's conformance macro runs
// each case with its minimal executor.
mod store_conformance {
    use super::*;

    /// A fresh store in its own directory (kept: the store must outlive the test body).
    fn fresh() -> LocalStore {
        let dir = tempfile::tempdir().unwrap().keep();
        LocalStore::open(&dir.join("conformance.db")).unwrap()
    }

    sync_core::store_conformance_tests!(blocking sync_core::store::block_on, fresh());
    sync_core::store_conformance_tests!(blocking delivery sync_core::store::block_on, fresh());
}

const AGENCY: &str = "0195a000-0000-7000-8000-000000000001";
const ENTERPRISE: &str = "0195a000-0000-7000-8000-000000000002";
const TOWNSHIP: &str = "0195a000-0000-7000-8000-000000000003";
const USER: &str = "0195a000-0000-7000-8000-000000000004";
const DEVICE: &str = "0195a000-0000-7000-8000-000000000005";

/// A general hazard: location, description, category, measure, deadline, responsible person.
fn general_hazard(
    [
        location,
        description,
        category,
        measure,
        deadline,
        responsible,
    ]: [&str; 6],
) -> HazardInput {
    HazardInput {
        location: location.into(),
        description: description.into(),
        category: category.into(),
        grade: GradeRecord::General,
        criterion: String::new(),
        measure: measure.into(),
        deadline: deadline.into(),
        responsible_person: responsible.into(),
        funds_yuan: None,
        emergency_plan: String::new(),
    }
}

/// A client with a session and an enterprise as a login would leave them, without a server.
fn offline_inspector(dir: &std::path::Path) -> std::sync::Arc<InspectionClient> {
    let client =
        InspectionClient::new(dir.display().to_string(), "http://127.0.0.1:9".into()).unwrap();
    let store = client.store();
    store
        .put_session(&SessionRow {
            server_url: "http://127.0.0.1:9".into(),
            username: "inspector".into(),
            user_id: USER.into(),
            role: "inspector".into(),
            org_id: AGENCY.into(),
            display_name: "检查员".into(),
            device_id: DEVICE.into(),
            actor_id: "0a0b0c0d0e0f10111213141516171819".into(),
            access_token: Some("t".into()),
            access_expires_at: Some("2000-01-01T00:00:00Z".into()),
            refresh_token: Some("r".into()),
        })
        .unwrap();
    store
        .put_enterprises(&[EnterpriseRow {
            id: ENTERPRISE.into(),
            name: "宏达机械厂".into(),
            uscc: "91330100MA2AAAAA1X".into(),
            address: "工业路 8 号".into(),
            township_id: TOWNSHIP.into(),
            industry: "机械".into(),
            park: None,
        }])
        .unwrap();
    client
}

#[test]
fn an_offline_edit_survives_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (visit, hazard) = {
        let client = offline_inspector(dir.path());
        let visit = client
            .start_visit(
                ENTERPRISE.into(),
                VisitKindRecord::Routine,
                "一号车间".into(),
            )
            .unwrap();
        client
            .set_checklist_item(
                visit.clone(),
                ChecklistItemRecord {
                    id: String::new(),
                    title: "配电箱门锁".into(),
                    result: CheckResultRecord::Fail,
                    note: "未上锁".into(),
                },
            )
            .unwrap();
        client
            .edit_visit(
                visit.clone(),
                VisitPatch {
                    notes: Some("现场有焊接作业".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        let hazard = client
            .add_hazard(
                visit.clone(),
                general_hazard([
                    "一号车间配电箱",
                    "配电箱未上锁，线路裸露",
                    "electrical",
                    "加锁并包扎线路",
                    "2026-03-20",
                    "王厂长",
                ]),
            )
            .unwrap();
        client.notify(hazard.clone()).unwrap();
        (visit, hazard)
        // The client is dropped here, as when the app is killed after the calls returned.
    };
    let client = offline_inspector(dir.path());
    let v = client.get_visit(visit.clone()).unwrap();
    assert_eq!(v.place, "一号车间");
    assert_eq!(v.notes, "现场有焊接作业");
    assert_eq!(v.checklist.len(), 1);
    let h = client.get_hazard(hazard.clone()).unwrap();
    assert_eq!(h.description, "配电箱未上锁，线路裸露");
    assert_eq!(h.state, HazardStateRecord::Notified);
    assert_eq!(
        client.item_state(hazard.clone()).unwrap(),
        ItemState::Pending
    );
    let open = client.open_hazards(Some(ENTERPRISE.into())).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, hazard);
    assert_eq!(open[0].sync_state, ItemState::Pending);
}

#[test]
fn a_manager_only_edit_is_refused_before_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let client = offline_inspector(dir.path());
    let visit = client
        .start_visit(ENTERPRISE.into(), VisitKindRecord::Routine, "仓库".into())
        .unwrap();
    let hazard = client
        .add_hazard(
            visit,
            general_hazard(["仓库", "通道堵塞", "fire", "清理通道", "2026-03-20", "李"]),
        )
        .unwrap();
    // Only the enterprise submits its rectification.
    let err = client
        .submit_rectification(hazard.clone(), "已清理".into(), vec![])
        .unwrap_err();
    assert!(
        matches!(err, mobile_bridge::BridgeError::Refused { .. }),
        "{err}"
    );
    assert!(client.get_hazard(hazard).unwrap().events.is_empty());
}

/// A JPEG of `w`×`h` with an EXIF block holding capture time and GPS.
pub fn jpeg_with_exif(w: u32, h: u32, lat: f64, lon: f64) -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value};
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&img)
        .unwrap();
    let dms = |v: f64| {
        let v = v.abs();
        let d = v.trunc();
        let m = ((v - d) * 60.0).trunc();
        let s = ((v - d) * 60.0 - m) * 60.0;
        vec![
            Rational {
                num: d as u32,
                denom: 1,
            },
            Rational {
                num: m as u32,
                denom: 1,
            },
            Rational {
                num: (s * 10_000.0).round() as u32,
                denom: 10_000,
            },
        ]
    };
    let fields = [
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"2026:03:10 10:15:00".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![if lat < 0.0 {
                b"S".to_vec()
            } else {
                b"N".to_vec()
            }]),
        },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(dms(lat)),
        },
        Field {
            tag: Tag::GPSLongitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![if lon < 0.0 {
                b"W".to_vec()
            } else {
                b"E".to_vec()
            }]),
        },
        Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(dms(lon)),
        },
    ];
    let mut w = exif::experimental::Writer::new();
    for f in &fields {
        w.push_field(f);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    w.write(&mut tiff, false).unwrap();
    let tiff = tiff.into_inner();
    // APP1 "Exif\0\0" + TIFF, right after SOI.
    let len = u16::try_from(2 + 6 + tiff.len()).unwrap();
    let mut out = Vec::with_capacity(jpeg.len() + tiff.len() + 10);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn a_12_megapixel_photo_is_hashed_downscaled_and_keeps_its_gps() {
    let original = jpeg_with_exif(4000, 3000, 30.274_085, 120.155_070);
    let p = photo::prepare(&original, photo::DEFAULT_MAX_EDGE).unwrap();
    assert_eq!(
        p.sha256,
        photo::sha256_hex(&p.bytes),
        "the record names the uploaded bytes"
    );
    assert_eq!(p.original_sha256, photo::sha256_hex(&original));
    assert_eq!(p.original_size, original.len() as u64);
    // Decoded at half scale through the DCT: 2000 is within 1/16 of the 2048 asked for.
    assert_eq!((p.width, p.height), (2000, 1500));
    assert!(p.bytes.len() < original.len());
    let gps = p.gps.expect("GPS read from EXIF");
    assert!((gps.lat - 30.274_085).abs() < 1e-5, "{gps:?}");
    assert!((gps.lon - 120.155_070).abs() < 1e-5, "{gps:?}");
    // 10:15 in Beijing is 02:15 UTC.
    let expected: jiff::Timestamp = "2026-03-10T02:15:00Z".parse().unwrap();
    assert_eq!(p.captured_at, Some(expected.as_millisecond()));
    // The prepared JPEG decodes and has no EXIF left.
    let back = image::load_from_memory(&p.bytes).unwrap();
    assert_eq!(back.width().max(back.height()), 2000);
    assert_eq!(photo::read_exif(&p.bytes), (None, None));
}

#[test]
fn attaching_a_photo_queues_the_prepared_file_and_references_it_with_the_originals_hash() {
    let dir = tempfile::tempdir().unwrap();
    let client = offline_inspector(dir.path());
    let visit = client
        .start_visit(ENTERPRISE.into(), VisitKindRecord::Routine, "车间".into())
        .unwrap();
    let hazard = client
        .add_hazard(
            visit,
            general_hazard([
                "车间",
                "护栏缺失",
                "machinery",
                "加装护栏",
                "2026-03-20",
                "张",
            ]),
        )
        .unwrap();
    client.set_max_photo_edge(512);
    let path = dir.path().join("pick.jpg");
    let source = jpeg_with_exif(1200, 900, 31.0, 121.5);
    std::fs::write(&path, &source).unwrap();
    let rec = client
        .attach_photo(hazard.clone(), path.display().to_string())
        .unwrap();
    let stored = std::fs::read(rec.local_path.as_ref().unwrap()).unwrap();
    assert_eq!(photo::sha256_hex(&stored), rec.sha256);
    assert_eq!(rec.size, stored.len() as u64);
    assert_eq!(client.pending_photos().unwrap(), 1);
    // Downscaled to 512 px: the uploaded copy differs from the original, whose hash the record
    // keeps.
    let original = photo::sha256_hex(&source);
    assert_eq!(rec.original_sha256.as_deref(), Some(original.as_str()));
    assert_ne!(rec.sha256, original);
    // The document carries it (what syncs to the server), not only the local store.
    let h = client.get_hazard(hazard).unwrap();
    assert_eq!(h.photos.len(), 1);
    assert_eq!(h.photos[0].sha256, rec.sha256);
    assert_eq!(
        h.photos[0].original_sha256.as_deref(),
        Some(original.as_str())
    );
    let row = client.store().photo(&rec.sha256).unwrap().unwrap();
    assert_eq!(row.original_sha256, original);
}

/// A file the gallery hands over that is not what it claims: each is refused from its header or
/// its structure before a decoder could spend memory on it, with a reason an app can show.
#[test]
fn hostile_photos_are_refused_before_decoding() {
    // A JPEG whose frame header claims 60000x60000.
    let mut giant = vec![0xFF, 0xD8];
    giant.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0xEA, 0x60, 0xEA, 0x60, 0x03]);
    giant.extend_from_slice(&[0u8; 12]);
    giant.extend_from_slice(&[0xFF, 0xD9]);
    // A PNG bomb: 30000x30000 declared in IHDR.
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    bomb.extend_from_slice(&[0, 0, 0, 13]);
    bomb.extend_from_slice(b"IHDR");
    bomb.extend_from_slice(&30_000u32.to_be_bytes());
    bomb.extend_from_slice(&30_000u32.to_be_bytes());
    bomb.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    // A real photo cut short half way.
    let whole = jpeg_with_exif(800, 600, 30.0, 120.0);
    let cut = whole[..whole.len() / 2].to_vec();
    // An HTML page named .jpg.
    let html = b"<!DOCTYPE html><html><body>not a photo</body></html>".to_vec();
    for (name, bytes, code) in [
        ("60000x60000 JPEG", giant, "超过上限"),
        ("PNG bomb", bomb, "超过上限"),
        ("truncated JPEG", cut, "不完整"),
        ("HTML", html, "html"),
    ] {
        let started = std::time::Instant::now();
        let err = photo::prepare(&bytes, photo::DEFAULT_MAX_EDGE).expect_err(name);
        let text = err.to_string();
        assert!(text.contains(code), "{name}: {text}");
        assert!(
            text.chars().next().is_some_and(|c| !c.is_ascii()),
            "{name}: Chinese first: {text}"
        );
        // Generous: refusing reads a header; decoding any of these would take seconds.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{name}"
        );
    }
}

/// A JPEG with an archive appended (a polyglot): the image is accepted, and what is uploaded is
/// the re-encoded picture alone.
#[test]
fn a_jpeg_with_an_archive_appended_is_re_encoded_without_it() {
    let mut polyglot = jpeg_with_exif(800, 600, 30.0, 120.0);
    polyglot.extend_from_slice(b"PK\x03\x04");
    polyglot.extend_from_slice(&[0x42; 4096]);
    let p = photo::prepare(&polyglot, photo::DEFAULT_MAX_EDGE).unwrap();
    assert!(!p.bytes.windows(4).any(|w| w == b"PK\x03\x04"));
    assert!(p.bytes.ends_with(&[0xFF, 0xD9]));
    assert_eq!((p.width, p.height), (800, 600));
}

/// A signature pad's PNG: black strokes on a transparent background. After ingest the strokes
/// are dark and the background is white (not a black box).
#[test]
fn a_transparent_signature_comes_out_dark_strokes_on_white() {
    let mut pad = image::RgbaImage::new(400, 200);
    for x in 50..350 {
        for y in 95..105 {
            pad.put_pixel(x, y, image::Rgba([0, 0, 0, 255]));
        }
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(pad)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let p = photo::prepare(&png, photo::DEFAULT_MAX_EDGE).unwrap();
    let back = image::load_from_memory(&p.bytes).unwrap().into_rgb8();
    let corner = back.get_pixel(5, 5);
    let stroke = back.get_pixel(200, 100);
    assert!(corner.0.iter().all(|&c| c > 240), "background {corner:?}");
    assert!(stroke.0.iter().all(|&c| c < 40), "stroke {stroke:?}");
}

/// An EXIF block that does not parse is not dropped silently: the photo is kept and its record
/// says its metadata could not be read.
#[test]
fn unreadable_exif_is_recorded_not_dropped_silently() {
    let good = jpeg_with_exif(320, 240, 30.0, 120.0);
    assert!(!photo::prepare(&good, 2048).unwrap().exif_unreadable);
    // The same photo with its TIFF header damaged (byte order mark "XX").
    let at = good
        .windows(6)
        .position(|w| w == b"Exif\0\0")
        .expect("an EXIF block")
        + 6;
    let mut broken = good.clone();
    broken[at] = b'X';
    broken[at + 1] = b'X';
    let p = photo::prepare(&broken, 2048).unwrap();
    assert!(p.exif_unreadable);
    assert_eq!((p.captured_at, p.gps), (None, None));
    // A photo without EXIF at all is not flagged.
    let mut plain = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::new(64, 48))
        .write_to(
            &mut std::io::Cursor::new(&mut plain),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    assert!(!photo::prepare(&plain, 2048).unwrap().exif_unreadable);
}

/// Asking for a visit with a hazard's id (or the reverse) is the caller's mistake, named as
/// such, not a storage failure.
#[test]
fn a_visit_asked_for_with_a_hazards_id_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let client = offline_inspector(dir.path());
    let visit = client
        .start_visit(
            ENTERPRISE.into(),
            VisitKindRecord::Routine,
            "一号车间".into(),
        )
        .unwrap();
    let hazard = client
        .add_hazard(
            visit.clone(),
            general_hazard([
                "配电房",
                "配电柜未上锁",
                "electrical",
                "加锁",
                "2030-06-30",
                "",
            ]),
        )
        .unwrap();
    match client.get_visit(hazard.clone()) {
        Err(mobile_bridge::BridgeError::InvalidInput { field, detail }) => {
            assert_eq!(field, "visit_id");
            assert!(detail.starts_with("此编号是隐患"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.get_hazard(visit.clone()),
        Err(mobile_bridge::BridgeError::InvalidInput { field, .. }) if field == "hazard_id"
    ));
    // The visit list says what an app shows, not only ids.
    let list = client.list_visits(None).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id.as_str(), list[0].place.as_str(), list[0].hazards),
        (visit.as_str(), "一号车间", 1)
    );
    assert_eq!(list[0].item_state, ItemState::Pending);
    // The categories an app offers are the ones the rules accept.
    let categories = mobile_bridge::records::hazard_categories();
    assert!(
        categories
            .iter()
            .any(|c| c.code == "electrical" && c.name_zh == "电气安全")
    );
    for c in &categories {
        assert!(
            sync_core::domain::parse_category(&c.code).is_ok(),
            "{}",
            c.code
        );
    }
}

/// A hazard list shows what an app needs without opening each hazard: description, overdue,
/// photo count, extension, supervision, times. A store of the format before is filled in when
/// it is opened.
#[test]
fn hazard_summaries_carry_what_a_list_shows_and_old_stores_are_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let client = offline_inspector(dir.path());
    let visit = client
        .start_visit(ENTERPRISE.into(), VisitKindRecord::Routine, "仓库".into())
        .unwrap();
    // Due in March 2026: long past on the phone's clock.
    let hazard = client
        .add_hazard(
            visit,
            general_hazard(["仓库", "通道堵塞", "fire", "清理通道", "2026-03-20", "李"]),
        )
        .unwrap();
    let check = |client: &InspectionClient| {
        let list = client.open_hazards(None).unwrap();
        let h = list.iter().find(|h| h.id == hazard).unwrap();
        assert_eq!(h.description, "通道堵塞");
        assert!(h.overdue, "open and past its deadline");
        assert!(
            client.get_hazard(hazard.clone()).unwrap().overdue,
            "the record says what the summary says"
        );
        assert_eq!(h.photo_count, 0);
        assert!(h.created_at > 0);
        assert_eq!(
            (
                h.pending_extension_until.as_deref(),
                h.under_supervision,
                h.reported_at
            ),
            (None, false, None)
        );
    };
    check(&client);
    let later = client
        .add_hazard(
            client.get_hazard(hazard.clone()).unwrap().visit_id,
            general_hazard(["仓库", "灭火器过期", "fire", "更换", "2099-12-31", "李"]),
        )
        .unwrap();
    assert!(!client.get_hazard(later).unwrap().overdue, "due in 2099");
    drop(client);
    // The format before, as a crash after adding the column but before recording the new
    // format would leave it: no summary detail, format 3.
    {
        let conn = rusqlite::Connection::open(dir.path().join("inspect.db")).unwrap();
        conn.execute_batch("UPDATE docs SET detail = NULL; PRAGMA user_version = 3;")
            .unwrap();
    }
    let reopened = InspectionClient::new(
        dir.path().display().to_string(),
        "http://127.0.0.1:9".into(),
    )
    .unwrap();
    check(&reopened);
}
