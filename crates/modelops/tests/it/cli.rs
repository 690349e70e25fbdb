use crate::harness::{cli_at, error_line, fake_server, files_under, Server};

fn create_model(s: &Server, name: &str) {
    s.json(&["models", "create", name, "--kind", "onnx", "--owner", "ana", "--team", "risk", "--risk-tier", "high", "--tag", "domain=lending"]);
}

#[test]
fn the_readme_tour_works_end_to_end() {
    let mut s = Server::start();
    // The audit log records the user the token belongs to.
    s.act_as("ana", &["admin"]);
    let before = s.json(&["audit", "verify"])["events"].as_u64().unwrap();
    create_model(&s, "credit-risk");

    // A 24 MiB artifact streams up, is stored by digest and comes back verified.
    // (A real ONNX model: the server loads every `onnx` artifact it is given.)
    let artifact = s.path("model.onnx");
    let bytes = modelops_runtime::sample::doubling_onnx(10, "credit risk", 24 * 1024 * 1024);
    let size = bytes.len();
    std::fs::write(&artifact, bytes).unwrap();
    let v = s.json(&[
        "versions", "push", "credit-risk", artifact.to_str().unwrap(), "--description", "gbm", "--dataset-uri", "s3://d/loans.parquet",
        "--dataset-rows", "1200000", "--code-commit", "4f2a9c1", "--param", "max_depth=6", "--param", "loss=logloss", "--metric", "auc=0.91",
    ]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["artifact"]["size"], size);
    assert_eq!(v["lineage"]["hyperparameters"]["max_depth"], 6);
    assert_eq!(v["lineage"]["hyperparameters"]["loss"], "logloss");
    assert_eq!(v["lineage"]["training_metrics"]["auc"], 0.91);
    let sha = v["artifact"]["sha256"].as_str().unwrap().to_string();

    let v2 = s.json(&["versions", "push", "credit-risk", artifact.to_str().unwrap(), "--parent", "1"]);
    assert_eq!(v2["version"], 2);

    s.json(&["alias", "set", "credit-risk", "staging", "1"]);
    let staging = s.json(&["versions", "show", "credit-risk", "staging"]);
    assert_eq!(staging["version"], 1);
    assert_eq!(staging["aliases"], serde_json::json!(["staging"]));

    let out = s.path("back.onnx");
    let d = s.json(&["versions", "download", "credit-risk", "staging", "-o", out.to_str().unwrap()]);
    assert_eq!(d["sha256"], sha.as_str());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&artifact).unwrap());

    // Tables for people.
    let table = s.cli(&["models", "list", "--risk-tier", "high"]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("NAME") && text.contains("credit-risk"), "{text}");

    s.json(&["tag", "set", "credit-risk", "stage", "beta"]);
    s.json(&["tag", "set", "credit-risk", "reviewed", "yes", "--version", "2"]);
    let m = s.json(&["models", "show", "credit-risk"]);
    assert_eq!(m["tags"]["stage"], "beta");
    s.json(&["tag", "rm", "credit-risk", "stage"]);
    s.json(&["alias", "rm", "credit-risk", "staging"]);
    s.json(&["models", "update", "credit-risk", "--description", "retail PD model"]);
    s.json(&["versions", "retire", "credit-risk", "2"]);

    let log = s.json(&["audit", "log", "--subject", "model/credit-risk*"]);
    let actions: Vec<&str> = log["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["model.create", "version.create", "version.create", "alias.set", "tag.set", "tag.set", "tag.delete", "alias.delete", "model.update", "version.retire"]
    );
    assert!(log["events"].as_array().unwrap().iter().all(|e| e["actor"] == "ana"));

    let verified = s.json(&["audit", "verify"]);
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["events"], before + 10);
    // The same chain verifies offline, straight on the database file.
    let offline = s.json(&["audit", "verify", "--database-url", &s.db_url()]);
    assert_eq!(offline["ok"], true);
    assert_eq!(offline["head"], verified["head"]);
    // A mistyped path is an error, never a fresh empty database that "verifies".
    let typo = s.path("data/modelops-typo.db");
    let line = error_line(&s.cli(&["audit", "verify", "--database-url", &format!("sqlite://{}", typo.display())]));
    assert!(line.contains("no database file"), "{line}");
    assert!(!typo.exists());

    s.json(&["models", "retire", "credit-risk"]);
    let retired = s.json(&["models", "list", "--state", "retired"]);
    assert_eq!(retired["models"][0]["name"], "credit-risk");
}

#[test]
fn errors_are_one_line_and_exit_non_zero() {
    let s = Server::start();
    create_model(&s, "m");
    let dup = error_line(&s.cli(&["models", "create", "m", "--kind", "onnx", "--risk-tier", "low"]));
    assert!(dup.contains("`m`") && dup.contains("409"), "{dup}");
    let bad = error_line(&s.cli(&["models", "create", "a/b", "--kind", "onnx", "--risk-tier", "low"]));
    assert!(bad.contains("`a/b`") && bad.contains("400"), "{bad}");
    let kind = error_line(&s.cli(&["models", "create", "x", "--kind", "banana", "--risk-tier", "low"]));
    assert!(kind.contains("banana"), "{kind}");
    let missing = error_line(&s.cli(&["versions", "show", "m", "9"]));
    assert!(missing.contains("404"), "{missing}");
    let no_file = error_line(&s.cli(&["versions", "push", "m", "/nonexistent/model.onnx"]));
    assert!(no_file.contains("/nonexistent/model.onnx"), "{no_file}");
    let nothing_written = s.json(&["versions", "list", "m"]);
    assert_eq!(nothing_written["versions"].as_array().unwrap().len(), 0);
    let unreachable = s.command(&["models", "list", "--server", "http://127.0.0.1:9"]).output().unwrap();
    let line = error_line(&unreachable);
    assert!(line.contains("cannot reach the server"), "{line}");
}

#[test]
fn a_download_that_does_not_match_its_digest_writes_nothing() {
    let s = Server::start();
    create_model(&s, "m");
    let artifact = s.path("a.bin");
    std::fs::write(&artifact, crate::harness::artifact("onnx", "original content")).unwrap();
    let v = s.json(&["versions", "push", "m", artifact.to_str().unwrap()]);
    let sha = v["artifact"]["sha256"].as_str().unwrap();

    // Corrupt the stored object behind the server's back.
    let stored = files_under(&s.path("data/artifacts")).into_iter().find(|p| p.ends_with(sha)).expect("stored object");
    std::fs::write(&stored, b"tampered content").unwrap();

    let dest = s.path("out.bin");
    let out = s.cli(&["versions", "download", "m", "1", "-o", dest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!dest.exists(), "a corrupt download must leave no file");
}

#[test]
fn the_server_runs_on_postgres_and_its_chain_verifies_offline() {
    let Some(url) = crate::harness::fresh_postgres_database("tour") else { return };
    let s = Server::start_on(Some(url.clone()));
    let before = s.json(&["audit", "verify"])["events"].as_u64().unwrap();
    create_model(&s, "fraud");
    let artifact = s.path("f.bin");
    std::fs::write(&artifact, crate::harness::artifact("onnx", "fraud model")).unwrap();
    let v = s.json(&["versions", "push", "fraud", artifact.to_str().unwrap(), "--code-commit", "abc123"]);
    assert_eq!(v["version"], 1);
    s.json(&["alias", "set", "fraud", "staging", "1"]);
    assert_eq!(s.json(&["versions", "show", "fraud", "staging"])["version"], 1);
    let online = s.json(&["audit", "verify"]);
    assert_eq!(online["ok"], true);
    assert_eq!(online["events"], before + 3);
    let offline = s.json(&["audit", "verify", "--database-url", &url]);
    assert_eq!(offline["head"], online["head"]);
}

#[test]
fn a_signature_or_card_file_that_does_not_fit_is_refused_naming_the_field_before_any_upload() {
    let s = Server::start();
    create_model(&s, "m");
    let artifact = s.path("m.bin");
    std::fs::write(&artifact, crate::harness::artifact("onnx", "model")).unwrap();
    let signature = s.path("signature.json");
    std::fs::write(&signature, r#"{"inputs": [{"name": "x", "dtpye": "float32"}]}"#).unwrap();
    let line = error_line(&s.cli(&["versions", "push", "m", artifact.to_str().unwrap(), "--signature", signature.to_str().unwrap()]));
    assert!(line.contains("signature.json") && line.contains("`inputs[0].dtpye`") && line.contains("unknown field"), "{line}");

    let card = s.path("card.json");
    std::fs::write(&card, r#"{"markdown": "model m", "metrics": {"auc": "high"}}"#).unwrap();
    let line = error_line(&s.cli(&["versions", "push", "m", artifact.to_str().unwrap(), "--card", card.to_str().unwrap()]));
    assert!(line.contains("card.json") && line.contains("`metrics.auc`"), "{line}");

    // Refused locally: nothing was uploaded, no version was made.
    assert_eq!(files_under(&s.path("data/artifacts")), Vec::<std::path::PathBuf>::new());
    assert_eq!(s.json(&["versions", "list", "m"])["versions"], serde_json::json!([]));

    // A later edit of the card is checked the same way, and changes nothing.
    s.json(&["versions", "push", "m", artifact.to_str().unwrap()]);
    let line = error_line(&s.cli(&["versions", "update", "m", "1", "--card", card.to_str().unwrap()]));
    assert!(line.contains("card.json") && line.contains("`metrics.auc`"), "{line}");
    let log = s.json(&["audit", "log", "--subject", "model/*"]);
    let actions: Vec<String> = log["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect();
    assert_eq!(actions, ["model.create", "version.create"]);

    // A signature the artifact disagrees with is refused, naming the field.
    std::fs::write(&signature, r#"{"inputs": [{"name": "x", "dtype": "float32", "shape": [3]}]}"#).unwrap();
    let line = error_line(&s.cli(&["versions", "push", "m", artifact.to_str().unwrap(), "--signature", signature.to_str().unwrap()]));
    assert!(line.contains("signature.inputs[0].shape") && line.contains("[10]"), "{line}");

    // A file that fits goes through whole.
    std::fs::write(
        &signature,
        r#"{"inputs": [{"name": "x", "dtype": "float32", "shape": [10], "allow_nan": true}], "outputs": [{"name": "y", "dtype": "float32", "shape": [10]}]}"#,
    )
    .unwrap();
    std::fs::write(&card, r#"{"markdown": "model m", "metrics": {"auc": 0.9}}"#).unwrap();
    let v = s.json(&["versions", "push", "m", artifact.to_str().unwrap(), "--signature", signature.to_str().unwrap(), "--card", card.to_str().unwrap()]);
    assert_eq!(v["signature"]["inputs"][0], serde_json::json!({"name": "x", "dtype": "float32", "shape": [10], "allow_nan": true}));
    assert_eq!(v["card"]["metrics"]["auc"], 0.9);
}

#[test]
fn flags_are_checked_as_wire_values_before_anything_is_sent() {
    let s = Server::start();
    let line = error_line(&s.cli(&["models", "create", "m", "--kind", "onnx"]));
    assert!(line.contains("`--risk-tier`"), "{line}");
    let line = error_line(&s.cli(&["models", "list", "--kind", "banana"]));
    assert!(line.contains("`--kind`") && line.contains("banana") && line.contains("`onnx`"), "{line}");
    let line = error_line(&s.cli(&["audit", "log", "--since", "yesterday"]));
    assert!(line.contains("`--since`") && line.contains("yesterday"), "{line}");
    assert_eq!(s.json(&["audit", "log", "--subject", "model/*"])["events"], serde_json::json!([]));
}

/// The row of a printed table that holds `needle`.
fn row_with<'a>(table: &'a str, needle: &str) -> &'a str {
    table.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no row with `{needle}` in:\n{table}"))
}

#[test]
fn lists_print_one_row_per_item_for_people() {
    let mut s = Server::start();
    s.act_as("ana", &["admin"]);
    create_model(&s, "credit-risk");
    s.json(&["models", "create", "fraud", "--kind", "rules", "--risk-tier", "low", "--owner", "bo"]);
    let artifact = s.path("m.bin");
    std::fs::write(&artifact, crate::harness::artifact("onnx", "model")).unwrap();
    let sha = s.json(&["versions", "push", "credit-risk", artifact.to_str().unwrap()])["artifact"]["sha256"].as_str().unwrap().to_string();
    s.json(&["alias", "set", "credit-risk", "staging", "1"]);

    let stdout = |args: &[&str]| {
        let out = s.cli(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let models = stdout(&["models", "list"]);
    let row = row_with(&models, "credit-risk");
    assert!(row.contains("onnx") && row.contains("high") && row.contains("ana") && row.contains("active"), "{row}");
    let row = row_with(&models, "fraud");
    assert!(row.contains("rules") && row.contains("low") && row.contains("bo"), "{row}");

    let versions = stdout(&["versions", "list", "credit-risk"]);
    let row = row_with(&versions, &sha);
    let size = std::fs::metadata(&artifact).unwrap().len().to_string();
    assert!(row.contains("draft") && row.contains("staging") && row.contains(&size), "{row}");

    let audit = stdout(&["audit", "log"]);
    assert!(row_with(&audit, "model/fraud").contains("model.create"), "{audit}");
    assert!(row_with(&audit, "model/credit-risk/version/1").contains("version.create"), "{audit}");
    assert!(row_with(&audit, "alias.set").contains("ana"), "{audit}");

    // A further page is announced on stderr, the table stays on stdout.
    let out = s.cli(&["audit", "log", "--page-size", "2"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("more: --page-token "), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("alias.set"));
}

#[test]
fn an_answer_that_is_not_the_endpoints_wire_type_names_the_endpoint_and_the_field() {
    // A server that answers every request with a page of the wrong shape.
    let wrong = fake_server("200 OK", "application/json", r#"{"items": [], "next_page_token": null}"#);
    assert_eq!(
        error_line(&cli_at(&wrong, &["audit", "log"])),
        "error: the server's answer to `GET /api/v1/audit` is not an audit page: missing field `events`"
    );
    assert_eq!(
        error_line(&cli_at(&wrong, &["models", "list"])),
        "error: the server's answer to `GET /api/v1/models` is not a model page: missing field `models`"
    );
    let line = error_line(&cli_at(&wrong, &["versions", "list", "m"]));
    assert_eq!(line, "error: the server's answer to `GET /api/v1/models/m/versions` is not a version page: missing field `versions`");
    let line = error_line(&cli_at(&wrong, &["audit", "verify"]));
    assert!(line.starts_with("error: the server's answer to `GET /api/v1/audit/verify` is not a chain verification: missing field"), "{line}");

    let bad_row = fake_server("200 OK", "application/json", r#"{"events": [{"sequence": "one"}], "next_page_token": null}"#);
    let line = error_line(&cli_at(&bad_row, &["audit", "log"]));
    assert!(line.contains("`events[0].sequence`") && line.contains("invalid type"), "{line}");

    // Error answers: the server's one-line message, or any other body on one line.
    let refused = fake_server("409 Conflict", "application/json", r#"{"error": {"code": "conflict", "message": "model `m` already exists", "field": "name"}}"#);
    assert_eq!(error_line(&cli_at(&refused, &["models", "show", "m"])), "error: model `m` already exists (409 Conflict)");
    let proxy = fake_server("502 Bad Gateway", "text/html", "<html>\n<body>\n  upstream down\n</body>\n</html>\n");
    assert_eq!(error_line(&cli_at(&proxy, &["models", "show", "m"])), "error: <html> <body> upstream down </body> </html> (502 Bad Gateway)");
}

#[test]
fn offline_verification_reports_exactly_what_the_api_reports() {
    let s = Server::start();
    // Start-up recorded the bootstrap admin (and the policy) first.
    let base = s.json(&["audit", "verify"])["events"].as_i64().unwrap();
    create_model(&s, "m");
    s.json(&["tag", "set", "m", "stage", "beta"]);
    s.json(&["tag", "set", "m", "stage", "gamma"]);
    let without_time = |mut report: serde_json::Value| {
        assert!(report["verified_at"].is_string(), "{report}");
        report["verified_at"] = serde_json::Value::Null;
        report
    };
    let online = without_time(s.json(&["audit", "verify"]));
    assert_eq!(online["ok"], true);
    // With the log's public key the offline check covers the signed
    // checkpoints too (start-up signed one), exactly as the server's does.
    let key = String::from_utf8(s.cli(&["audit", "key"]).stdout).unwrap();
    assert!(!online["checkpoints"].as_array().unwrap().is_empty(), "{online}");
    assert_eq!(without_time(s.json(&["audit", "verify", "--database-url", &s.db_url(), "--key", key.trim()])), online);

    // Rewrite history behind the server's back: the actor of the first `tag.set`.
    let url = s.db_url();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        conn.execute("DROP TRIGGER audit_events_no_update").await.unwrap();
        conn.execute(format!("UPDATE audit_events SET actor = 'mallory' WHERE sequence = {}", base + 2).as_str()).await.unwrap();
    });

    let verdict = |args: &[&str]| {
        let out = s.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let online = without_time(serde_json::from_str(&verdict(&["audit", "verify", "--json"])).unwrap());
    let offline = without_time(serde_json::from_str(&verdict(&["audit", "verify", "--json", "--database-url", &url])).unwrap());
    assert_eq!(offline, online);
    let report = online;
    assert_eq!(report["ok"], false);
    assert_eq!(report["events"], base + 1);
    assert_eq!(report["broken"]["sequence"], base + 2);
    assert_eq!(report["head"]["sequence"], base + 3);

    let people = verdict(&["audit", "verify", "--database-url", &url]);
    assert!(people.starts_with(&format!("audit chain BROKEN at event {}: ", base + 2)), "{people}");
    assert_eq!(people, verdict(&["audit", "verify"]));
}
