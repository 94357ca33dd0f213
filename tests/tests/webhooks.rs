//! Events out, on SQLite and PostgreSQL: a receiver that answers 500 twice gets the event on the
//! third attempt, each attempt signed with HMAC-SHA256 that verifies with the webhook's secret;
//! the delivery log shows the attempts to the organisation's admin and to nobody else; time
//! derives overdue and deadline reminders once; the inbox shows a role what concerns its scope
//! only. And the server binary killed with SIGKILL between a change and its delivery delivers
//! it after a restart.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use server::Clock as _;
use tests::world::{act, populate};
use tests::{Backend, TestApp, spawn_app_with, users};

/// What a receiver got: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 that answers `fail_first` requests with 500, then 200.
async fn receiver(listener: tokio::net::TcpListener, fail_first: usize) -> Received {
    let got: Received = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let mut all = store.lock().unwrap();
                all.push((headers, body.to_vec()));
                if all.len() <= fail_first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    got
}

/// Checks a delivery's signature as a receiver would.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) {
    let ts: i64 = headers["x-inspect-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = headers["x-inspect-signature"].to_str().unwrap();
    assert_eq!(
        sig,
        server::webhooks::signature(secret, ts, body),
        "signature"
    );
    assert_ne!(sig, server::webhooks::signature("another secret", ts, body));
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn fast(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |c| {
        c.webhook_poll_interval = Duration::from_millis(20);
        c.webhook_retry_base = Duration::from_secs(1);
    })
    .await
}

async fn a_failing_receiver_gets_the_event_on_the_third_attempt(app: TestApp) {
    let world = populate(&app).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = receiver(listener, 2).await;
    // Registered after the world was made: what happened before is not sent.
    app.clock.advance(jiff::SignedDuration::from_secs(1));
    let (webhook, secret) =
        server::webhooks::register(&app.state.db, app.clock.now(), &world.seed.township, &url)
            .await
            .unwrap();

    let manager = app.login(users::MANAGER).await;
    act(
        &app,
        &manager.token,
        &world.overdue,
        json!({"kind": "rectification_submitted", "note": "已更换配电箱锁具", "photos": []}),
    )
    .await;
    for attempt in 1..=3 {
        wait_for("an attempt", || got.lock().unwrap().len() >= attempt).await;
        // The retry is due after the back-off, on the server's clock.
        app.clock.advance(jiff::SignedDuration::from_secs(60));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "two failures, one success, nothing more");
    let delivery = got[0].0["x-inspect-delivery"].clone();
    for (headers, body) in &got {
        verify(&secret, headers, body);
        assert_eq!(
            headers["x-inspect-delivery"], delivery,
            "the same delivery each time"
        );
        assert_eq!(headers["x-inspect-event"], "hazard.rectification_submitted");
    }
    let body: Value = serde_json::from_slice(&got[2].1).unwrap();
    assert_eq!(body["type"], "hazard.rectification_submitted");
    assert_eq!(body["hazard_id"], world.overdue.as_str());
    assert_eq!(body["township_id"], world.seed.township.as_str());
    assert_eq!(body["detail"]["note"], "已更换配电箱锁具");

    // The log: the township's supervisor reads it; an inspector may not; another township sees
    // nothing of it.
    let supervisor = app.login(users::SUPERVISOR).await;
    let (status, log) = app
        .get(&supervisor.token, "/api/v1/webhooks/deliveries")
        .await;
    assert_eq!(status, 200, "{log}");
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["webhook_id"], webhook.as_str());
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_status"], 200);
    assert!(log[0]["delivered_at"].is_i64());
    let (_, hooks) = app.get(&supervisor.token, "/api/v1/webhooks").await;
    assert_eq!(hooks[0]["url"], url.as_str());
    assert!(
        !hooks.to_string().contains(&secret),
        "the secret is never shown again"
    );
    let inspector = app.login(users::INSPECTOR).await;
    let (status, _) = app
        .get(&inspector.token, "/api/v1/webhooks/deliveries")
        .await;
    assert_eq!(status, 403);
    let other = app.login(users::OTHER_SUPERVISOR).await;
    let (status, log) = app.get(&other.token, "/api/v1/webhooks/deliveries").await;
    assert_eq!((status.as_u16(), log), (200, json!([])));
    let (_, hooks) = app.get(&other.token, "/api/v1/webhooks").await;
    assert_eq!(hooks, json!([]));
    for path in ["/api/v1/webhooks", "/api/v1/webhooks/deliveries"] {
        let (status, _) = app.get("no-such-token", path).await;
        assert_eq!(status, 401, "{path}");
    }
}

async fn time_derives_reminders_once_and_the_inbox_keeps_to_its_scope(app: TestApp) {
    let world = populate(&app).await;
    let now = app.clock.now();
    let derive = || {
        server::webhooks::derive_timed(
            &app.state.db,
            server::clock::to_millis(now),
            server::clock::china_date(now),
            20,
            2 * 3600 * 1000,
        )
    };
    derive().await.unwrap();
    derive().await.unwrap();
    let supervisor = app.login(users::SUPERVISOR).await;
    let (status, inbox) = app.get(&supervisor.token, "/api/v1/inbox").await;
    assert_eq!(status, 200, "{inbox}");
    let items = inbox.as_array().unwrap();
    let of = |kind: &str, hazard: &str| {
        items
            .iter()
            .filter(|i| i["kind"] == kind && i["hazard_id"] == hazard)
            .count()
    };
    // 2026-03-10: the hazard due 03-05 is overdue; the one due 03-20 (major) and 03-25
    // (submitted, so no longer owed) differ.
    assert_eq!(
        of("hazard.overdue", &world.overdue),
        1,
        "once, however often derived"
    );
    assert_eq!(of("reminder.deadline_near", &world.major), 1);
    assert_eq!(of("hazard.overdue", &world.major), 0);
    assert_eq!(of("reminder.deadline_near", &world.submitted), 0);
    assert_eq!(of("hazard.closed", &world.closed), 1);
    let overdue = items
        .iter()
        .find(|i| i["kind"] == "hazard.overdue")
        .unwrap();
    assert_eq!(overdue["label"], "隐患整改已逾期 / rectification overdue");
    assert_eq!(overdue["detail"]["deadline"], "2026-03-05");
    // The major hazard was found at 10:00 on 02-10 and never reported: late.
    assert_eq!(of("major_hazard.report_late", &world.major), 1);
    for i in items {
        assert!(i["label"].as_str().unwrap().contains(" / "), "{i}");
    }

    // Scope: another township's supervisor and another agency's inspector see none of these.
    for user in [users::OTHER_SUPERVISOR, users::OTHER_INSPECTOR] {
        let s = app.login(user).await;
        let (_, inbox) = app.get(&s.token, "/api/v1/inbox").await;
        for i in inbox.as_array().unwrap() {
            assert_eq!(
                i["hazard_id"],
                world.other_hazard.as_str(),
                "{user} sees {i}"
            );
        }
    }
    // `since` returns only what the server added later.
    let newest = items
        .iter()
        .map(|i| i["created_at"].as_i64().unwrap())
        .max()
        .unwrap();
    let (_, later) = app
        .get(&supervisor.token, &format!("/api/v1/inbox?since={newest}"))
        .await;
    assert_eq!(later, json!([]));
}

/// What an SMTP sink received: (envelope recipient, the message as sent).
type Mails = Arc<Mutex<Vec<(String, String)>>>;

/// A minimal SMTP server on 127.0.0.1 that accepts every message.
async fn smtp_sink() -> (u16, Mails) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails: Mails = Arc::default();
    let store = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let (mut rcpt, mut data, mut in_data) = (String::new(), String::new(), false);
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            store
                                .lock()
                                .unwrap()
                                .push((rcpt.clone(), std::mem::take(&mut data)));
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let reply: &[u8] = match line.get(..4).unwrap_or("") {
                        "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "MAIL" => b"250 ok\r\n",
                        "RCPT" => {
                            rcpt = line
                                .trim_start_matches("RCPT TO:")
                                .trim_matches(['<', '>'])
                                .to_owned();
                            b"250 ok\r\n"
                        }
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"500 what\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, mails)
}

/// A reminder reaches the supervisor's mailbox through SMTP, with a Chinese subject and body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_reminder_is_emailed_through_smtp() {
    use base64::Engine as _;
    let (port, mails) = smtp_sink().await;
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.webhook_poll_interval = Duration::from_millis(20);
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.smtp_from = "reminders@inspect.example.cn".into();
    })
    .await
    .unwrap();
    let world = populate(&app).await;
    server::mail::set_email(
        &app.state.db,
        users::SUPERVISOR,
        Some("supervisor@town.example.cn"),
    )
    .await
    .unwrap();
    assert!(
        server::mail::set_email(
            &app.state.db,
            users::SUPERVISOR,
            Some("x@y\r\nRCPT TO:<z@w>")
        )
        .await
        .is_err()
    );
    let now = app.clock.now();
    server::webhooks::derive_timed(
        &app.state.db,
        server::clock::to_millis(now),
        server::clock::china_date(now),
        3,
        2 * 3600 * 1000,
    )
    .await
    .unwrap();
    wait_for("a reminder email", || {
        mails
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.contains("Subject:"))
    })
    .await;
    let got = mails.lock().unwrap().clone();
    assert!(
        got.iter().all(|(to, _)| to == "supervisor@town.example.cn"),
        "{got:?}"
    );
    let decoded: Vec<(String, String)> = got
        .iter()
        .map(|(_, m)| {
            let (head, body) = m.split_once("\n\n").unwrap();
            let subject = head
                .lines()
                .find_map(|l| l.strip_prefix("Subject: =?UTF-8?B?"))
                .unwrap();
            let subject = base64::engine::general_purpose::STANDARD
                .decode(subject.trim_end_matches("?=").trim())
                .unwrap();
            let body: String = body.lines().collect();
            let body = base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .unwrap();
            (
                String::from_utf8(subject).unwrap(),
                String::from_utf8(body).unwrap(),
            )
        })
        .collect();
    let overdue = decoded
        .iter()
        .find(|(s, _)| s.contains("隐患整改已逾期"))
        .unwrap_or_else(|| panic!("{decoded:?}"));
    assert!(
        overdue.1.contains("配电箱未上锁且无警示标识"),
        "{}",
        overdue.1
    );
    assert!(overdue.1.contains(&world.overdue));
    // Sent once: the next pass finds nothing due.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mails.lock().unwrap().len(), got.len());
}

/// Reads an event stream until `want` appears in it, or `wait` passes; returns what was read.
async fn read_stream(resp: &mut reqwest::Response, want: &str, wait: Duration) -> String {
    let deadline = tokio::time::Instant::now() + wait;
    let mut text = String::new();
    while !text.contains(want) {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            _ => break,
        }
    }
    text
}

/// The pages' change stream: a supervisor's stream hears of a change in the township at once;
/// another township's supervisor's stream hears nothing of it; no token, no stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_stream_tells_each_page_of_changes_in_its_scope_only() {
    let app = fast(Backend::Sqlite).await.unwrap();
    let world = populate(&app).await;
    let open = |token: String| {
        let (client, base) = (app.client.clone(), app.base.clone());
        async move {
            client
                .get(format!("{base}/api/v1/events/stream"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let supervisor = app.login(users::SUPERVISOR).await;
    let other = app.login(users::OTHER_SUPERVISOR).await;
    let mut mine = open(supervisor.token.clone()).await;
    let mut theirs = open(other.token.clone()).await;
    assert_eq!(mine.status(), 200);
    assert_eq!(mine.headers()["content-type"], "text/event-stream");
    let manager = app.login(users::MANAGER).await;
    act(
        &app,
        &manager.token,
        &world.overdue,
        json!({"kind": "rectification_submitted", "note": "已整改", "photos": []}),
    )
    .await;
    let got = read_stream(&mut mine, &world.overdue, Duration::from_secs(10)).await;
    assert!(got.contains("event: change"), "{got}");
    assert!(got.contains(&world.overdue), "{got}");
    let heard = read_stream(&mut theirs, "event: change", Duration::from_millis(800)).await;
    assert!(
        !heard.contains("event: change"),
        "another township heard: {heard}"
    );
    let (status, _) = app.get("no-such-token", "/api/v1/events/stream").await;
    assert_eq!(status, 401);
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_receiver_gets_the_event_on_the_third_attempt() {
        let app = super::fast(tests::Backend::Sqlite).await.unwrap();
        super::a_failing_receiver_gets_the_event_on_the_third_attempt(app).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn time_derives_reminders_once_and_the_inbox_keeps_to_its_scope() {
        let app = super::fast(tests::Backend::Sqlite).await.unwrap();
        super::time_derives_reminders_once_and_the_inbox_keeps_to_its_scope(app).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_receiver_gets_the_event_on_the_third_attempt() {
        let Some(app) = super::fast(tests::Backend::Postgres).await else {
            return;
        };
        super::a_failing_receiver_gets_the_event_on_the_third_attempt(app).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn time_derives_reminders_once_and_the_inbox_keeps_to_its_scope() {
        let Some(app) = super::fast(tests::Backend::Postgres).await else {
            return;
        };
        super::time_derives_reminders_once_and_the_inbox_keeps_to_its_scope(app).await;
    }
}

/// SIGKILL after the change is acknowledged and before any delivery could succeed (the receiver
/// is not listening yet): after a restart the event arrives, signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_between_a_change_and_its_delivery_delivers_it_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("inspect.db").display());
    // The world is made by an in-process server on the same directory, then that one stops.
    let (world, secret, hook_port) = {
        let (path, url) = (dir.path().to_owned(), database_url.clone());
        let app = spawn_app_with(Backend::Sqlite, move |c| {
            c.data_dir = path;
            c.database_url = Some(url);
        })
        .await
        .unwrap();
        let world = populate(&app).await;
        // A port nothing listens on yet.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (_, secret) = server::webhooks::register(
            &app.state.db,
            jiff::Timestamp::now(),
            &world.seed.township,
            &format!("http://127.0.0.1:{port}/hook"),
        )
        .await
        .unwrap();
        app.state.db.close().await;
        drop(app);
        (world, secret, port)
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (mut child, base) = tests::start_server_binary(
        dir.path(),
        &database_url,
        &[("INSPECT_WEBHOOK_RETRY_SECS", "1")],
    );
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": users::MANAGER, "password": tests::PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let r = client
        .post(format!("{base}/api/v1/hazards/{}/events", world.overdue))
        .bearer_auth(&token)
        .json(&json!({"kind": "rectification_submitted", "note": "kill -9 之前", "photos": []}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", hook_port))
        .await
        .unwrap();
    let got = receiver(listener, 0).await;
    let (mut child, _) = tests::start_server_binary(
        dir.path(),
        &database_url,
        &[("INSPECT_WEBHOOK_RETRY_SECS", "1")],
    );
    let delivered = {
        let mut found = None;
        for _ in 0..600 {
            if let Some((h, b)) = got
                .lock()
                .unwrap()
                .iter()
                .find(|(h, _)| h["x-inspect-event"] == "hazard.rectification_submitted")
            {
                found = Some((h.clone(), b.clone()));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        found
    };
    let _ = child.kill();
    let _ = child.wait();
    let (headers, body) = delivered.expect("the event was delivered after the restart");
    verify(&secret, &headers, &body);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["hazard_id"], world.overdue.as_str());
    assert_eq!(body["detail"]["note"], "kill -9 之前");
}
