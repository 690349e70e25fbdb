use crate::harness::{error_line, Server};
use std::io::Write;

fn create_model(s: &Server, name: &str) {
    s.json(&["models", "create", name, "--kind", "onnx", "--owner", "ana", "--team", "risk", "--risk-tier", "high", "--tag", "domain=lending"]);
}

#[test]
fn the_readme_tour_works_end_to_end() {
    let s = Server::start();
    create_model(&s, "credit-risk");

    // A 24 MiB artifact streams up, is stored by digest and comes back verified.
    let artifact = s.path("model.onnx");
    let mut f = std::fs::File::create(&artifact).unwrap();
    let block: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    for i in 0..24u8 {
        let mut b = block.clone();
        b[0] = i;
        f.write_all(&b).unwrap();
    }
    drop(f);
    let v = s.json(&[
        "versions", "push", "credit-risk", artifact.to_str().unwrap(), "--description", "gbm", "--dataset-uri", "s3://d/loans.parquet",
        "--dataset-rows", "1200000", "--code-commit", "4f2a9c1", "--param", "max_depth=6", "--param", "loss=logloss", "--metric", "auc=0.91",
    ]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["artifact"]["size"], 24 * 1024 * 1024);
    assert_eq!(v["lineage"]["hyperparameters"]["max_depth"], 6);
    assert_eq!(v["lineage"]["hyperparameters"]["loss"], "logloss");
    assert_eq!(v["lineage"]["training_metrics"]["auc"], 0.91);
    let sha = v["artifact"]["sha256"].as_str().unwrap().to_string();

    let v2 = s.json(&["versions", "push", "credit-risk", artifact.to_str().unwrap(), "--parent", "1"]);
    assert_eq!(v2["version"], 2);

    s.json(&["alias", "set", "credit-risk", "champion", "1"]);
    let champion = s.json(&["versions", "show", "credit-risk", "champion"]);
    assert_eq!(champion["version"], 1);
    assert_eq!(champion["aliases"], serde_json::json!(["champion"]));

    let out = s.path("back.onnx");
    let d = s.json(&["versions", "download", "credit-risk", "champion", "-o", out.to_str().unwrap()]);
    assert_eq!(d["sha256"], sha.as_str());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&artifact).unwrap());

    // Tables for people.
    let table = s.cli("ana", &["models", "list", "--risk-tier", "high"]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("NAME") && text.contains("credit-risk"), "{text}");

    s.json(&["tag", "set", "credit-risk", "stage", "beta"]);
    s.json(&["tag", "set", "credit-risk", "reviewed", "yes", "--version", "2"]);
    let m = s.json(&["models", "show", "credit-risk"]);
    assert_eq!(m["tags"]["stage"], "beta");
    s.json(&["tag", "rm", "credit-risk", "stage"]);
    s.json(&["alias", "rm", "credit-risk", "champion"]);
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
    assert_eq!(verified["events"], 10);
    // The same chain verifies offline, straight on the database file.
    let offline = s.json(&["audit", "verify", "--database-url", &s.db_url()]);
    assert_eq!(offline["ok"], true);
    assert_eq!(offline["head"], verified["head"]);
    // A mistyped path is an error, never a fresh empty database that "verifies".
    let typo = s.path("data/modelops-typo.db");
    let line = error_line(&s.cli("ana", &["audit", "verify", "--database-url", &format!("sqlite://{}", typo.display())]));
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
    let dup = error_line(&s.cli("ana", &["models", "create", "m", "--kind", "onnx", "--risk-tier", "low"]));
    assert!(dup.contains("`m`") && dup.contains("409"), "{dup}");
    let bad = error_line(&s.cli("ana", &["models", "create", "a/b", "--kind", "onnx", "--risk-tier", "low"]));
    assert!(bad.contains("`a/b`") && bad.contains("400"), "{bad}");
    let kind = error_line(&s.cli("ana", &["models", "create", "x", "--kind", "banana", "--risk-tier", "low"]));
    assert!(kind.contains("banana"), "{kind}");
    let missing = error_line(&s.cli("ana", &["versions", "show", "m", "9"]));
    assert!(missing.contains("404"), "{missing}");
    let no_file = error_line(&s.cli("ana", &["versions", "push", "m", "/nonexistent/model.onnx"]));
    assert!(no_file.contains("/nonexistent/model.onnx"), "{no_file}");
    let nothing_written = s.json(&["versions", "list", "m"]);
    assert_eq!(nothing_written["versions"].as_array().unwrap().len(), 0);
    let unreachable = std::process::Command::new(crate::harness::BIN)
        .args(["models", "list", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let line = error_line(&unreachable);
    assert!(line.contains("cannot reach the server"), "{line}");
}

#[test]
fn a_download_that_does_not_match_its_digest_writes_nothing() {
    let s = Server::start();
    create_model(&s, "m");
    let artifact = s.path("a.bin");
    std::fs::write(&artifact, b"original content").unwrap();
    let v = s.json(&["versions", "push", "m", artifact.to_str().unwrap()]);
    let sha = v["artifact"]["sha256"].as_str().unwrap();

    // Corrupt the stored object behind the server's back.
    let stored = walk(&s.path("data/artifacts")).into_iter().find(|p| p.ends_with(sha)).expect("stored object");
    std::fs::write(&stored, b"tampered content").unwrap();

    let dest = s.path("out.bin");
    let out = s.cli("ana", &["versions", "download", "m", "1", "-o", dest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!dest.exists(), "a corrupt download must leave no file");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_server_runs_on_postgres_and_its_chain_verifies_offline() {
    let Some(url) = crate::harness::fresh_postgres_database("tour") else { return };
    let s = Server::start_on(Some(url.clone()));
    create_model(&s, "fraud");
    let artifact = s.path("f.bin");
    std::fs::write(&artifact, b"fraud model bytes").unwrap();
    let v = s.json(&["versions", "push", "fraud", artifact.to_str().unwrap(), "--code-commit", "abc123"]);
    assert_eq!(v["version"], 1);
    s.json(&["alias", "set", "fraud", "champion", "1"]);
    assert_eq!(s.json(&["versions", "show", "fraud", "champion"])["version"], 1);
    let online = s.json(&["audit", "verify"]);
    assert_eq!(online["ok"], true);
    assert_eq!(online["events"], 3);
    let offline = s.json(&["audit", "verify", "--database-url", &url]);
    assert_eq!(offline["head"], online["head"]);
}
