//! `modelops serve` and `modelops migrate`.

use crate::config::{Config, ServerArgs};
use anyhow::{bail, Context};
use modelops_core::clock::{Clock, SystemClock};
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

/// Temporary upload objects not written to for this long are leftovers of a
/// crash (an upload that stalls is ended by the body idle timeout, 30 s by
/// default; one configured above an hour would be swept at a restart).
const STALE_UPLOAD: Duration = Duration::from_secs(60 * 60);

/// How long closing the pools may wait for connections still in use.
const POOL_CLOSE: Duration = Duration::from_secs(5);

/// Starts the server and runs until Ctrl-C or SIGTERM, then stops in order:
/// stop accepting HTTP, give requests in flight `shutdown_grace` to finish
/// (a stalled upload does not hold the process), close the pools.
pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    init_tracing(&config);
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create the data dir `{}`", config.data_dir.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = modelops_store::connect(&config.database_url, clock.clone())
        .await
        .with_context(|| format!("cannot open the database at `{}`", redact(&config.database_url)))?;
    let artifacts = modelops_artifacts::ArtifactStore::from_url(&config.artifacts_url, config.artifacts_options.0.clone())
        .with_context(|| format!("cannot open the artifact store at `{}`", config.artifacts_url))?
        .with_max_size(Some(config.max_artifact_bytes));
    // Uploads a crash interrupted leave temporary objects; nothing else would remove them.
    match artifacts.sweep_temporaries(STALE_UPLOAD).await {
        Ok(swept) if swept.count > 0 => tracing::info!(count = swept.count, bytes = swept.bytes, "removed leftovers of interrupted uploads"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not sweep leftovers of interrupted uploads"),
    }
    let runtime = config.runtime.clone();
    // Every pushed artifact is loaded as its kind before it is stored.
    let inspector = Arc::new(modelops_serving::RuntimeInspector { config: runtime.clone() });
    let signing = audit_signing(&config)?;
    let registry = modelops_registry::Registry::new(store.clone(), artifacts, clock)
        .with_verify_reuse(config.verify_reuse)
        .with_inspector(inspector)
        .with_audit_signing(signing);
    bootstrap_admin(&registry, &config.data_dir).await?;
    // Replicas on one database: the one holding the background lease does
    // the background work. The lease is asked for once this server is up
    // (below): a replica still starting must not hold it.
    let leadership = modelops_core::replica::Leadership::new(false);
    let holder = super::replicas::holder_id();
    match &config.policy {
        Some(path) => {
            let (policy, changed) = load_policy_file(&registry, path).await?;
            tracing::info!(policy = %path.display(), sha256 = %policy.sha256(), changed, "policy loaded");
        }
        None => {
            let policy = registry.ensure_policy().await.context("cannot record the shipped default policy")?;
            tracing::info!(sha256 = %policy.sha256(), "policy in force");
        }
    }
    let reload = config.policy.clone().map(|path| tokio::spawn(reload_policy_on_hangup(registry.clone(), path)));
    let server_config = modelops_server::ServerConfig {
        request_timeout: config.request_timeout,
        body_idle_timeout: config.body_idle_timeout,
        max_concurrent_requests: config.max_concurrent_requests,
        max_concurrent_transfers: config.max_concurrent_transfers,
        inference_body_limit: config.max_inference_body,
        // Behind a proxy that terminates TLS, the session cookie is Secure.
        web: modelops_web::WebConfig {
            secure_cookies: config.public_url.as_deref().is_some_and(|u| u.starts_with("https://")),
            public_origin: config.public_url.as_deref().map(|u| {
                // The scheme and authority: what a browser sends as `Origin`.
                let rest = u.split_once("://").map_or(u, |(_, r)| r);
                let scheme = u.split_once("://").map_or("http", |(s, _)| s);
                format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
            }),
            ..modelops_web::WebConfig::default()
        },
        ..modelops_server::ServerConfig::default()
    };
    let serving = modelops_serving::Serving::new(
        registry.clone(),
        modelops_serving::ServingConfig { cache_bytes: config.model_cache_bytes, runtime, ..modelops_serving::ServingConfig::default() },
    );
    // Token authentication, the default.
    let state = modelops_server::AppState::new(registry.clone(), server_config).with_serving(serving.clone());
    // Deployments: every prediction through one is recorded off the
    // request path; canaries are judged by the controller.
    let recorder = state.deployments.recorder().clone();
    recorder.shutdown().await;
    let recorder = modelops_deploy::recorder::Recorder::start(
        registry.prediction_log(),
        modelops_deploy::recorder::RecorderConfig { queue: config.record_queue, ..Default::default() },
    );
    let deploy_config = modelops_deploy::DeployConfig { retention: config.prediction_retention, leadership: leadership.clone(), replica: holder.clone(), ..Default::default() };
    let deployments = modelops_deploy::Deployments::new(registry.clone(), serving.clone(), recorder.clone(), deploy_config);
    let controller = deployments.start().await;
    // Changes other replicas commit (PostgreSQL): caches forget them and
    // deployments are re-read at once, not at the next poll.
    let notices = modelops_store::listen_for_changes(&config.database_url).context("cannot listen for other replicas' changes")?;
    let follower = notices.map(|n| super::replicas::follow_changes(n, registry.clone(), serving.clone(), deployments.clone()));
    let state = state.with_deployments(deployments.clone());
    // Live monitoring: monitors follow the deployments' prediction logs.
    let watch_config = modelops_watch::WatchConfig {
        webhook: modelops_watch::alert::WebhookConfig {
            timeout: config.alert_webhook_timeout,
            attempts: config.alert_webhook_attempts,
            ..Default::default()
        },
        leadership: leadership.clone(),
        ..Default::default()
    };
    let state = state.with_watch(modelops_watch::Watch::new(registry.clone(), deployments, watch_config));
    let watcher = state.watch.start();
    let watch = state.watch.clone();
    let listener = tokio::net::TcpListener::bind(config.addr).await.with_context(|| format!("cannot listen on `{}`", config.addr))?;
    let addr = listener.local_addr()?;
    // The closed loop: retraining runs started by alerts, schedules and
    // people; a job reaches this server on the loopback when it listens on
    // every interface.
    let job_host = if addr.ip().is_unspecified() { std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port()) } else { addr };
    let retrain_config = modelops_retrain::RetrainConfig {
        server_url: config.public_url.clone().unwrap_or_else(|| format!("http://{job_host}")),
        work_root: config.data_dir.join("retrain"),
        leadership: leadership.clone(),
        ..Default::default()
    };
    let retraining = modelops_retrain::Retraining::new(registry.clone(), state.deployments.clone(), retrain_config);
    let state = state.with_retraining(retraining);
    let retrainer = state.retrain.start();
    // Request logs at debug level (`--log modelops=debug,tower_http=debug`).
    // Errors are logged once, by the server's own middleware, with their detail.
    // Only when asked for: a span per request costs ~10% of a small
    // inference's throughput even when nothing is logged.
    let app = modelops_server::router(state);
    let app = if config.log.contains("tower_http") {
        let trace = tower_http::trace::TraceLayer::new_for_http().on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG));
        app.layer(trace)
    } else {
        app
    };
    // Answers go out at once: with Nagle's algorithm, a response written in
    // two parts waits for the client's delayed ACK (~40 ms a call, which is
    // what stalls MLflow's own server under its sequential client).
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    // Everything is started: this replica may lead now (a lone server takes
    // the lease at once).
    let lease = super::replicas::hold_background_lease(registry.clone(), holder.clone(), leadership.clone()).await;
    // Checkpoints: one now when this replica leads (the log as this start
    // finds it, before the first request), then on the timer and whenever
    // it comes to lead.
    let signed_at_start = leadership.is_leader() && {
        if let Err(e) = registry.sign_checkpoint_now().await {
            tracing::error!(error = %e, "could not sign an audit checkpoint");
        }
        true
    };
    let checkpoints = tokio::spawn(sign_checkpoints(registry.clone(), config.audit_checkpoint_interval, leadership.clone(), signed_at_start));
    tracing::info!(%addr, database = %redact(&config.database_url), artifacts = %config.artifacts_url, "modelops listening");
    eprintln!("modelops listening on http://{addr}");

    let (stopping, mut stop_seen) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    });
    let grace = config.shutdown_grace;
    let deadline = async move {
        let _ = stop_seen.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    let served = tokio::select! {
        served = server.into_future() => served,
        () = deadline => {
            tracing::warn!(grace_seconds = grace.as_secs(), "requests still in flight after the shutdown grace period; stopping anyway");
            Ok(())
        }
    };
    if let Some(reload) = reload {
        reload.abort();
    }
    // The background loops and the lease's renewal end before the lease is
    // given up: none may act, or renew it, after another replica took it.
    let mut stopped = vec![controller, watcher, retrainer, lease];
    stopped.extend(follower);
    for task in &stopped {
        task.abort();
    }
    for task in stopped {
        let _ = task.await;
    }
    super::replicas::release_background_lease(&registry, &holder, &leadership).await;
    // Webhooks in flight get a moment to finish (each attempt is bounded).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), watch.settle()).await;
    checkpoints.abort();
    // Records still queued are written before the database closes.
    if tokio::time::timeout(POOL_CLOSE, recorder.shutdown()).await.is_err() {
        tracing::warn!("prediction records still queued after {} s; exiting without them", POOL_CLOSE.as_secs());
    }
    // Closing waits for connections in use; those of abandoned requests may
    // never come back.
    if tokio::time::timeout(POOL_CLOSE, store.close()).await.is_err() {
        tracing::warn!("database connections still in use after {} s; exiting without waiting", POOL_CLOSE.as_secs());
    }
    tracing::info!("stopped");
    Ok(served?)
}

/// The file the bootstrap admin's token is written to, in the data dir.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// On an installation with no users: creates `admin`, prints its token
/// once and writes it to `<data dir>/admin.token`, readable by the owner only.
async fn bootstrap_admin(registry: &modelops_registry::Registry, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let Some(new) = registry.bootstrap_admin().await.context("cannot create the first admin user")? else {
        return Ok(());
    };
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    // Shown first, so a file that cannot be written loses nothing.
    eprintln!("created user `admin`; its token, shown this once:");
    eprintln!("  {}", new.secret);
    write_secret(&path, &format!("{}\n", new.secret)).with_context(|| format!("cannot write the admin token to `{}` (it is printed above)", path.display()))?;
    eprintln!("  (also in {}, readable only by you: export MODELOPS_TOKEN=$(cat {}))", path.display(), path.display());
    Ok(())
}

/// Writes a file only its owner can read (the mode is set at creation, so
/// the secret is never readable by others, even for a moment).
pub fn write_secret(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on open: tighten it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())
}

/// Loads a policy file; a file that does not parse stops start-up naming
/// the file, line and problem.
async fn load_policy_file(registry: &modelops_registry::Registry, path: &std::path::Path) -> anyhow::Result<(Arc<modelops_registry::Policy>, bool)> {
    let source = std::fs::read_to_string(path).with_context(|| format!("cannot read the policy file `{}`", path.display()))?;
    let format = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(modelops_registry::PolicyFormat::from_extension)
        .with_context(|| format!("policy file `{}`: the name must end in .toml, .yaml or .yml", path.display()))?;
    let origin = path.display().to_string();
    let system = modelops_registry::governance::system_principal();
    registry.load_policy(&system, &source, format, &origin).await.map_err(|e| anyhow::anyhow!("{e}"))
}

/// Re-reads the policy file on SIGHUP. A file that fails to load is logged
/// and the policy in force stays.
async fn reload_policy_on_hangup(registry: modelops_registry::Registry, path: std::path::PathBuf) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; the policy file is read at start-up only");
            return;
        };
        while hangups.recv().await.is_some() {
            match load_policy_file(&registry, &path).await {
                Ok((policy, changed)) => tracing::info!(policy = %path.display(), sha256 = %policy.sha256(), changed, "policy reloaded"),
                Err(e) => tracing::error!(error = %format!("{e:#}"), "the policy file did not load; the policy in force stays"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (registry, path);
    }
}

/// Break-glass: a new token for `admin` (created, re-enabled or given back
/// its role as needed), straight through the database — for whoever runs
/// the server, when every admin token is lost or expired. Written to
/// `<data dir>/admin.token` (0600) and printed once; recorded in the audit
/// log as done by `system`.
pub async fn admin_token(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create the data dir `{}`", config.data_dir.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = modelops_store::connect(&config.database_url, clock.clone())
        .await
        .with_context(|| format!("cannot open the database at `{}`", redact(&config.database_url)))?;
    let artifacts = modelops_artifacts::ArtifactStore::from_url(&config.artifacts_url, config.artifacts_options.0.clone())
        .with_context(|| format!("cannot open the artifact store at `{}`", config.artifacts_url))?;
    let registry = modelops_registry::Registry::new(store.clone(), artifacts, clock);
    let new = registry.recover_admin().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    let path = config.data_dir.join(ADMIN_TOKEN_FILE);
    println!("{}", new.secret);
    write_secret(&path, &format!("{}\n", new.secret)).with_context(|| format!("cannot write the token to `{}` (it is printed above)", path.display()))?;
    eprintln!("a new token for `admin` (id {}, expires {}), also written to {}", new.token.id, new.token.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(), path.display());
    Ok(())
}

/// Applies the database migrations and exits.
pub async fn migrate(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create the data dir `{}`", config.data_dir.display()))?;
    modelops_store::migrate(&config.database_url).await.with_context(|| format!("migrating `{}`", redact(&config.database_url)))?;
    println!("database at {} is up to date", redact(&config.database_url));
    Ok(())
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Hides the password in a database URL before it reaches a log.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// The audit log's signing key (created on first start when it is a file)
/// and its witnesses.
fn audit_signing(config: &Config) -> anyhow::Result<modelops_registry::audit::AuditSigning> {
    use modelops_audit::LogSigner;
    let signer = match &config.audit_key {
        crate::config::AuditKeySource::Text(text) => {
            let signer = LogSigner::from_private(text).context("invalid `MODELOPS_AUDIT_SIGNING_KEY`")?;
            if let Some(origin) = config.audit_origin.as_deref().filter(|o| *o != signer.origin()) {
                bail!("`MODELOPS_AUDIT_SIGNING_KEY` is the key of origin `{}`, not `audit_origin` `{origin}`", signer.origin());
            }
            signer
        }
        crate::config::AuditKeySource::File(path) => {
            let (signer, created) = LogSigner::load_or_create(path, config.audit_origin.as_deref())?;
            if created {
                tracing::info!(path = %path.display(), public_key = signer.public_key().text(), "created the audit signing key; keep it safe and out of the database's backups");
            }
            signer
        }
    };
    let witnesses = config
        .audit_witnesses
        .iter()
        .map(|w| modelops_audit::witness::Witness::parse(w).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    tracing::info!(public_key = signer.public_key().text(), witnesses = witnesses.len(), "audit checkpoints are signed");
    Ok(modelops_registry::audit::AuditSigning { signer, witnesses })
}

/// Signs a checkpoint whenever the log grew, every `interval`. A refusal
/// (the stored tree does not extend the last checkpoint) is logged as an
/// error each time: someone must look.
async fn sign_checkpoints(registry: modelops_registry::Registry, interval: Duration, leadership: modelops_core::replica::Leadership, signed_now: bool) {
    // One replica signs (the others' checkpoints would say the same): at
    // once when it comes to lead, then every `interval`.
    let mut last: Option<std::time::Instant> = signed_now.then(std::time::Instant::now);
    loop {
        if !leadership.is_leader() {
            last = None;
        } else if last.is_none_or(|at| at.elapsed() >= interval) {
            last = Some(std::time::Instant::now());
            if let Err(e) = registry.sign_checkpoint_now().await {
                tracing::error!(error = %e, "could not sign an audit checkpoint");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(super::redact("postgres://ana:s3cret@db:5432/m"), "postgres://ana:***@db:5432/m");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
