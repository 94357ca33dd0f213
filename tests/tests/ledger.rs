//! The hazard ledger (隐患排查治理台账) on SQLite and PostgreSQL: the Excel workbook read back
//! has the Chinese column heads and exactly the rows of the caller's scope, with the values the
//! hazards' histories give (re-inspection, closure, report of a major hazard, overdue); the CSV
//! opens in Chinese Excel (UTF-8 with BOM) and holds the same rows; filters narrow it; a bad
//! filter is refused with a reason; another township's hazard never appears.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use calamine::Reader as _;
use reqwest::StatusCode;
use serde_json::Value;
use server::ledger::{COLUMNS, LedgerRow};
use tests::world::populate;
use tests::{TestApp, users};

async fn download(
    app: &TestApp,
    token: &str,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// The workbook's first sheet as rows of text.
fn read_xlsx(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    assert_eq!(book.sheet_names(), vec!["隐患台账".to_owned()]);
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    calamine::Data::Float(f) => format!("{}", *f as i64),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

fn heads() -> Vec<String> {
    COLUMNS
        .iter()
        .map(|(_, zh, en)| format!("{zh} / {en}"))
        .collect()
}

fn by_id(rows: &[LedgerRow]) -> BTreeMap<String, LedgerRow> {
    rows.iter()
        .map(|r| (r.hazard_id.clone(), r.clone()))
        .collect()
}

async fn the_ledger_workbook_holds_every_hazard_of_the_scope_with_its_history(app: TestApp) {
    let world = populate(&app).await;
    let supervisor = app.login(users::SUPERVISOR).await;

    let (status, json) = app.get(&supervisor.token, "/api/v1/ledger").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let rows: Vec<LedgerRow> = serde_json::from_value(json).unwrap();
    let (_, listed) = app.get(&supervisor.token, "/api/v1/hazards").await;
    let mut listed: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    let ids: Vec<String> = by_id(&rows).into_keys().collect();
    assert_eq!(
        ids, listed,
        "the ledger has exactly the hazards the list has"
    );
    assert!(!ids.contains(&world.other_hazard));

    let rows = by_id(&rows);
    let closed = &rows[&world.closed];
    assert_eq!(closed.reinspection_result, "通过：复查合格");
    assert_eq!(closed.reinspector, "inspector 测试");
    assert_eq!(closed.reinspected_on, closed.closed_on);
    assert!(!closed.closed_on.is_empty());
    assert_eq!(closed.progress, "已销号");
    let major = &rows[&world.major];
    assert_eq!(major.grade, "重大事故隐患");
    assert_eq!(major.funds_yuan, "50000");
    assert_eq!(major.found_at, "2026-02-10 10:00");
    assert!(!major.reported_at.is_empty(), "{major:?}");
    assert!(major.reported_to.contains("城东街道"), "{major:?}");
    assert!(major.participants.contains("inspector 测试"), "{major:?}");
    assert!(major.participants.contains("王厂长（企业）"), "{major:?}");
    assert_eq!(major.enterprise, "宏达机械厂");
    assert_eq!(major.township, "城东街道");
    assert_eq!(major.agency, "安邦安全咨询有限公司");
    assert_eq!(major.category, "机械防护");
    assert_eq!(rows[&world.overdue].progress, "已通知（已逾期）");
    assert_eq!(rows[&world.overdue].deadline, "2026-03-05");
    assert_eq!(rows[&world.submitted].progress, "待复查");
    assert_eq!(rows[&world.submitted].reinspection_result, "");
    assert_eq!(
        rows[&world.overdue].reported_at, "",
        "a general hazard is not reported"
    );

    // The workbook: Chinese heads, then exactly the same rows.
    let (status, headers, body) = download(&app, &supervisor.token, "/api/v1/ledger.xlsx").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.contains("filename*=UTF-8''%E9%9A%90%E6%82%A3%E5%8F%B0%E8%B4%A6-"),
        "{disposition}"
    );
    let sheet = read_xlsx(&body);
    assert_eq!(sheet[0], heads());
    assert_eq!(sheet.len(), rows.len() + 1);
    for line in &sheet[1..] {
        let row = &rows[&line[0]];
        let mut expected: Vec<String> = row.values().iter().map(|v| (*v).to_owned()).collect();
        // Empty cells are not written; calamine reads them as empty strings within the range.
        expected.truncate(line.len());
        assert_eq!(line, &expected, "row of {}", line[0]);
    }

    // The CSV: a byte-order mark, the same heads and rows.
    let (status, headers, body) = download(&app, &supervisor.token, "/api/v1/ledger.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with BOM");
    let mut reader = csv::Reader::from_reader(&body[3..]);
    let csv_heads: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(csv_heads, heads());
    let csv_rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(csv_rows.len(), rows.len());
    for line in &csv_rows {
        let expected: Vec<String> = rows[&line[0]]
            .values()
            .iter()
            .map(|v| (*v).to_owned())
            .collect();
        assert_eq!(line, &expected);
    }
}

async fn the_ledger_filters_and_scopes(app: TestApp) {
    let world = populate(&app).await;
    let supervisor = app.login(users::SUPERVISOR).await;
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|r| r["hazard_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    for (query, expected) in [
        ("grade=major", vec![world.major.clone()]),
        ("state=closed", vec![world.closed.clone()]),
        (&format!("enterprise={}", world.seed.enterprise) as &str, {
            let mut all = vec![
                world.major.clone(),
                world.overdue.clone(),
                world.closed.clone(),
                world.submitted.clone(),
            ];
            all.sort();
            all
        }),
        ("from=2026-02-10&to=2026-02-10", {
            let mut all = vec![
                world.major.clone(),
                world.overdue.clone(),
                world.closed.clone(),
                world.submitted.clone(),
            ];
            all.sort();
            all
        }),
        ("from=2026-02-11", vec![]),
        (&format!("township={}", world.seed.other_township), vec![]),
    ] {
        let (status, rows) = app
            .get(&supervisor.token, &format!("/api/v1/ledger?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {rows}");
        assert_eq!(ids(&rows), expected, "{query}");
    }
    for (query, code) in [
        ("grade=huge", "bad_filter"),
        ("state=lost", "bad_filter"),
        ("from=2026-13-01", "bad_date"),
        ("from=2026-03-02&to=2026-03-01", "bad_date_range"),
        ("colour=red", "invalid_query"),
    ] {
        let (status, body) = app
            .get(&supervisor.token, &format!("/api/v1/ledger.xlsx?{query}"))
            .await;
        assert!(status.is_client_error(), "{query}: {status}");
        if code != "invalid_query" {
            assert_eq!(body["error"], code, "{query}: {body}");
        }
        assert!(
            body["message"].as_str().unwrap_or("").contains(" / "),
            "bilingual: {body}"
        );
    }

    // Each role sees its own scope only; the other township's supervisor sees its hazard alone.
    let other = app.login(users::OTHER_SUPERVISOR).await;
    let (_, rows) = app.get(&other.token, "/api/v1/ledger").await;
    assert_eq!(ids(&rows), vec![world.other_hazard.clone()]);
    let (_, rows) = app
        .get(
            &other.token,
            &format!("/api/v1/ledger?enterprise={}", world.seed.enterprise),
        )
        .await;
    assert_eq!(ids(&rows), Vec::<String>::new());
    let manager = app.login(users::MANAGER).await;
    let (_, rows) = app.get(&manager.token, "/api/v1/ledger").await;
    assert_eq!(ids(&rows).len(), 4);
    let other_inspector = app.login(users::OTHER_INSPECTOR).await;
    let (_, body) = download(&app, &other_inspector.token, "/api/v1/ledger.csv")
        .then_text()
        .await;
    assert!(
        !body.contains(&world.major),
        "another agency's hazard in its CSV"
    );
    let (status, _) = app.get("not-a-token", "/api/v1/ledger.xlsx").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The monthly statistics per township, as JSON and read back from the workbook, agree with
/// the hazards of the world; another township's are not counted.
async fn monthly_statistics_per_township(app: TestApp) {
    let world = populate(&app).await;
    let supervisor = app.login(users::SUPERVISOR).await;
    let (status, rows) = app.get(&supervisor.token, "/api/v1/statistics").await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    let rows = rows.as_array().unwrap();
    let row = |month: &str| {
        rows.iter()
            .find(|r| r["month"] == month)
            .unwrap_or_else(|| panic!("{rows:?}"))
    };
    let feb = row("2026-02");
    assert_eq!(feb["township"], "城东街道");
    assert_eq!(feb["township_id"], world.seed.township.as_str());
    // Four found on 02-10: one major, one closed since (in March), one overdue now.
    assert_eq!(
        (feb["found"].as_u64(), feb["major_found"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(
        (feb["open_now"].as_u64(), feb["overdue_now"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(feb["closure_rate"].as_f64(), Some(0.25));
    let mar = row("2026-03");
    assert_eq!(
        (mar["found"].as_u64(), mar["closed_in_month"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(
        rows.iter()
            .all(|r| r["township_id"] == world.seed.township.as_str()),
        "{rows:?}"
    );

    let (status, _, body) = download(&app, &supervisor.token, "/api/v1/statistics.xlsx").await;
    assert_eq!(status, StatusCode::OK);
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(body)).unwrap();
    assert_eq!(book.sheet_names(), vec!["月度统计".to_owned()]);
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let sheet: Vec<Vec<String>> = range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(sheet[0][0], "乡镇（街道） / Township");
    assert_eq!(sheet.len(), rows.len() + 1);
    let feb_line = sheet.iter().find(|l| l[1] == "2026-02").unwrap();
    assert_eq!(&feb_line[2..7], ["4", "1", "0", "3", "1"]);

    // Narrowed to March, February's hazards are not counted (nor their March closure).
    let (_, march) = app
        .get(&supervisor.token, "/api/v1/statistics?from=2026-03-01")
        .await;
    assert_eq!(march, serde_json::json!([]));
    let (status, bad) = app
        .get(&supervisor.token, "/api/v1/statistics?from=03-01")
        .await;
    assert_eq!(
        (status, bad["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_date"))
    );
}

/// The enterprise file as a ZIP: the file with each hazard's photos listed, its ledger, and the
/// photos themselves, byte for byte what the photo route serves; another township gets 404.
async fn the_enterprise_file_zip_holds_the_file_the_ledger_and_the_photos(app: TestApp) {
    use std::io::Read as _;
    let world = populate(&app).await;
    let supervisor = app.login(users::SUPERVISOR).await;
    let path = format!("/api/v1/enterprises/{}/file.zip", world.seed.enterprise);
    let (status, headers, body) = download(&app, &supervisor.token, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    names.sort();
    let photo = format!("photos/{}.jpg", world.photo);
    assert!(names.contains(&"一企一档.json".to_owned()), "{names:?}");
    assert!(names.contains(&"隐患台账.csv".to_owned()), "{names:?}");
    assert!(names.contains(&photo), "{names:?}");
    let mut json = String::new();
    zip.by_name("一企一档.json")
        .unwrap()
        .read_to_string(&mut json)
        .unwrap();
    let file: serde_json::Value = serde_json::from_str(&json).unwrap();
    let major = file["hazards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hazard"]["id"] == world.major.as_str())
        .unwrap();
    assert_eq!(
        major["photos"][0]["sha256"],
        world.photo.as_str(),
        "the file lists the photos"
    );
    let mut csv = Vec::new();
    zip.by_name("隐患台账.csv")
        .unwrap()
        .read_to_end(&mut csv)
        .unwrap();
    assert!(csv.starts_with(b"\xEF\xBB\xBF"));
    assert_eq!(
        String::from_utf8_lossy(&csv).lines().count(),
        1 + 4,
        "heads and four hazards"
    );
    let mut bytes = Vec::new();
    zip.by_name(&photo)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let (_, _, served) = download(
        &app,
        &supervisor.token,
        &format!("/api/v1/photos/{}", world.photo),
    )
    .await;
    assert_eq!(bytes, served, "the display copy the photo route serves");
    // The JSON route lists the photos too now.
    let (_, json) = app
        .get(
            &supervisor.token,
            &format!("/api/v1/enterprises/{}/file", world.seed.enterprise),
        )
        .await;
    assert!(json.to_string().contains(&world.photo));

    let other = app.login(users::OTHER_SUPERVISOR).await;
    let (status, _, _) = download(&app, &other.token, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

trait ThenText {
    async fn then_text(self) -> (StatusCode, String);
}

impl<F: std::future::Future<Output = (StatusCode, reqwest::header::HeaderMap, Vec<u8>)>> ThenText
    for F
{
    async fn then_text(self) -> (StatusCode, String) {
        let (status, _, body) = self.await;
        (status, String::from_utf8(body).unwrap())
    }
}

tests::on_every_backend!(
    the_ledger_workbook_holds_every_hazard_of_the_scope_with_its_history,
    the_ledger_filters_and_scopes,
    monthly_statistics_per_township,
    the_enterprise_file_zip_holds_the_file_the_ledger_and_the_photos,
);
