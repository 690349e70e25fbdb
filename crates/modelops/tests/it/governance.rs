//! Authentication and governance through the CLI: tokens, login, users,
//! gates for CI, policies and reports.

use crate::harness::{error_line, Server};
use std::io::Write;
use std::process::{Output, Stdio};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Pushes a version of a `rules` model.
fn push_version(s: &Server, model: &str) {
    let artifact = s.path("m.yaml");
    std::fs::write(&artifact, crate::harness::artifact("rules", "model")).unwrap();
    s.json(&["versions", "push", model, artifact.to_str().unwrap()]);
}

#[test]
fn a_wrong_token_is_refused_with_401_and_never_printed() {
    let s = Server::start();
    let wrong = "mo_0123456789abcdef.thisisnotthesecretatall";
    let out = s.cli_with_token(wrong, &["models", "list"]);
    let line = error_line(&out);
    assert!(line.contains("401") && line.contains("modelops login") && line.contains("MODELOPS_TOKEN"), "{line}");
    assert!(!line.contains(wrong) && !line.contains("thisisnotthesecret"), "{line}");
    // With no token at all: the same advice.
    let out = s.command(&["models", "list"]).output().unwrap();
    assert!(error_line(&out).contains("401"), "{}", stderr(&out));
    // `--help` never shows the token's value.
    let help = s.command(&["models", "list", "--help"]).env("MODELOPS_TOKEN", wrong).output().unwrap();
    assert!(help.status.success());
    assert!(stdout(&help).contains("--token") && !stdout(&help).contains(wrong), "{}", stdout(&help));
}

#[test]
fn login_saves_the_token_readable_only_by_its_owner_and_later_commands_use_it() {
    let s = Server::start();
    let home = tempfile::tempdir().unwrap();
    let command = |args: &[&str]| {
        let mut cmd = s.command(args);
        cmd.env_remove("MODELOPS_CONFIG_DIR").env_remove("XDG_CONFIG_HOME").env("HOME", home.path());
        cmd
    };
    // A wrong token is not saved.
    let out = command(&["login", "--token", "mo_0000.wrong"]).output().unwrap();
    assert!(error_line(&out).contains("401"));
    let file = home.path().join(".config/modelops/credentials.toml");
    assert!(!file.exists());

    // The token from standard input, checked with the server, then saved.
    let mut child = command(&["login"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{}", s.admin_token).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("admin"), "{}", stdout(&out));
    assert!(!stdout(&out).contains(&s.admin_token) && !stderr(&out).contains(&s.admin_token));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains(&format!("[servers.\"{}\"]", s.url)) && saved.contains(&s.admin_token), "{saved}");

    // No MODELOPS_TOKEN: the saved token signs in.
    let out = command(&["whoami"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("admin (roles: admin"), "{}", stdout(&out));
    let out = command(&["models", "create", "m", "--kind", "rules", "--risk-tier", "low"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // MODELOPS_CONFIG_DIR wins over HOME.
    let other = tempfile::tempdir().unwrap();
    let out = command(&["whoami"]).env("MODELOPS_CONFIG_DIR", other.path()).output().unwrap();
    assert!(error_line(&out).contains("401"));

    // Logout forgets it.
    let out = command(&["logout"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!std::fs::read_to_string(&file).unwrap().contains(&s.admin_token));
    assert!(error_line(&command(&["whoami"]).output().unwrap()).contains("401"));
}

#[test]
fn a_created_token_works_until_it_is_revoked() {
    let s = Server::start();
    s.json(&["users", "create", "bo", "--role", "developer", "--team", "risk"]);
    let out = s.cli(&["tokens", "create", "--name", "ci", "--user", "bo", "--expires-in-days", "7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    assert_eq!(token.lines().count(), 1, "the token alone on stdout: {token}");
    assert!(stderr(&out).contains("shown this once"), "{}", stderr(&out));

    let who = s.cli_with_token(&token, &["whoami", "--json"]);
    assert!(who.status.success(), "{}", stderr(&who));
    let who: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(who["name"], "bo");
    assert_eq!(who["roles"], serde_json::json!(["developer"]));

    let listed = s.json(&["tokens", "list", "--user", "bo"]);
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(!listed.to_string().contains(&token), "a listing never holds the token");
    let id = tokens[0]["id"].as_str().unwrap();

    let revoked = s.json(&["tokens", "revoke", id]);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let line = error_line(&s.cli_with_token(&token, &["whoami"]));
    assert!(line.contains("401") && !line.contains(&token), "{line}");
}

#[test]
fn users_are_managed_by_admins_and_a_refusal_lists_its_reasons() {
    let s = Server::start();
    let user = s.json(&["users", "create", "vi", "--role", "viewer", "--role", "auditor", "--team", "audit"]);
    assert_eq!(user["roles"], serde_json::json!(["viewer", "auditor"]));
    let vi = s.new_user("val", &["validator"]);
    let line = error_line(&s.cli(&["users", "create", "x", "--role", "boss"]));
    assert!(line.contains("`--role`") && line.contains("boss"), "{line}");

    let table = stdout(&s.cli(&["users", "list"]));
    assert!(table.contains("vi") && table.contains("viewer, auditor") && table.contains("audit"), "{table}");
    let updated = s.json(&["users", "update", "vi", "--role", "viewer"]);
    assert_eq!(updated["roles"], serde_json::json!(["viewer"]));
    assert_eq!(updated["team"], "audit");
    assert_eq!(s.json(&["users", "disable", "vi"])["disabled"], true);
    assert_eq!(s.json(&["users", "enable", "vi"])["disabled"], false);
    assert_eq!(s.json(&["users", "show", "vi"])["roles"], serde_json::json!(["viewer"]));

    // A validator may not create models: 403, each failing condition on its own line.
    let out = s.cli_with_token(&vi, &["models", "create", "m", "--kind", "rules", "--risk-tier", "low"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let mut lines = err.trim().lines();
    let first = lines.next().unwrap();
    assert!(first.starts_with("error: ") && first.contains("403"), "{err}");
    let reasons: Vec<&str> = lines.collect();
    assert!(!reasons.is_empty() && reasons.iter().all(|l| l.starts_with("  - ")), "{err}");
    assert!(reasons.iter().any(|l| l.starts_with("  - role: ")), "{err}");
}

#[test]
fn the_lifecycle_runs_from_the_cli() {
    let s = Server::start();
    let dev = s.new_user("dev", &["developer"]);
    let val = s.new_user("val", &["validator"]);
    s.json(&[
        "models", "create", "m", "--kind", "rules", "--risk-tier", "low", "--owner", "dev", "--developer", "dev",
        "--validation-metric", "auc", "--validation-threshold", "0.7",
    ]);
    let shown = stdout(&s.cli(&["models", "show", "m"]));
    assert!(shown.contains("developers  dev") && shown.contains("validation  auc (threshold 0.7)"), "{shown}");
    let artifact = s.path("m.bin");
    std::fs::write(&artifact, crate::harness::artifact("rules", "rules")).unwrap();
    let pushed = s.cli_with_token(&dev, &["versions", "push", "m", artifact.to_str().unwrap()]);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    s.json(&["alias", "set", "m", "candidate", "1"]);

    let out = s.cli_with_token(&dev, &["versions", "submit", "m", "candidate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "m version 1 is now in_validation");

    let out = s.cli_with_token(&dev, &["evidence", "add", "m", "1", "--metric", "auc=0.81", "--dataset", "holdout-2026"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = s.path("validation.md");
    std::fs::write(&report, "# validation\nall good\n").unwrap();
    let out = s.cli_with_token(&dev, &["evidence", "add", "m", "1", "--document", report.to_str().unwrap(), "--name", "validation_report", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["filename"], "validation.md");
    assert_eq!(doc["size"], 22);

    // The author may not approve their own version.
    let out = s.cli_with_token(&dev, &["versions", "approve", "m", "1"]);
    assert!(!out.status.success() && stderr(&out).contains("403"), "{}", stderr(&out));

    let out = s.cli_with_token(&val, &["versions", "approve", "m", "1", "--comment", "fine", "--expires", "2099-12-31"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("approval recorded; m version 1 is now "), "{}", stdout(&out));

    let record = s.json(&["versions", "governance", "m", "1"]);
    assert_eq!(record["approvals"][0]["approver"], "val");
    assert_eq!(record["approvals"][0]["expires_at"], "2099-12-31T00:00:00Z");
    assert_eq!(record["evidence"].as_array().unwrap().len(), 2);
    let people = stdout(&s.cli(&["versions", "governance", "m", "1"]));
    assert!(people.contains("approvals:") && people.contains("holdout-2026") && people.contains("reviews: none"), "{people}");

    let out = s.cli(&["versions", "approve", "m", "1", "--expires", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`soon` is neither YYYY-MM-DD nor an RFC 3339 time"), "{}", stderr(&out));
}

#[test]
fn report_inventory_json_parses() {
    let s = Server::start();
    s.json(&["models", "create", "credit-risk", "--kind", "onnx", "--risk-tier", "high", "--owner", "ana"]);
    let out = s.cli(&["report", "inventory", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert!(report.to_string().contains("credit-risk"), "{report}");

    let file = s.path("inventory.md");
    let out = s.cli(&["report", "inventory", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(std::fs::read_to_string(&file).unwrap().contains("credit-risk"));

    let out = s.cli(&["report", "annex-iv", "credit-risk", "--format", "html"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("<html") || stdout(&out).contains("<!DOCTYPE") || stdout(&out).contains("<!doctype"), "{}", stdout(&out));
    assert!(error_line(&s.cli(&["report", "model", "nope"])).contains("404"));
}

#[test]
fn gate_exit_codes_tell_ci_allowed_denied_or_error() {
    let s = Server::start();
    s.json(&["models", "create", "m", "--kind", "rules", "--risk-tier", "low", "--owner", "admin"]);
    push_version(&s, "m");

    // A draft cannot go to production: denied, every condition listed, exit 1.
    let out = s.cli(&["gate", "m", "1", "--to", "production"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("denied: m version 1 → production (tier low)"), "{text}");
    assert!(text.contains("✗ lifecycle: "), "{text}");
    assert!(text.lines().last().unwrap().starts_with("policy sha256 "), "{text}");
    let json = s.cli(&["gate", "m", "1", "--to", "production", "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let gate: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(gate["allowed"], false);

    // Errors are 2: unknown version, bad target, no token.
    assert_eq!(s.cli(&["gate", "m", "9", "--to", "production"]).status.code(), Some(2));
    assert_eq!(s.cli(&["gate", "m", "1", "--to", "heaven"]).status.code(), Some(2));
    assert_eq!(s.command(&["gate", "m", "1", "--to", "production"]).output().unwrap().status.code(), Some(2));

    // A gate that allows: a low-tier draft may be submitted (the shipped
    // policy sets no condition there).
    let out = s.cli(&["gate", "m", "1", "--to", "in_validation"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).starts_with("allowed: m version 1 → in_validation (tier low)"), "{}", stdout(&out));
}

const POLICY: &str = r#"# the tests' policy
[[tiers.low.in_validation]]
name = "described"
when = "version.description.trim() != ''"
message = "the version needs a description"
"#;

#[test]
fn a_loaded_policy_decides_the_gates() {
    let s = Server::start();
    let file = s.path("policy.toml");
    std::fs::write(&file, POLICY).unwrap();
    let path = file.to_str().unwrap();

    let out = s.cli(&["policy", "check", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let checked = stdout(&out);
    assert!(checked.starts_with("ok: sha256 ") && checked.trim_end().ends_with(", 1 conditions"), "{checked}");
    let sha = checked.trim_start_matches("ok: sha256 ").split(',').next().unwrap().to_string();

    let out = s.cli(&["policy", "load", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("loaded: sha256 {sha} is the active policy now"));
    let out = s.cli(&["policy", "load", path]);
    assert!(stdout(&out).starts_with("unchanged: "), "{}", stdout(&out));
    let shown = stdout(&s.cli(&["policy", "show"]));
    assert!(shown.starts_with(&format!("sha256: {sha}\n")) && shown.contains("by admin") && shown.contains("described"), "{shown}");
    assert_eq!(stdout(&s.cli(&["policy", "show", "--source"])), POLICY);

    s.json(&["models", "create", "m", "--kind", "rules", "--risk-tier", "low", "--owner", "admin"]);
    push_version(&s, "m");
    let out = s.cli(&["gate", "m", "1", "--to", "in_validation"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("  ✗ described: the version needs a description\n"), "{text}");
    assert!(text.ends_with(&format!("policy sha256 {sha}\n")), "{text}");

    // Submitting through the closed gate is refused with the gate's reasons.
    let out = s.cli(&["versions", "submit", "m", "1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("403") && stderr(&out).contains("\n  - described: the version needs a description"), "{}", stderr(&out));

    s.json(&["versions", "update", "m", "1", "--description", "first rules"]);
    let out = s.cli(&["gate", "m", "1", "--to", "in_validation"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("  ✓ described: "), "{}", stdout(&out));
    assert!(s.cli(&["versions", "submit", "m", "1"]).status.success());
}

#[test]
fn policy_check_names_the_file_and_line_of_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, text: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        // Offline: no server, no token.
        let out = std::process::Command::new(crate::harness::BIN)
            .args(["policy", "check", file.to_str().unwrap()])
            .env("MODELOPS_SERVER", "http://127.0.0.1:9")
            .env("MODELOPS_CONFIG_DIR", dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        (file.display().to_string(), error_line(&out))
    };
    let unknown_field = POLICY.replace("version.description.trim()", "version.descripton.trim()");
    let (file, line) = check("policy.toml", &unknown_field);
    assert!(line.starts_with(&format!("error: {file}:4: ")) && line.contains("descripton"), "{line}");

    let (file, line) = check("broken.toml", "[[tiers.low.in_validation]]\nname = \n");
    assert!(line.starts_with(&format!("error: {file}:2: ")), "{line}");

    let yaml = "tiers:\n  low:\n    in_validation:\n      - name: described\n        when: \"version.description != 1\"\n        message: m\n";
    let (file, line) = check("policy.yaml", yaml);
    assert!(line.starts_with(&format!("error: {file}:5: ")), "{line}");

    let (_, line) = check("policy.json", "{}");
    assert!(line.contains(".toml, .yaml or .yml"), "{line}");
}
