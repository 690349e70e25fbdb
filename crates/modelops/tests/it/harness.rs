//! Starts `modelops serve` on a free port and runs CLI commands against it,
//! signed in with the bootstrap admin's token (or a user's, see
//! [`Server::act_as`]). Every command gets a credentials folder of its own
//! (`MODELOPS_CONFIG_DIR`), so a developer's saved tokens never leak in.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_modelops");

pub struct Server {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    database_url: Option<String>,
    /// The bootstrap admin's token, read from `<data dir>/admin.token`.
    pub admin_token: String,
    /// The token commands run with: the admin's until [`Server::act_as`].
    pub token: String,
}

impl Server {
    /// A server on the default embedded SQLite database.
    pub fn start() -> Server {
        Self::start_on(None)
    }

    /// A server on the database `database_url` names (SQLite in the data dir when `None`).
    pub fn start_on(database_url: Option<String>) -> Server {
        Self::start_with(database_url, &[])
    }

    /// A server with extra `serve` flags.
    pub fn start_with(database_url: Option<String>, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(BIN);
        // Verify on every request: the tests tamper with the database between calls.
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--log", "warn", "--verify-reuse", "0", "--data-dir"]).arg(dir.path().join("data"));
        if let Some(url) = &database_url {
            cmd.args(["--database-url", url]);
        }
        cmd.args(extra);
        let mut child = cmd
            .env_remove("MODELOPS_CONFIG")
            .env_remove("MODELOPS_DATABASE_URL")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // The server announces its address on stderr once it listens.
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            assert!(Instant::now() < deadline, "server did not announce its address");
            let line = lines.next().expect("server exited before listening").unwrap();
            if let Some(rest) = line.strip_prefix("modelops listening on ") {
                break rest.trim().to_string();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let token_file = dir.path().join("data/admin.token");
        let admin_token = std::fs::read_to_string(&token_file).unwrap_or_else(|e| panic!("{}: {e}", token_file.display())).trim().to_string();
        assert!(!admin_token.is_empty(), "empty admin token");
        Server { child, url, dir, database_url, token: admin_token.clone(), admin_token }
    }

    /// A server logging at debug level into `log` (stderr), for tests that
    /// read what the server logs.
    pub fn start_logging(log: &Path) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0", "--log", "debug", "--data-dir"])
            .arg(dir.path().join("data"))
            .env_remove("MODELOPS_CONFIG")
            .env_remove("MODELOPS_DATABASE_URL")
            .stderr(Stdio::from(file))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            assert!(Instant::now() < deadline, "server did not announce its address");
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix("modelops listening on ")) {
                break line.trim().to_string();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let admin_token = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap().trim().to_string();
        Server { child, url, dir, database_url: None, token: admin_token.clone(), admin_token }
    }

    /// Sends SIGHUP (the server reloads its policy file).
    pub fn hangup(&self) {
        assert!(Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().unwrap().success());
    }

    /// Creates user `name` with `roles` (as the admin) and a token for them.
    pub fn new_user(&self, name: &str, roles: &[&str]) -> String {
        let mut args = vec!["users", "create", name];
        for role in roles {
            args.extend(["--role", role]);
        }
        let out = self.cli_with_token(&self.admin_token, &args);
        assert!(out.status.success(), "users create {name}: {}", String::from_utf8_lossy(&out.stderr));
        let out = self.cli_with_token(&self.admin_token, &["tokens", "create", "--name", "tests", "--user", name]);
        assert!(out.status.success(), "tokens create --user {name}: {}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert_eq!(token.lines().count(), 1, "{token}");
        token
    }

    /// From now on, commands run as a new user `name` with `roles`.
    pub fn act_as(&mut self, name: &str, roles: &[&str]) {
        self.token = self.new_user(name, roles);
    }

    pub fn db_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.dir.path().join("data/modelops.db").display()))
    }

    /// Runs the CLI against this server with the current token.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_token(&self.token, args)
    }

    /// Runs the CLI against this server with `token`.
    pub fn cli_with_token(&self, token: &str, args: &[&str]) -> Output {
        self.command(args).env("MODELOPS_TOKEN", token).output().unwrap()
    }

    /// The CLI against this server, in the test's folder, with an empty
    /// credentials folder and no token: add what the test needs.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("MODELOPS_SERVER", &self.url)
            .env("MODELOPS_CONFIG_DIR", self.dir.path().join("config"))
            .env_remove("MODELOPS_TOKEN");
        cmd
    }

    /// Runs the CLI with `--json` and parses what it printed; panics with the
    /// error line if it failed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = args.to_vec();
        full.push("--json");
        let out = self.cli(&full);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// `host:port` the server listens on.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Sends SIGTERM and waits at most `limit` for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The one line a failed command printed, checked to be one line.
pub fn error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure, got: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "error should be one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// A fresh, empty database on the test PostgreSQL server, or `None` when
/// PostgreSQL is skipped on purpose. Without a server URL the test fails:
/// run the suite through `scripts/with-postgres`.
pub fn fresh_postgres_database(tag: &str) -> Option<String> {
    let url = match std::env::var("MODELOPS_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("MODELOPS_TEST_SKIP_POSTGRES").as_deref() == Ok("1") => return None,
        Err(_) => panic!("MODELOPS_TEST_POSTGRES_URL is not set: run through `scripts/with-postgres cargo test`, or set MODELOPS_TEST_SKIP_POSTGRES=1"),
    };
    let name = format!("cli_{tag}_{}", std::process::id());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str()).await.unwrap();
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await.unwrap();
    });
    // Same server and credentials, another database.
    let (base, query) = url.split_once('?').map_or((url.as_str(), None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    Some(match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    })
}

/// A loopback HTTP server that answers every request with `status` (`200 OK`)
/// and `body`: the answers a wrong or broken server, or a proxy, could give.
/// Returns its URL; the thread ends with the test process.
pub fn fake_server(status: &str, content_type: &str, body: &str) -> String {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let response = format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // Read the request head (the CLI sends GETs here, so no body).
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

/// Runs the CLI against the server at `url`, with a token no server knows.
pub fn cli_at(url: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(args)
        .current_dir(dir.path())
        .env("MODELOPS_SERVER", url)
        .env("MODELOPS_CONFIG_DIR", dir.path())
        .env("MODELOPS_TOKEN", "not-a-real-token")
        .output()
        .unwrap()
}

/// Every file under `dir`; none when it does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A valid artifact of `kind` (the server loads every pushed artifact as its
/// kind), distinct per `tag`: an ONNX model for `onnx`, a rule set for `rules`.
pub fn artifact(kind: &str, tag: &str) -> Vec<u8> {
    match kind {
        "onnx" => modelops_runtime::sample::doubling_onnx(10, tag, 0),
        "rules" => format!(
            "description: {tag}\ninputs: [{{name: x, type: double}}]\noutputs: [{{name: y, type: double}}]\n\
             rules:\n  - {{name: big, when: 'x > 100.0', then: {{y: x}}}}\ndefault: {{y: 'x * 2.0'}}\n"
        )
        .into_bytes(),
        other => panic!("no sample artifact for kind `{other}`"),
    }
}
