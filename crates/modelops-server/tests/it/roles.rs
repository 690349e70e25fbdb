//! The role × endpoint matrix over every route of the API, with token
//! authentication as the binary runs it: for each role, a user holding only
//! that role calls every route; the routes its role allows are not refused
//! for their role (they may still answer 4xx for the state, e.g. a gate),
//! the others answer 403 naming the `role` condition, and a refused call
//! changes nothing but the audit log's record of the refusal. Also: 401s,
//! and docs/roles.md generated from the same table.

use crate::support::{Answer, App};
use axum::http::{Method, StatusCode};
use modelops_core::auth::Role;
use modelops_server::access::{endpoints, roles_table, Access};
use serde_json::{json, Value};

struct Fixture {
    app: App,
    admin: String,
    /// The calling user's token, name and own token id.
    token: String,
    user: String,
    token_id: String,
}

async fn create_user(app: &App, admin: &str, name: &str, roles: &[&str]) -> String {
    let created = app.call_as(admin, Method::POST, "/api/v1/users", Some(json!({"name": name, "roles": roles}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let token = app.call_as(admin, Method::POST, "/api/v1/tokens", Some(json!({"name": "test", "user": name}))).await;
    assert_eq!(token.status, StatusCode::CREATED, "{token:?}");
    token.body["token"].as_str().unwrap().to_string()
}

/// A model `m` whose developers include the caller, with version 1 in
/// validation (by `dana`) and version 2 approved (so promote can pass).
async fn fixture(role: Role) -> Fixture {
    let (app, admin) = App::with_tokens().await;
    let user = format!("u_{role}");
    let token = create_user(&app, &admin, &user, &[role.as_str()]).await;
    let dana = create_user(&app, &admin, "dana", &["developer"]).await;
    let model = json!({"name": "m", "kind": "rules", "risk_tier": "low", "owner": "dana", "developers": ["dana", user]});
    assert_eq!(app.call_as(&admin, Method::POST, "/api/v1/models", Some(model)).await.status, StatusCode::CREATED);
    let card = json!({"intended_use": "testing"});
    for _ in 0..2 {
        let up = app.upload_as(&dana, b"rules").await;
        let body = json!({"artifact": {"sha256": up.body["sha256"], "filename": "r.json"}, "card": card});
        let v = app.call_as(&dana, Method::POST, "/api/v1/models/m/versions", Some(body)).await;
        assert_eq!(v.status, StatusCode::CREATED, "{v:?}");
        let n = v.body["version"].as_u64().unwrap();
        let submitted = app.call_as(&dana, Method::POST, &format!("/api/v1/models/m/versions/{n}/submit"), None).await;
        assert_eq!(submitted.status, StatusCode::OK, "{submitted:?}");
    }
    let approved = app.call_as(&admin, Method::POST, "/api/v1/models/m/versions/2/approve", Some(json!({}))).await;
    assert_eq!(approved.body["version"]["state"], "approved", "{approved:?}");
    let token_id = token.split('_').nth(1).unwrap().to_string();
    Fixture { app, admin, token, user, token_id }
}

fn concrete(path: &str, f: &Fixture) -> String {
    path.replace("{name}", "m")
        .replace("{version}", "1")
        .replace("{alias}", "staging")
        .replace("{key}", "k")
        .replace("{user}", &f.user)
        .replace("{id}", &f.token_id)
        .replace("{size}", "latest")
        .replace("{seq}", "1")
        .replace("{monitor}", "drift")
        .replace("{run}", "1")
        .replace("{sha256}", &crate::support::sha256_hex(b"rules"))
}

/// A valid reference profile's JSON.
fn reference_profile() -> String {
    use modelops_monitor::data::{Column, ColumnData, SourceType, Table};
    let x = Column { name: "x".into(), source: SourceType::Float, data: ColumnData::Numeric(vec![1.0, 2.0, 3.0]) };
    let table = Table { path: "train.csv".into(), rows: 3, columns: vec![x] };
    modelops_monitor::profile::Profile::fit(&table, None, &[], &[]).unwrap().to_json().unwrap()
}

/// A URL whose server accepts connections and never answers.
fn silent_webhook() -> String {
    static LISTENER: std::sync::OnceLock<std::net::TcpListener> = std::sync::OnceLock::new();
    let listener = LISTENER.get_or_init(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    format!("http://{}/hook", listener.local_addr().unwrap())
}

/// A body each route accepts from someone its role allows.
fn body(method: &str, path: &str, i: usize) -> Option<Value> {
    Some(match (method, path) {
        ("POST", "/api/v1/models") => json!({"name": format!("new{i}"), "kind": "rules", "risk_tier": "low"}),
        ("PATCH", "/api/v1/models/{name}") => json!({"description": "changed"}),
        ("POST", "/api/v1/models/{name}/versions") => json!({"artifact": {"sha256": crate::support::sha256_hex(b"rules"), "filename": "r.json"}}),
        ("PATCH", "/api/v1/models/{name}/versions/{version}") => json!({"description": "changed"}),
        ("POST", "/api/v1/models/{name}/versions/{version}/approve" | "/api/v1/models/{name}/versions/{version}/reject") => json!({"comment": "ok"}),
        ("POST", "/api/v1/models/{name}/versions/{version}/evidence") => json!({"kind": "metric", "name": "auc", "value": 0.9}),
        ("POST", "/api/v1/models/{name}/versions/{version}/reviews") => json!({"outcome": "satisfactory"}),
        ("PUT", "/api/v1/models/{name}/aliases/{alias}") => json!({"version": 1}),
        ("PUT", p) if p.ends_with("/tags/{key}") => json!({"value": "v"}),
        ("POST", "/api/v1/artifacts/gc") => json!({"dry_run": true}),
        ("POST", "/api/v1/users") => json!({"name": format!("new{i}"), "roles": ["viewer"]}),
        ("PATCH", "/api/v1/users/{user}") => json!({"team": "t"}),
        ("POST", "/api/v1/tokens") => json!({"name": format!("t{i}")}),
        ("POST", "/api/v1/models/{name}/versions/{version}/predict" | "/api/v1/deployments/{name}/predict") => json!({"rows": []}),
        ("POST", "/api/v1/deployments") => json!({"name": format!("d{i}"), "model": "m", "version": 2}),
        ("PATCH", "/api/v1/deployments/{name}") => json!({"sampling": 0.5}),
        ("PUT", "/api/v1/models/{name}/versions/{version}/reference") => json!({"profile": reference_profile()}),
        ("POST", "/api/v1/deployments/{name}/monitors") => json!({"name": format!("m{i}"), "window": {"rows": 10}}),
        ("POST", "/api/v1/deployments/{name}/labels") => json!({"labels": [{"request_id": "r", "label": 1}]}),
        // A webhook that never answers: a run started by hand stays
        // `running` while the test lasts (later ones are 409) and changes
        // nothing meanwhile.
        ("PUT", "/api/v1/models/{name}/retrain-job") => json!({"runner": {"kind": "webhook", "url": silent_webhook()}}),
        ("PUT", "/api/v1/policy") => json!({"source": modelops_governance::policy::Policy::DEFAULT_SOURCE, "format": "toml"}),
        _ => return None,
    })
}

/// What must not change when a call is refused.
async fn state(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    for uri in ["/api/v1/models", "/api/v1/models/m/versions", "/api/v1/users", "/api/v1/tokens?user=*", "/api/v1/policy"] {
        let answer = f.app.call_as(&f.admin, Method::GET, uri, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {answer:?}");
        out.push(answer.body);
    }
    for n in [1, 2] {
        out.push(f.app.call_as(&f.admin, Method::GET, &format!("/api/v1/models/m/versions/{n}/governance"), None).await.body);
    }
    out
}

async fn events(f: &Fixture) -> Vec<Value> {
    let page = f.app.call_as(&f.admin, Method::GET, "/api/v1/audit?page_size=1000", None).await;
    page.body["events"].as_array().unwrap().clone()
}

fn role_refusal(answer: &Answer) -> bool {
    answer.status == StatusCode::FORBIDDEN
        && answer.body["error"]["reasons"].as_array().is_some_and(|r| r.iter().any(|r| r["condition"] == "role"))
}

#[tokio::test]
async fn every_role_on_every_route() {
    // Destructive routes last, so the others see the fixture intact.
    let mut routes = endpoints();
    // (revoking the caller's own token last of all).
    routes.sort_by_key(|e| (e.path.ends_with("/revoke"), e.path.ends_with("/retire")));
    for role in Role::ALL.iter().copied() {
        let f = fixture(role).await;
        let mut successes = 0;
        for (i, ep) in routes.iter().enumerate() {
            let before = state(&f).await;
            let events_before = events(&f).await.len();
            let answer = {
                let uri = concrete(ep.path, &f);
                if ep.path == "/api/v1/artifacts" {
                    f.app.upload_as(&f.token, format!("upload {i}").as_bytes()).await
                } else {
                    let method = Method::from_bytes(ep.method.as_bytes()).unwrap();
                    let uri = match ep.path {
                        p if p.ends_with("/gate") => format!("{uri}?to=approved"),
                        "/api/v1/audit/range" => format!("{uri}?size=1"),
                        "/api/v1/audit/consistency" => format!("{uri}?from=1"),
                        _ => uri,
                    };
                    f.app.call_as(&f.token, method, &uri, body(ep.method, ep.path, i)).await
                }
            };
            let what = format!("{role} {} {}", ep.method, ep.path);
            assert_ne!(answer.status, StatusCode::UNAUTHORIZED, "{what}: {answer:?}");
            assert!(!answer.status.is_server_error(), "{what}: {answer:?}");
            if ep.access.allows(role) {
                assert!(!role_refusal(&answer), "{what} should be allowed: {answer:?}");
                // Allowed: it did its work, or refused for the state the
                // fixture left (a lifecycle move from the wrong state, a
                // DELETE that is always 405), never for the role.
                let domain = matches!(answer.status.as_u16(), 404 | 405 | 409)
                    || (answer.status == StatusCode::FORBIDDEN && answer.body["error"]["reasons"][0]["condition"] == "lifecycle");
                assert!(answer.status.is_success() || domain, "{what}: {answer:?}");
                successes += usize::from(answer.status.is_success());
            } else {
                assert!(role_refusal(&answer), "{what} should be refused for its role: {answer:?}");
                assert_eq!(state(&f).await, before, "{what}: a refused call changed the store");
                let after = events(&f).await;
                assert!(after.len() > events_before, "{what}: the refusal is recorded");
                assert!(after[events_before..].iter().all(|e| e["action"] == "access.denied"), "{what}: only the refusal is recorded");
            }
        }
        // The matrix is not vacuous: an admin's calls do their work.
        let allowed = routes.iter().filter(|e| e.access.allows(role)).count();
        if role == Role::Admin {
            // The 8 that cannot: two DELETEs (405), submitting and rejecting from
            // the wrong state, an alias and an evidence document that do not
            // exist, retiring a version of the model retired just before,
            // predicting with a version whose artifact (placeholder bytes)
            // does not load (409); and 7 deployment routes: creating one
            // on that version (409, it does not load), then reading,
            // changing, rolling back, retiring, calling and listing the
            // records of a deployment that was therefore never made (404);
            // and erasing the fixture's user, who is the caller (409); and
            // 7 monitoring routes: the 6 on that deployment (404) and
            // reading a version's reference profile before it is set (404);
            // and the window of a retraining run started by hand (404: a run
            // by hand has none), and cancelling it while its job runs (409).
            assert!(successes + 25 >= allowed, "admin: {successes} of {allowed} allowed calls succeeded");
        }
    }
}

#[tokio::test]
async fn no_token_or_a_bad_one_is_401_and_public_routes_need_none() {
    let (app, admin) = App::with_tokens().await;
    for ep in endpoints() {
        let method = Method::from_bytes(ep.method.as_bytes()).unwrap();
        let uri = ep.path.replace("{name}", "m").replace("{version}", "1").replace("{alias}", "a").replace("{key}", "k").replace("{user}", "admin").replace("{id}", "0123456789ab").replace("{sha256}", &"0".repeat(64));
        let answer = app.send(axum::http::Request::builder().method(method.clone()).uri(&uri).body(axum::body::Body::empty()).unwrap()).await;
        if ep.access == Access::Public {
            assert_eq!(answer.status, StatusCode::OK, "{} {uri}", ep.method);
            continue;
        }
        assert_eq!(answer.error(StatusCode::UNAUTHORIZED).0, "unauthenticated", "{} {uri}", ep.method);
        assert!(answer.headers["www-authenticate"].to_str().unwrap().contains("Bearer"));
    }
    // The document says the same: a token for everything but the public routes.
    let doc = app.send(axum::http::Request::builder().uri("/api/v1/openapi.json").body(axum::body::Body::empty()).unwrap()).await.body;
    assert_eq!(doc["security"], json!([{"token": []}]));
    for ep in endpoints() {
        let op = &doc["paths"][ep.path][ep.method.to_lowercase()];
        let public = op["security"] == json!([]);
        assert_eq!(public, ep.access == Access::Public, "{} {}: {}", ep.method, ep.path, op["security"]);
    }
    // The old actor header identifies no one.
    let header = app.send(axum::http::Request::builder().uri("/api/v1/models").header("x-modelops-actor", "admin").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(header.status, StatusCode::UNAUTHORIZED);
    // A token with a wrong secret, and a malformed one: 401, never echoed.
    let forged = format!("{}_{}", admin.rsplit_once('_').unwrap().0, "x".repeat(43));
    for bad in [forged.as_str(), "mdo_nonsense", "Bearer-ish"] {
        let answer = app.call_as(bad, Method::GET, "/api/v1/models", None).await;
        let (_, _, message) = answer.error(StatusCode::UNAUTHORIZED);
        assert!(!message.contains(bad) && !String::from_utf8_lossy(&answer.bytes).contains(bad), "{message}");
    }
    // HTTP Basic with the token as password (the MLflow client's way).
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("anyone:{admin}"));
    let answer = app
        .send(axum::http::Request::builder().uri("/api/v1/whoami").header("authorization", format!("Basic {basic}")).body(axum::body::Body::empty()).unwrap())
        .await;
    assert_eq!((answer.status, answer.body["name"].clone()), (StatusCode::OK, json!("admin")));
}

#[tokio::test]
async fn roles_doc() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/roles.md");
    let generated = roles_table();
    if std::env::var("UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(written == generated, "docs/roles.md is not what the code enforces; regenerate it with `UPDATE_DOCS=1 cargo test -p modelops-server --test it roles_doc`");
    for role in Role::ALL {
        assert!(generated.contains(&format!(" {role} |")));
    }
}

#[tokio::test]
async fn evidence_documents_are_served_to_readers_and_only_as_evidence() {
    let f = fixture(Role::Viewer).await;
    let validator = create_user(&f.app, &f.admin, "vic", &["validator"]).await;
    let report = b"%PDF-1.7 the validation report";
    let up = f.app.upload_as(&validator, report).await;
    assert!(up.status.is_success(), "{up:?}");
    let sha = up.body["sha256"].as_str().unwrap().to_string();
    let uri = format!("/api/v1/models/m/versions/1/evidence/{sha}");
    // Uploaded, but not (yet) evidence of this version: not served.
    assert_eq!(f.app.call_as(&f.token, Method::GET, &uri, None).await.error(StatusCode::NOT_FOUND).0, "not_found");
    let body = json!({"kind": "document", "name": "validation_report", "sha256": sha, "filename": "report.pdf"});
    let added = f.app.call_as(&validator, Method::POST, "/api/v1/models/m/versions/1/evidence", Some(body)).await;
    assert_eq!(added.status, StatusCode::CREATED, "{added:?}");
    let got = f.app.call_as(&f.token, Method::GET, &uri, None).await;
    assert_eq!((got.status, got.bytes.as_slice()), (StatusCode::OK, &report[..]));
    assert_eq!(got.headers["x-modelops-sha256"].to_str().unwrap(), sha);
    assert!(got.headers["content-disposition"].to_str().unwrap().contains("report.pdf"));
    let bad = f.app.call_as(&f.token, Method::GET, "/api/v1/models/m/versions/1/evidence/XYZ", None).await;
    assert!(bad.invalid("sha256").contains("XYZ"));
}
