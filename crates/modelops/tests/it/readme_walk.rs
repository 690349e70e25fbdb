//! The README's governance walk, command for command, on SQLite and on
//! PostgreSQL: a risk officer takes a high-tier model from draft to
//! production with two independent validators, sees the deny reasons on the
//! way, rolls back, and prints the three reports.

use crate::harness::{fresh_postgres_database, Server};
use std::process::Output;

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn refused(out: Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} should have been refused: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

fn walk(s: &Server) {
    // People and their roles: each gets a token of their own, printed alone on stdout.
    for (user, role) in [("ana", "developer"), ("vic", "validator"), ("val", "validator"), ("dan", "deployer")] {
        ok(s.cli(&["users", "create", user, "--role", role]), "users create");
    }
    let token = |user: &str| ok(s.cli(&["tokens", "create", "--name", "laptop", "--user", user]), "tokens create").trim().to_string();
    let (ana, vic, val, dan) = (token("ana"), token("vic"), token("val"), token("dan"));
    assert!(ana.starts_with("mdo_") && ana.lines().count() == 1, "{ana}");

    ok(
        s.cli(&[
            "models", "create", "credit-risk", "--kind", "onnx", "--owner", "ana", "--team", "risk", "--developer", "ana",
            "--risk-tier", "high", "--purpose", "retail credit decisions", "--intended-use", "score applications under 50k EUR",
            "--tag", "domain=lending", "--validation-metric", "auc", "--validation-threshold", "0.80",
        ]),
        "models create",
    );
    let model = s.path("model.onnx");
    std::fs::write(&model, modelops_runtime::sample::doubling_onnx(10, "an onnx graph", 0)).unwrap();
    let card = s.path("card.json");
    std::fs::write(&card, r#"{"intended_use": "applications under 50k EUR", "limitations": "thin files", "evaluation_data": "2026 Q2 hold-out"}"#).unwrap();
    let report_pdf = s.path("validation.pdf");
    std::fs::write(&report_pdf, b"%PDF-1.7 validation report").unwrap();
    let push = |desc: &str| {
        ok(
            s.cli_with_token(&ana, &[
                "versions", "push", "credit-risk", model.to_str().unwrap(), "--description", desc, "--dataset-uri", "s3://data/loans.parquet",
                "--code-commit", "4f2a9c1", "--metric", "auc=0.91", "--card", card.to_str().unwrap(),
            ]),
            "versions push",
        )
    };

    for v in ["1", "2"] {
        push("gbm");
        ok(s.cli_with_token(&ana, &["versions", "submit", "credit-risk", v]), "submit");
        // The author may not approve.
        let err = refused(s.cli_with_token(&ana, &["versions", "approve", "credit-risk", v]), "self-approval");
        assert!(err.contains("403"), "{err}");
        ok(s.cli_with_token(&vic, &["evidence", "add", "credit-risk", v, "--metric", "auc=0.87", "--dataset", "holdout-2026q3"]), "metric");
        ok(
            s.cli_with_token(&vic, &["evidence", "add", "credit-risk", v, "--document", report_pdf.to_str().unwrap(), "--name", "validation_report"]),
            "document",
        );
        // One approval: still in validation, and the answer says what is missing.
        let first = ok(s.cli_with_token(&vic, &["versions", "approve", "credit-risk", v, "--comment", "challenger tests pass"]), "first approval");
        assert!(first.contains("in_validation") && first.contains("two_independent_validators"), "{first}");
        // The gate, as a pipeline asks it: exit 1 with every failing condition.
        let gate = s.cli(&["gate", "credit-risk", v, "--to", "approved"]);
        assert_eq!(gate.status.code(), Some(1), "{}", String::from_utf8_lossy(&gate.stdout));
        assert!(String::from_utf8_lossy(&gate.stdout).contains("two_independent_validators"));
        // Promotion before approval is refused with its reasons.
        let err = refused(s.cli_with_token(&dan, &["versions", "promote", "credit-risk", v]), "early promote");
        assert!(err.contains("403") && err.contains("  - lifecycle: "), "{err}");
        let second = ok(s.cli_with_token(&val, &["versions", "approve", "credit-risk", v, "--comment", "independent review done"]), "second approval");
        assert!(second.contains("approved"), "{second}");
        assert_eq!(s.cli(&["gate", "credit-risk", v, "--to", "production"]).status.code(), Some(0));
        ok(s.cli_with_token(&dan, &["versions", "promote", "credit-risk", v]), "promote");
        assert_eq!(s.json(&["versions", "show", "credit-risk", "champion"])["version"].as_u64().unwrap().to_string(), v);
    }
    // An auditor fetches the validation report the gate relied on, verified.
    let record = s.json(&["versions", "governance", "credit-risk", "1"]);
    let sha = record["evidence"].as_array().unwrap().iter().find_map(|e| e["sha256"].as_str()).unwrap().to_string();
    let fetched = s.path("fetched.pdf");
    ok(s.cli(&["evidence", "download", "credit-risk", "1", &sha, "-o", fetched.to_str().unwrap()]), "evidence download");
    assert_eq!(std::fs::read(&fetched).unwrap(), std::fs::read(&report_pdf).unwrap());

    // Rolling back is promoting the earlier approved version again.
    ok(s.cli_with_token(&dan, &["versions", "promote", "credit-risk", "1"]), "rollback");
    assert_eq!(s.json(&["versions", "show", "credit-risk", "champion"])["version"], 1);
    assert_eq!(s.json(&["versions", "show", "credit-risk", "2"])["state"], "approved");
    // A developer may not promote; the refusal names the role.
    let err = refused(s.cli_with_token(&ana, &["versions", "promote", "credit-risk", "2"]), "developer promote");
    assert!(err.contains("  - role: "), "{err}");
    let due = s.json(&["reviews", "due", "--within-days", "400"]);
    assert_eq!(due.as_array().map_or_else(|| due["reviews"].as_array().unwrap().len(), |a| a.len()), 1, "{due}");

    // Deployments: all traffic to version 1 (a developer may not deploy),
    // then a canary of version 2 that advances by itself to all traffic.
    let err = refused(s.cli_with_token(&ana, &["deploy", "create", "credit-live", "--model", "credit-risk", "--version", "1"]), "developer deploy");
    assert!(err.contains("  - role: "), "{err}");
    ok(s.cli_with_token(&dan, &["deploy", "create", "credit-live", "--model", "credit-risk", "--version", "1"]), "deploy create");
    ok(s.cli_with_token(&dan, &["deploy", "set", "credit-live", "--canary", "2", "--steps", "50,100", "--hold-requests", "3"]), "canary");
    let rows = s.path("rows.json");
    std::fs::write(&rows, format!("[[{}]]", ["0.5"; 10].join(", "))).unwrap();
    let mut state = String::new();
    for _ in 0..200 {
        ok(s.cli(&["predict", "credit-live", "--deployment", "--input", rows.to_str().unwrap()]), "predict through the deployment");
        let shown = s.json(&["deploy", "show", "credit-live"]);
        state = shown["state"].as_str().unwrap().to_string();
        if state == "stable" {
            assert_eq!(shown["routes"], serde_json::json!([{"version": 2, "weight": 100}]), "{shown}");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(state, "stable", "the canary completed");
    assert_eq!(s.json(&["versions", "show", "credit-risk", "champion"])["version"], 2, "the completed canary is promoted");
    let log = s.json(&["audit", "log", "--subject", "deployment/credit-live"]);
    let log = log.as_array().cloned().unwrap_or_else(|| log["events"].as_array().unwrap().clone());
    assert_eq!(log.iter().filter(|e| e["action"] == "deployment.advance" && e["actor"] == "system").count(), 2, "{log:?}");
    // One command back; every call recorded, exported to Parquet.
    let back = ok(s.cli_with_token(&dan, &["rollback", "credit-live"]), "rollback");
    assert!(back.contains("to version 1"), "{back}");
    let window = s.path("window.parquet");
    ok(s.cli(&["predictions", "export", "credit-live", "-o", window.to_str().unwrap()]), "export");
    assert!(std::fs::read(&window).unwrap().starts_with(b"PAR1"));
    let page = s.json(&["predictions", "list", "credit-live", "--max-results", "1000"]);
    assert!(page["records"].as_array().unwrap().len() >= 3, "{page}");
    assert_eq!(s.json(&["versions", "show", "credit-risk", "champion"])["version"], 1, "rolling back promotes the version before");

    // The three reports.
    let out = s.path("inventory.html");
    ok(s.cli(&["report", "inventory", "--format", "html", "--out", out.to_str().unwrap()]), "inventory");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("credit-risk") && html.contains("in production (v1)"), "{html}");
    let md = ok(s.cli(&["report", "model", "credit-risk", "--format", "md"]), "model report");
    assert!(md.contains("two_independent_validators") && md.contains("modelops audit verify"), "{md}");
    let annex = ok(s.cli(&["report", "annex-iv", "credit-risk", "--format", "json"]), "annex iv");
    let annex: serde_json::Value = serde_json::from_str(&annex).unwrap();
    assert!(!annex["missing"].as_array().unwrap().is_empty());

    // Every denial on the way is in the chain, and the chain verifies.
    let denials = s.json(&["audit", "log", "--action", "access.denied"]);
    let denials = denials.as_array().map_or_else(|| denials["events"].as_array().unwrap().len(), |a| a.len());
    assert!(denials >= 5, "{denials}");
    assert_eq!(s.json(&["audit", "verify"])["ok"], true);

    // An auditor with the public key alone: one event's proof, then an export, offline.
    let key = ok(s.cli(&["audit", "key"]), "audit key").trim().to_string();
    let proof = s.path("event5.json");
    ok(s.cli(&["audit", "prove", "5", "-o", proof.to_str().unwrap()]), "audit prove");
    let checked = ok(
        s.cli(&["audit", "verify", "--checkpoint", s.path("event5.note").to_str().unwrap(), "--proof", proof.to_str().unwrap(), "--key", &key]),
        "verify the proof",
    );
    assert!(checked.starts_with("proof verified: event 5 "), "{checked}");
    let bundle = s.path("bundle");
    ok(s.cli(&["audit", "export", "-o", bundle.to_str().unwrap()]), "audit export");
    let verified = ok(s.cli(&["audit", "verify", "--bundle", bundle.to_str().unwrap(), "--key", &key]), "verify the bundle");
    assert!(verified.starts_with("bundle verified: events 1..="), "{verified}");

    // GDPR erasure: val's name is gone from every record, and the log still verifies.
    let erased = ok(s.cli(&["users", "erase", "val", "--yes"]), "users erase");
    assert!(erased.contains("erased `val`"), "{erased}");
    let approvals = s.json(&["audit", "log", "--action", "version.approve"]).to_string();
    assert!(approvals.contains("erased-") && approvals.contains("\"vic\""), "{approvals}");
    let after = s.json(&["audit", "verify"]);
    assert_eq!(after["ok"], true, "{after}");
}

#[test]
fn the_readme_walk_on_sqlite() {
    walk(&Server::start());
}

#[test]
fn the_readme_walk_on_postgres() {
    let Some(url) = fresh_postgres_database("walk") else { return };
    walk(&Server::start_on(Some(url)));
}
