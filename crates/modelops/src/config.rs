//! Server configuration: flags over `MODELOPS_…` environment variables over a
//! TOML file over defaults. Clap resolves flag-or-env; the file fills what
//! neither gave; defaults fill the rest. A bad value stops start-up with a
//! message naming the key and where it came from.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";
pub const DEFAULT_DATA_DIR: &str = "modelops-data";
/// 10 GiB: large models are normal; the stream never sits in memory.
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// The settings `serve` and `migrate` share, as clap sees them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// TOML file with any of the keys below (addr, data_dir, database_url, artifacts_url, max_artifact_bytes, log,
    /// the table [artifacts_options] (object-store settings such as aws_endpoint, aws_region; docs/storage.md),
    /// request_timeout, body_idle_timeout, shutdown_grace, verify_reuse, max_concurrent_requests,
    /// max_concurrent_transfers, policy, model_cache_bytes, max_inference_body, prediction_retention_days,
    /// record_queue, audit_key_file, audit_origin, audit_checkpoint_interval, audit_witnesses, alert_webhook_timeout,
    /// alert_webhook_attempts, public_url, and the sections [llm] and
    /// [external]: see docs/models.md).
    #[arg(long, env = "MODELOPS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long, env = "MODELOPS_ADDR")]
    pub addr: Option<String>,
    /// Folder for the embedded database and the local artifact store [default: ./modelops-data].
    #[arg(long, env = "MODELOPS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…` [default: SQLite file in the data dir].
    #[arg(long, env = "MODELOPS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where artifacts live: a local folder path or `file://` URL, or `s3://bucket/prefix`, `gs://…`, `az://…`
    /// with credentials, region and endpoint from the usual AWS_… / GOOGLE_… / AZURE_… variables
    /// [default: <data dir>/artifacts].
    #[arg(long, env = "MODELOPS_ARTIFACTS_URL")]
    pub artifacts_url: Option<String>,
    /// Largest artifact accepted, in bytes [default: 10 GiB].
    #[arg(long, env = "MODELOPS_MAX_ARTIFACT_BYTES")]
    pub max_artifact_bytes: Option<u64>,
    /// Log filter, e.g. `info` or `modelops=debug` [default: info].
    #[arg(long, env = "MODELOPS_LOG")]
    pub log: Option<String>,
    /// Seconds a request (other than an artifact transfer) may take before it answers 503 [default: 30].
    #[arg(long, env = "MODELOPS_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Seconds an upload may send nothing before it is refused with 408 [default: 30].
    #[arg(long, env = "MODELOPS_BODY_IDLE_TIMEOUT")]
    pub body_idle_timeout: Option<u64>,
    /// Seconds requests in flight get to finish after a stop signal [default: 30].
    #[arg(long, env = "MODELOPS_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<u64>,
    /// Seconds an unchanged audit chain's last verification is served again; 0 re-hashes every time [default: 60].
    #[arg(long, env = "MODELOPS_VERIFY_REUSE")]
    pub verify_reuse: Option<u64>,
    /// Requests handled at once (artifact transfers apart); more answer 503 [default: 512].
    #[arg(long, env = "MODELOPS_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<u64>,
    /// Artifact uploads and downloads (and audit verifications) at once; more answer 503 [default: 64].
    #[arg(long, env = "MODELOPS_MAX_CONCURRENT_TRANSFERS")]
    pub max_concurrent_transfers: Option<u64>,
    /// Governance policy file (`.toml`, `.yaml`), loaded at start-up and again on SIGHUP
    /// [default: the policy loaded last, else the shipped defaults].
    #[arg(long, env = "MODELOPS_POLICY")]
    pub policy: Option<PathBuf>,
    /// Memory the loaded models may hold together, in bytes; the least recently used are unloaded [default: 1 GiB].
    #[arg(long, env = "MODELOPS_MODEL_CACHE_BYTES")]
    pub model_cache_bytes: Option<u64>,
    /// Largest inference request body (OIP `infer`, `predict`), in bytes; larger answer 413 [default: 32 MiB].
    #[arg(long, env = "MODELOPS_MAX_INFERENCE_BODY")]
    pub max_inference_body: Option<u64>,
    /// Days recorded predictions are kept; 0 keeps them forever [default: 30].
    #[arg(long, env = "MODELOPS_PREDICTION_RETENTION_DAYS")]
    pub prediction_retention_days: Option<u64>,
    /// Prediction records waiting to be written at most; past it, records are dropped and counted [default: 65536].
    #[arg(long, env = "MODELOPS_RECORD_QUEUE")]
    pub record_queue: Option<u64>,
    /// The audit log's Ed25519 signing key file, created (mode 0600) when missing
    /// [default: <data dir>/audit-signing.key]. MODELOPS_AUDIT_SIGNING_KEY may hold the key text instead.
    #[arg(long, env = "MODELOPS_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// The audit log's name in its checkpoints, fixed when the key is created [default: modelops.local/audit].
    #[arg(long, env = "MODELOPS_AUDIT_ORIGIN")]
    pub audit_origin: Option<String>,
    /// Seconds between signed checkpoints of the audit log (none when it has not grown) [default: 300].
    #[arg(long, env = "MODELOPS_AUDIT_CHECKPOINT_INTERVAL")]
    pub audit_checkpoint_interval: Option<u64>,
    /// Where checkpoints are also written: a folder, an object-store URL (s3://…) or a webhook (https://…);
    /// repeat or separate with commas.
    #[arg(long = "audit-witness", env = "MODELOPS_AUDIT_WITNESSES", value_delimiter = ',')]
    pub audit_witnesses: Vec<String>,
    /// Seconds one alert webhook attempt may take, connection included [default: 5].
    #[arg(long, env = "MODELOPS_ALERT_WEBHOOK_TIMEOUT")]
    pub alert_webhook_timeout: Option<u64>,
    /// Attempts per alert webhook delivery, the first included (0.5 s, 1 s, 2 s … apart) [default: 4].
    #[arg(long, env = "MODELOPS_ALERT_WEBHOOK_ATTEMPTS")]
    pub alert_webhook_attempts: Option<u64>,
    /// The server's URL as retraining jobs reach it (given to them as `MODELOPS_SERVER` and in webhook bodies),
    /// e.g. `https://modelops.internal` [default: http://127.0.0.1:<port>].
    #[arg(long, env = "MODELOPS_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// The keys a config file may hold; anything else is refused by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    addr: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    artifacts_url: Option<String>,
    /// `[artifacts_options]`: object_store's settings for the artifact
    /// store (`aws_endpoint = "…"`, `aws_region`, …); the environment's
    /// `AWS_…`/`GOOGLE_…`/`AZURE_…` variables override them.
    #[serde(default)]
    artifacts_options: std::collections::BTreeMap<String, String>,
    max_artifact_bytes: Option<u64>,
    log: Option<String>,
    request_timeout: Option<u64>,
    body_idle_timeout: Option<u64>,
    shutdown_grace: Option<u64>,
    verify_reuse: Option<u64>,
    max_concurrent_requests: Option<u64>,
    max_concurrent_transfers: Option<u64>,
    policy: Option<PathBuf>,
    model_cache_bytes: Option<u64>,
    max_inference_body: Option<u64>,
    prediction_retention_days: Option<u64>,
    record_queue: Option<u64>,
    audit_key_file: Option<PathBuf>,
    audit_origin: Option<String>,
    audit_checkpoint_interval: Option<u64>,
    #[serde(default)]
    audit_witnesses: Vec<String>,
    alert_webhook_timeout: Option<u64>,
    alert_webhook_attempts: Option<u64>,
    public_url: Option<String>,
    /// `[llm]`: upstreams (`[llm.upstreams.NAME]`: base_url, api_key_env,
    /// timeouts, retries) and prices (`[llm.prices."MODEL"]`). Keys come
    /// only from the environment variables named here.
    #[serde(default)]
    llm: Option<modelops_runtime::llm::LlmConfig>,
    /// `[external]`: timeouts, allowed URL prefixes, credentials from env.
    #[serde(default)]
    external: Option<modelops_runtime::external::ExternalConfig>,
}

/// Fully resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub artifacts_url: String,
    /// object_store settings for a cloud artifact store: the file's, then the environment's.
    pub artifacts_options: StoreOptions,
    pub max_artifact_bytes: u64,
    pub log: String,
    pub request_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub verify_reuse: Duration,
    pub max_concurrent_requests: usize,
    pub max_concurrent_transfers: usize,
    pub policy: Option<PathBuf>,
    pub model_cache_bytes: u64,
    pub max_inference_body: usize,
    /// None: recorded predictions are kept forever.
    pub prediction_retention: Option<Duration>,
    pub record_queue: usize,
    /// The audit log's signing key: a file, or its text from the environment.
    pub audit_key: AuditKeySource,
    pub audit_origin: Option<String>,
    pub audit_checkpoint_interval: Duration,
    pub audit_witnesses: Vec<String>,
    pub alert_webhook_timeout: Duration,
    pub alert_webhook_attempts: u32,
    /// The URL retraining jobs reach the server at (the listening address
    /// on the loopback when absent).
    pub public_url: Option<String>,
    /// LLM upstreams and external servers, their secrets read from the
    /// environment.
    pub runtime: modelops_runtime::RuntimeConfig,
}

impl ServerArgs {
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let addr_text = self.addr.clone().or(file.addr).unwrap_or_else(|| DEFAULT_ADDR.to_string());
        let addr: SocketAddr = addr_text
            .parse()
            .with_context(|| format!("invalid `addr`: `{addr_text}` is not an address such as `127.0.0.1:5000`"))?;
        let data_dir = self.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match self.database_url.clone().or(file.database_url) {
            Some(url) => {
                check_database_url(&url)?;
                url
            }
            None => format!("sqlite://{}?mode=rwc", data_dir.join("modelops.db").display()),
        };
        let artifacts_url = self
            .artifacts_url
            .clone()
            .or(file.artifacts_url)
            .unwrap_or_else(|| data_dir.join("artifacts").display().to_string());
        let mut artifacts_options: Vec<(String, String)> = file.artifacts_options.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        if let Some((key, backend)) = modelops_artifacts::unknown_option(&artifacts_url, artifacts_options.iter().map(|(k, _)| k.as_str())) {
            bail!("invalid `artifacts_options`: `{key}` is not an option of the {backend} artifact store (see object_store's configuration keys, e.g. `aws_region`, `aws_endpoint`)");
        }
        artifacts_options.extend(modelops_artifacts::options_from_env());
        let artifacts_options = StoreOptions(artifacts_options);
        let max_artifact_bytes = self.max_artifact_bytes.or(file.max_artifact_bytes).unwrap_or(DEFAULT_MAX_ARTIFACT_BYTES);
        if max_artifact_bytes == 0 {
            bail!("invalid `max_artifact_bytes`: `0` must be at least 1");
        }
        let log = self.log.clone().or(file.log).unwrap_or_else(|| "info".to_string());
        tracing_subscriber::EnvFilter::try_new(&log).with_context(|| format!("invalid `log`: `{log}` is not a log filter"))?;
        let seconds = |key: &str, value: Option<u64>, default: u64| -> anyhow::Result<Duration> {
            match value.unwrap_or(default) {
                0 => bail!("invalid `{key}`: `0` must be at least 1 second"),
                n => Ok(Duration::from_secs(n)),
            }
        };
        let request_timeout = seconds("request_timeout", self.request_timeout.or(file.request_timeout), 30)?;
        let body_idle_timeout = seconds("body_idle_timeout", self.body_idle_timeout.or(file.body_idle_timeout), 30)?;
        let shutdown_grace = seconds("shutdown_grace", self.shutdown_grace.or(file.shutdown_grace), 30)?;
        let verify_reuse = Duration::from_secs(self.verify_reuse.or(file.verify_reuse).unwrap_or(60));
        let count = |key: &str, value: Option<u64>, default: u64| -> anyhow::Result<usize> {
            match value.unwrap_or(default) {
                0 => bail!("invalid `{key}`: `0` must be at least 1"),
                n => usize::try_from(n).with_context(|| format!("invalid `{key}`: `{n}` is too large")),
            }
        };
        let max_concurrent_requests = count("max_concurrent_requests", self.max_concurrent_requests.or(file.max_concurrent_requests), 512)?;
        let max_concurrent_transfers = count("max_concurrent_transfers", self.max_concurrent_transfers.or(file.max_concurrent_transfers), 64)?;
        let model_cache_bytes = self.model_cache_bytes.or(file.model_cache_bytes).unwrap_or(1 << 30);
        if model_cache_bytes == 0 {
            bail!("invalid `model_cache_bytes`: `0` must be at least 1");
        }
        let max_inference_body = count("max_inference_body", self.max_inference_body.or(file.max_inference_body), 32 << 20)?;
        let prediction_retention = match self.prediction_retention_days.or(file.prediction_retention_days).unwrap_or(30) {
            0 => None,
            days => Some(Duration::from_secs(days.saturating_mul(86_400))),
        };
        let record_queue = count("record_queue", self.record_queue.or(file.record_queue), 65_536)?;
        let audit_key = match std::env::var("MODELOPS_AUDIT_SIGNING_KEY") {
            Ok(text) if !text.trim().is_empty() => AuditKeySource::Text(text),
            _ => AuditKeySource::File(
                self.audit_key_file.clone().or(file.audit_key_file).unwrap_or_else(|| data_dir.join("audit-signing.key")),
            ),
        };
        let audit_checkpoint_interval =
            seconds("audit_checkpoint_interval", self.audit_checkpoint_interval.or(file.audit_checkpoint_interval), 300)?;
        let audit_witnesses = if self.audit_witnesses.is_empty() { file.audit_witnesses } else { self.audit_witnesses.clone() };
        let audit_witnesses: Vec<String> = audit_witnesses.into_iter().map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect();
        let alert_webhook_timeout = seconds("alert_webhook_timeout", self.alert_webhook_timeout.or(file.alert_webhook_timeout), 5)?;
        let alert_webhook_attempts = match self.alert_webhook_attempts.or(file.alert_webhook_attempts).unwrap_or(4) {
            n @ 1..=20 => n as u32,
            n => bail!("invalid `alert_webhook_attempts`: `{n}` is not from 1 to 20"),
        };
        let public_url = self.public_url.clone().or(file.public_url).map(|u| u.trim_end_matches('/').to_string());
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.chars().any(char::is_whitespace) {
                bail!("invalid `public_url`: `{url}` is not an http(s) URL");
            }
        }
        let runtime = modelops_runtime::RuntimeConfig {
            llm: file.llm.unwrap_or_default().resolve_from_env()?,
            external: file.external.unwrap_or_default().resolve_from_env()?,
        };
        Ok(Config {
            addr,
            data_dir,
            database_url,
            artifacts_url,
            artifacts_options,
            max_artifact_bytes,
            log,
            request_timeout,
            body_idle_timeout,
            shutdown_grace,
            verify_reuse,
            max_concurrent_requests,
            max_concurrent_transfers,
            policy: self.policy.clone().or(file.policy),
            model_cache_bytes,
            max_inference_body,
            prediction_retention,
            record_queue,
            audit_key,
            audit_origin: self.audit_origin.clone().or(file.audit_origin),
            audit_checkpoint_interval,
            audit_witnesses,
            alert_webhook_timeout,
            alert_webhook_attempts,
            public_url,
            runtime,
        })
    }
}

/// Object-store settings, some of them secrets: shown by key only.
#[derive(Clone, Default)]
pub struct StoreOptions(pub Vec<(String, String)>);

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

/// Where the audit signing key comes from.
#[derive(Clone)]
pub enum AuditKeySource {
    /// A key file, created on first start when missing.
    File(PathBuf),
    /// The key's text (`MODELOPS_AUDIT_SIGNING_KEY`).
    Text(String),
}

impl std::fmt::Debug for AuditKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditKeySource::File(path) => write!(f, "File({})", path.display()),
            AuditKeySource::Text(_) => f.write_str("Text(<redacted>)"),
        }
    }
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file `{}`", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        // toml's message says what is wrong ("invalid type: string, expected
        // u64") but for a bad value not which key: take it from the line.
        let location = e.span().map(|span| {
            let line_no = text[..span.start.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or_default();
            match line.split_once('=') {
                Some((key, _)) => format!(" line {line_no}, key `{}`", key.trim()),
                None => format!(" line {line_no}"),
            }
        });
        anyhow::anyhow!("config file `{}`{}: {}", path.display(), location.unwrap_or_default(), e.message())
    })
}

fn check_database_url(url: &str) -> anyhow::Result<()> {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !known.iter().any(|p| url.starts_with(p)) {
        bail!("invalid `database_url`: `{url}` must start with `sqlite:`, `postgres://` or `postgresql://`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let c = ServerArgs::default().resolve().unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:5000");
        assert_eq!(c.database_url, "sqlite://modelops-data/modelops.db?mode=rwc");
        assert_eq!(c.artifacts_url, "modelops-data/artifacts");
    }

    #[test]
    fn flags_win_over_the_file() {
        let f = write("addr = \"127.0.0.1:7000\"\ndata_dir = \"/srv/m\"\n");
        let args = ServerArgs { config: Some(f.path().into()), addr: Some("127.0.0.1:8000".into()), ..Default::default() };
        let c = args.resolve().unwrap();
        assert_eq!(c.addr.port(), 8000);
        assert_eq!(c.data_dir, PathBuf::from("/srv/m"));
    }

    #[test]
    fn a_misspelt_artifact_store_option_is_refused_by_name() {
        let f = write("artifacts_url = \"s3://bucket/models\"\n[artifacts_options]\naws_region = \"eu-west-1\"\naws_regoin = \"eu-west-1\"\n");
        let err = format!("{:#}", ServerArgs { config: Some(f.path().into()), ..Default::default() }.resolve().unwrap_err());
        assert!(err.contains("`aws_regoin`") && err.contains("S3"), "{err}");
        let f = write("artifacts_url = \"s3://bucket/models\"\n[artifacts_options]\naws_region = \"eu-west-1\"\nallow_http = \"true\"\nAWS_ENDPOINT = \"http://127.0.0.1:9000\"\n");
        let c = ServerArgs { config: Some(f.path().into()), ..Default::default() }.resolve().unwrap();
        assert!(c.artifacts_options.0.iter().any(|(k, _)| k == "aws_endpoint"));
        let f = write("artifacts_url = \"gs://bucket/models\"\n[artifacts_options]\naws_region = \"eu-west-1\"\n");
        let err = format!("{:#}", ServerArgs { config: Some(f.path().into()), ..Default::default() }.resolve().unwrap_err());
        assert!(err.contains("`aws_region`") && err.contains("Google Cloud Storage"), "{err}");
    }

    #[test]
    fn a_bad_file_names_the_key() {
        let f = write("adress = \"x\"\n");
        let err = format!("{:#}", ServerArgs { config: Some(f.path().into()), ..Default::default() }.resolve().unwrap_err());
        assert!(err.contains("adress"), "{err}");
        let f = write("max_artifact_bytes = \"lots\"\n");
        let err = format!("{:#}", ServerArgs { config: Some(f.path().into()), ..Default::default() }.resolve().unwrap_err());
        assert!(err.contains("max_artifact_bytes"), "{err}");
        let err = format!("{:#}", ServerArgs { addr: Some("nowhere".into()), ..Default::default() }.resolve().unwrap_err());
        assert!(err.contains("`addr`") && err.contains("nowhere"), "{err}");
        let err = format!("{:#}", ServerArgs { database_url: Some("mysql://x".into()), ..Default::default() }.resolve().unwrap_err());
        assert!(err.contains("database_url"), "{err}");
    }
}
