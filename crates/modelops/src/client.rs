//! The HTTP client the CLI commands share: base URL, actor header, one-line
//! errors from the server's JSON error body, streamed uploads and downloads
//! with a progress bar.

use anyhow::{anyhow, bail, Context};
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncWriteExt;

pub const ACTOR_HEADER: &str = "x-modelops-actor";

/// Where the server is and who is asking.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Server to talk to.
    #[arg(long, global = true, env = "MODELOPS_SERVER", default_value = "http://127.0.0.1:5000")]
    pub server: String,
    /// Who acts; recorded in the audit log [default: $USER].
    #[arg(long, global = true, env = "MODELOPS_ACTOR")]
    pub actor: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    actor: String,
}

impl Client {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let base = args.server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("invalid `--server`: `{base}` must start with http:// or https://");
        }
        let actor = args.actor.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "anonymous".to_string());
        let http = reqwest::Client::builder().user_agent(concat!("modelops-cli/", env!("CARGO_PKG_VERSION"))).build()?;
        Ok(Self { http, base, actor })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path)).header(ACTOR_HEADER, &self.actor)
    }

    async fn send(&self, builder: RequestBuilder) -> anyhow::Result<Response> {
        let response = builder.send().await.map_err(|e| anyhow!("cannot reach the server at {}: {}", self.base, root_cause(&e)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_from(response).await)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        Ok(self.send(self.request(Method::GET, path)).await?.json().await?)
    }

    pub async fn get_query<T: DeserializeOwned, Q: Serialize + ?Sized>(&self, path: &str, query: &Q) -> anyhow::Result<T> {
        Ok(self.send(self.request(Method::GET, path).query(query)).await?.json().await?)
    }

    pub async fn send_json<T: DeserializeOwned, B: Serialize + ?Sized>(&self, method: Method, path: &str, body: &B) -> anyhow::Result<T> {
        Ok(self.send(self.request(method, path).json(body)).await?.json().await?)
    }

    /// For endpoints that answer 204 or a body the caller does not need.
    pub async fn send_empty<B: Serialize + ?Sized>(&self, method: Method, path: &str, body: Option<&B>) -> anyhow::Result<()> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await?;
        Ok(())
    }

    /// Streams a file as the request body, with a progress bar on stderr.
    pub async fn upload<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)], file: &Path) -> anyhow::Result<T> {
        let handle = tokio::fs::File::open(file).await.with_context(|| format!("cannot open `{}`", file.display()))?;
        let size = handle.metadata().await?.len();
        let bar = progress_bar(size, "uploading");
        let progress = bar.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(handle, 256 * 1024).inspect_ok(move |chunk| progress.inc(chunk.len() as u64));
        let req = self
            .request(Method::POST, path)
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(stream));
        let result = self.send(req).await;
        bar.finish_and_clear();
        Ok(result?.json().await?)
    }

    /// Streams a response body into `dest` (via a temporary file renamed at
    /// the end, so a broken download leaves nothing), checking its sha256
    /// against `expected` when given. Returns the digest.
    pub async fn download(&self, path: &str, dest: &Path, expected: Option<&str>) -> anyhow::Result<String> {
        let response = self.send(self.request(Method::GET, path)).await?;
        let bar = progress_bar(response.content_length().unwrap_or(0), "downloading");
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in `{}`", dir.display()))?;
        let mut file = tokio::fs::File::from_std(tmp.reopen()?);
        let mut hasher = Sha256::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.try_next().await.context("the download broke off")? {
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
            bar.inc(chunk.len() as u64);
        }
        file.flush().await?;
        bar.finish_and_clear();
        let digest = hex::encode(hasher.finalize());
        if let Some(want) = expected {
            if want != digest {
                bail!("downloaded content has sha256 `{digest}`, expected `{want}`: nothing was written");
            }
        }
        tmp.persist(dest).with_context(|| format!("cannot write `{}`", dest.display()))?;
        Ok(digest)
    }
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// Turns the server's `{"error": {"code", "message", "field"}}` into one line.
async fn error_from(response: Response) -> anyhow::Error {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(300).collect());
    let reason = status.canonical_reason().unwrap_or("");
    match status {
        StatusCode::INTERNAL_SERVER_ERROR => anyhow!("the server failed ({} {reason}): {message}", status.as_u16()),
        _ => anyhow!("{message} ({} {reason})", status.as_u16()),
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
