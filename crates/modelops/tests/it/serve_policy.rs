//! `modelops serve --policy FILE`: a file that does not load stops start-up
//! naming file, line and problem; on SIGHUP the file is read again, and a
//! bad one leaves the policy in force. And the server's log, at debug level,
//! never holds a token.

use crate::harness::{Server, BIN};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GOOD: &str = r#"
[[tiers.low.in_validation]]
name = "described"
when = "version.description.trim() != ''"
message = "a version needs a description before validation"
"#;

fn policy_sha(s: &Server) -> String {
    s.json(&["policy", "show"])["sha256"].as_str().unwrap().to_string()
}

#[test]
fn a_policy_file_that_does_not_load_stops_start_up_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, GOOD.replace("version.description.trim()", "version.descripton.trim()")).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--policy")
        .arg(&file)
        .env_remove("MODELOPS_CONFIG")
        .env_remove("MODELOPS_DATABASE_URL")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server started with a broken policy");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4", file.display())) && err.contains("descripton"), "{err}");
}

#[test]
fn sighup_reloads_the_policy_and_a_bad_file_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, GOOD).unwrap();
    let s = Server::start_with(None, &["--policy", file.to_str().unwrap()]);
    let first = policy_sha(&s);
    assert_eq!(first, hex_sha256(GOOD.as_bytes()));

    // A broken file: the server keeps the policy in force.
    std::fs::write(&file, "[[tiers.low.approved]]\nname = \n").unwrap();
    s.hangup();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(policy_sha(&s), first);
    assert!(s.json(&["audit", "verify"])["ok"].as_bool().unwrap());

    // A good one replaces it.
    let second = GOOD.replace("a version needs", "every version needs");
    std::fs::write(&file, &second).unwrap();
    s.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while policy_sha(&s) == first {
        assert!(Instant::now() < deadline, "the policy was not reloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(policy_sha(&s), hex_sha256(second.as_bytes()));
    let loads = s.json(&["audit", "log", "--action", "policy.load"]);
    let loads = loads.as_array().map_or_else(|| loads["events"].as_array().unwrap().len(), |a| a.len());
    assert_eq!(loads, 2, "the start-up load and the reload");
}

#[test]
fn tokens_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut s = Server::start_logging(&log);
    let token = s.new_user("ana", &["developer"]);
    // Used well, used on a route that refuses it, and sent wrong.
    assert!(s.cli_with_token(&token, &["models", "list"]).status.success());
    assert!(!s.cli_with_token(&token, &["users", "create", "x", "--role", "viewer"]).status.success());
    let wrong = format!("{}{}", &token[..token.len() - 4], "AAAA");
    assert!(!s.cli_with_token(&wrong, &["models", "list"]).status.success());
    s.terminate(Duration::from_secs(10));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("request"), "the log is empty: {text}");
    let secret = &token[4 + 12 + 1..];
    assert!(!text.contains(secret) && !text.contains(&wrong[4 + 12 + 1..]), "a token is in the log");
    // The bootstrap admin's token is shown once, at creation, and only then.
    let admin_secret = &s.admin_token[4 + 12 + 1..];
    assert_eq!(text.matches(admin_secret).count(), 1, "{text}");
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn admin_token_is_the_break_glass_when_every_admin_token_is_lost() {
    let s = Server::start();
    // The admin locks themself out as far as the API allows: their token revoked.
    let id = s.admin_token.split('_').nth(1).unwrap().to_string();
    assert!(s.cli(&["tokens", "revoke", &id]).status.success());
    assert!(!s.cli(&["whoami"]).status.success());
    // Whoever runs the server gets a new one through the database.
    let out = Command::new(BIN)
        .args(["admin-token", "--data-dir"])
        .arg(s.path("data"))
        .env_remove("MODELOPS_CONFIG")
        .env_remove("MODELOPS_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(std::fs::read_to_string(s.path("data/admin.token")).unwrap().trim(), token);
    let who = s.cli_with_token(&token, &["whoami", "--json"]);
    assert!(who.status.success(), "{}", String::from_utf8_lossy(&who.stderr));
    let created = s.cli_with_token(&token, &["audit", "log", "--action", "token.create", "--json"]);
    let text = String::from_utf8(created.stdout).unwrap();
    assert!(text.contains("recovery") && text.contains("system"), "{text}");
}
