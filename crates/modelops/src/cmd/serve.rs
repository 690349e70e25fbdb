//! `modelops serve` and `modelops migrate`.

use crate::config::{Config, ServerArgs};
use anyhow::Context;
use modelops_core::clock::SystemClock;
use std::sync::Arc;

/// Starts the server and runs until Ctrl-C or SIGTERM, then stops in order:
/// stop accepting HTTP, finish requests in flight, close the pools.
pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    init_tracing(&config);
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create the data dir `{}`", config.data_dir.display()))?;
    let store = modelops_store::connect(&config.database_url, Arc::new(SystemClock))
        .await
        .with_context(|| format!("cannot open the database at `{}`", redact(&config.database_url)))?;
    let artifacts = modelops_artifacts::ArtifactStore::from_url(&config.artifacts_url, std::iter::empty::<(String, String)>())
        .with_context(|| format!("cannot open the artifact store at `{}`", config.artifacts_url))?
        .with_max_size(Some(config.max_artifact_bytes));
    let state = modelops_server::AppState::new(store, artifacts, modelops_server::ServerConfig::default());
    // Request logs at debug level (`--log modelops=debug,tower_http=debug`).
    let app = modelops_server::router(state).layer(tower_http::trace::TraceLayer::new_for_http());
    let listener = tokio::net::TcpListener::bind(config.addr).await.with_context(|| format!("cannot listen on `{}`", config.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %redact(&config.database_url), artifacts = %config.artifacts_url, "modelops listening");
    eprintln!("modelops listening on http://{addr}");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    tracing::info!("stopped");
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

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(super::redact("postgres://ana:s3cret@db:5432/m"), "postgres://ana:***@db:5432/m");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
