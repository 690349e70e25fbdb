//! The HTTP client the CLI commands share: base URL, the API token, one-line
//! errors from the server's [`ErrorBody`] (a 403 adds its reasons, one per
//! line), streamed uploads and downloads with a progress bar, and the
//! credentials file `modelops login` writes.
//!
//! The token comes from `--token`, else `MODELOPS_TOKEN`, else the
//! credentials file's entry for the server. It is sent as `Authorization:
//! Bearer` and never printed: not in `--help`, not in `Debug` output, not in
//! an error message.
//!
//! Requests and answers are the server's own wire types ([`RequestBody`],
//! [`Answer`]), so a field renamed on the server breaks this build instead of
//! a user's command. An answer that does not decode is reported with the
//! endpoint and what was expected of it.

use anyhow::{anyhow, bail, Context};
use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use modelops_server::wire::{
    SignedCheckpointResponse, CheckpointList, ErasureResponse, InclusionProofResponse, ConsistencyProofResponse, CompactRangeResponse,
    PredictRequest, PredictResponse, CreateDeploymentRequest, UpdateDeploymentRequest, DeploymentResponse, DeploymentList, PredictionPage,
    ArtifactResponse, AuditList, CreateModelRequest, CreateTokenRequest, CreateUserRequest, CreateVersionRequest, DecisionRequest, DecisionResponse,
    DueReviewList, ErrorBody, EvidenceRequest, EvidenceResponse, GateResponse, GcRequest, GcResponse, GovernanceResponse, LoadPolicyRequest, ModelList,
    ModelResponse, NewTokenResponse, PolicyResponse, ReviewRequest, ReviewResponse, SetAliasRequest, SetTagRequest, TagResponse, TokenList,
    TokenResponse, TransitionResponse, UpdateModelRequest, UpdateUserRequest, UpdateVersionRequest, UserList, UserResponse, VerifyResponse,
    VersionList, VersionResponse, WhoAmIResponse,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

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
    WhoAmIResponse => "a caller's identity",
    UserResponse => "a user",
    UserList => "a user list",
    TokenResponse => "a token",
    NewTokenResponse => "a new token",
    TokenList => "a token list",
    TransitionResponse => "a lifecycle transition",
    DecisionResponse => "a decision",
    GateResponse => "a gate decision",
    GovernanceResponse => "a version's governance record",
    EvidenceResponse => "a piece of evidence",
    ReviewResponse => "a review",
    DueReviewList => "a list of due reviews",
    PolicyResponse => "a policy",
    PredictResponse => "a prediction",
    DeploymentResponse => "a deployment",
    DeploymentList => "a deployment list",
    PredictionPage => "a page of recorded predictions",
    SignedCheckpointResponse => "a signed checkpoint",
    CheckpointList => "a checkpoint list",
    InclusionProofResponse => "an inclusion proof",
    ConsistencyProofResponse => "a consistency proof",
    CompactRangeResponse => "a compact range",
    ErasureResponse => "an erasure",
    modelops_server::wire::MonitorResponse => "a monitor",
    modelops_server::wire::MonitorList => "a monitor list",
    modelops_server::wire::WindowResultList => "a monitor's window results",
    modelops_server::wire::ReferenceResponse => "a reference profile",
    modelops_server::wire::LabelsResponse => "a label outcome",
    modelops_server::wire::AlertList => "an alert list",
    modelops_server::wire::RetrainRequestList => "a list of retraining requests",
    modelops_server::wire::RetrainJobResponse => "a retraining job",
    modelops_server::wire::RetrainJobList => "a list of retraining jobs",
    modelops_server::wire::JobRunResponse => "a retraining run",
    modelops_server::wire::JobRunList => "a list of retraining runs",
    modelops_server::wire::JobRunLog => "a retraining run's output",
);

/// A wire request type: the only JSON bodies the CLI sends.
pub trait RequestBody: Serialize {}

impl RequestBody for CreateModelRequest {}
impl RequestBody for CreateDeploymentRequest {}
impl RequestBody for UpdateDeploymentRequest {}
impl RequestBody for UpdateModelRequest {}
impl RequestBody for CreateVersionRequest {}
impl RequestBody for UpdateVersionRequest {}
impl RequestBody for SetAliasRequest {}
impl RequestBody for SetTagRequest {}
impl RequestBody for GcRequest {}
impl RequestBody for CreateUserRequest {}
impl RequestBody for UpdateUserRequest {}
impl RequestBody for CreateTokenRequest {}
impl RequestBody for DecisionRequest {}
impl RequestBody for EvidenceRequest {}
impl RequestBody for ReviewRequest {}
impl RequestBody for LoadPolicyRequest {}
impl RequestBody for modelops_server::wire::CreateMonitorRequest {}
impl RequestBody for modelops_server::wire::SetReferenceRequest {}
impl RequestBody for modelops_server::wire::LabelsRequest {}
impl RequestBody for PredictRequest {}
impl RequestBody for modelops_server::wire::JobSpecWire {}

/// An API token: shown by no `Debug`, `Display` or help text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let token = s.trim();
        if token.is_empty() {
            return Err("the token is empty".into());
        }
        Ok(Self(token.to_string()))
    }
}

/// Where the server is and who is asking.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Server to talk to.
    #[arg(long, global = true, env = "MODELOPS_SERVER", default_value = "http://127.0.0.1:5000")]
    pub server: String,
    /// API token [default: the one `modelops login` saved for the server].
    #[arg(long, global = true, env = "MODELOPS_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<Secret>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientArgs {
    /// The server's base URL, checked, without a trailing `/`: also the key
    /// of its entry in the credentials file.
    pub fn base_url(&self) -> anyhow::Result<String> {
        let base = self.server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("invalid `--server`: `{base}` must start with http:// or https://");
        }
        Ok(base)
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<Secret>,
}

impl Client {
    /// A client with the token of `--token`, `MODELOPS_TOKEN` or the
    /// credentials file, in that order; without any, requests go without
    /// one (and protected routes answer 401 saying how to sign in).
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let base = args.base_url()?;
        let token = match &args.token {
            Some(token) => Some(token.clone()),
            None => Credentials::load()?.token_for(&base),
        };
        Self::build(base, token)
    }

    /// A client with exactly this token (`modelops login` checks one before saving it).
    pub fn with_token(args: &ClientArgs, token: Secret) -> anyhow::Result<Self> {
        Self::build(args.base_url()?, Some(token))
    }

    fn build(base: String, token: Option<Secret>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().user_agent(concat!("modelops-cli/", env!("CARGO_PKG_VERSION"))).build()?;
        Ok(Self { http, base, token })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token.expose()),
            None => builder,
        }
    }

    async fn send(&self, builder: RequestBuilder) -> anyhow::Result<Response> {
        let response = builder.send().await.map_err(|e| anyhow!("cannot reach the server at {}: {}", self.base, root_cause(&e)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_from(response, self.token.as_ref()).await)
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

    /// A text answer (a report), as sent.
    pub async fn get_text<Q: Serialize + ?Sized>(&self, path: &str, query: &Q) -> anyhow::Result<String> {
        let response = self.send(self.request(Method::GET, path).query(query)).await?;
        response.text().await.map_err(|e| anyhow!("cannot read the server's answer to `GET {path}`: {}", root_cause(&e)))
    }

    /// A DELETE whose answer has a body.
    pub async fn delete_json<T: Answer>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::DELETE, path, |r| r).await
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

/// The file `modelops login` writes: one token per server,
/// `[servers."<base url>"] token = "…"`, readable by its owner only.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(default)]
    pub servers: BTreeMap<String, ServerCredentials>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerCredentials {
    pub token: String,
}

impl std::fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCredentials { token: *** }")
    }
}

pub const CREDENTIALS_FILE: &str = "credentials.toml";

impl Credentials {
    /// The folder the credentials file lives in: `$MODELOPS_CONFIG_DIR`, else
    /// `$XDG_CONFIG_HOME/modelops`, else `$HOME/.config/modelops`.
    pub fn dir() -> Option<PathBuf> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        var("MODELOPS_CONFIG_DIR")
            .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("modelops")))
            .or_else(|| var("HOME").map(|d| d.join(".config").join("modelops")))
    }

    pub fn path() -> Option<PathBuf> {
        Self::dir().map(|d| d.join(CREDENTIALS_FILE))
    }

    /// The saved credentials; none when there is no file (or no home).
    pub fn load() -> anyhow::Result<Self> {
        let Some(path) = Self::path() else { return Ok(Self::default()) };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(anyhow!("cannot read the credentials file `{}`: {e}", path.display())),
        };
        // toml's message quotes the offending line, which may hold a token: give the position only.
        toml::from_str(&text).map_err(|e| {
            let line = e.span().and_then(|span| text.get(..span.start)).map(|before| before.matches('\n').count() + 1);
            let at = line.map(|n| format!(" at line {n}")).unwrap_or_default();
            anyhow!("the credentials file `{}` is not valid{at}; fix it, or remove it and run `modelops login`", path.display())
        })
    }

    pub fn token_for(&self, base: &str) -> Option<Secret> {
        self.servers.get(base).map(|s| Secret::new(s.token.clone()))
    }

    /// The file's text.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string(self)?)
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
/// HTML page, say) is shown shortened, on one line. A 401 says how to sign
/// in; a 403 lists every failing condition below, one per line. The token
/// is cut out of whatever the server said.
async fn error_from(response: Response, token: Option<&Secret>) -> anyhow::Error {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    error_message(status, &body, token)
}

fn error_message(status: StatusCode, body: &[u8], token: Option<&Secret>) -> anyhow::Error {
    let (message, reasons) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => (error.error.message, error.error.reasons),
        Err(_) => (one_line(&String::from_utf8_lossy(body), 300), Vec::new()),
    };
    let message = if message.is_empty() { "the server gave no reason".to_string() } else { lines_joined(&message) };
    let reason = status.canonical_reason().unwrap_or("");
    let code = status.as_u16();
    let text = match status {
        StatusCode::INTERNAL_SERVER_ERROR => format!("the server failed ({code} {reason}): {message}"),
        StatusCode::UNAUTHORIZED => format!("{message} ({code} {reason}); sign in with `modelops login` or set MODELOPS_TOKEN"),
        StatusCode::FORBIDDEN => {
            let mut text = format!("{message} ({code} {reason})");
            for r in &reasons {
                text.push_str(&format!("\n  - {}: {}", r.condition, lines_joined(&r.message)));
            }
            text
        }
        _ => format!("{message} ({code} {reason})"),
    };
    anyhow!(redact_token(text, token))
}

/// A message of several lines (a parser's, say) as one: its lines joined by `; `.
pub fn lines_joined(text: &str) -> String {
    if !text.contains('\n') {
        return text.to_string();
    }
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

/// `text` with every occurrence of the token replaced by `***`.
fn redact_token(text: String, token: Option<&Secret>) -> String {
    match token {
        Some(token) if !token.expose().is_empty() && text.contains(token.expose()) => text.replace(token.expose(), "***"),
        _ => text,
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
    fn a_401_says_how_to_sign_in_and_never_shows_the_token() {
        let token = Secret::new("abc.s3cr3t");
        let body = br#"{"error": {"code": "unauthenticated", "message": "the token `abc.s3cr3t` is unknown"}}"#;
        let line = error_message(StatusCode::UNAUTHORIZED, body, Some(&token)).to_string();
        assert_eq!(line, "the token `***` is unknown (401 Unauthorized); sign in with `modelops login` or set MODELOPS_TOKEN");
        assert_eq!(format!("{token:?}"), "Secret(***)");
    }

    #[test]
    fn a_403_lists_every_reason_on_its_own_line() {
        let body = br#"{"error": {"code": "forbidden", "message": "the gate refused", "reasons": [
            {"condition": "approvals", "message": "needs 2 approvals, has 1"}, {"condition": "card", "message": "no intended use"}]}}"#;
        let text = error_message(StatusCode::FORBIDDEN, body, None).to_string();
        assert_eq!(text, "the gate refused (403 Forbidden)\n  - approvals: needs 2 approvals, has 1\n  - card: no intended use");
    }

    #[test]
    fn credentials_round_trip_keyed_by_server() {
        let mut c = Credentials::default();
        c.servers.insert("http://127.0.0.1:5000".into(), ServerCredentials { token: "t1".into() });
        let text = c.to_toml().unwrap();
        assert!(text.contains("[servers.\"http://127.0.0.1:5000\"]"), "{text}");
        let back: Credentials = toml::from_str(&text).unwrap();
        assert_eq!(back.token_for("http://127.0.0.1:5000").unwrap().expose(), "t1");
        assert!(back.token_for("http://other").is_none());
    }

    #[test]
    fn a_non_json_error_body_is_one_short_line() {
        assert_eq!(one_line("<html>\n  <body>Bad\tGateway</body>\n</html>\n", 300), "<html> <body>Bad Gateway</body> </html>");
        assert_eq!(one_line(&"x".repeat(500), 300).len(), 300);
    }
}
