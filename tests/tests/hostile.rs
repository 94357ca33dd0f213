//! Attacks from clients that hold a valid account (issue #19): headers the server's records
//! contradict, references to what is another agency's, and connections that hold the server's
//! descriptors. Each test plays the attack, asserts the refusal, and that the server still
//! answers.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sync_core::doc::visit::VisitKind;
use sync_core::doc::{DocKind, HazardDoc, Header, VisitDoc};
use sync_core::domain::{Deadline, Grade};
use sync_core::edit;
use sync_core::ids::{AgencyId, EnterpriseId, HazardId, TownshipId, VisitId};
use sync_core::validate::RefusalCode;
use tests::scenario::{T, record_visit};
use tests::{Phone, TestApp, users};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A header naming these ids, created by `phone`'s user.
fn header_of(
    kind: DocKind,
    id: uuid::Uuid,
    phone: &Phone,
    enterprise: &str,
    agency: &str,
    township: &str,
) -> Header {
    Header {
        kind,
        id,
        schema: sync_core::doc::SCHEMA_VERSION,
        enterprise: EnterpriseId::parse(enterprise).unwrap(),
        agency: AgencyId::parse(agency).unwrap(),
        township: TownshipId::parse(township).unwrap(),
        created_by: phone.author.user,
        created_at: T,
    }
}

fn hold_visit(phone: &mut Phone, header: &Header) {
    let visit = VisitDoc::new(header, VisitKind::Routine, T);
    let v = edit::new_visit(&visit, &phone.author, T).unwrap();
    phone.hold(DocKind::Visit, header.id, v.doc);
}

fn hold_hazard(phone: &mut Phone, header: &Header, visit: VisitId) {
    let mut hazard = HazardDoc::new(
        header,
        visit,
        Grade::Major,
        Deadline::parse("2026-04-01").unwrap(),
    );
    hazard.location = "储罐区".into();
    hazard.description = "可燃气体报警器失效".into();
    let h = edit::new_hazard(&hazard, &phone.author, T).unwrap();
    phone.hold(DocKind::Hazard, header.id, h.doc);
}

/// The codes the server gave for document `id` in one sync answer.
fn codes(resp: &sync_core::protocol::SyncResponse, id: uuid::Uuid) -> Vec<RefusalCode> {
    resp.refused
        .iter()
        .filter(|r| r.id == id)
        .flat_map(|r| r.reasons.iter().map(|c| c.code))
        .collect()
}

/// #19 item 7: an inspector syncs a visit and a major hazard of an enterprise in scope whose
/// township does not exist (the real township's supervisor could neither supervise nor close
/// it). Both are refused as contradicting the enterprise's record, nothing of them is stored,
/// and the same documents with the registered township go through.
async fn a_made_up_township_in_a_new_document_is_refused(app: TestApp) {
    let seed = app.seed().await;
    let mut phone = app.phone(users::INSPECTOR).await;
    let made_up = TownshipId::new_random().to_string();
    for township in [made_up.as_str(), seed.other_township.as_str()] {
        let vid = VisitId::new_random();
        let hid = HazardId::new_random();
        let vh = header_of(
            DocKind::Visit,
            *vid.as_uuid(),
            &phone,
            &seed.enterprise,
            &seed.agency,
            township,
        );
        let hh = header_of(
            DocKind::Hazard,
            *hid.as_uuid(),
            &phone,
            &seed.enterprise,
            &seed.agency,
            township,
        );
        hold_visit(&mut phone, &vh);
        hold_hazard(&mut phone, &hh, vid);
        let resp = app.sync(&mut phone).await;
        assert_eq!(
            codes(&resp, *vid.as_uuid()),
            [RefusalCode::TownshipMismatch]
        );
        assert!(
            codes(&resp, *hid.as_uuid())
                .iter()
                .all(|c| matches!(c, RefusalCode::TownshipMismatch | RefusalCode::VisitUnknown)),
            "{resp:?}"
        );
        assert!(!codes(&resp, *hid.as_uuid()).is_empty());
        phone.replica.docs.remove(vid.as_uuid());
        phone.replica.docs.remove(hid.as_uuid());
        let (status, _) = app
            .get(&phone.session.token, &format!("/api/v1/hazards/{hid}"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing of it was stored");
    }
    let supervisor = app.login(users::SUPERVISOR).await.token;
    let (status, list) = app.get(&supervisor, "/api/v1/hazards").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");

    // The honest record goes through and reaches the real township's supervisor.
    let (_, hid) = record_visit(&seed, &mut phone, Grade::Major, "2026-04-01");
    assert!(app.sync(&mut phone).await.refused.is_empty());
    let (status, _) = app
        .get(&supervisor, &format!("/api/v1/hazards/{hid}"))
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// #19 item 8: a second agency serving the same enterprise attaches its hazard to the first
/// agency's visit (so that it would show in that visit's page, record and notice PDF); and an
/// inspector attaches a hazard to a visit of another enterprise of his own agency. Both are
/// refused; a hazard naming a visit the server has never seen is refused until the visit comes.
async fn a_hazard_cannot_be_attached_to_a_visit_that_is_not_its_own(app: TestApp) {
    let seed = app.seed().await;
    server::admin::create_contract(
        &app.state.db,
        app.clock.as_ref(),
        &seed.other_agency,
        &seed.enterprise,
        "2026-01-01".parse().unwrap(),
        "2026-12-31".parse().unwrap(),
        true,
    )
    .await
    .unwrap();
    let mut ours = app.phone(users::INSPECTOR).await;
    let (their_visit, _) = record_visit(&seed, &mut ours, Grade::General, "2026-04-01");
    assert!(app.sync(&mut ours).await.refused.is_empty());

    // Another agency, same enterprise, hazard on our visit.
    let mut other = app.phone(users::OTHER_INSPECTOR).await;
    let hid = HazardId::new_random();
    let hh = header_of(
        DocKind::Hazard,
        *hid.as_uuid(),
        &other,
        &seed.enterprise,
        &seed.other_agency,
        &seed.township,
    );
    hold_hazard(&mut other, &hh, their_visit);
    let resp = app.sync(&mut other).await;
    assert_eq!(codes(&resp, *hid.as_uuid()), [RefusalCode::VisitMismatch]);
    other.replica.docs.remove(hid.as_uuid());

    // Its own agency's visit of its other enterprise, hazard of this enterprise.
    let ovid = VisitId::new_random();
    let vh = header_of(
        DocKind::Visit,
        *ovid.as_uuid(),
        &other,
        &seed.other_enterprise,
        &seed.other_agency,
        &seed.other_township,
    );
    hold_visit(&mut other, &vh);
    assert!(app.sync(&mut other).await.refused.is_empty());
    let hid2 = HazardId::new_random();
    let hh2 = header_of(
        DocKind::Hazard,
        *hid2.as_uuid(),
        &other,
        &seed.enterprise,
        &seed.other_agency,
        &seed.township,
    );
    hold_hazard(&mut other, &hh2, ovid);
    let resp = app.sync(&mut other).await;
    assert_eq!(codes(&resp, *hid2.as_uuid()), [RefusalCode::VisitMismatch]);
    other.replica.docs.remove(hid2.as_uuid());

    // A visit the server has not seen: refused until the visit arrives, then accepted.
    let vid3 = VisitId::new_random();
    let hid3 = HazardId::new_random();
    let vh3 = header_of(
        DocKind::Visit,
        *vid3.as_uuid(),
        &other,
        &seed.enterprise,
        &seed.other_agency,
        &seed.township,
    );
    let hh3 = header_of(
        DocKind::Hazard,
        *hid3.as_uuid(),
        &other,
        &seed.enterprise,
        &seed.other_agency,
        &seed.township,
    );
    hold_hazard(&mut other, &hh3, vid3);
    let resp = app.sync(&mut other).await;
    assert_eq!(codes(&resp, *hid3.as_uuid()), [RefusalCode::VisitUnknown]);
    hold_visit(&mut other, &vh3);
    // The hazard is listed before its visit in the replica's request: the server takes visits
    // first.
    let resp = app.sync(&mut other).await;
    assert!(resp.refused.is_empty(), "{resp:?}");

    // Our visit's page lists only our hazard.
    let token = app.login(users::INSPECTOR).await.token;
    let (status, visit) = app
        .get(&token, &format!("/api/v1/visits/{their_visit}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{visit}");
    let text = visit.to_string();
    assert!(!text.contains(&hid.to_string()) && !text.contains(&hid2.to_string()));
}

/// A visit and a general hazard referencing `photo` on `phone`, of the given organisation.
fn hold_with_photo(
    phone: &mut Phone,
    enterprise: &str,
    agency: &str,
    township: &str,
    photo: sync_core::domain::PhotoRef,
) -> HazardId {
    let vid = VisitId::new_random();
    let vh = header_of(
        DocKind::Visit,
        *vid.as_uuid(),
        phone,
        enterprise,
        agency,
        township,
    );
    hold_visit(phone, &vh);
    let hid = HazardId::new_random();
    let hh = header_of(
        DocKind::Hazard,
        *hid.as_uuid(),
        phone,
        enterprise,
        agency,
        township,
    );
    let mut hazard = HazardDoc::new(
        &hh,
        vid,
        Grade::General,
        Deadline::parse("2026-04-01").unwrap(),
    );
    hazard.photos.push(photo);
    let h = edit::new_hazard(&hazard, &phone.author, T).unwrap();
    phone.hold(DocKind::Hazard, *hid.as_uuid(), h.doc);
    hid
}

async fn photo_answer(app: &TestApp, token: &str, path: &str) -> StatusCode {
    app.client
        .get(format!("{}/api/v1/photos/{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// #19 item 9: an agency references another agency's photo by its hash in its own hazard. The
/// reference is kept but shows the photo to nobody (not to the agency, not to its township),
/// the status route tells no their_manager that the photo exists, a reference in someone else's name
/// is refused, and the notice draws nothing. If the agency really holds the same file, sending
/// its bytes proves it and the reference then shows it.
async fn another_agencys_photo_hash_shows_nothing(app: TestApp) {
    let seed = app.seed().await;
    let mut ours = app.phone(users::INSPECTOR).await;
    let bytes = tests::world::tiny_jpeg(42);
    let photo = tests::world::upload_photo(
        &app,
        &ours.session.token,
        &bytes,
        &ours.author.user.to_string(),
    )
    .await;
    let sha = photo.sha256.clone();
    hold_with_photo(
        &mut ours,
        &seed.enterprise,
        &seed.agency,
        &seed.township,
        photo.clone(),
    );
    assert!(app.sync(&mut ours).await.refused.is_empty());
    let supervisor = app.login(users::SUPERVISOR).await.token;
    assert_eq!(photo_answer(&app, &supervisor, &sha).await, StatusCode::OK);

    // The other agency, in its own enterprise, in someone else's name: refused.
    let mut other = app.phone(users::OTHER_INSPECTOR).await;
    let honest = sync_core::domain::PhotoRef {
        added_by: other.author.user.to_string(),
        ..photo.clone()
    };
    let hid = hold_with_photo(
        &mut other,
        &seed.other_enterprise,
        &seed.other_agency,
        &seed.other_township,
        honest,
    );
    // A tampered app renames the one who added it (the app's own check is skipped).
    let victim = ours.author.user.to_string();
    let doc = &other.replica.docs[hid.as_uuid()].doc;
    let forged = edit::modify::<HazardDoc>(doc, &other.author.actors[0], T, |h| {
        h.photos[0].added_by = victim;
    })
    .unwrap();
    other.replica.docs.get_mut(hid.as_uuid()).unwrap().doc = forged.doc;
    let resp = app.sync(&mut other).await;
    assert_eq!(codes(&resp, *hid.as_uuid()), [RefusalCode::PhotoForged]);
    other.replica.docs.remove(hid.as_uuid());

    // In its own name: kept, but shows nothing to anyone it reaches.
    let mine = sync_core::domain::PhotoRef {
        added_by: other.author.user.to_string(),
        ..photo.clone()
    };
    let hid = hold_with_photo(
        &mut other,
        &seed.other_enterprise,
        &seed.other_agency,
        &seed.other_township,
        mine,
    );
    assert!(app.sync(&mut other).await.refused.is_empty());
    let other_web = app.login(users::OTHER_INSPECTOR).await.token;
    let other_supervisor = app.login(users::OTHER_SUPERVISOR).await.token;
    let their_manager = app.login(users::OTHER_MANAGER).await.token;
    for token in [
        &other.session.token,
        &other_web,
        &other_supervisor,
        &their_manager,
    ] {
        for path in [sha.clone(), format!("{sha}/thumb"), format!("{sha}/status")] {
            assert_eq!(
                photo_answer(&app, token, &path).await,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }
    let unknown = "ab".repeat(32);
    assert_eq!(
        photo_answer(&app, &their_manager, &format!("{unknown}/status")).await,
        StatusCode::NOT_FOUND
    );
    let (status, detail) = app
        .get(&other_supervisor, &format!("/api/v1/hazards/{hid}"))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the hazard itself is theirs to read"
    );
    let vid = detail["hazard"]["visit_id"].as_str().unwrap().to_owned();
    let session = app.login(users::OTHER_SUPERVISOR).await;
    let as_them = server::auth::AuthUser {
        user_id: session.user_id.clone(),
        role: session.role.parse().unwrap(),
        org_id: session.org_id.clone(),
        device_id: None,
        session_id: String::new(),
        device_actor_id: None,
    };
    let record = server::web::notice::visit_record(&app.state, as_them, vid)
        .await
        .unwrap();
    let images = server::web::notice::notice_images(&app.state, &record).await;
    assert!(!images.hazards.is_empty());
    assert!(
        images
            .hazards
            .iter()
            .flatten()
            .all(|i| matches!(i, server::web::pdf::PhotoImage::NotUploaded)),
        "the notice draws no photo it may not show"
    );
    // Ours still sees its own.
    assert_eq!(
        photo_answer(&app, &supervisor, &format!("{sha}/thumb")).await,
        StatusCode::OK
    );

    // Sending the very bytes (in two chunks, as a phone would) proves the agency holds them.
    let half = bytes.len() / 2;
    for (offset, chunk, complete) in [(0, &bytes[..half], false), (half, &bytes[half..], true)] {
        let r = app
            .client
            .put(format!("{}/api/v1/photos/{sha}?offset={offset}", app.base))
            .bearer_auth(&other.session.token)
            .header("x-photo-size", bytes.len().to_string())
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["complete"], complete, "{body}");
    }
    assert_eq!(
        photo_answer(&app, &other_supervisor, &sha).await,
        StatusCode::OK
    );
    assert_eq!(
        photo_answer(&app, &their_manager, &sha).await,
        StatusCode::OK
    );
}

// ---- decompression bomb (#19 item 1) ----

/// Kibibytes of resident memory now and at the peak since the peak was last reset.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A DEFLATE-compressed change of a few kilobytes that decodes to 300,000 text operations (the
/// attack in the issue: 4 kB on the wire, 13 s of CPU and 1.75 GiB once applied) is refused as
/// too big before it is decoded: the answer is quick, the server's peak memory barely moves,
/// nothing is stored, and the honest version of the same hazard goes through after.
async fn a_compressed_bomb_in_a_sync_message_is_refused_before_decoding(app: TestApp) {
    use sync_core::automerge::transaction::Transactable as _;
    let seed = app.seed().await;
    let mut phone = app.phone(users::INSPECTOR).await;
    let (_, hid) = record_visit(&seed, &mut phone, Grade::General, "2026-04-01");
    let hid = *hid.as_uuid();
    let (mut req, _) = phone.replica.request();
    let held = phone.replica.docs[&hid].doc.clone();
    let mut fork = sync_core::automerge::AutoCommit::load(&held.save()).unwrap();
    fork.set_actor(held.get_actor().clone());
    let text = fork
        .put_object(
            sync_core::automerge::ROOT,
            "bomb",
            sync_core::automerge::ObjType::Text,
        )
        .unwrap();
    fork.splice_text(&text, 0, 0, &"危".repeat(300_000))
        .unwrap();
    let mut bomb = fork.get_last_local_change().unwrap().clone();
    let bomb = bomb.bytes().into_owned();
    assert!(bomb.len() < 64 * 1024, "the bomb is {} bytes", bomb.len());
    let doc = req.docs.iter_mut().find(|d| d.id == hid).unwrap();
    doc.changes.push(bomb);
    let body = sync_core::protocol::encode_request(&req);

    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (before, _) = memory_kib();
    let started = Instant::now();
    let (status, bytes) = app.post_sync(&phone.session.token, body).await;
    let took = started.elapsed();
    let (_, peak) = memory_kib();
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let resp = sync_core::protocol::decode_response(&bytes).unwrap();
    assert_eq!(codes(&resp, hid), [RefusalCode::TooBig], "{resp:?}");
    let refusal = resp.refused.iter().find(|r| r.id == hid).unwrap();
    assert!(
        refusal.reasons[0].detail.contains("operations"),
        "{:?}",
        refusal.reasons
    );
    if reset {
        let grew = peak.saturating_sub(before);
        assert!(grew < 64 * 1024, "peak memory grew by {grew} KiB");
    }
    // A generous bound, not a benchmark: decoding and applying took 13 s before.
    assert!(took < Duration::from_secs(5), "refusing took {took:?}");
    let (status, _) = app.get(&phone.session.token, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .get(&phone.session.token, &format!("/api/v1/hazards/{hid}"))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing of the batch was stored"
    );

    // The same hazard without the bomb goes through.
    let resp = app.sync(&mut phone).await;
    assert!(resp.refused.is_empty(), "{resp:?}");
    let (status, _) = app
        .get(&phone.session.token, &format!("/api/v1/hazards/{hid}"))
        .await;
    assert_eq!(status, StatusCode::OK);
}

tests::on_every_backend!(
    a_compressed_bomb_in_a_sync_message_is_refused_before_decoding,
    a_made_up_township_in_a_new_document_is_refused,
    a_hazard_cannot_be_attached_to_a_visit_that_is_not_its_own,
    another_agencys_photo_hash_shows_nothing,
);

// ---- connections (#19 item 2) ----

/// A TCP connection to `addr` from the loopback address `from` (127.0.0.2 plays a remote
/// attacker: it is not in the health-check reserve).
async fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the server closed `stream` within `within` (a read returns end of file or an
/// error); sends nothing.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Open descriptors of this process (test and server share it).
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

async fn wait_until(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ok()
}

const ATTACKER: [u8; 4] = [127, 0, 0, 2];
const CAP: usize = 40;

/// 3 × the cap of idle connections from an attacker: the server holds at most the cap (the
/// rest are closed on arrival, their descriptors freed), health checks from loopback are still
/// answered from the reserve (anything else there gets a bilingual 503 with `Retry-After`), and
/// once the header timeout passes every idle connection is closed and the server serves the
/// attacker's address again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_capped_and_closed_and_health_checks_still_answer() {
    let app = tests::spawn_app_with(tests::Backend::Sqlite, |c| {
        c.max_connections = CAP;
        c.header_read_timeout = Duration::from_secs(3);
    })
    .await
    .unwrap();
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let gauge = app.state.connections.clone();
    let baseline = open_descriptors();
    let mut idle = Vec::new();
    for _ in 0..3 * CAP {
        idle.push(connect_from(ATTACKER, addr).await);
    }
    assert!(
        wait_until(Duration::from_secs(5), || gauge.open() == CAP
            && gauge.refused() >= (2 * CAP) as u64)
        .await,
        "open {} refused {}",
        gauge.open(),
        gauge.refused()
    );
    assert!(gauge.open() <= CAP, "never more than the cap");
    // Descriptors of this process, less the attacker's own sockets: what the server holds.
    let held = open_descriptors().saturating_sub(baseline + idle.len());
    assert!(
        held <= CAP + 4,
        "the server holds {held} descriptors for {CAP} slots"
    );

    // Health checks from loopback still answer; other routes there are told to come back.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let health = fresh
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once"
    );
    let busy = fresh
        .get(format!("{}/api/v1/me", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(busy.headers().contains_key("retry-after"));
    let body: serde_json::Value = busy.json().await.unwrap();
    assert_eq!(body["error"], "server_busy");
    assert!(body["message"].as_str().unwrap().starts_with("服务器繁忙"));

    // The idle ones are closed after the header timeout, every one of them.
    let mut closed = 0;
    for s in &mut idle {
        if closed_within(s, Duration::from_secs(10)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, idle.len());
    assert!(
        wait_until(Duration::from_secs(5), || gauge.open() == 0
            && gauge.in_reserve() == 0)
        .await
    );
    drop(idle);

    // And the attacker's address is served again.
    let mut s = connect_from(ATTACKER, addr).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A request's headers sent a byte every 100 ms: the server closes the connection once the
/// header timeout has passed, long before the headers would be complete, and stops counting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_sent_a_byte_at_a_time_is_cut_off() {
    let app = tests::spawn_app_with(tests::Backend::Sqlite, |c| {
        c.header_read_timeout = Duration::from_secs(1);
    })
    .await
    .unwrap();
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut s = connect_from(ATTACKER, addr).await;
    let header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n",
        "a".repeat(200)
    );
    let started = Instant::now();
    let mut cut = false;
    for b in header.bytes() {
        if s.write_all(&[b]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
        {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "the server kept a header trickling for {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut after {:?}",
        started.elapsed()
    );
    let gauge = app.state.connections.clone();
    assert!(wait_until(Duration::from_secs(5), || gauge.open() == 0).await);
}
