//! Sessions at the HTTP edge, on SQLite and PostgreSQL: login, refresh, logout, devices, token
//! expiry, login throttling, and the headers every answer carries. The shared fixtures are in
//! `common/`.

#[macro_use]
mod common;
use common::*;

on_every_backend!(
    health_check_answers_ok,
    every_answer_carries_the_security_headers,
    repeated_failed_logins_lock_the_account_with_429_until_the_lockout_ends,
    a_forged_forwarded_for_header_does_not_escape_the_address_limit,
    a_burst_of_parallel_guesses_is_cut_off_at_the_limit,
    login_with_the_right_password_returns_tokens_and_the_user,
    login_with_a_wrong_password_is_refused_with_401,
    login_as_an_unknown_user_is_refused_like_a_wrong_password,
    refresh_rotates_the_pair_and_the_old_refresh_token_is_refused,
    logout_revokes_the_session,
    a_device_is_enrolled_listed_and_revoked_and_its_tokens_are_then_refused,
    an_agency_admin_may_revoke_staff_devices_but_a_stranger_may_not,
    an_access_token_is_refused_once_the_clock_passes_its_expiry,
    missing_and_unknown_tokens_are_refused_with_a_clear_code,
    a_disabled_account_cannot_log_in_and_its_sessions_end,
    an_admin_manages_its_own_organisations_accounts_only,
);

async fn a_disabled_account_cannot_log_in_and_its_sessions_end(app: TestApp) {
    app.seed().await;
    let token = app.access_token("inspector").await;
    assert_eq!(app.get("/api/v1/me", &token).await.status(), StatusCode::OK);
    let db = &app.state.db;
    let id = server::users::id_of(db, "inspector").await.expect("id");
    server::users::set_disabled(db, &id, Some(app.clock.now()))
        .await
        .expect("disable");
    // The session in use ends at once.
    assert_eq!(
        app.get("/api/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The right password is refused with a reason; a wrong one as any wrong one.
    let refused = app.login_response("inspector", PASSWORD).await;
    assert_eq!(
        error_code(refused, StatusCode::FORBIDDEN).await,
        "account_disabled"
    );
    let wrong = app.login_response("inspector", "not the password").await;
    assert_eq!(
        error_code(wrong, StatusCode::UNAUTHORIZED).await,
        "invalid_credentials"
    );
    server::users::set_disabled(db, &id, None)
        .await
        .expect("enable");
    assert_eq!(
        app.login_response("inspector", PASSWORD).await.status(),
        StatusCode::OK
    );

    // A reset password: the old one fails, the new one works, sessions before it end.
    let before = app.access_token("inspector").await;
    server::users::reset_password(db, &id, "a brand new secret".into(), app.clock.now())
        .await
        .expect("reset");
    assert_eq!(
        app.get("/api/v1/me", &before).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_response("inspector", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_response("inspector", "a brand new secret")
            .await
            .status(),
        StatusCode::OK
    );
    assert!(
        server::users::reset_password(db, &id, "short".into(), app.clock.now())
            .await
            .is_err()
    );
}

async fn an_admin_manages_its_own_organisations_accounts_only(app: TestApp) {
    app.seed().await;
    let admin = app.access_token("admin").await;
    let listed: Vec<Value> = app
        .get("/api/v1/users", &admin)
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = listed
        .iter()
        .map(|u| u["username"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        vec!["admin", "inspector"],
        "the agency's own accounts"
    );
    assert!(!listed.iter().any(|u| u.get("password_hash").is_some()));
    let inspector = listed
        .iter()
        .find(|u| u["username"] == "inspector")
        .expect("inspector");
    let id = inspector["id"].as_str().expect("id").to_owned();
    let stranger = server::users::id_of(&app.state.db, "stranger")
        .await
        .expect("id");
    let me = server::users::id_of(&app.state.db, "admin")
        .await
        .expect("id");

    let inspector_token = app.access_token("inspector").await;
    let r = app
        .post(
            &format!("/api/v1/users/{id}/disable"),
            Some(&admin),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let row: Value = r.json().await.expect("json");
    assert!(row["disabled_at"].is_i64());
    assert_eq!(
        app.get("/api/v1/me", &inspector_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .post(
            &format!("/api/v1/users/{id}/enable"),
            Some(&admin),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(
            &format!("/api/v1/users/{id}/password"),
            Some(&admin),
            &serde_json::json!({"password": "reset by the admin"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.login_response("inspector", "reset by the admin")
            .await
            .status(),
        StatusCode::OK
    );
    let short = app
        .post(
            &format!("/api/v1/users/{id}/password"),
            Some(&admin),
            &serde_json::json!({"password": "short"}),
        )
        .await;
    assert_eq!(
        error_code(short, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_password"
    );

    // Another agency's account is not there for this admin; its own account may not be disabled.
    let r = app
        .post(
            &format!("/api/v1/users/{stranger}/disable"),
            Some(&admin),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/api/v1/users/{me}/disable"),
            Some(&admin),
            &Value::Null,
        )
        .await;
    assert_eq!(
        error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
        "cannot_disable_self"
    );
    // Inspectors and managers manage nothing (the inspector's password was reset above).
    for user in ["stranger", "manager"] {
        let token = app.access_token(user).await;
        assert_eq!(
            app.get("/api/v1/users", &token).await.status(),
            StatusCode::FORBIDDEN
        );
        let r = app
            .post(
                &format!("/api/v1/users/{me}/disable"),
                Some(&token),
                &Value::Null,
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    // The township's supervisor sees the township's accounts only.
    let sup = app.access_token("supervisor").await;
    let listed: Vec<Value> = app
        .get("/api/v1/users", &sup)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["username"], "supervisor");
}

async fn health_check_answers_ok(app: TestApp) {
    let response = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
}

/// API answers (success and error) are never cached or sniffed; no page leaks its address as a
/// referrer (issue #19, item 10).
async fn every_answer_carries_the_security_headers(app: TestApp) {
    app.seed().await;
    let token = app.access_token("inspector").await;
    let json_answers = [
        app.get("/api/v1/me", &token).await,
        app.get("/api/v1/hazards", &token).await,
        app.get(
            "/api/v1/hazards/00000000-0000-4000-8000-000000000000",
            &token,
        )
        .await,
        app.login_response("inspector", "wrong").await,
        app.post("/api/v1/auth/login", None, &serde_json::json!({"bad": 1}))
            .await,
    ];
    for response in json_answers {
        let h = response.headers();
        assert!(
            h[reqwest::header::CONTENT_TYPE]
                .to_str()
                .expect("ascii content type")
                .starts_with("application/json"),
            "{h:?}"
        );
        assert_eq!(h["cache-control"], "no-store", "{}", response.url());
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
    }
    let page = app.client.get(app.url("/")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
}

/// 40 wrong passwords then the right one no longer succeed (issue #19, item 3): after five
/// failures the account answers 429 with `Retry-After`, even for the right password, until the
/// lockout has passed. An unknown username is locked the same way, so the answers do not tell
/// which accounts exist.
async fn repeated_failed_logins_lock_the_account_with_429_until_the_lockout_ends(app: TestApp) {
    app.seed().await;
    for username in ["inspector", "nobody"] {
        for spelling in [
            username.to_owned(),
            username.to_uppercase(),
            format!(" {username} "),
        ]
        .iter()
        .cycle()
        .take(5)
        {
            // Other spellings of the name are the same account to the throttle.
            let response = app.login_response(spelling, "not the password").await;
            assert_eq!(
                error_code(response, StatusCode::UNAUTHORIZED).await,
                "invalid_credentials"
            );
        }
        let response = app.login_response(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert_eq!(retry_after, 15 * 60);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "too_many_attempts");
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .contains("秒后再试")
        );
    }
    // Another account from the same address is not locked.
    assert_eq!(
        app.login_response("manager", PASSWORD).await.status(),
        StatusCode::OK
    );
    app.clock.advance(SignedDuration::from_mins(15));
    assert_eq!(
        app.login_response("inspector", PASSWORD).await.status(),
        StatusCode::OK
    );
}

/// An attacker spreading guesses over many accounts and naming a new client address in
/// `X-Forwarded-For` each time is still one address to the server: after 50 failures from it,
/// the next attempt (another account, the right password even) answers 429.
async fn a_forged_forwarded_for_header_does_not_escape_the_address_limit(app: TestApp) {
    app.seed().await;
    for i in 0..50 {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("x-real-ip", format!("198.51.100.{i}"))
            .json(&json!({"username": format!("guess{i}"), "password": "x"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "192.0.2.77")
        .json(&json!({"username": "manager", "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(
        error_code(response, StatusCode::TOO_MANY_REQUESTS).await,
        "too_many_attempts"
    );
}

/// 80 parallel guesses at one account: at most five are checked, the rest answer 429 at once,
/// and the server stays responsive.
async fn a_burst_of_parallel_guesses_is_cut_off_at_the_limit(app: TestApp) {
    app.seed().await;
    let guesses = (0..80).map(|i| {
        let app = &app;
        async move {
            app.login_response("inspector", &format!("guess {i}"))
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + refused, 80, "{statuses:?}");
    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
}

async fn login_with_the_right_password_returns_tokens_and_the_user(app: TestApp) {
    let world = app.seed().await;

    let session = app.login("inspector").await;

    assert_eq!(session["user"]["role"], "inspector");
    assert_eq!(session["user"]["org_id"], world.agency_a.as_str());
    assert_eq!(session["user"]["display_name"], "inspector");
    let now: Timestamp = NOW.parse().expect("timestamp");
    let access_expiry: Timestamp = session["access_expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("rfc3339");
    let refresh_expiry: Timestamp = session["refresh_expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("rfc3339");
    assert_eq!(access_expiry, now + SignedDuration::from_mins(15));
    assert_eq!(session["access_expires_in"], 15 * 60);
    assert_eq!(refresh_expiry, now + SignedDuration::from_hours(24 * 30));
    let me: Value = app
        .get("/api/v1/me", &token(&session, "access_token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["username"], "inspector");
    assert_eq!(me["device_id"], Value::Null);
}

async fn login_with_a_wrong_password_is_refused_with_401(app: TestApp) {
    app.seed().await;
    let response = app.login_response("inspector", "not the password").await;
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "invalid_credentials"
    );
}

async fn login_as_an_unknown_user_is_refused_like_a_wrong_password(app: TestApp) {
    app.seed().await;
    let response = app.login_response("nobody", PASSWORD).await;
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "invalid_credentials"
    );
}

async fn refresh_rotates_the_pair_and_the_old_refresh_token_is_refused(app: TestApp) {
    app.seed().await;
    let first = app.login("inspector").await;

    let response = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&first, "refresh_token")}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.expect("json");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["user"]["username"], "inspector");
    assert_eq!(
        app.get("/api/v1/me", &token(&second, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
    // The access token issued with the spent refresh token goes with it.
    let old_access = app.get("/api/v1/me", &token(&first, "access_token")).await;
    assert_eq!(
        error_code(old_access, StatusCode::UNAUTHORIZED).await,
        "token_revoked"
    );

    let reuse = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&first, "refresh_token")}),
        )
        .await;
    assert_eq!(
        error_code(reuse, StatusCode::UNAUTHORIZED).await,
        "token_revoked"
    );
    // Reuse of a spent refresh token means it leaked: the whole session is ended.
    let after_reuse = app.get("/api/v1/me", &token(&second, "access_token")).await;
    assert_eq!(
        error_code(after_reuse, StatusCode::UNAUTHORIZED).await,
        "token_revoked"
    );
}

async fn logout_revokes_the_session(app: TestApp) {
    app.seed().await;
    let session = app.login("inspector").await;
    let other_session = app.login("inspector").await;
    let access = token(&session, "access_token");

    let response = app
        .post("/api/v1/auth/logout", Some(&access), &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        error_code(
            app.get("/api/v1/me", &access).await,
            StatusCode::UNAUTHORIZED
        )
        .await,
        "token_revoked"
    );
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&session, "refresh_token")}),
        )
        .await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    // Other sessions of the same user are untouched.
    assert_eq!(
        app.get("/api/v1/me", &token(&other_session, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn a_device_is_enrolled_listed_and_revoked_and_its_tokens_are_then_refused(app: TestApp) {
    app.seed().await;
    let access = app.access_token("inspector").await;

    let response = app
        .post(
            "/api/v1/devices",
            Some(&access),
            &json!({"name": "张工的手机", "platform": "android"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let enrolled: Value = response.json().await.expect("json");
    let device_id = enrolled["device_id"]
        .as_str()
        .expect("device id")
        .to_owned();
    let actor_id = enrolled["actor_id"].as_str().expect("actor id");
    assert_eq!(actor_id.len(), 32);
    assert!(actor_id.chars().all(|c| c.is_ascii_hexdigit()));

    let listed: Value = app
        .get("/api/v1/devices", &access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], device_id.as_str());
    assert_eq!(listed[0]["revoked_at"], Value::Null);

    let bound = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "inspector", "password": PASSWORD, "device_id": device_id}),
        )
        .await;
    assert_eq!(bound.status(), StatusCode::OK);
    let bound: Value = bound.json().await.expect("json");
    let device_access = token(&bound, "access_token");
    let me: Value = app
        .get("/api/v1/me", &device_access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["device_id"], device_id.as_str());

    let revoked = app
        .post(
            &format!("/api/v1/devices/{device_id}/revoke"),
            Some(&access),
            &json!({}),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);

    let refused = app.get("/api/v1/me", &device_access).await;
    assert_eq!(
        error_code(refused, StatusCode::UNAUTHORIZED).await,
        "device_revoked"
    );
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&bound, "refresh_token")}),
        )
        .await;
    assert_eq!(
        error_code(refresh, StatusCode::UNAUTHORIZED).await,
        "device_revoked"
    );
    let relogin = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "inspector", "password": PASSWORD, "device_id": device_id}),
        )
        .await;
    assert_eq!(
        error_code(relogin, StatusCode::UNAUTHORIZED).await,
        "device_revoked"
    );
    // The session that was not bound to the device goes on.
    assert_eq!(
        app.get("/api/v1/me", &access).await.status(),
        StatusCode::OK
    );
}

async fn an_agency_admin_may_revoke_staff_devices_but_a_stranger_may_not(app: TestApp) {
    app.seed().await;
    let inspector = app.access_token("inspector").await;
    let enrolled: Value = app
        .post(
            "/api/v1/devices",
            Some(&inspector),
            &json!({"name": "phone", "platform": "ios"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let path = format!(
        "/api/v1/devices/{}/revoke",
        enrolled["device_id"].as_str().expect("id")
    );

    let stranger = app.access_token("stranger").await;
    let refused = app.post(&path, Some(&stranger), &json!({})).await;
    assert_eq!(
        error_code(refused, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let supervisor = app.access_token("supervisor").await;
    assert_eq!(
        app.post(&path, Some(&supervisor), &json!({}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let admin = app.access_token("admin").await;
    let revoked = app.post(&path, Some(&admin), &json!({})).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let device: Value = revoked.json().await.expect("json");
    assert_eq!(device["revoked_at"], NOW);
}

async fn an_access_token_is_refused_once_the_clock_passes_its_expiry(app: TestApp) {
    app.seed().await;
    let session = app.login("inspector").await;
    let access = token(&session, "access_token");

    app.clock.advance(SignedDuration::from_mins(14));
    assert_eq!(
        app.get("/api/v1/me", &access).await.status(),
        StatusCode::OK
    );

    app.clock.advance(SignedDuration::from_mins(1));
    let refused = app.get("/api/v1/me", &access).await;
    assert_eq!(
        error_code(refused, StatusCode::UNAUTHORIZED).await,
        "token_expired"
    );

    // The refresh token still works and yields a usable access token.
    let refreshed: Value = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&session, "refresh_token")}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        app.get("/api/v1/me", &token(&refreshed, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );

    app.clock.advance(SignedDuration::from_hours(24 * 31));
    let expired = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": token(&refreshed, "refresh_token")}),
        )
        .await;
    assert_eq!(
        error_code(expired, StatusCode::UNAUTHORIZED).await,
        "token_expired"
    );
}

async fn missing_and_unknown_tokens_are_refused_with_a_clear_code(app: TestApp) {
    let missing = app
        .client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .expect("request");
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_eq!(
        error_code(missing, StatusCode::UNAUTHORIZED).await,
        "missing_token"
    );
    let unknown = app.get("/api/v1/me", "not-a-token").await;
    assert_eq!(
        error_code(unknown, StatusCode::UNAUTHORIZED).await,
        "invalid_token"
    );
}
