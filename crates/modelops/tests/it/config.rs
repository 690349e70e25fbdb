use crate::harness::BIN;
use std::process::Command;

fn serve_with(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").args(args).current_dir(dir.path()).env_remove("MODELOPS_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn a_bad_config_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("modelops.toml");
    std::fs::write(&file, "addr = \"127.0.0.1:0\"\nmax_artifact_bytes = \"lots\"\n").unwrap();
    let (ok, err) = serve_with(&["--config", file.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains("max_artifact_bytes") && err.contains("line 2"), "{err}");

    std::fs::write(&file, "adress = \"127.0.0.1:0\"\n").unwrap();
    let (ok, err) = serve_with(&["--config", file.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains("adress"), "{err}");

    let (ok, err) = serve_with(&[], &[("MODELOPS_ADDR", "nowhere")]);
    assert!(!ok);
    assert!(err.contains("`addr`") && err.contains("nowhere"), "{err}");

    let (ok, err) = serve_with(&["--database-url", "mysql://db/x"], &[]);
    assert!(!ok);
    assert!(err.contains("database_url"), "{err}");
}
