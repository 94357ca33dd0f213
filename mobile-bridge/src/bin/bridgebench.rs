//! Figures for the phone: stripped cdylib size, time to open a store of 10,000 hazards and list
//! them, time to prepare one 12 MP photo. Run: `cargo run --release -p mobile-bridge --bin bridgebench`
//! (`-- --json PATH` also writes the figures as JSON; the workspace bench does that).

use std::time::Instant;

use mobile_bridge::photo;
use mobile_bridge::store::LocalStore;
use sync_core::automerge::ActorId;
use sync_core::doc::{DocKind, HazardDoc, Header};
use sync_core::domain::{Author, Deadline, Grade, Role};
use sync_core::ids::{AgencyId, DeviceId, EnterpriseId, TownshipId, UserId, VisitId};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut figures = serde_json::Map::new();
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("no exe dir")?;
    let lib = dir.join("libmobile_bridge.so");
    if lib.exists() {
        let tmp = std::env::temp_dir().join("libmobile_bridge.stripped.so");
        std::fs::copy(&lib, &tmp)?;
        let ok = std::process::Command::new("strip")
            .arg(&tmp)
            .status()?
            .success();
        println!(
            "cdylib: {} bytes, stripped{}: {} bytes",
            std::fs::metadata(&lib)?.len(),
            if ok { "" } else { " (strip failed)" },
            std::fs::metadata(&tmp)?.len()
        );
        figures.insert("cdylib_bytes".into(), std::fs::metadata(&lib)?.len().into());
        if ok {
            figures.insert(
                "cdylib_stripped_bytes".into(),
                std::fs::metadata(&tmp)?.len().into(),
            );
        }
    }

    let data = std::env::temp_dir().join(format!("bridgebench-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let db = data.join("inspect.db");
    let author = Author {
        user: UserId::new_random(),
        role: Role::Inspector,
        org: uuid::Uuid::new_v4(),
        device: DeviceId::new_random(),
        actors: vec![ActorId::random()],
    };
    let enterprise = EnterpriseId::new_random();
    let township = TownshipId::new_random();
    let visit = VisitId::new_random();
    let t = Instant::now();
    {
        let store = LocalStore::open(&db)?;
        for i in 0..10_000 {
            let header = Header {
                kind: DocKind::Hazard,
                id: uuid::Uuid::new_v4(),
                schema: sync_core::doc::SCHEMA_VERSION,
                enterprise,
                agency: AgencyId::from_uuid(author.org),
                township,
                created_by: author.user,
                created_at: 1_770_000_000_000,
            };
            let mut h = HazardDoc::new(
                &header,
                visit,
                Grade::General,
                Deadline::parse("2030-06-30")?,
            );
            h.location = format!("车间 {i}");
            h.description = format!("隐患描述 {i}").into();
            let edited = sync_core::edit::new_hazard(&h, &author, 1_770_000_000_000)?;
            if let Some(c) = edited.change {
                store.commit_local(header.id, DocKind::Hazard, enterprise, &edited.doc, &[c])?;
            }
        }
    }
    println!("generated 10,000 hazards in {:.2?}", t.elapsed());
    let t = Instant::now();
    let store = LocalStore::open(&db)?;
    let opened = t.elapsed();
    let list = store.summaries(Some(DocKind::Hazard), None)?;
    let listed = t.elapsed();
    figures.insert("store_hazards".into(), list.len().into());
    figures.insert("store_open_ms".into(), (opened.as_secs_f64() * 1e3).into());
    figures.insert(
        "store_open_and_list_ms".into(),
        (listed.as_secs_f64() * 1e3).into(),
    );
    println!(
        "open store: {:.2?}; open + list {} hazard summaries: {:.2?}",
        opened,
        list.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let one = store.load_doc(uuid::Uuid::parse_str(&list[5000].id)?)?;
    println!(
        "load one hazard document: {:.2?} ({})",
        t.elapsed(),
        one.is_some()
    );
    drop(store);
    std::fs::remove_dir_all(&data)?;

    let img = image::RgbImage::from_fn(4000, 3000, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x ^ y) % 239) as u8])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92).encode_image(&img)?;
    // Median of seven, beside the pipeline this replaced (full decode through `image`, Triangle
    // resize, `image`'s JPEG encoder), run the same way on the same file.
    let median = |mut runs: Vec<f64>| {
        runs.sort_by(f64::total_cmp);
        runs[runs.len() / 2]
    };
    let mut ours = Vec::new();
    let mut baseline = Vec::new();
    let mut prepared = None;
    for _ in 0..7 {
        let t = Instant::now();
        prepared = Some(photo::prepare(&jpeg, photo::DEFAULT_MAX_EDGE)?);
        ours.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let full = image::load_from_memory(&jpeg)?;
        let small = full.resize(2048, 2048, image::imageops::FilterType::Triangle);
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, photo::JPEG_QUALITY)
            .encode_image(&small.to_rgb8())?;
        baseline.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let p = prepared.ok_or("no run")?;
    let (ours, baseline) = (median(ours), median(baseline));
    figures.insert("photo_12mp_ingest_ms".into(), ours.into());
    figures.insert("photo_12mp_ingest_baseline_ms".into(), baseline.into());
    println!(
        "ingest 12 MP JPEG ({} bytes) -> {}x{} JPEG q85 ({} bytes): median {ours:.1} ms \
         (full decode through image: {baseline:.1} ms, {:.2}x)",
        jpeg.len(),
        p.width,
        p.height,
        p.bytes.len(),
        baseline / ours
    );
    if let Some(path) = json_path {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)?;
    }
    Ok(())
}
