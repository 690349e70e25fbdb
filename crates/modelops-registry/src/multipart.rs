//! Multipart uploads of one artifact file (MLflow's `mpu/*` routes): the
//! client asks for an upload of N parts, sends the parts in parallel to the
//! URLs it is given — without its credentials, as it would to a cloud
//! store's presigned URLs — and completes the upload with the parts' ETags.
//!
//! Nothing is stored for an upload but its parts. The upload id is the
//! upload itself — file path, who started it, part count, expiry — sealed
//! with an HMAC under a key of this process, so it is the part URLs'
//! credential (they carry no other) and any part or completion naming an
//! upload this server did not start, or someone else's, is refused. Each
//! part is stored as a content-addressed blob, and its ETag binds the blob's
//! digest to the upload and part number: a completion can only join the
//! blobs uploaded for it, never another file the caller may not read.
//! Completing streams the parts in order into one new blob, recorded at the
//! path exactly as a single upload is ([`Registry::put_artifact_file`]).
//! The parts' blobs are left to the artifact garbage collector (a part's
//! bytes may equal a blob something else references), and so are an aborted
//! upload's.
//!
//! The key is derived from the audit signing key, which replicas share, so
//! any replica takes any part; a server without one makes its key at start,
//! and an upload must then complete on the process that started it.

use crate::Registry;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use modelops_artifacts::{ArtifactError, ArtifactStore};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use modelops_core::auth::{Action, Principal};
use modelops_core::name::quote;
use modelops_core::tracking::{check_artifact_path, ArtifactFile};
use modelops_core::version::Sha256Hex;
use modelops_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// At most as many parts as S3 allows.
pub const MAX_PARTS: u64 = 10_000;
/// How long an upload's id stays valid after it is created.
const UPLOAD_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

/// The key upload ids and part ETags are sealed with: random per process
/// (SHA-256's block size, HMAC's natural key length).
#[derive(Clone)]
pub(crate) struct UploadKey([u8; 64]);

impl Default for UploadKey {
    fn default() -> Self {
        let mut key = [0u8; 64];
        rand::fill(&mut key[..]);
        UploadKey(key)
    }
}

impl UploadKey {
    /// The key replicas sharing the audit signing key share.
    fn derived(secret: [u8; 32]) -> Self {
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&secret);
        UploadKey(key)
    }

    /// HMAC-SHA-256 over `parts`, each prefixed with its length.
    fn hmac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&self.0.into());
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.hmac(parts).finalize().into_bytes().into()
    }
}

/// What an upload id carries.
#[derive(Serialize, Deserialize)]
struct Upload {
    /// The file's artifact path.
    p: String,
    /// Who started it.
    a: String,
    /// How many parts.
    n: u64,
    /// Valid until (milliseconds since the epoch).
    e: i64,
}

/// A part as the client returns it at completion.
#[derive(Clone, Debug)]
pub struct UploadedPart {
    pub part_number: u64,
    pub etag: String,
}

fn bad_upload() -> Error {
    Error::invalid("upload_id", "is not an upload this server started (or its signing key changed since; without one, the server restarted)")
}

impl Registry {
    /// Derived from the audit signing key when the server has one (replicas
    /// share it, so any of them takes an upload's parts), else this
    /// process's own.
    fn upload_key(&self) -> std::borrow::Cow<'_, UploadKey> {
        match &self.audit_signing {
            Some(signing) => std::borrow::Cow::Owned(UploadKey::derived(signing.signer.derive_secret("modelops mlflow multipart uploads v1"))),
            None => std::borrow::Cow::Borrowed(&self.inner.upload_key),
        }
    }

    /// Starts an upload of the file at `path` in `num_parts` parts; returns
    /// its id.
    pub async fn create_multipart_upload(&self, principal: &Principal, path: &str, num_parts: u64) -> Result<String> {
        self.authorize(principal, Action::Track, "artifacts").await?;
        check_artifact_path("path", path)?;
        if !(1..=MAX_PARTS).contains(&num_parts) {
            return Err(Error::invalid("num_parts", format!("{num_parts} is not between 1 and {MAX_PARTS}")));
        }
        let upload = Upload { p: path.to_string(), a: principal.name().to_string(), n: num_parts, e: self.millis() + UPLOAD_LIFETIME_MS };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&upload).map_err(|e| Error::Internal(format!("an upload id: {e}")))?);
        let mac = URL_SAFE_NO_PAD.encode(self.upload_key().mac(&[b"upload", body.as_bytes()]));
        Ok(format!("{body}.{mac}"))
    }

    /// The upload `upload_id` names, if this process started it and it has
    /// not expired.
    fn open_upload(&self, upload_id: &str) -> Result<Upload> {
        let (body, mac) = upload_id.split_once('.').ok_or_else(bad_upload)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| bad_upload())?;
        self.upload_key().hmac(&[b"upload", body.as_bytes()]).verify_slice(&mac).map_err(|_| bad_upload())?;
        let upload: Upload = URL_SAFE_NO_PAD.decode(body).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(bad_upload)?;
        if upload.e < self.millis() {
            return Err(Error::invalid("upload_id", "has expired: an upload must complete within 12 hours of its start"));
        }
        Ok(upload)
    }

    fn part_etag(&self, upload_id: &str, part_number: u64, sha256: &Sha256Hex) -> String {
        let mac = self.upload_key().mac(&[b"part", upload_id.as_bytes(), &part_number.to_be_bytes(), sha256.as_str().as_bytes()]);
        format!("{}-{}", sha256.as_str(), hex::encode(&mac[..16]))
    }

    /// Stores part `part_number` of upload `upload_id` and returns its ETag.
    /// No caller: the upload id is the credential (the client sends parts
    /// to the URLs it was given, without its own).
    pub async fn put_upload_part<S, E>(&self, upload_id: &str, part_number: u64, body: S) -> Result<String>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let upload = self.open_upload(upload_id)?;
        if !(1..=upload.n).contains(&part_number) {
            return Err(Error::invalid("part_number", format!("{part_number} is not between 1 and {}, the upload's parts", upload.n)));
        }
        let stored = self.artifacts().put_stream(body, None).await?;
        Ok(self.part_etag(upload_id, part_number, &stored.sha256))
    }

    /// Joins the parts of upload `upload_id` into the file at `path`, as a
    /// single upload of it would have stored it.
    pub async fn complete_multipart_upload(&self, principal: &Principal, path: &str, upload_id: &str, parts: &[UploadedPart]) -> Result<ArtifactFile> {
        self.authorize(principal, Action::Track, "artifacts").await?;
        let upload = self.open_upload(upload_id)?;
        self.check_upload_of(&upload, principal, path)?;
        let mut blobs = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let field = format!("parts[{i}]");
            if part.part_number != i as u64 + 1 {
                return Err(Error::invalid(field, format!("part {} where part {} was expected: every part from 1 to {}, in order", part.part_number, i + 1, upload.n)));
            }
            let etag = part.etag.trim_matches('"');
            let sha256 = etag
                .split_once('-')
                .and_then(|(sha, _)| Sha256Hex::try_from(sha.to_string()).ok())
                .filter(|sha| self.part_etag(upload_id, part.part_number, sha) == etag)
                .ok_or_else(|| Error::invalid(format!("{field}.etag"), format!("{} is not the ETag this server gave part {} of the upload", quote(&part.etag), part.part_number)))?;
            blobs.push(sha256);
        }
        if blobs.len() as u64 != upload.n {
            return Err(Error::invalid("parts", format!("{} parts where the upload has {}", blobs.len(), upload.n)));
        }
        for (i, sha256) in blobs.iter().enumerate() {
            if !self.artifacts().exists(sha256).await? {
                return Err(Error::invalid(format!("parts[{i}]"), format!("part {} is no longer stored (collected as garbage?): upload the file again", i + 1)));
            }
        }
        self.put_artifact_file(principal, path, joined(self.artifacts().clone(), blobs)).await
    }

    /// Gives up upload `upload_id`: its parts are left to the garbage
    /// collector, and its id stays valid until it expires (a part still in
    /// flight lands harmlessly).
    pub async fn abort_multipart_upload(&self, principal: &Principal, path: &str, upload_id: &str) -> Result<()> {
        self.authorize(principal, Action::Track, "artifacts").await?;
        let upload = self.open_upload(upload_id)?;
        self.check_upload_of(&upload, principal, path)
    }

    fn check_upload_of(&self, upload: &Upload, principal: &Principal, path: &str) -> Result<()> {
        if upload.p != path {
            return Err(Error::invalid("path", format!("{} is not the file of this upload, {}", quote(path), quote(&upload.p))));
        }
        if upload.a != principal.name() {
            return Err(Error::invalid("upload_id", "was started by someone else"));
        }
        Ok(())
    }
}

/// The blobs' bytes one after the other, each opened when the one before
/// it ends.
fn joined(artifacts: ArtifactStore, blobs: Vec<Sha256Hex>) -> BoxStream<'static, std::result::Result<Bytes, ArtifactError>> {
    futures::stream::iter(blobs)
        .then(move |sha256| {
            let artifacts = artifacts.clone();
            async move { artifacts.get(&sha256).await.map(|download| download.stream) }
        })
        .try_flatten()
        .boxed()
}
