//! Demo mode: fills an empty database with a realistic, deterministic world so the platform can
//! be tried at once: one township with an industrial park, two agencies, 50 enterprises under
//! contract across several industries, six months of visits with hazards of many categories
//! (major ones citing their criterion), generated photos, and rectifications in every state,
//! some overdue.
//!
//! Everything is written the way phones and the web write it: typed edits by each user's
//! device, validated by the hub and projected, so the demo exercises the real rules.

use anyhow::{Context as _, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sync_core::doc::visit::{CheckResult, ChecklistItem, ServicePlan, VisitKind};
use sync_core::doc::{DocKind, HazardDoc, Header, VisitDoc};
use sync_core::domain::{Author, Deadline, Grade, PhotoRef, Role as CoreRole};
use sync_core::edit;
use sync_core::ids::{
    AgencyId, DeviceId, EnterpriseId, EventId, HazardId, TownshipId, UserId, VisitId,
};
use sync_core::rectification::EventKind;

use crate::admin::{self, EnterpriseInput, UserInput};
use crate::db::NewDevice;
use crate::model::{Role, Uscc};
use crate::{AppState, projection};

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "demo12345";

/// The demo logins, one per role: (username, role label).
pub const DEMO_LOGINS: &[(&str, &str)] = &[
    ("demo_supervisor", "监管人员 / supervisor"),
    ("demo_inspector", "检查员 / inspector"),
    ("demo_manager", "企业负责人 / enterprise manager"),
    ("demo_admin", "机构管理员 / agency admin"),
];

const INDUSTRIES: &[&str] = &[
    "机械", "纺织", "食品", "化工", "建材", "家具", "印刷", "五金",
];
const NAME_HEADS: &[&str] = &[
    "宏达", "鑫源", "永盛", "华兴", "金茂", "恒丰", "瑞祥", "天成", "长江", "东升",
];
const NAME_TAILS: &[&str] = &[
    "机械厂",
    "纺织有限公司",
    "食品有限公司",
    "化工有限公司",
    "建材厂",
    "家具厂",
    "印务有限公司",
    "五金制品厂",
];
const CHECKS: &[&str] = &[
    "安全生产责任制落实情况",
    "特种作业人员持证上岗",
    "消防设施完好有效",
    "电气线路规范敷设",
    "危险化学品储存规范",
    "有限空间作业审批",
    "机械设备防护装置齐全",
    "应急预案及演练记录",
];

/// (category, location, description, measure, major criterion if it can be major)
const HAZARDS: &[(&str, &str, &str, &str, Option<&str>)] = &[
    (
        "electrical",
        "配电房",
        "配电箱未接地，箱内线路老化",
        "更换老化线路并做可靠接地",
        None,
    ),
    (
        "fire",
        "成品仓库",
        "灭火器过期，消防通道堆放杂物",
        "更换灭火器，清理消防通道",
        None,
    ),
    (
        "machinery",
        "冲压车间",
        "冲床光电保护装置失效",
        "立即停用并修复光电保护装置",
        Some("工贸企业重大事故隐患判定标准 第十条（机械）"),
    ),
    (
        "combustible_dust",
        "抛光车间",
        "除尘系统未设置泄爆装置，粉尘积聚",
        "加装泄爆装置并每班清扫积尘",
        Some("工贸企业重大事故隐患判定标准 第十五条（粉尘防爆）"),
    ),
    (
        "confined_space",
        "污水池",
        "有限空间作业未检测气体、无人监护",
        "建立审批制度，配备气体检测仪和监护人员",
        Some("工贸企业重大事故隐患判定标准 第十七条（有限空间）"),
    ),
    (
        "hazardous_chemicals",
        "化学品库",
        "危险化学品混存，无防泄漏设施",
        "分类存放并设置防泄漏围堰",
        None,
    ),
    (
        "ammonia_refrigeration",
        "冷库机房",
        "氨压缩机房无氨气浓度报警装置",
        "安装氨气浓度报警并与风机联锁",
        Some("工贸企业重大事故隐患判定标准 第十六条（涉氨制冷）"),
    ),
    (
        "management",
        "办公室",
        "未建立隐患排查治理台账",
        "建立台账并定期组织排查",
        None,
    ),
    (
        "work_at_height",
        "钢结构平台",
        "平台临边无防护栏杆",
        "设置 1.2 米防护栏杆和挡脚板",
        None,
    ),
    (
        "special_equipment",
        "行车区",
        "起重机械未定期检验",
        "委托特检机构检验并张贴合格标志",
        None,
    ),
    (
        "occupational_health",
        "喷漆房",
        "作业人员未佩戴防毒口罩",
        "配发防毒面具并培训正确佩戴",
        None,
    ),
    (
        "site_and_housekeeping",
        "车间通道",
        "通道标识缺失，物料占道",
        "施划通道标线，物料定置摆放",
        None,
    ),
];

struct Actor {
    author: Author,
}

async fn actor(state: &AppState, username: &str) -> anyhow::Result<Actor> {
    let user = state
        .db
        .user_by_username(username)
        .await?
        .with_context(|| format!("demo user {username}"))?;
    let actor_hex = crate::auth::new_actor_id();
    let device_id = state
        .db
        .create_device(
            &NewDevice {
                user_id: user.id.clone(),
                name: "演示设备 / demo device".into(),
                platform: "demo".into(),
                actor_id: actor_hex.clone(),
            },
            state.clock.now(),
        )
        .await?;
    let role = match user.role {
        Role::Inspector => CoreRole::Inspector,
        Role::EnterpriseManager => CoreRole::EnterpriseManager,
        Role::Supervisor => CoreRole::Supervisor,
        Role::AgencyAdmin => CoreRole::AgencyAdmin,
    };
    Ok(Actor {
        author: Author {
            user: UserId::parse(&user.id)?,
            role,
            org: uuid::Uuid::parse_str(&user.org_id)?,
            device: DeviceId::parse(&device_id)?,
            actors: vec![sync_core::automerge::ActorId::from(hex::decode(
                &actor_hex,
            )?)],
        },
    })
}

/// A generated "photo": a gradient with a few blocks, unique per seed.
fn photo_bytes(seed: u64) -> anyhow::Result<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (a, b, c): (u8, u8, u8) = (rng.random(), rng.random(), rng.random());
    let blocks: Vec<(u32, u32, u32)> = (0..6)
        .map(|_| {
            (
                rng.random_range(0..560),
                rng.random_range(0..400),
                rng.random_range(20..120),
            )
        })
        .collect();
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        if blocks
            .iter()
            .any(|(bx, by, s)| x >= *bx && x < bx + s && y >= *by && y < by + s)
        {
            image::Rgb([255 - a, 255 - b, 255 - c])
        } else {
            image::Rgb([
                a.wrapping_add((x / 3) as u8),
                b.wrapping_add((y / 3) as u8),
                c,
            ])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(out.into_inner())
}

async fn store_photo(state: &AppState, bytes: &[u8], by: &Author) -> anyhow::Result<PhotoRef> {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    let hash: crate::photos::PhotoHash = sha.parse()?;
    if let crate::photos::BeginOutcome::Ready { .. } = state
        .photos
        .begin_upload(hash, bytes.len() as u64, Some("image/jpeg"), None)
        .await?
    {
        let chunk = bytes::Bytes::copy_from_slice(bytes);
        let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(chunk)]);
        state.photos.write_chunk(hash, 0, stream).await?;
        let meta = state.photos.finish(hash).await?;
        state
            .db
            .record_photo(
                meta.meta(),
                &by.user.to_string(),
                crate::clock::to_millis(state.clock.now()),
            )
            .await?;
    }
    Ok(PhotoRef {
        sha256: sha,
        size: bytes.len() as u64,
        media_type: "image/jpeg".into(),
        captured_at: None,
        gps: None,
        added_by: by.author_id(),
        original_sha256: None,
        exif_unreadable: None,
    })
}

trait AuthorId {
    fn author_id(&self) -> String;
}
impl AuthorId for Author {
    fn author_id(&self) -> String {
        self.user.to_string()
    }
}

/// Validates and stores one change as `who`, then projects the document.
async fn commit(
    state: &AppState,
    who: &Actor,
    scope: &sync_core::engine::Reach,
    kind: DocKind,
    id: uuid::Uuid,
    edited: edit::Edited,
    at_ms: i64,
) -> anyhow::Result<sync_core::automerge::Automerge> {
    let Some(change) = edited.change else {
        return Ok(edited.doc);
    };
    let accepted = state
        .hub
        .ingest(&who.author, scope, id, kind, &[change])
        .await?
        .map_err(|r| anyhow::anyhow!("demo edit refused: {:?}", r.reasons))?;
    projection::project(&state.db, &accepted.typed, &accepted.doc.get_heads(), at_ms).await?;
    Ok(std::sync::Arc::unwrap_or_clone(accepted.doc))
}

/// Fills the database. Refuses when demo data is already there.
pub async fn fill(state: &AppState) -> anyhow::Result<()> {
    let db = &state.db;
    let clock = state.clock.as_ref();
    if db.user_by_username("demo_supervisor").await?.is_some() {
        bail!("演示数据已存在 / demo data is already there");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(20_260_101);
    let now_ms = crate::clock::to_millis(state.clock.now());
    let today = crate::clock::china_date(state.clock.now());
    let day = 86_400_000i64;

    let township = admin::create_township(db, clock, "城东街道", &["城东工业园".into()]).await?;
    let agencies = [
        admin::create_agency(db, clock, "安邦安全咨询有限公司").await?,
        admin::create_agency(db, clock, "恒安技术服务中心").await?,
    ];
    let mut enterprises = Vec::new();
    for i in 0..50usize {
        let name = format!(
            "{}{}",
            NAME_HEADS[i % NAME_HEADS.len()],
            NAME_TAILS[(i / NAME_HEADS.len() + i) % NAME_TAILS.len()]
        );
        let name = if i >= NAME_HEADS.len() {
            format!("{name}（{}厂区）", i / NAME_HEADS.len() + 1)
        } else {
            name
        };
        let code = format!("913301{:02}MA2{:06}", 10 + i % 80, 100_000 + i * 37);
        let input = EnterpriseInput {
            name,
            uscc: Uscc::with_check_digit(&code)
                .map_err(|e| anyhow::anyhow!(e))?
                .as_str()
                .to_owned(),
            address: format!("城东街道工业大道 {} 号", 100 + i * 3),
            township: township.clone(),
            industry: INDUSTRIES[i % INDUSTRIES.len()].into(),
            park: (i % 2 == 0).then(|| "城东工业园".to_owned()),
        };
        let id = admin::create_enterprise(db, clock, &input).await?;
        let agency = &agencies[i % 2];
        let start = today.checked_sub(jiff::Span::new().days(200))?;
        let end = today.checked_add(jiff::Span::new().days(165))?;
        admin::create_contract(db, clock, agency, &id, start, end, true).await?;
        enterprises.push((id, i % 2));
    }
    let user = |username: &str, role: Role, org: &str, display: &str| UserInput {
        username: username.into(),
        password: DEMO_PASSWORD.into(),
        role,
        org_id: org.into(),
        display_name: Some(display.into()),
    };
    for u in [
        user("demo_supervisor", Role::Supervisor, &township, "赵监管"),
        user("demo_inspector", Role::Inspector, &agencies[0], "钱检查"),
        user("demo_inspector2", Role::Inspector, &agencies[1], "孙检查"),
        user(
            "demo_manager",
            Role::EnterpriseManager,
            &enterprises[0].0,
            "李厂长",
        ),
        user(
            "demo_manager2",
            Role::EnterpriseManager,
            &enterprises[1].0,
            "周厂长",
        ),
        user("demo_admin", Role::AgencyAdmin, &agencies[0], "吴主任"),
    ] {
        admin::create_user(db, clock, &u).await?;
    }
    let supervisor = actor(state, "demo_supervisor").await?;
    let inspectors = [
        actor(state, "demo_inspector").await?,
        actor(state, "demo_inspector2").await?,
    ];
    let managers = [
        actor(state, "demo_manager").await?,
        actor(state, "demo_manager2").await?,
    ];
    let township_id = TownshipId::parse(&township)?;
    let scope: sync_core::engine::Reach = enterprises
        .iter()
        .filter_map(|(e, _)| EnterpriseId::parse(e).ok())
        .map(|e| (e, township_id))
        .collect();

    let mut photos = Vec::new();
    for seed in 0..12u64 {
        photos.push(store_photo(state, &photo_bytes(seed)?, &inspectors[0].author).await?);
    }
    // Everyone in the demo took these pictures: each holds them, so each may reference them
    // (a reference shows a photo only when the one who added it holds it, ADR 0010).
    for who in inspectors.iter().chain(managers.iter()) {
        for p in &photos {
            state
                .db
                .add_photo_holder(&p.sha256, &who.author.author_id())
                .await?;
        }
    }

    let bar = indicatif::ProgressBar::new(enterprises.len() as u64);
    bar.set_message("生成演示数据 / generating demo data");
    for (n, (ent, ag)) in enterprises.iter().enumerate() {
        let insp = &inspectors[*ag];
        // Managers exist for the first two enterprises; others' rectifications are recorded by
        // their manager's device only where one exists, otherwise they stay with the inspector.
        let manager = managers.get(n).filter(|_| n < 2);
        let visits = rng.random_range(3..=6);
        for v in 0..visits {
            let started = now_ms - day * rng.random_range(1..180) - (v as i64) * day;
            let header = Header {
                kind: DocKind::Visit,
                id: uuid::Uuid::new_v4(),
                schema: sync_core::doc::SCHEMA_VERSION,
                enterprise: EnterpriseId::parse(ent)?,
                agency: AgencyId::parse(&agencies[*ag])?,
                township: TownshipId::parse(&township)?,
                created_by: insp.author.user,
                created_at: started,
            };
            let vid = VisitId::from_uuid(header.id);
            let mut visit = VisitDoc::new(
                &header,
                if v == 0 {
                    VisitKind::First
                } else {
                    VisitKind::Routine
                },
                started,
            );
            visit.place = "生产车间及仓库".into();
            visit.ended_at = Some(started + 2 * 3_600_000);
            for (k, title) in CHECKS.iter().enumerate() {
                visit.checklist.push(ChecklistItem {
                    id: format!("{}-{k}", vid),
                    title: (*title).into(),
                    result: if rng.random_bool(0.25) {
                        CheckResult::Fail
                    } else {
                        CheckResult::Pass
                    },
                    note: String::new(),
                });
            }
            if v == 0 {
                visit.service_plan = Some(ServicePlan {
                    staff_count: 2,
                    specialties: vec!["机械安全".into(), "电气安全".into()],
                    grades: vec!["注册安全工程师".into()],
                    frequency: "每月一次".into(),
                });
                visit.overall_assessment = "企业安全管理基础薄弱，需加强隐患排查治理。".into();
            }
            let edited = edit::new_visit(&visit, &insp.author, started)?;
            commit(
                state,
                insp,
                &scope,
                DocKind::Visit,
                header.id,
                edited,
                started,
            )
            .await?;

            for _ in 0..rng.random_range(0..=3) {
                let (category, location, description, measure, criterion) =
                    HAZARDS[rng.random_range(0..HAZARDS.len())];
                let major = criterion.is_some() && rng.random_bool(0.5);
                let deadline_ms = started + day * rng.random_range(7..30);
                let deadline = crate::clock::china_date(crate::clock::from_millis(deadline_ms));
                let hheader = Header {
                    kind: DocKind::Hazard,
                    id: uuid::Uuid::new_v4(),
                    created_at: started,
                    ..header.clone()
                };
                let hid = HazardId::from_uuid(hheader.id);
                let mut hz = HazardDoc::new(
                    &hheader,
                    vid,
                    if major { Grade::Major } else { Grade::General },
                    Deadline::from_date(deadline),
                );
                hz.location = location.into();
                hz.description = description.into();
                hz.category = category.into();
                hz.measure = measure.into();
                hz.criterion = criterion.filter(|_| major).unwrap_or("").into();
                hz.responsible_person = "生产厂长".into();
                if major {
                    hz.funds_yuan = Some(rng.random_range(5..50) * 1000);
                    hz.emergency_plan = "停用相关设备，设置警戒区，专人值守".into();
                }
                hz.photos.push(PhotoRef {
                    added_by: insp.author.author_id(),
                    ..photos[rng.random_range(0..photos.len())].clone()
                });
                let edited = edit::new_hazard(&hz, &insp.author, started)?;
                let mut doc = commit(
                    state,
                    insp,
                    &scope,
                    DocKind::Hazard,
                    hheader.id,
                    edited,
                    started,
                )
                .await?;
                let mut at = started + 3_600_000;
                let ev = |doc: &sync_core::automerge::Automerge,
                          who: &Actor,
                          at: i64,
                          kind: EventKind| {
                    edit::record_event(doc, &who.author, EventId::new_random(), at, kind)
                };
                doc = commit(
                    state,
                    insp,
                    &scope,
                    DocKind::Hazard,
                    hheader.id,
                    ev(&doc, insp, at, EventKind::Notified)?,
                    at,
                )
                .await?;
                // How far the rectification got: older hazards got further.
                let age_days = (now_ms - started) / day;
                let stage = if deadline_ms > now_ms {
                    rng.random_range(0..3)
                } else if age_days > 60 {
                    rng.random_range(2..6)
                } else {
                    rng.random_range(0..6)
                };
                let enterprise_actor = manager.unwrap_or(insp);
                if stage >= 1 && manager.is_some() {
                    at += day;
                    doc = commit(
                        state,
                        enterprise_actor,
                        &scope,
                        DocKind::Hazard,
                        hheader.id,
                        ev(
                            &doc,
                            enterprise_actor,
                            at,
                            EventKind::SignedFor {
                                signer: "李厂长".into(),
                            },
                        )?,
                        at,
                    )
                    .await?;
                }
                if stage >= 2 && manager.is_some() {
                    at += day * rng.random_range(2..10);
                    let evidence = vec![PhotoRef {
                        added_by: enterprise_actor.author.author_id(),
                        ..photos[rng.random_range(0..photos.len())].clone()
                    }];
                    doc = commit(
                        state,
                        enterprise_actor,
                        &scope,
                        DocKind::Hazard,
                        hheader.id,
                        ev(
                            &doc,
                            enterprise_actor,
                            at,
                            EventKind::RectificationSubmitted {
                                note: "已按要求整改完毕".into(),
                                photos: evidence,
                            },
                        )?,
                        at,
                    )
                    .await?;
                }
                // Re-inspection follows the enterprise's submission (ADR 0009).
                if stage >= 3 && manager.is_some() {
                    at += day * 2;
                    doc = commit(
                        state,
                        insp,
                        &scope,
                        DocKind::Hazard,
                        hheader.id,
                        ev(
                            &doc,
                            insp,
                            at,
                            EventKind::Verified {
                                accepted: true,
                                note: "复查合格".into(),
                            },
                        )?,
                        at,
                    )
                    .await?;
                }
                if stage >= 4 && manager.is_some() {
                    at += day;
                    let closer = if major { &supervisor } else { insp };
                    doc = commit(
                        state,
                        closer,
                        &scope,
                        DocKind::Hazard,
                        hheader.id,
                        ev(
                            &doc,
                            closer,
                            at,
                            EventKind::Closed {
                                note: "验收销号".into(),
                            },
                        )?,
                        at,
                    )
                    .await?;
                }
                if major && stage < 4 && rng.random_bool(0.5) {
                    commit(
                        state,
                        &supervisor,
                        &scope,
                        DocKind::Hazard,
                        hheader.id,
                        ev(
                            &doc,
                            &supervisor,
                            at,
                            EventKind::SupervisionPut {
                                note: "挂牌督办".into(),
                            },
                        )?,
                        at,
                    )
                    .await?;
                }
                let _ = hid;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Prints the demo logins.
pub fn print_logins(base: &str) {
    println!("演示账号 / demo logins (密码 / password: {DEMO_PASSWORD}):");
    for (user, role) in DEMO_LOGINS {
        println!("  {user:<18} {role}");
    }
    println!("打开 / open {base}");
}
