//! The HTTP client the CLI commands share: base URL, actor header, one-line
//! errors from the server's [`ErrorBody`], streamed uploads and downloads
//! with a progress bar.
//!
//! Requests and answers are the server's own wire types ([`RequestBody`],
//! [`Answer`]), so a field renamed on the server breaks this build instead of
//! a user's command. An answer that does not decode is reported with the
//! endpoint and what was expected of it.

use anyhow::{anyhow, bail, Context};
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use modelops_server::wire::{
    ArtifactResponse, AuditList, CreateModelRequest, CreateVersionRequest, ErrorBody, GcRequest, GcResponse, ModelList, ModelResponse, SetAliasRequest,
    SetTagRequest, TagResponse, UpdateModelRequest, UpdateVersionRequest, VerifyResponse, VersionList, VersionResponse,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncWriteExt;

pub const ACTOR_HEADER: &str = "x-modelops-actor";

/// A wire type an endpoint answers with.
pub trait Answer: DeserializeOwned {
    /// What the answer should have been, for "the server's answer to
    /// `GET /api/v1/audit` is not an audit page: …".
    const WHAT: &'static str;
}

macro_rules! answers {
    ($($ty:ty => $what:literal),* $(,)?) => {
        $(impl Answer for $ty { const WHAT: &'static str = $what; })*
    };
}

answers!(
    ModelResponse => "a model",
    ModelList => "a model page",
    VersionResponse => "a version",
    VersionList => "a version page",
    ArtifactResponse => "an uploaded artifact",
    TagResponse => "a tag",
    AuditList => "an audit page",
    VerifyResponse => "a chain verification",
    GcResponse => "an artifact collection report",
);

/// A wire request type: the only JSON bodies the CLI sends.
pub trait RequestBody: Serialize {}

impl RequestBody for CreateModelRequest {}
impl RequestBody for UpdateModelRequest {}
impl RequestBody for CreateVersionRequest {}
impl RequestBody for UpdateVersionRequest {}
impl RequestBody for SetAliasRequest {}
impl RequestBody for SetTagRequest {}
impl RequestBody for GcRequest {}

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

    /// Sends a request built on `method path` and decodes the answer as `T`.
    async fn call<T: Answer>(&self, method: Method, path: &str, build: impl FnOnce(RequestBuilder) -> RequestBuilder) -> anyhow::Result<T> {
        let response = self.send(build(self.request(method.clone(), path))).await?;
        let body = response
            .bytes()
            .await
            .map_err(|e| anyhow!("cannot read the server's answer to `{method} {path}`: {}", root_cause(&e)))?;
        decode_answer(&method, path, &body)
    }

    pub async fn get<T: Answer>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::GET, path, |r| r).await
    }

    pub async fn get_query<T: Answer, Q: Serialize + ?Sized>(&self, path: &str, query: &Q) -> anyhow::Result<T> {
        self.call(Method::GET, path, |r| r.query(query)).await
    }

    pub async fn send_json<T: Answer, B: RequestBody>(&self, method: Method, path: &str, body: &B) -> anyhow::Result<T> {
        self.call(method, path, |r| r.json(body)).await
    }

    /// A POST without a body, e.g. `…/retire`.
    pub async fn post<T: Answer>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::POST, path, |r| r).await
    }

    /// A DELETE; the server answers 204 without a body.
    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.send(self.request(Method::DELETE, path)).await?;
        Ok(())
    }

    /// Streams a file as the request body, with a progress bar on stderr.
    pub async fn upload<T: Answer>(&self, path: &str, query: &[(&str, String)], file: &Path) -> anyhow::Result<T> {
        let handle = tokio::fs::File::open(file).await.with_context(|| format!("cannot open `{}`", file.display()))?;
        let size = handle.metadata().await?.len();
        let bar = progress_bar(size, "uploading");
        let progress = bar.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(handle, 256 * 1024).inspect_ok(move |chunk| progress.inc(chunk.len() as u64));
        let result = self
            .call(Method::POST, path, |r| {
                r.query(query)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .header(reqwest::header::CONTENT_LENGTH, size)
                    .body(reqwest::Body::wrap_stream(stream))
            })
            .await;
        bar.finish_and_clear();
        result
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

/// Why JSON did not decode into a type: where, and serde's reason.
#[derive(Debug)]
pub struct DecodeError {
    /// The JSON path of the bad value (`inputs[0].dtype`); `None` at the top.
    path: Option<String>,
    error: serde_json::Error,
}

impl DecodeError {
    /// Line and column in the decoded text, when serde knows them.
    pub fn position(&self) -> Option<(usize, usize)> {
        (self.error.line() > 0).then(|| (self.error.line(), self.error.column()))
    }
}

impl std::fmt::Display for DecodeError {
    /// serde's message with the path in front and without its position, which
    /// callers add (or leave out) as suits what was decoded.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.error.to_string();
        let suffix = format!(" at line {} column {}", self.error.line(), self.error.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text);
        if !self.error.is_data() {
            return write!(f, "malformed JSON: {message}");
        }
        match &self.path {
            Some(path) => write!(f, "`{path}`: {message}"),
            None => f.write_str(message),
        }
    }
}

/// Decodes `bytes` as `T`, naming the JSON path of a bad value.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        DecodeError { path: (path != ".").then_some(path), error: e.into_inner() }
    })?;
    de.end().map_err(|error| DecodeError { path: None, error })?;
    Ok(value)
}

/// Decodes the answer of `method path`; a body that is not a `T` is an error
/// naming the endpoint and what it answered instead.
fn decode_answer<T: Answer>(method: &Method, path: &str, body: &[u8]) -> anyhow::Result<T> {
    decode_json(body).map_err(|e| anyhow!("the server's answer to `{method} {path}` is not {}: {e}", T::WHAT))
}

/// Turns the server's [`ErrorBody`] into one line; any other body (a proxy's
/// HTML page, say) is shown shortened, on one line.
async fn error_from(response: Response) -> anyhow::Error {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    let message = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(error) => error.error.message,
        Err(_) => one_line(&String::from_utf8_lossy(&body), 300),
    };
    let message = if message.is_empty() { "the server gave no reason".to_string() } else { message };
    let reason = status.canonical_reason().unwrap_or("");
    match status {
        StatusCode::INTERNAL_SERVER_ERROR => anyhow!("the server failed ({} {reason}): {message}", status.as_u16()),
        _ => anyhow!("{message} ({} {reason})", status.as_u16()),
    }
}

/// `text` with runs of whitespace (newlines too) as one space, cut after `max` characters.
fn one_line(text: &str, max: usize) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(max).collect()
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decode_err<T: Answer + std::fmt::Debug>(method: Method, path: &str, body: &str) -> String {
        decode_answer::<T>(&method, path, body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn an_answer_that_does_not_decode_names_the_endpoint_and_the_field() {
        assert_eq!(
            decode_err::<AuditList>(Method::GET, "/api/v1/audit", r#"{"items": [], "next_page_token": null}"#),
            "the server's answer to `GET /api/v1/audit` is not an audit page: missing field `events`"
        );
        let wrong_kind = r#"{"models": [{"name": "m", "kind": "banana"}], "next_page_token": null}"#;
        let line = decode_err::<ModelList>(Method::GET, "/api/v1/models", wrong_kind);
        assert!(line.starts_with("the server's answer to `GET /api/v1/models` is not a model page: `models[0].kind`: unknown variant `banana`"), "{line}");
        assert_eq!(
            decode_err::<ArtifactResponse>(Method::POST, "/api/v1/artifacts", "<html>bad gateway</html>"),
            "the server's answer to `POST /api/v1/artifacts` is not an uploaded artifact: malformed JSON: expected value"
        );
    }

    #[test]
    fn a_wire_answer_decodes() {
        let page: AuditList = decode_answer(&Method::GET, "/api/v1/audit", br#"{"events": [], "next_page_token": "abc"}"#).unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("abc"));
    }

    #[test]
    fn a_non_json_error_body_is_one_short_line() {
        assert_eq!(one_line("<html>\n  <body>Bad\tGateway</body>\n</html>\n", 300), "<html> <body>Bad Gateway</body> </html>");
        assert_eq!(one_line(&"x".repeat(500), 300).len(), 300);
    }
}
