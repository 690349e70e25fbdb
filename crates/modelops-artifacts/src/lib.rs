//! modelops-artifacts: the content-addressed artifact store.
//!
//! Owns where model artifacts live, the guarantee that what is read back is
//! what was written, and the clean-up of what is no longer needed. Artifacts
//! are addressed by their sha256 and stored create-only at
//! `sha256/<first 2 hex>/<hex>` under a prefix of any
//! [`object_store::ObjectStore`]: a local folder today, S3 / GCS / Azure by
//! configuration (the URL given to [`ArtifactStore::from_url`]).
//!
//! Key types: [`ArtifactStore`] (streamed [`put_stream`](ArtifactStore::put_stream),
//! verified [`get`](ArtifactStore::get), [`head`](ArtifactStore::head),
//! [`list_artifacts`](ArtifactStore::list_artifacts), [`delete`](ArtifactStore::delete),
//! [`sweep_temporaries`](ArtifactStore::sweep_temporaries),
//! [`collect_garbage`](ArtifactStore::collect_garbage)), [`StoredArtifact`],
//! [`ArtifactInfo`], [`Download`], [`SweepReport`], [`GcReport`] and
//! [`ArtifactError`], which maps into [`modelops_core::Error`].
//!
//! Invariants:
//! - an upload is streamed to a temporary object under `tmp/` while it is
//!   hashed and counted, never held in memory beyond one 5 MiB part (content
//!   that ends within the first part is stored with one request); only a complete upload is
//!   moved to its address, and a broken or refused one leaves no object
//!   behind;
//! - an object at an address always has that digest: a download is hashed as
//!   it streams and ends with an error instead of its last bytes when the
//!   digest does not match;
//! - uploading content that is already stored renews the stored object's
//!   last-modified time (identical bytes are moved over it), so "last
//!   modified" means "last uploaded", which garbage collection relies on.
//!
//! Clean-up, neither of which runs on its own (the binary decides when):
//! - [`sweep_temporaries`](ArtifactStore::sweep_temporaries), at start-up:
//!   a crash between finishing an upload and moving it to its address leaves
//!   an object under `tmp/`; a crash in the middle of an upload to a local
//!   folder leaves `object_store`'s staging file `tmp/<id>#<n>`, which
//!   `object_store` neither lists nor deletes, so a store opened with
//!   [`ArtifactStore::local`] removes those itself. Only leftovers older than
//!   the given age go: another server sharing the store may be uploading
//!   right now. Cloud backends keep unfinished multipart uploads out of
//!   listings and out of reach here: on S3 and GCS a bucket lifecycle rule
//!   (abort incomplete multipart uploads after N days) collects them, Azure
//!   drops uncommitted blocks itself.
//! - [`collect_garbage`](ArtifactStore::collect_garbage): removes artifacts
//!   no version references, given the referenced set by the caller (this
//!   crate knows no versions). It must be safe against two races: an
//!   artifact uploaded a moment ago whose version is about to be created
//!   (the client uploads first, then creates the version; in between nothing
//!   references it), and an upload still in flight. That is what the grace
//!   period is for: an artifact whose last upload is younger than the grace
//!   period is kept whatever the references say, and one that changed while
//!   the collection ran is re-checked before it goes. The references must be
//!   read just before the call, and the grace period must be longer than any
//!   upload-to-version gap worth protecting (hours, not seconds; it also
//!   absorbs clock skew between this host and the object store). A version
//!   created from an artifact uploaded longer than the grace period ago is
//!   protected only by the registry's existence check just before it commits.
//!
//! Time comes from a [`Clock`] ([`ArtifactStore::with_clock`]), so tests
//! move time instead of sleeping.
//!
//! Must not depend on: any HTTP framework (axum, hyper), SQL, or the
//! repository traits. It knows bytes and digests, not models.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, Stream, StreamExt};
use modelops_core::clock::{Clock, SystemClock};
use modelops_core::version::Sha256Hex;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, WriteMultipart};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

mod error;
mod gc;
pub use error::ArtifactError;
pub use gc::{GcMode, GcReport, SweepReport};

/// Size of the parts an upload is written in. 5 MiB is the smallest part S3
/// accepts; with [`MAX_PARTS_IN_FLIGHT`] it bounds the memory one upload holds.
const PART_SIZE: usize = 5 * 1024 * 1024;
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// What an upload has hashed and counted so far, and its size limit.
struct Counted {
    hasher: Sha256,
    size: u64,
    max_size: Option<u64>,
}

impl Counted {
    /// Counts and hashes the next chunk of a body, refusing a broken body
    /// and one past the size limit.
    fn take<E: std::fmt::Display>(&mut self, chunk: Result<Bytes, E>) -> Result<Bytes, ArtifactError> {
        let chunk = chunk.map_err(|e| ArtifactError::Body(e.to_string()))?;
        self.size = self.size.saturating_add(chunk.len() as u64);
        if let Some(limit) = self.max_size {
            if self.size > limit {
                return Err(ArtifactError::TooLarge { limit });
            }
        }
        self.hasher.update(&chunk);
        Ok(chunk)
    }

    fn finish(self) -> (Sha256Hex, u64) {
        (Sha256Hex::from_digest(&self.hasher.finalize().into()), self.size)
    }
}

/// An artifact as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    pub sha256: Sha256Hex,
    pub size: u64,
    /// `false` when identical content was already stored (deduplicated).
    pub created: bool,
}

/// An artifact found by listing the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactInfo {
    pub sha256: Sha256Hex,
    pub size: u64,
    /// When it was last uploaded, by the object store's clock.
    pub last_modified: DateTime<Utc>,
}

/// A verified download: the size known before the first byte, then the bytes.
pub struct Download {
    pub size: u64,
    pub stream: BoxStream<'static, Result<Bytes, ArtifactError>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download").field("size", &self.size).finish_non_exhaustive()
    }
}

/// The artifact store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    max_size: Option<u64>,
    clock: Arc<dyn Clock>,
    /// The `tmp` folder on disk, known only when this crate opened the local
    /// folder itself: `object_store` hides the staging files of unfinished
    /// local uploads and refuses to delete them, so only the code that chose
    /// the folder can sweep them (see [`ArtifactStore::sweep_temporaries`]).
    local_tmp: Option<PathBuf>,
    /// The folder on disk, for the same stores: see [`ArtifactStore::head`].
    local_root: Option<PathBuf>,
    /// The largest object the backend can copy in one request, when it has
    /// such a limit: the upload's move to its address is a copy there.
    ceiling: Option<u64>,
}

/// How long a cloud request is retried before the store answers
/// "unavailable": an upload or a readiness check waits this long at most for
/// a store that is down, instead of object_store's three minutes.
const CLOUD_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// The longest one request to a cloud store may take, body included: a
/// 10 GiB artifact at 20 MB/s.
const TRANSFER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Opens a cloud store from its URL with `options`, its retries bounded by
/// [`CLOUD_RETRY`]; schemes without a builder here go to object_store's own
/// URL parsing.
fn open_cloud<I, K, V>(url: &url::Url, options: I) -> Result<(Arc<dyn ObjectStore>, Path, object_store::ObjectStoreScheme), object_store::Error>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    use object_store::{BackoffConfig, ClientOptions, ObjectStoreScheme, RetryConfig};
    let (scheme, prefix) = ObjectStoreScheme::parse(url)?;
    let retry = RetryConfig { max_retries: 4, retry_timeout: CLOUD_RETRY, backoff: BackoffConfig::default() };
    // object_store's default 30 s is for a whole request, body included: a
    // multi-GB download takes longer. A stalled connection is still found
    // out by the connect timeout and TCP; the options may set `timeout`.
    let client = ClientOptions::new().with_timeout(TRANSFER_TIMEOUT).with_connect_timeout(std::time::Duration::from_secs(5));
    // Keys a backend does not know are skipped, as object_store's parse_url_opts does.
    macro_rules! build {
        ($builder:expr) => {{
            let builder = options.into_iter().fold($builder.with_url(url.as_str()).with_client_options(client), |b, (k, v)| match k.as_ref().parse() {
                Ok(key) => b.with_config(key, v),
                Err(_) => b,
            });
            Arc::new(builder.with_retry(retry).build()?) as Arc<dyn ObjectStore>
        }};
    }
    let store = match scheme {
        ObjectStoreScheme::AmazonS3 => build!(object_store::aws::AmazonS3Builder::new()),
        ObjectStoreScheme::GoogleCloudStorage => build!(object_store::gcp::GoogleCloudStorageBuilder::new()),
        ObjectStoreScheme::MicrosoftAzure => build!(object_store::azure::MicrosoftAzureBuilder::new()),
        _ => return object_store::parse_url_opts(url, options).map(|(s, p)| (Arc::from(s), p, scheme)),
    };
    Ok((store, prefix, scheme))
}

/// How long a request that moves no artifact body (metadata, listing,
/// deletion) may take before the store counts as unavailable; the client's
/// own timeout is sized for multi-GB bodies.
const QUICK: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs a request that moves no body, bounded by [`QUICK`].
async fn quick<T>(op: &str, request: impl std::future::Future<Output = object_store::Result<T>>) -> Result<T, ArtifactError> {
    match tokio::time::timeout(QUICK, request).await {
        Ok(result) => result.map_err(|e| ArtifactError::backend(op, e)),
        Err(_) => Err(ArtifactError::Unavailable(format!("{op}: no answer within {} s", QUICK.as_secs()))),
    }
}

/// S3's CopyObject takes objects up to 5 GiB; the move of a finished upload
/// to its content address is one.
pub const S3_COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;

/// The first of `keys` the store at `location` does not understand, with
/// the backend's name: an option written in a configuration file is
/// checked (a misspelt `aws_regoin` would otherwise be skipped, and the
/// store fail later for a reason that does not name it). Environment
/// variables are not (`AWS_PROFILE` and the like are for other tools).
/// `None` for local folders and URLs that do not parse (refused elsewhere).
pub fn unknown_option<'k>(location: &str, keys: impl IntoIterator<Item = &'k str>) -> Option<(String, &'static str)> {
    use object_store::ObjectStoreScheme;
    let url = url::Url::parse(location).ok()?;
    let (scheme, _) = ObjectStoreScheme::parse(&url).ok()?;
    let (known, backend): (fn(&str) -> bool, &'static str) = match scheme {
        ObjectStoreScheme::AmazonS3 => (|k| k.parse::<object_store::aws::AmazonS3ConfigKey>().is_ok(), "S3"),
        ObjectStoreScheme::GoogleCloudStorage => (|k| k.parse::<object_store::gcp::GoogleConfigKey>().is_ok(), "Google Cloud Storage"),
        ObjectStoreScheme::MicrosoftAzure => (|k| k.parse::<object_store::azure::AzureConfigKey>().is_ok(), "Azure"),
        _ => return None,
    };
    keys.into_iter().find(|k| !known(k)).map(|k| (k.to_string(), backend))
}

/// The object-store options the usual environment variables give: every
/// `AWS_…`, `GOOGLE_…` and `AZURE_…` variable, as `object_store`'s key
/// (`AWS_ENDPOINT_URL` → `aws_endpoint_url`). Keys a backend does not know
/// are ignored by it.
pub fn options_from_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(key, _)| ["AWS_", "GOOGLE_", "AZURE_"].iter().any(|p| key.starts_with(p)))
        .map(|(key, value)| (key.to_ascii_lowercase(), value))
        .collect()
}

impl ArtifactStore {
    /// Wraps any object store; artifacts go under `prefix`.
    ///
    /// A `LocalFileSystem` passed here works, but its staging files are not
    /// swept: open local folders with [`ArtifactStore::local`].
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { store, prefix, max_size: None, clock: Arc::new(SystemClock), local_tmp: None, local_root: None, ceiling: None }
    }

    /// A store in a local folder, created if missing.
    pub fn local(dir: impl AsRef<std::path::Path>) -> Result<Self, ArtifactError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| ArtifactError::Config(format!("cannot create artifact folder `{}`: {e}", dir.display())))?;
        let root = std::fs::canonicalize(dir)
            .map_err(|e| ArtifactError::Config(format!("cannot open artifact folder `{}`: {e}", dir.display())))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| ArtifactError::Config(format!("cannot open artifact folder `{}`: {e}", dir.display())))?;
        let store = Self::new(Arc::new(fs), Path::default());
        // With the empty prefix, `tmp/…` in the store is `<root>/tmp/…` on disk.
        Ok(Self { local_tmp: Some(root.join("tmp")), local_root: Some(root), ..store })
    }

    /// A store from configuration: a plain path or `file://` URL is a local
    /// folder; other schemes (`s3://`, `gs://`, `az://`, `memory://`) go to
    /// `object_store`'s URL parsing with `options` (credentials, region,
    /// endpoint…: `object_store`'s configuration keys, such as
    /// `aws_endpoint` or `aws_allow_http`; later pairs win). Use
    /// [`options_from_env`] for the usual environment variables.
    pub fn from_url<I, K, V>(location: &str, options: I) -> Result<Self, ArtifactError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let Ok(url) = url::Url::parse(location) else {
            return Self::local(location);
        };
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| ArtifactError::Config(format!("`{location}` is not a local path")))?;
            return Self::local(path);
        }
        // A Windows drive letter parses as a one-letter scheme.
        if url.scheme().len() == 1 {
            return Self::local(location);
        }
        let (store, prefix, scheme) = open_cloud(&url, options).map_err(|e| ArtifactError::Config(format!("cannot use artifact store `{location}`: {e}")))?;
        // `s3://` and the https URLs of S3 buckets alike.
        let ceiling = (scheme == object_store::ObjectStoreScheme::AmazonS3).then_some(S3_COPY_LIMIT);
        Ok(Self { ceiling, max_size: ceiling, ..Self::new(store, prefix) })
    }

    /// Refuses uploads larger than `max_size` bytes (`None`: no limit), and
    /// never more than the backend can move from its temporary object to its
    /// address (5 GiB on S3).
    pub fn with_max_size(mut self, max_size: Option<u64>) -> Self {
        self.max_size = match (max_size, self.ceiling) {
            (Some(wanted), Some(ceiling)) => Some(wanted.min(ceiling)),
            (wanted, ceiling) => wanted.or(ceiling),
        };
        self
    }

    pub fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// Takes "now" from `clock` when judging the age of objects
    /// ([`ArtifactStore::sweep_temporaries`], [`ArtifactStore::collect_garbage`]).
    /// The default is the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn address(&self, sha256: &Sha256Hex) -> Path {
        let hex = sha256.as_str();
        self.artifacts_root().child(&hex[..2]).child(hex)
    }

    fn artifacts_root(&self) -> Path {
        self.prefix.child("sha256")
    }

    fn temp_root(&self) -> Path {
        self.prefix.child("tmp")
    }

    fn temp_path(&self) -> Path {
        self.temp_root().child(uuid::Uuid::new_v4().to_string())
    }

    /// Streams `body` into the store. When `expected` is given, content with
    /// another digest is refused (`InvalidInput` on `sha256`) and not kept.
    ///
    /// The first part is read before anything is written: content that
    /// ends within it (most files MLflow logs, rule sets, small models) is
    /// stored with one request instead of a multipart upload's three.
    pub async fn put_stream<S, E>(&self, body: S, expected: Option<&Sha256Hex>) -> Result<StoredArtifact, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let mut body = std::pin::pin!(body);
        let mut counted = Counted { hasher: Sha256::new(), size: 0, max_size: self.max_size };
        let mut first: Vec<Bytes> = Vec::new();
        let mut buffered = 0usize;
        let mut ended = true;
        while let Some(chunk) = body.next().await {
            let chunk = counted.take(chunk)?;
            buffered += chunk.len();
            first.push(chunk);
            if buffered >= PART_SIZE {
                ended = false;
                break;
            }
        }
        let temp = self.temp_path();
        let (sha256, size) = if ended {
            let payload: object_store::PutPayload = first.into_iter().collect();
            self.store.put(&temp, payload).await.map_err(|e| ArtifactError::backend("store upload", e))?;
            counted.finish()
        } else {
            let upload = self.store.put_multipart(&temp).await.map_err(|e| ArtifactError::backend("start upload", e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            for chunk in first {
                writer.put(chunk);
            }
            match Self::write_rest(&mut writer, body, counted).await {
                Ok(done) => {
                    if let Err(e) = writer.finish().await {
                        // `finish` aborts the upload itself when completing fails.
                        return Err(ArtifactError::backend("finish upload", e));
                    }
                    done
                }
                Err(e) => {
                    if let Err(abort) = writer.abort().await {
                        tracing::warn!(path = %temp, error = %abort, "could not abort a failed artifact upload");
                    }
                    return Err(e);
                }
            }
        };
        if let Some(expected) = expected {
            if *expected != sha256 {
                self.remove_quietly(&temp).await;
                return Err(ArtifactError::DigestMismatch { expected: expected.clone(), actual: sha256 });
            }
        }
        self.commit(&temp, &sha256).await.map(|created| StoredArtifact { sha256, size, created })
    }

    /// The rest of a body past its first part, into a multipart upload.
    async fn write_rest<S, E>(writer: &mut WriteMultipart, mut body: std::pin::Pin<&mut S>, mut counted: Counted) -> Result<(Sha256Hex, u64), ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        while let Some(chunk) = body.next().await {
            let chunk = counted.take(chunk)?;
            writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await.map_err(|e| ArtifactError::backend("write upload", e))?;
            writer.put(chunk);
        }
        Ok(counted.finish())
    }

    /// Moves a complete temporary object to its address, create-only.
    /// Returns whether it was new.
    async fn commit(&self, temp: &Path, sha256: &Sha256Hex) -> Result<bool, ArtifactError> {
        let address = self.address(sha256);
        match self.store.rename_if_not_exists(temp, &address).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Same address, same content by construction. Moving the new
                // copy over it renews its last-modified time: the client is
                // about to create a version from it, and garbage collection's
                // grace period must count from this upload, not the first one.
                if let Err(e) = self.store.rename(temp, &address).await {
                    tracing::warn!(%address, error = %e, "could not renew a deduplicated artifact");
                    self.remove_quietly(temp).await;
                }
                Ok(false)
            }
            Err(object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented) => {
                // Backends without create-only copy (S3 unless configured):
                // overwriting identical content is harmless, and renews it as above.
                let existed = self.exists(sha256).await?;
                self.store.copy(temp, &address).await.map_err(|e| ArtifactError::backend("store artifact", e))?;
                self.remove_quietly(temp).await;
                Ok(!existed)
            }
            Err(e) => {
                self.remove_quietly(temp).await;
                Err(ArtifactError::backend("store artifact", e))
            }
        }
    }

    async fn remove_quietly(&self, path: &Path) {
        if let Err(e) = self.store.delete(path).await {
            if !matches!(e, object_store::Error::NotFound { .. }) {
                tracing::warn!(%path, error = %e, "could not remove a temporary artifact");
            }
        }
    }

    /// Whether the store answers (for readiness probes): the folder is
    /// there, or the bucket answers a metadata request.
    pub async fn ready(&self) -> Result<(), ArtifactError> {
        if let Some(root) = &self.local_root {
            return match std::fs::metadata(root) {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err(ArtifactError::Unavailable(format!("`{}` is not a folder", root.display()))),
                Err(e) => Err(ArtifactError::Unavailable(format!("`{}`: {e}", root.display()))),
            };
        }
        // A listing of one level under the prefix: what garbage collection
        // needs anyway (S3 answers a HEAD of a missing key with 403 to a
        // role without ListBucket, which would read as "down").
        match quick("list the store", self.store.list_with_delimiter(Some(&self.prefix))).await {
            Ok(_) => Ok(()),
            Err(e) => Err(ArtifactError::Unavailable(format!("the store does not answer: {e}"))),
        }
    }

    /// The size of a stored artifact, or `None` when there is none.
    ///
    /// On a local folder this is one `stat` on the calling thread instead of
    /// `object_store`'s hop to the blocking pool: version creation asks it
    /// while holding the registry's write lock, where every microsecond is
    /// every writer's.
    pub async fn head(&self, sha256: &Sha256Hex) -> Result<Option<u64>, ArtifactError> {
        if let Some(root) = &self.local_root {
            let path = root.join(self.address(sha256).as_ref());
            return match std::fs::metadata(&path) {
                Ok(meta) => Ok(Some(meta.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ArtifactError::Unavailable(format!("read artifact metadata of `{}`: {e}", path.display()))),
            };
        }
        let Ok(answer) = tokio::time::timeout(QUICK, self.store.head(&self.address(sha256))).await else {
            return Err(ArtifactError::Unavailable(format!("read artifact metadata: no answer within {} s", QUICK.as_secs())));
        };
        match answer {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ArtifactError::backend("read artifact metadata", e)),
        }
    }

    pub async fn exists(&self, sha256: &Sha256Hex) -> Result<bool, ArtifactError> {
        Ok(self.head(sha256).await?.is_some())
    }

    /// Every stored artifact, in no particular order, streamed: a store may
    /// hold many thousands. Objects under `sha256/` whose name is not an
    /// artifact address (not a digest, or filed under the wrong two digits)
    /// are left out; [`ArtifactStore::collect_garbage`] reports them.
    pub fn list_artifacts(&self) -> BoxStream<'static, Result<ArtifactInfo, ArtifactError>> {
        self.list_objects()
            .filter_map(|item| {
                futures::future::ready(match item {
                    Ok(Listed::Artifact(artifact)) => Some(Ok(artifact)),
                    Ok(Listed::Unrecognised(meta)) => {
                        tracing::debug!(path = %meta.location, "not an artifact address, left out of the listing");
                        None
                    }
                    Err(e) => Some(Err(e)),
                })
            })
            .boxed()
    }

    /// Everything under `sha256/`, each object recognised as an artifact or not.
    fn list_objects(&self) -> BoxStream<'static, Result<Listed, ArtifactError>> {
        let root = self.artifacts_root();
        self.store
            .list(Some(&root))
            .map(move |item| {
                let meta = item.map_err(|e| ArtifactError::backend("list artifacts", e))?;
                Ok(match digest_at(&root, &meta.location) {
                    Some(sha256) => Listed::Artifact(ArtifactInfo { sha256, size: meta.size, last_modified: meta.last_modified }),
                    None => Listed::Unrecognised(meta),
                })
            })
            .boxed()
    }

    /// Removes a stored artifact; removing one that is not there is not an
    /// error (backends disagree on reporting it, and a second collector may
    /// have been first). Nothing here checks that no version references it:
    /// that is the caller's decision, see [`ArtifactStore::collect_garbage`].
    pub async fn delete(&self, sha256: &Sha256Hex) -> Result<(), ArtifactError> {
        let Ok(answer) = tokio::time::timeout(QUICK, self.store.delete(&self.address(sha256))).await else {
            return Err(ArtifactError::Unavailable(format!("delete artifact: no answer within {} s", QUICK.as_secs())));
        };
        match answer {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(ArtifactError::backend("delete artifact", e)),
        }
    }

    /// Streams an artifact back, verifying its digest on the way: the last
    /// chunk is only released once the whole content matched, so a client
    /// never receives a complete but wrong artifact.
    pub async fn get(&self, sha256: &Sha256Hex) -> Result<Download, ArtifactError> {
        let result = self.store.get(&self.address(sha256)).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => ArtifactError::NotFound { sha256: sha256.clone() },
            e => ArtifactError::backend("read artifact", e),
        })?;
        let size = result.meta.size;
        let inner = result.into_stream().boxed();
        let stream = VerifyingStream { inner, hasher: Sha256::new(), expected: sha256.clone(), held: None, done: false };
        Ok(Download { size, stream: stream.boxed() })
    }
}

/// An object found under `sha256/`.
enum Listed {
    Artifact(ArtifactInfo),
    /// Not an artifact address: never read, never deleted.
    Unrecognised(ObjectMeta),
}

/// The digest whose address `location` is, the inverse of `ArtifactStore::address`.
fn digest_at(root: &Path, location: &Path) -> Option<Sha256Hex> {
    let mut parts = location.prefix_match(root)?;
    let (fan_out, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let sha256 = Sha256Hex::parse_field("sha256", name.as_ref()).ok()?;
    (sha256.as_str()[..2] == *fan_out.as_ref()).then_some(sha256)
}

/// Hashes the bytes passing through, holding one chunk back until the end.
struct VerifyingStream {
    inner: BoxStream<'static, object_store::Result<Bytes>>,
    hasher: Sha256,
    expected: Sha256Hex,
    held: Option<Bytes>,
    done: bool,
}

impl Stream for VerifyingStream {
    type Item = Result<Bytes, ArtifactError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    this.hasher.update(&chunk);
                    if let Some(previous) = this.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(ArtifactError::backend("read artifact", e))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let digest: [u8; 32] = std::mem::take(&mut this.hasher).finalize().into();
                    let actual = Sha256Hex::from_digest(&digest);
                    if actual != this.expected {
                        tracing::error!(expected = %this.expected, %actual, "stored artifact does not match its digest");
                        return Poll::Ready(Some(Err(ArtifactError::Corrupt { sha256: this.expected.clone(), actual })));
                    }
                    return Poll::Ready(this.held.take().map(Ok));
                }
            }
        }
    }
}

/// The `Content-Disposition` of a download: `attachment` with an ASCII
/// fallback name and the exact name in RFC 5987 form.
pub fn content_disposition(filename: &str) -> String {
    let fallback: String = filename.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::with_capacity(filename.len());
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_fan_out_by_the_first_two_hex_digits() {
        let store = ArtifactStore::new(Arc::new(object_store::memory::InMemory::new()), Path::from("artifacts"));
        let sha = Sha256Hex::parse_field("sha256", "ab".repeat(32)).unwrap();
        assert_eq!(store.address(&sha).as_ref(), format!("artifacts/sha256/ab/{}", "ab".repeat(32)));
    }

    #[test]
    fn only_artifact_addresses_are_read_back_as_digests() {
        let store = ArtifactStore::new(Arc::new(object_store::memory::InMemory::new()), Path::from("artifacts"));
        let root = store.artifacts_root();
        let sha = Sha256Hex::parse_field("sha256", format!("cd{}", "0".repeat(62))).unwrap();
        assert_eq!(digest_at(&root, &store.address(&sha)), Some(sha.clone()));
        let hex = sha.as_str();
        for odd in [
            format!("artifacts/sha256/ab/{hex}"),                // filed under the wrong two digits
            format!("artifacts/sha256/cd/{}", hex.to_uppercase()), // not the lowercase form
            format!("artifacts/sha256/cd/{hex}/extra"),
            format!("artifacts/sha256/cd/{}", &hex[..63]),
            format!("artifacts/sha256/{hex}"),
            "artifacts/sha256/README".to_owned(),
            format!("other/sha256/cd/{hex}"),
        ] {
            assert_eq!(digest_at(&root, &Path::from(odd.as_str())), None, "{odd}");
        }
    }
}
