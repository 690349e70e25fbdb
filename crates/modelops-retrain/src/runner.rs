//! Running a job: a child process (no shell, its own process group, a
//! minimal environment, a time limit, stdout and stderr kept as the run's
//! log) or a webhook (POSTed the run, signed; the run lasts until the
//! version is registered with the run's token, or the time limit).
//!
//! What the job is given, as environment variables (a webhook gets the same
//! as JSON fields):
//!
//! | variable | what |
//! |---|---|
//! | `MODELOPS_SERVER`, `MODELOPS_TOKEN` | where and as whom to register the result: the token acts as a developer of this model only, registers one version, and expires after the time limit |
//! | `MODELOPS_MODEL`, `MODELOPS_RUN`, `MODELOPS_TRIGGER` | the model, the run's id, `alert`, `schedule` or `manual` |
//! | `MODELOPS_PARENT_VERSION` | the champion when the run started (empty when none) |
//! | `MODELOPS_WINDOW` | the triggering window's recorded calls as Parquet (the export's columns plus `ground_truth` where labels arrived); unset without a window |
//! | `MODELOPS_WINDOW_DEPLOYMENT`, `MODELOPS_WINDOW_START`, `MODELOPS_WINDOW_END` | which window |
//! | `MODELOPS_REFERENCE_PROFILE` | the parent version's reference profile (JSON), when it has one |
//! | `MODELOPS_WORK_DIR` | the run's own folder, removed when the job ends |
//! | `MODELOPS_BIN` | this `modelops` binary, to push the version with |

use crate::{window, Retraining};
use modelops_core::retrain::{JobRun, JobRunner, RetrainJob, MAX_LOG_BYTES};
use modelops_core::Result;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How the job itself ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Succeeded,
    Failed(String),
    /// The limit in seconds.
    TimedOut(u64),
}

#[derive(Debug)]
pub(crate) struct Ended {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    /// A local command (whose end is certain): its token is revoked now.
    pub command: bool,
}

impl Ended {
    fn failed(why: String) -> Self {
        Ended { outcome: Outcome::Failed(why), exit_code: None, command: true }
    }
}

/// Variables of the server's environment a job inherits (the rest — the
/// database URL, webhook secrets — stays with the server).
const INHERITED: [&str; 9] = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "VIRTUAL_ENV", "PYTHONPATH", "TZ"];

/// How often a running job's output is saved (when it changed).
const LOG_EVERY: Duration = Duration::from_secs(1);
/// How often a running job says it still runs, output changed or not.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(5);

pub(crate) async fn execute(this: &Retraining, run: &JobRun, job: &RetrainJob, token: String) -> Ended {
    let config = &this.inner.config;
    let work = config.work_root.join(format!("run-{}", run.id));
    let prepared = prepare(this, run, &work, token).await;
    let ended = match prepared {
        Err(e) => Ended::failed(format!("the job's inputs could not be prepared: {e}")),
        Ok(env) => match &job.spec.runner {
            JobRunner::Command { argv, dir, env: extra } => {
                let dir = dir.as_ref().map_or_else(|| work.clone(), PathBuf::from);
                command(this, run, argv, &dir, extra, env, job.spec.timeout_seconds).await
            }
            JobRunner::Webhook { url, secret_env } => webhook(this, run, url, secret_env.as_deref(), env, job.spec.timeout_seconds).await,
        },
    };
    if let Err(e) = tokio::fs::remove_dir_all(&work).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(run = run.id, error = %e, folder = %work.display(), "retraining: cannot remove a run's work folder");
        }
    }
    ended
}

/// The work folder with the window and the reference profile, and the
/// variables that say where they are.
async fn prepare(this: &Retraining, run: &JobRun, work: &Path, token: String) -> Result<BTreeMap<String, String>> {
    let io = |e: std::io::Error| modelops_core::Error::Internal(format!("the work folder {}: {e}", work.display()));
    tokio::fs::create_dir_all(work).await.map_err(io)?;
    let config = &this.inner.config;
    let mut env = BTreeMap::new();
    env.insert("MODELOPS_SERVER".into(), config.server_url.clone());
    env.insert("MODELOPS_TOKEN".into(), token);
    env.insert("MODELOPS_MODEL".into(), run.model.to_string());
    env.insert("MODELOPS_RUN".into(), run.id.to_string());
    env.insert("MODELOPS_TRIGGER".into(), run.trigger.as_str().into());
    env.insert("MODELOPS_PARENT_VERSION".into(), run.parent_version.map(|v| v.to_string()).unwrap_or_default());
    env.insert("MODELOPS_WORK_DIR".into(), work.display().to_string());
    if let Some(bin) = &config.binary {
        env.insert("MODELOPS_BIN".into(), bin.display().to_string());
    }
    if let Some(w) = &run.window {
        let batch = window::export(&this.inner.registry, w, config.max_window_calls).await?;
        let path = work.join("window.parquet");
        let file = std::fs::File::create(&path).map_err(io)?;
        modelops_deploy::export::write_parquet(&batch, file)?;
        env.insert("MODELOPS_WINDOW".into(), path.display().to_string());
        env.insert("MODELOPS_WINDOW_DEPLOYMENT".into(), w.deployment.to_string());
        env.insert("MODELOPS_WINDOW_START".into(), modelops_core::clock::format_time(&w.start));
        env.insert("MODELOPS_WINDOW_END".into(), modelops_core::clock::format_time(&w.end));
    }
    if let Some(parent) = run.parent_version {
        if let Some(reference) = this.inner.registry.monitor_store().reference(&run.model, parent).await? {
            let path = work.join("reference_profile.json");
            tokio::fs::write(&path, reference.profile.as_bytes()).await.map_err(io)?;
            env.insert("MODELOPS_REFERENCE_PROFILE".into(), path.display().to_string());
        }
    }
    Ok(env)
}

/// The kept tail of a job's output.
#[derive(Default)]
struct Log {
    text: String,
    dropped: u64,
}

impl Log {
    fn push(&mut self, bytes: &[u8]) {
        self.text.push_str(&String::from_utf8_lossy(bytes));
        if self.text.len() > MAX_LOG_BYTES {
            let mut cut = self.text.len() - MAX_LOG_BYTES;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.dropped += cut as u64;
            self.text.drain(..cut);
        }
    }

    fn render(&self) -> String {
        if self.dropped == 0 {
            self.text.clone()
        } else {
            format!("[… {} earlier bytes not kept]\n{}", self.dropped, self.text)
        }
    }
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(mut from: R, log: Arc<Mutex<Log>>) {
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(&buf[..n]);
    }
}

async fn command(this: &Retraining, run: &JobRun, argv: &[String], dir: &Path, extra: &BTreeMap<String, String>, env: BTreeMap<String, String>, timeout: u64) -> Ended {
    let registry = &this.inner.registry;
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).current_dir(dir).env_clear().stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    for key in INHERITED {
        if let Ok(value) = std::env::var(key) {
            cmd.env(key, value);
        }
    }
    cmd.envs(extra).envs(&env);
    // Its own process group: a time limit stops the job's children too.
    #[cfg(unix)]
    cmd.process_group(0);
    cmd.kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let why = format!("`{}` could not be started in {}: {e}", argv[0], dir.display());
            let _ = registry.put_job_run_log(run.id, &why).await;
            return Ended::failed(why);
        }
    };
    let pid = child.id();
    let log = Arc::new(Mutex::new(Log::default()));
    let out = child.stdout.take().map(|s| tokio::spawn(pump(s, log.clone())));
    let err = child.stderr.take().map(|s| tokio::spawn(pump(s, log.clone())));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut saved = (0usize, tokio::time::Instant::now());
    let status = loop {
        tokio::select! {
            status = child.wait() => break Some(status),
            () = tokio::time::sleep_until(deadline) => break None,
            () = tokio::time::sleep(LOG_EVERY) => {
                let text = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).render();
                if text.len() != saved.0 || saved.1.elapsed() >= HEARTBEAT {
                    saved = (text.len(), tokio::time::Instant::now());
                    let _ = registry.put_job_run_log(run.id, &text).await;
                }
            }
        }
    };
    let ended = match status {
        None => {
            stop_group(pid);
            let _ = child.kill().await;
            Ended { outcome: Outcome::TimedOut(timeout), exit_code: None, command: true }
        }
        Some(Err(e)) => Ended::failed(format!("waiting for the job failed: {e}")),
        Some(Ok(status)) if status.success() => Ended { outcome: Outcome::Succeeded, exit_code: Some(0), command: true },
        Some(Ok(status)) => match status.code() {
            Some(code) => Ended { outcome: Outcome::Failed(format!("the job exited with status {code}")), exit_code: Some(code), command: true },
            None => Ended::failed("the job was killed by a signal".into()),
        },
    };
    // Whatever the job left running in its group goes with it.
    stop_group(pid);
    for task in [out, err].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let text = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).render();
    let _ = registry.put_job_run_log(run.id, &text).await;
    ended
}

/// Kills the job's process group (nothing happens when it is gone):
/// `kill -KILL -<pgid>`, which needs no unsafe code.
fn stop_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

async fn webhook(this: &Retraining, run: &JobRun, url: &str, secret_env: Option<&str>, env: BTreeMap<String, String>, timeout: u64) -> Ended {
    let registry = &this.inner.registry;
    let config = &this.inner.config;
    let window_url = run.window.as_ref().map(|_| format!("{}/api/v1/retrain-runs/{}/window", config.server_url.trim_end_matches('/'), run.id));
    let body = json!({
        "run": run.id,
        "model": run.model,
        "trigger": run.trigger.as_str(),
        "parent_version": run.parent_version,
        "window": run.window,
        "window_url": window_url,
        "server": config.server_url,
        "token": env.get("MODELOPS_TOKEN"),
        "timeout_seconds": timeout,
    });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut request = this.inner.http.post(url).header("content-type", "application/json").header("x-modelops-event", "retrain.start");
    if let Some(name) = secret_env {
        match std::env::var(name) {
            Ok(secret) => request = request.header("x-modelops-signature", modelops_watch::alert::signature(secret.as_bytes(), &bytes)),
            Err(_) => return Ended::failed(format!("the webhook's secret variable `{name}` is not set on the server")),
        }
    }
    let answer = request.body(bytes).send().await;
    let note = match answer {
        Ok(r) if r.status().is_success() => format!("POST {url}: {}", r.status()),
        Ok(r) => {
            let why = format!("the webhook answered {}", r.status());
            let _ = registry.put_job_run_log(run.id, &format!("POST {url}: {}", r.status())).await;
            return Ended::failed(why);
        }
        Err(e) => {
            let why = format!("the webhook could not be reached: {e}");
            let _ = registry.put_job_run_log(run.id, &why).await;
            return Ended::failed(why);
        }
    };
    let text = format!("{note}\nwaiting for the job to register a version with the run's token");
    let _ = registry.put_job_run_log(run.id, &text).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut beat = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= deadline {
            return Ended { outcome: Outcome::TimedOut(timeout), exit_code: None, command: false };
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if beat.elapsed() >= HEARTBEAT {
            beat = tokio::time::Instant::now();
            let _ = registry.put_job_run_log(run.id, &text).await;
        }
        if let Ok(Some(stored)) = registry.monitor_store().job_run(run.id).await {
            if stored.version.is_some() {
                return Ended { outcome: Outcome::Succeeded, exit_code: None, command: false };
            }
        }
    }
}
