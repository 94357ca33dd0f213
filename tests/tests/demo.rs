//! Demo mode fills an empty server with a realistic world in every state, through the real rules.
#![allow(clippy::unwrap_used)]

use tests::TestApp;

async fn demo_data_covers_every_state_and_its_logins_work(app: TestApp) {
    server::demo::fill(&app.state).await.unwrap();
    // A second run refuses instead of duplicating.
    assert!(server::demo::fill(&app.state).await.is_err());

    for (user, _) in server::demo::DEMO_LOGINS {
        let r = app
            .client
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&serde_json::json!({ "username": user, "password": server::demo::DEMO_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{user} logs in");
    }
    let sup = app
        .login_with("demo_supervisor", server::demo::DEMO_PASSWORD)
        .await;
    let (_, ents) = app.get(&sup.token, "/api/v1/enterprises").await;
    assert_eq!(ents.as_array().unwrap().len(), 50);
    let (_, visits) = app.get(&sup.token, "/api/v1/visits?limit=1000").await;
    assert!(visits.as_array().unwrap().len() >= 150);
    let (_, hazards) = app.get(&sup.token, "/api/v1/hazards?limit=1000").await;
    let hazards = hazards.as_array().unwrap();
    for state in ["notified", "in_progress", "submitted", "accepted", "closed"] {
        assert!(
            hazards.iter().any(|h| h["state"] == state),
            "some hazard is {state}"
        );
    }
    assert!(
        hazards.iter().any(|h| h["overdue"] == true),
        "some are overdue"
    );
    let majors: Vec<_> = hazards.iter().filter(|h| h["grade"] == "major").collect();
    assert!(!majors.is_empty());
    assert!(
        majors
            .iter()
            .all(|h| !h["criterion"].as_str().unwrap().is_empty()),
        "major hazards cite their criterion"
    );
    assert!(
        hazards
            .iter()
            .all(|h| h["photo_count"].as_i64().unwrap() >= 1)
    );
    let categories: std::collections::HashSet<_> = hazards
        .iter()
        .map(|h| h["category"].as_str().unwrap())
        .collect();
    assert!(categories.len() >= 8, "many categories: {categories:?}");
}

tests::on_every_backend!(demo_data_covers_every_state_and_its_logins_work);
