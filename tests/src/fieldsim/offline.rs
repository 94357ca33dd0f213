//! What phones do offline in each phase: inspectors' visits, hazards, photos and notices;
//! concurrent revisions; managers' signatures, extension requests and evidence; verification.

use super::*;

/// One phone's offline work in a phase; returns what it did, for the ledger.
pub(super) fn work_offline(
    p: &mut Phone,
    phase: u8,
    ledger: &Ledger,
    inspectors: &[usize],
    work: &Path,
    photos: f64,
) -> anyhow::Result<Vec<Op>> {
    let mut ops = Vec::new();
    match (p.account.role, phase) {
        (PhoneRole::Inspector, 1) => inspect(p, inspectors, work, photos, &mut ops)?,
        (PhoneRole::Inspector, 2) => revise(p, ledger, work, photos, &mut ops)?,
        (PhoneRole::Manager, 2) => rectify(p, ledger, work, photos, &mut ops)?,
        (PhoneRole::Inspector, 3) => verify(p, ledger, inspectors, &mut ops)?,
        _ => {}
    }
    Ok(ops)
}

fn checklist(p: &mut Phone, visit: &str, ops: &mut Vec<Op>) -> anyhow::Result<()> {
    let title = (*p.pick(CHECKS)).to_owned();
    let result = match p.rng.random_range(0..3) {
        0 => CheckResultRecord::Pass,
        1 => CheckResultRecord::Fail,
        _ => CheckResultRecord::NotApplicable,
    };
    let note = if result == CheckResultRecord::Fail {
        "现场发现问题，已列入隐患清单".to_owned()
    } else {
        String::new()
    };
    let v = visit.to_owned();
    let item = p.edit("set_checklist_item", |c| {
        c.set_checklist_item(
            v,
            ChecklistItemRecord {
                id: String::new(),
                title,
                result,
                note,
            },
        )
    })?;
    ops.push(Op::Checklist {
        visit: visit.to_owned(),
        item,
    });
    Ok(())
}

fn attach(p: &mut Phone, hazard: &str, work: &Path, ops: &mut Vec<Op>) -> anyhow::Result<()> {
    let path = p.make_photo(work)?;
    let h = hazard.to_owned();
    let rec = p.edit("attach_photo", |c| c.attach_photo(h, path))?;
    ops.push(Op::HazardPhoto {
        hazard: hazard.to_owned(),
        sha: rec.sha256.clone(),
    });
    ops.push(Op::Photo {
        sha: rec.sha256,
        size: rec.size,
    });
    Ok(())
}

fn set_field(
    p: &mut Phone,
    hazard: &str,
    field: &'static str,
    value: String,
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    let patch = match field {
        "location" => HazardPatch {
            location: Some(value.clone()),
            ..HazardPatch::default()
        },
        "responsible_person" => HazardPatch {
            responsible_person: Some(value.clone()),
            ..HazardPatch::default()
        },
        other => bail!("the simulator does not edit {other}"),
    };
    let h = hazard.to_owned();
    p.edit("edit_hazard", |c| c.edit_hazard(h, patch))?;
    ops.push(Op::Field {
        hazard: hazard.to_owned(),
        field,
        value,
    });
    Ok(())
}

/// Phase 1, inspectors: visits with checklists, hazards (one in five major), photos, notices
/// and the enterprise head's signature.
fn inspect(
    p: &mut Phone,
    inspectors: &[usize],
    work: &Path,
    photos: f64,
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    // Offline, the list comes from the phone's cache.
    let mut enterprises = p.client()?.list_enterprises()?;
    enterprises.sort_by(|a, b| a.name.cmp(&b.name));
    if enterprises.is_empty() {
        bail!("{}: no enterprise to inspect", p.name);
    }
    let ordinal = inspectors.iter().position(|&i| i == p.index).unwrap_or(0);
    let mut n = 0;
    while p.left() > 0 {
        // Inspectors spread over the enterprises, so every manager has hazards to work on.
        let enterprise = enterprises[(ordinal + n) % enterprises.len()].id.clone();
        n += 1;
        let place = (*p.pick(PLACES)).to_owned();
        let e = enterprise.clone();
        let visit = p.edit("start_visit", |c| {
            c.start_visit(e, VisitKindRecord::Routine, place)
        })?;
        ops.push(Op::Visit {
            id: visit.clone(),
            enterprise: enterprise.clone(),
        });
        for _ in 0..2 {
            if p.left() > 0 {
                checklist(p, &visit, ops)?;
            }
        }
        for _ in 0..p.rng.random_range(1..=3) {
            if p.left() == 0 {
                break;
            }
            let major = p.chance(0.2);
            let (category, description, measure) = *p.pick(FINDINGS);
            let location = format!("{} {} 号位", p.pick(PLACES), p.rng.random_range(1..=20));
            let responsible = format!("负责人{}", p.rng.random_range(1..=9));
            let input = HazardInput {
                location: location.clone(),
                description: description.into(),
                category: category.into(),
                grade: if major {
                    mobile_bridge::records::GradeRecord::Major
                } else {
                    mobile_bridge::records::GradeRecord::General
                },
                criterion: if major {
                    format!(
                        "工贸企业重大事故隐患判定标准 第{}条",
                        p.rng.random_range(4..=20)
                    )
                } else {
                    String::new()
                },
                measure: measure.into(),
                deadline: format!(
                    "2027-{:02}-{:02}",
                    p.rng.random_range(1..=12),
                    p.rng.random_range(1..=28)
                ),
                responsible_person: responsible.clone(),
                funds_yuan: major.then_some(50_000),
                emergency_plan: if major {
                    "停用设备，设置警戒区，专人监护".into()
                } else {
                    String::new()
                },
            };
            let v = visit.clone();
            let hazard = p.edit("add_hazard", |c| c.add_hazard(v, input))?;
            ops.push(Op::Hazard {
                id: hazard.clone(),
                visit: visit.clone(),
                enterprise: enterprise.clone(),
                major,
            });
            for (field, value) in [("location", location), ("responsible_person", responsible)] {
                ops.push(Op::Field {
                    hazard: hazard.clone(),
                    field,
                    value,
                });
            }
            if p.left() > 0 && p.chance(photos) {
                attach(p, &hazard, work, ops)?;
            }
            if p.left() > 0 {
                let h = hazard.clone();
                p.edit("notify", |c| c.notify(h))?;
                ops.push(Op::Event {
                    hazard,
                    event: Recorded::Notified,
                });
            }
        }
        if p.left() > 0 && p.chance(photos) {
            let path = p.make_photo(work)?;
            let v = visit.clone();
            p.edit("sign_visit", |c| c.sign_visit(v, "王厂长".into(), path))?;
            let signature = p
                .client()?
                .get_visit(visit.clone())?
                .signature
                .ok_or_else(|| anyhow!("{}: signature missing after signing", p.name))?;
            ops.push(Op::Photo {
                sha: signature.image.sha256,
                size: signature.image.size,
            });
        }
    }
    Ok(())
}

/// Phase 2, inspectors: edits of documents other phones are editing at the same time — every
/// inspector sets the first hazard's responsible person and adds a line to the first visit's
/// checklist; then locations, photos and checklist lines of random documents.
fn revise(
    p: &mut Phone,
    ledger: &Ledger,
    work: &Path,
    photos: f64,
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    if let Some(h) = ledger.hazards.first()
        && p.left() > 0
    {
        let value = format!("{} 指定的负责人", p.account.username);
        set_field(p, &h.id, "responsible_person", value, ops)?;
    }
    if let Some(v) = ledger.visits.first()
        && p.left() > 0
    {
        checklist(p, &v.id, ops)?;
    }
    while p.left() > 0 {
        if ledger.hazards.is_empty() {
            let v = p.pick(&ledger.visits).id.clone();
            checklist(p, &v, ops)?;
            continue;
        }
        let h = p.pick(&ledger.hazards).id.clone();
        match p.rng.random_range(0..3) {
            0 => {
                let value = format!("{} 复核 {}", p.pick(PLACES), p.index + 1);
                set_field(p, &h, "location", value, ops)?;
            }
            1 if p.chance(photos) => attach(p, &h, work, ops)?,
            1 => {
                let value = format!("负责人{}", p.rng.random_range(10..=99));
                set_field(p, &h, "responsible_person", value, ops)?;
            }
            _ => {
                let v = p.pick(&ledger.visits).id.clone();
                checklist(p, &v, ops)?;
            }
        }
    }
    Ok(())
}

fn extension(p: &mut Phone, hazard: &str, ops: &mut Vec<Op>) -> anyhow::Result<()> {
    let until = format!(
        "2028-{:02}-{:02}",
        p.rng.random_range(1..=12),
        p.rng.random_range(1..=28)
    );
    let h = hazard.to_owned();
    // One request waits for its answer at a time, and none once the rectification is
    // submitted (ADR 0009): the phone may refuse it.
    if p.attempt("request_extension", |c| {
        c.request_extension(h, until, "设备采购周期长，申请延期".into())
    })?
    .is_some()
    {
        ops.push(Op::Event {
            hazard: hazard.to_owned(),
            event: Recorded::ExtensionRequested,
        });
    }
    Ok(())
}

/// Phase 2, enterprise managers: sign for the notices of their enterprise's hazards, ask for
/// more time on some, submit evidence (with photos) for most; the rest of the budget goes to
/// further extension requests.
fn rectify(
    p: &mut Phone,
    ledger: &Ledger,
    work: &Path,
    photos: f64,
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    let org = p.org().to_owned();
    let mine: Vec<&HazardEntry> = ledger
        .hazards
        .iter()
        .filter(|h| h.enterprise == org)
        .collect();
    for h in &mine {
        if p.left() == 0 {
            break;
        }
        let state = p.client()?.get_hazard(h.id.clone())?.state;
        // A notice is signed for, and rectification owed, only once it was issued (ADR 0009).
        if state == mobile_bridge::records::HazardStateRecord::Open {
            continue;
        }
        if state == mobile_bridge::records::HazardStateRecord::Notified {
            let id = h.id.clone();
            p.edit("sign_for", |c| c.sign_for(id, "王厂长".into()))?;
            ops.push(Op::Event {
                hazard: h.id.clone(),
                event: Recorded::SignedFor,
            });
        }
        if p.left() > 0 && p.chance(0.25) {
            extension(p, &h.id, ops)?;
        }
        if p.left() > 0 && p.chance(0.85) {
            let n = if p.chance(photos) {
                p.rng.random_range(1..=2)
            } else {
                0
            };
            let paths = (0..n)
                .map(|_| p.make_photo(work))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let id = h.id.clone();
            // A major hazard's rectification needs a photo (ADR 0009): without one the phone
            // refuses it.
            if p.attempt("submit_rectification", |c| {
                c.submit_rectification(id, "已按要求整改，附整改后照片".into(), paths)
            })?
            .is_none()
            {
                continue;
            }
            ops.push(Op::Event {
                hazard: h.id.clone(),
                event: Recorded::Submitted,
            });
            let rec = p.client()?.get_hazard(h.id.clone())?;
            let last = rec
                .events
                .last()
                .ok_or_else(|| anyhow!("{}: submission missing", p.name))?;
            for photo in &last.photos {
                ops.push(Op::Photo {
                    sha: photo.sha256.clone(),
                    size: photo.size,
                });
            }
        }
    }
    let mut k = 0;
    while p.left() > 0 && !mine.is_empty() {
        let id = mine[k % mine.len()].id.clone();
        extension(p, &id, ops)?;
        k += 1;
    }
    Ok(())
}

/// Phase 3, inspectors: verify what was submitted (three in four accepted) and close accepted
/// general hazards; one hazard in four is verified by two inspectors at once. The rest of the
/// budget goes to the inspector's own visits (notes, checklist lines).
fn verify(
    p: &mut Phone,
    ledger: &Ledger,
    inspectors: &[usize],
    ops: &mut Vec<Op>,
) -> anyhow::Result<()> {
    let count = inspectors.len().max(1);
    let ordinal = inspectors.iter().position(|&i| i == p.index).unwrap_or(0);
    for (n, h) in ledger.hazards.iter().enumerate() {
        if p.left() == 0 {
            break;
        }
        let second = (count >= 2 && n % 4 == 0).then_some((n + 1) % count);
        if ordinal != n % count && Some(ordinal) != second {
            continue;
        }
        if p.client()?.get_hazard(h.id.clone())?.state
            != mobile_bridge::records::HazardStateRecord::Submitted
        {
            continue;
        }
        let accepted = p.chance(0.75);
        let id = h.id.clone();
        let note = if accepted {
            "复查合格"
        } else {
            "整改不到位，退回"
        };
        p.edit("verify", |c| c.verify(id, accepted, note.into()))?;
        ops.push(Op::Event {
            hazard: h.id.clone(),
            event: Recorded::Verified { accepted },
        });
        if accepted && !h.major && p.left() > 0 {
            let id = h.id.clone();
            p.edit("close", |c| c.close(id, "复查合格，销号".into()))?;
            ops.push(Op::Event {
                hazard: h.id.clone(),
                event: Recorded::Closed,
            });
        }
    }
    let own: Vec<String> = ledger
        .visits
        .iter()
        .filter(|v| v.phone == p.index)
        .map(|v| v.id.clone())
        .collect();
    let mut k = 0;
    while p.left() > 0 && !own.is_empty() {
        let v = own[k % own.len()].clone();
        k += 1;
        if k % 2 == 1 {
            let notes = format!("复查记录，第 {k} 次");
            p.edit("edit_visit", |c| {
                c.edit_visit(
                    v,
                    VisitPatch {
                        notes: Some(notes),
                        ..VisitPatch::default()
                    },
                )
            })?;
        } else {
            checklist(p, &v, ops)?;
        }
    }
    Ok(())
}
