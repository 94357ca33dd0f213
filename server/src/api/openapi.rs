//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of the HTTP API, for integrations.
//!
//! Written by hand next to the routes (the route table in `api::routes` and the authorisation
//! matrix test in `tests/tests/authz.rs` name the same paths; that test checks every route is
//! described here).

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str, tag: &str, params: &[&str], ok: &str) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| {
            let (name, place) = p.split_once(':').unwrap_or((p, "path"));
            json!({ "name": name, "in": place, "required": place == "path", "schema": { "type": "string" } })
        })
        .collect();
    json!({
        "summary": summary,
        "tags": [tag],
        "parameters": parameters,
        "security": [{ "bearer": [] }],
        "responses": {
            ok: { "description": "OK" },
            "400": { "$ref": "#/components/responses/Error" },
            "401": { "$ref": "#/components/responses/Error" },
            "403": { "$ref": "#/components/responses/Error" },
            "404": { "$ref": "#/components/responses/Error" },
            "413": { "$ref": "#/components/responses/Error" },
            "422": { "$ref": "#/components/responses/Error" }
        }
    })
}

/// `op` with a JSON request body of `schema`.
fn with_body(mut operation: Value, schema: Value) -> Value {
    operation["requestBody"] = json!({
        "required": true,
        "content": { "application/json": { "schema": schema } }
    });
    operation
}

/// `op` whose 200 answer is a JSON body of `schema`.
fn answering(mut operation: Value, schema: Value) -> Value {
    operation["responses"]["200"] = json!({
        "description": "OK",
        "content": { "application/json": { "schema": schema } }
    });
    operation
}

/// A JSON object schema: `(name, type schema)` properties, the `required` ones named.
fn object(props: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: serde_json::Map<String, Value> = props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

fn string() -> Value {
    json!({ "type": "string" })
}

/// The event kinds a web action takes, with their fields (`api::actions::Action`).
pub const ACTION_KINDS: &[(&str, &[&str])] = &[
    ("notified", &[]),
    ("signed_for", &["signer"]),
    ("extension_requested", &["until", "reason"]),
    ("extension_granted", &["request", "until"]),
    ("extension_refused", &["request", "reason"]),
    ("rectification_submitted", &["note"]),
    ("verified", &["accepted", "note"]),
    ("reported_to_regulator", &["to"]),
    ("supervision_put", &["note"]),
    ("supervision_lifted", &["note"]),
    ("closed", &["note"]),
    ("reopened", &["reason"]),
    ("regraded", &["grade", "reason"]),
];

/// The body of `POST /hazards/{id}/events`: one object per kind, told apart by `kind`.
fn action_schema() -> Value {
    let variants: Vec<Value> = ACTION_KINDS
        .iter()
        .map(|(kind, fields)| {
            let mut props = vec![("kind", json!({ "type": "string", "const": kind }))];
            for f in fields.iter() {
                props.push((
                    f,
                    if *f == "accepted" {
                        json!({ "type": "boolean" })
                    } else {
                        string()
                    },
                ));
            }
            if *kind == "rectification_submitted" {
                props.push((
                    "photos",
                    json!({ "type": "array", "items": { "type": "object" } }),
                ));
            }
            let mut required = vec!["kind"];
            required.extend(fields.iter().copied());
            object(&props, &required)
        })
        .collect();
    json!({ "oneOf": variants, "discriminator": { "propertyName": "kind" } })
}

fn session_schema() -> Value {
    object(
        &[
            ("access_token", string()),
            (
                "access_expires_at",
                json!({ "type": "string", "format": "date-time" }),
            ),
            ("access_expires_in", json!({ "type": "integer" })),
            ("refresh_token", string()),
            (
                "refresh_expires_at",
                json!({ "type": "string", "format": "date-time" }),
            ),
            (
                "user",
                object(
                    &[
                        ("id", string()),
                        ("username", string()),
                        (
                            "role",
                            json!({ "type": "string", "enum": ["inspector", "enterprise_manager", "supervisor", "agency_admin"] }),
                        ),
                        ("org_id", string()),
                        ("display_name", string()),
                    ],
                    &["id", "username", "role", "org_id", "display_name"],
                ),
            ),
        ],
        &[
            "access_token",
            "access_expires_at",
            "access_expires_in",
            "refresh_token",
            "refresh_expires_at",
            "user",
        ],
    )
}

/// `GET /api/v1/visits`, whose date parameters carry a format and a description.
fn visits_op() -> Value {
    let mut v = op(
        "Visits in scope, newest first",
        "visits",
        &["enterprise:query", "from:query", "to:query", "limit:query"],
        "200",
    );
    let date = |p: &mut Value, bound: &str| {
        p["schema"] = json!({ "type": "string", "format": "date" });
        p["description"] = format!(
            "Visits started on or {bound} this calendar day in China Standard Time (UTC+8), YYYY-MM-DD, inclusive. \
             A malformed date, or from after to, answers 400 (bad_date, bad_date_range)."
        )
        .into();
    };
    if let Some(params) = v["parameters"].as_array_mut() {
        for p in params {
            match p["name"].as_str() {
                Some("from") => date(p, "after"),
                Some("to") => date(p, "before"),
                Some("limit") => {
                    p["schema"] =
                        json!({ "type": "integer", "minimum": 0, "maximum": 1000, "default": 200 })
                }
                _ => {}
            }
        }
    }
    v
}

const LEDGER_FILTERS: &[&str] = &[
    "township:query",
    "agency:query",
    "enterprise:query",
    "from:query",
    "to:query",
    "grade:query",
    "state:query",
];

fn login_op() -> Value {
    let mut o = answering(
        with_body(
            op(
                "Log in with username and password (optionally bound to an enrolled device)",
                "auth",
                &[],
                "200",
            ),
            object(
                &[
                    ("username", string()),
                    ("password", string()),
                    ("device_id", string()),
                ],
                &["username", "password"],
            ),
        ),
        session_schema(),
    );
    o["security"] = json!([]);
    o["operationId"] = json!("login");
    o
}

fn refresh_op() -> Value {
    let mut o = answering(
        with_body(
            op(
                "Rotate a refresh token: the old pair is spent",
                "auth",
                &[],
                "200",
            ),
            object(&[("refresh_token", string())], &["refresh_token"]),
        ),
        session_schema(),
    );
    o["security"] = json!([]);
    o["operationId"] = json!("refresh");
    o
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "安全检查现场平台 API / Field inspection platform API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Errors are JSON {\"error\": code, \"message\": \"中文 / English\"}. Every list is limited to the caller's scope; ids outside it answer 404."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "Error",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["error", "message"],
                        "properties": { "error": { "type": "string" }, "message": { "type": "string" } }
                    } } }
                }
            }
        },
        "paths": {
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "ok" } } } },
            "/readyz": { "get": { "summary": "Readiness: the database and the photo store answer", "responses": { "200": { "description": "ready" }, "503": { "description": "not ready: which part failed" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics (127.0.0.1, ::1 and health_check_from only)", "responses": { "200": { "description": "text exposition format 0.0.4" } } } },
            "/api/v1/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI" } } } },
            "/api/v1/auth/login": { "post": login_op() },
            "/api/v1/auth/refresh": { "post": refresh_op() },
            "/api/v1/auth/logout": { "post": op("Revoke the session", "auth", &[], "204") },
            "/api/v1/me": { "get": op("The caller", "auth", &[], "200") },
            "/api/v1/colleagues": { "get": op("The users of the caller's organisation", "auth", &[], "200") },
            "/api/v1/users": { "get": op("The caller's organisation's accounts (agency admins and supervisors)", "users", &[], "200") },
            "/api/v1/users/{id}/disable": { "post": op("Disable an account of the caller's organisation; its sessions end", "users", &["id"], "200") },
            "/api/v1/users/{id}/enable": { "post": op("Enable it again", "users", &["id"], "200") },
            "/api/v1/users/{id}/password": { "post": with_body(op("Set a new password; the account's sessions end", "users", &["id"], "200"), object(&[("password", string())], &["password"])) },
            "/api/v1/devices": {
                "post": op("Enrol a device; returns its Automerge actor id", "devices", &[], "201"),
                "get": op("The caller's devices", "devices", &[], "200")
            },
            "/api/v1/devices/{id}/revoke": { "post": op("Revoke a device and its tokens", "devices", &["id"], "204") },
            "/api/v1/enterprises": { "get": op("Enterprises in scope", "enterprises", &[], "200") },
            "/api/v1/enterprises/{id}": { "get": op("One enterprise", "enterprises", &["id"], "200") },
            "/api/v1/enterprises/{id}/file.pdf": { "get": op("The enterprise file as one PDF: the enterprise, its visits, every hazard's course and pictures; 503 pdf_font_missing without a CJK font", "enterprises", &["id"], "200") },
            "/api/v1/enterprises/{id}/file.zip": { "get": op("The enterprise file as a ZIP: the file as JSON, its hazard ledger as CSV and the photos the caller may see", "enterprises", &["id"], "200") },
            "/api/v1/enterprises/{id}/file": { "get": op("The enterprise file (一企一档): visits, hazards, histories", "enterprises", &["id"], "200") },
            "/api/v1/hazards": { "get": op("Hazards in scope, filtered", "hazards", &["township:query", "agency:query", "enterprise:query", "grade:query", "state:query", "overdue:query", "limit:query", "offset:query"], "200") },
            "/api/v1/hazards/{id}": { "get": op("One hazard with its whole history", "hazards", &["id"], "200") },
            "/api/v1/hazards/{id}/events": { "post": with_body(op("Record a rectification action as the signed-in user (same policy as sync)", "hazards", &["id"], "200"), action_schema()) },
            "/api/v1/visits": { "get": visits_op() },
            "/api/v1/visits/{id}": { "get": op("One visit with its hazards", "visits", &["id"], "200") },
            "/api/v1/reports/major": { "get": op("Major hazards reported to the township", "hazards", &[], "200") },
            "/api/v1/ledger": { "get": op("The hazard ledger (隐患排查治理台账) as JSON rows; from/to are China dates on when the hazard was found", "ledger", LEDGER_FILTERS, "200") },
            "/api/v1/ledger.csv": { "get": op("The hazard ledger as CSV (UTF-8 with BOM, for Chinese Excel)", "ledger", LEDGER_FILTERS, "200") },
            "/api/v1/ledger.xlsx": { "get": op("The hazard ledger as an Excel workbook", "ledger", LEDGER_FILTERS, "200") },
            "/api/v1/statistics": { "get": op("Monthly statistics per township: found, major, closed in the month, still open, overdue, share closed", "ledger", &["from:query", "to:query"], "200") },
            "/api/v1/statistics.xlsx": { "get": op("The monthly statistics as an Excel workbook", "ledger", &["from:query", "to:query"], "200") },
            "/api/v1/imports/{kind}": { "post": op("Import enterprises (a township's supervisor), users (of the caller's organisation) or contracts (of the caller's agency) from a CSV or Excel file sent as the body; all rows or none (422 import_rejected lists each row's problem)", "imports", &["kind"], "200") },
            "/api/v1/events/stream": { "get": op("Server-Sent Events: `change` {doc_id, kind, enterprise_id, agency_id, township_id} for each document in scope that changed; `resync` when the stream fell behind; ends when the access token would expire", "events", &[], "200") },
            "/api/v1/inbox": { "get": op("What happened to the hazards in scope and what time reminds of (overdue, deadline near, evidence or an extension waiting, a major hazard reported late), newest first", "events", &["since:query", "limit:query"], "200") },
            "/api/v1/webhooks": { "get": op("The caller's organisation's webhooks (agency admins, supervisors, enterprise managers; never the secret)", "events", &[], "200") },
            "/api/v1/webhooks/deliveries": { "get": op("The delivery log of the organisation's webhooks: attempts, last status, delivered or given up", "events", &["limit:query"], "200") },
            "/api/v1/dashboard": { "get": op("Figures in scope: open, overdue, major, closure rate, median days to close; by township, park, agency, enterprise and month", "dashboard", &[], "200") },
            "/api/v1/visits/{id}/history": { "get": op("Who changed the visit, when, from which device, and which fields", "visits", &["id"], "200") },
            "/api/v1/visits/{id}/record": { "get": op("The visit's checklist, signature and hazards with photos, funds and emergency plan", "visits", &["id"], "200") },
            "/api/v1/visits/{id}/notice.pdf": { "get": op("Rectification notice (整改通知书) as PDF; 503 pdf_font_missing without a CJK font", "visits", &["id"], "200") },
            "/api/v1/hazards/{id}/changes": { "get": op("Who changed the hazard document, when, from which device, and which fields", "hazards", &["id"], "200") },
            "/api/v1/sync": { "post": {
                "summary": "Sync protocol v1 (binary, application/vnd.inspect.sync.v1); needs a device-bound token",
                "tags": ["sync"],
                "security": [{ "bearer": [] }],
                "requestBody": { "content": { "application/vnd.inspect.sync.v1": { "schema": { "type": "string", "format": "binary" } } } },
                "responses": { "200": { "description": "sync response" }, "400": { "$ref": "#/components/responses/Error" }, "403": { "$ref": "#/components/responses/Error" }, "413": { "$ref": "#/components/responses/Error" } }
            } },
            "/api/v1/photos/{sha256}": {
                "put": op("Upload a chunk at ?offset= (x-photo-size: total bytes); resumable, content-addressed", "photos", &["sha256", "offset:query"], "200"),
                "get": op("The photo (orientation applied, metadata stripped)", "photos", &["sha256"], "200")
            },
            "/api/v1/photos/{sha256}/status": { "get": op("Bytes received so far", "photos", &["sha256"], "200") },
            "/api/v1/photos/{sha256}/thumb": { "get": op("The thumbnail", "photos", &["sha256"], "200") }
        }
    })
}

/// Serves the document.
pub async fn serve() -> Json<Value> {
    Json(document())
}
