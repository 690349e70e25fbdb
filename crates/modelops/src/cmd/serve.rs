//! `modelops serve` and `modelops migrate`.

use crate::config::{Config, ServerArgs};
use anyhow::Context;
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
    let artifacts = modelops_artifacts::ArtifactStore::from_url(&config.artifacts_url, std::iter::empty::<(String, String)>())
        .with_context(|| format!("cannot open the artifact store at `{}`", config.artifacts_url))?
        .with_max_size(Some(config.max_artifact_bytes));
    // Uploads a crash interrupted leave temporary objects; nothing else would remove them.
    match artifacts.sweep_temporaries(STALE_UPLOAD).await {
        Ok(swept) if swept.count > 0 => tracing::info!(count = swept.count, bytes = swept.bytes, "removed leftovers of interrupted uploads"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not sweep leftovers of interrupted uploads"),
    }
    let registry = modelops_registry::Registry::new(store.clone(), artifacts, clock).with_verify_reuse(config.verify_reuse);
    let server_config = modelops_server::ServerConfig {
        request_timeout: config.request_timeout,
        body_idle_timeout: config.body_idle_timeout,
        max_concurrent_requests: config.max_concurrent_requests,
        max_concurrent_transfers: config.max_concurrent_transfers,
        ..modelops_server::ServerConfig::default()
    };
    let state = modelops_server::AppState::new(registry, server_config);
    // Request logs at debug level (`--log modelops=debug,tower_http=debug`).
    // Errors are logged once, by the server's own middleware, with their detail.
    let trace = tower_http::trace::TraceLayer::new_for_http().on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG));
    let app = modelops_server::router(state).layer(trace);
    let listener = tokio::net::TcpListener::bind(config.addr).await.with_context(|| format!("cannot listen on `{}`", config.addr))?;
    let addr = listener.local_addr()?;
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
    // Closing waits for connections in use; those of abandoned requests may
    // never come back.
    if tokio::time::timeout(POOL_CLOSE, store.close()).await.is_err() {
        tracing::warn!("database connections still in use after {} s; exiting without waiting", POOL_CLOSE.as_secs());
    }
    tracing::info!("stopped");
    Ok(served?)
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

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(super::redact("postgres://ana:s3cret@db:5432/m"), "postgres://ana:***@db:5432/m");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
