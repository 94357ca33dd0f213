//! Imports from the web (`POST /api/v1/imports/{kind}`): each role imports only into its own
//! area. A township's supervisor imports enterprises of the township (a row of another
//! township is a row error, and the file is refused whole), an agency admin the agency's users
//! and contracts; every other role is refused, and no token is 401.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::Value;
use server::model::Uscc;
use tests::{Backend, TestApp, spawn_app, users};

async fn send(app: &TestApp, token: &str, kind: &str, body: &str) -> (StatusCode, Value) {
    let mut r = app
        .client
        .post(format!("{}/api/v1/imports/{kind}", app.base))
        .header("content-type", "text/csv")
        .body(body.to_owned());
    if !token.is_empty() {
        r = r.bearer_auth(token);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn uscc(base: &str) -> String {
    Uscc::with_check_digit(base).unwrap().as_str().to_owned()
}

async fn enterprise_names(app: &TestApp, token: &str) -> Vec<String> {
    let (_, list) = app.get(token, "/api/v1/enterprises").await;
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn each_role_imports_only_into_its_own_area(app: TestApp) {
    let seed = app.seed().await;
    let sup = app.login(users::SUPERVISOR).await;
    let header = "企业名称,统一社会信用代码,地址,乡镇,行业\n";
    let own = format!(
        "新建五金厂,{},城东路 8 号,城东街道,机械\n",
        uscc("91330100MA2000201")
    );
    let foreign = format!(
        "河西纸箱厂,{},河西路 2 号,河西镇,包装\n",
        uscc("91330100MA2000202")
    );

    // Another township's enterprise in the file: refused whole, the row and column named.
    let (status, body) = send(
        &app,
        &sup.token,
        "enterprises",
        &format!("{header}{own}{foreign}"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "import_rejected");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["row"], 3);
    let text = errors[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("第 3 行 D 列「乡镇」") && text.contains("只能导入本辖区的企业"),
        "{text}"
    );
    assert!(
        !enterprise_names(&app, &sup.token)
            .await
            .contains(&"新建五金厂".to_owned())
    );

    // Its own township's: stored, and listed.
    let (status, body) = send(&app, &sup.token, "enterprises", &format!("{header}{own}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["imported"].as_array().unwrap().len(), 1);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("已导入 1 家企业")
    );
    assert!(
        enterprise_names(&app, &sup.token)
            .await
            .contains(&"新建五金厂".to_owned())
    );

    // The other township's supervisor cannot import into this one either.
    let other = app.login(users::OTHER_SUPERVISOR).await;
    let again = format!(
        "{header}又一家厂,{},城东路 9 号,城东街道,机械\n",
        uscc("91330100MA2000203")
    );
    let (status, _) = send(&app, &other.token, "enterprises", &again).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Users: an agency admin adds inspectors of the agency, never a supervisor, another
    // agency's staff or the head of an enterprise it serves.
    let admin = app.login(users::AGENCY_ADMIN).await;
    let users_csv = "用户名,姓名,角色,所属单位,初始密码\n\
                     new_inspector,李新,检查员,安邦安全咨询有限公司,long enough password\n\
                     rogue_supervisor,王假,监管人员,城东街道,long enough password\n\
                     poacher,赵,检查员,恒安技术服务中心,long enough password\n\
                     client_head,钱,企业负责人,宏达机械厂,long enough password\n";
    let (status, body) = send(&app, &admin.token, "users", users_csv).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let rows: Vec<u64> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"].as_u64().unwrap())
        .collect();
    // A client enterprise's head is not the agency's to create either.
    assert_eq!(rows, vec![3, 4, 5], "{body}");
    let new_inspector_logs_in = || async {
        let login =
            serde_json::json!({"username": "new_inspector", "password": "long enough password"});
        app.post("", "/api/v1/auth/login", &login).await.0 == StatusCode::OK
    };
    assert!(
        !new_inspector_logs_in().await,
        "nothing of the file was stored"
    );
    let only_own = "用户名,姓名,角色,所属单位,初始密码\n\
                    new_inspector,李新,检查员,安邦安全咨询有限公司,long enough password\n";
    let (status, body) = send(&app, &admin.token, "users", only_own).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(new_inspector_logs_in().await);

    // Contracts: the agency's own only.
    let enterprise = "宏达机械厂";
    let contracts = format!(
        "服务机构,企业,起始日期,终止日期,已备案\n恒安技术服务中心,{enterprise},2026-01-01,2026-12-31,是\n"
    );
    let (status, body) = send(&app, &admin.token, "contracts", &contracts).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["errors"][0]["text"]
            .as_str()
            .unwrap()
            .contains("只能导入本机构的合同"),
        "{body}"
    );

    // Who may not import at all, a file that is not a table, an unknown kind, no token.
    for (who, kind) in [
        (users::INSPECTOR, "enterprises"),
        (users::MANAGER, "users"),
        (users::AGENCY_ADMIN, "enterprises"),
        (users::SUPERVISOR, "contracts"),
        (users::INSPECTOR, "contracts"),
    ] {
        let s = app.login(who).await;
        let (status, body) = send(&app, &s.token, kind, header).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who} {kind}: {body}");
    }
    let (status, body) = send(&app, &sup.token, "enterprises", "名称\n某厂\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "import_unreadable", "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("表头缺少列"),
        "{body}"
    );
    let (status, _) = send(&app, &sup.token, "vehicles", header).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&app, "", "enterprises", header).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let _ = seed;
}

tests::on_every_backend!(each_role_imports_only_into_its_own_area);

#[tokio::test]
async fn an_empty_body_is_invalid_input() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.seed().await;
    let sup = app.login(users::SUPERVISOR).await;
    let (status, body) = send(&app, &sup.token, "enterprises", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "import_empty");
}
