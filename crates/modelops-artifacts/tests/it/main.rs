//! Integration tests of the artifact store on a real local folder, and on
//! object_store's in-memory store where a cloud-like backend matters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use futures::{stream, StreamExt, TryStreamExt};
use modelops_artifacts::{ArtifactError, ArtifactInfo, ArtifactStore, GcMode, StoredArtifact, SweepReport};
use modelops_core::clock::{Clock, MockClock};
use modelops_core::version::Sha256Hex;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod backend;
use backend::Backend;

fn sha(data: &[u8]) -> Sha256Hex {
    Sha256Hex::from_digest(&Sha256::digest(data).into())
}

fn chunks(data: &[u8], size: usize) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let parts: Vec<Result<Bytes, std::io::Error>> = data.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    stream::iter(parts)
}

/// Every regular file under `dir`, relative.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            } else {
                out.push(entry.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

async fn read_all(store: &ArtifactStore, sha256: &Sha256Hex) -> Result<Vec<u8>, ArtifactError> {
    let download = store.get(sha256).await?;
    let parts: Vec<Bytes> = download.stream.try_collect().await?;
    Ok(parts.concat())
}

// ---- cases run on a local folder and on S3, written once --------------------

/// Each case below runs on every backend: `local::<case>` on a folder,
/// `s3::<case>` on the S3-compatible server of `scripts/with-s3`.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod local {
            $( #[tokio::test] async fn $case() { super::$case(super::backend::Backend::local()).await } )*
        }
        mod s3 {
            $( #[tokio::test] async fn $case() { super::$case(super::backend::Backend::s3()).await } )*
        }
    };
}

on_every_backend!(
    a_large_upload_round_trips_and_lands_at_its_address,
    identical_content_is_stored_once,
    a_stream_that_breaks_off_leaves_nothing_behind,
    the_size_limit_refuses_and_removes_the_upload,
    a_wrong_expected_digest_is_refused_on_the_sha256_field,
    a_tampered_object_fails_verification_on_read,
    unknown_digests_are_not_found,
    deleting_an_artifact_removes_only_it_and_twice_is_fine,
    listing_yields_every_artifact,
);

fn address(sha256: &Sha256Hex) -> String {
    let hex = sha256.as_str();
    format!("sha256/{}/{hex}", &hex[..2])
}

async fn a_large_upload_round_trips_and_lands_at_its_address(backend: Backend) {
    let store = backend.store();
    // Larger than two 5 MiB parts, in uneven chunks.
    let data: Vec<u8> = (0..12 * 1024 * 1024 + 17).map(|i| (i * 31 % 251) as u8).collect();
    let stored = store.put_stream(chunks(&data, 64 * 1024 + 3), None).await.unwrap();
    assert_eq!(stored.sha256, sha(&data));
    assert_eq!(stored.size, data.len() as u64);
    assert!(stored.created);
    // Only the artifact: no temporary object, no unfinished upload.
    assert_eq!(backend.objects().await, vec![address(&stored.sha256)]);
    assert_eq!(store.head(&stored.sha256).await.unwrap(), Some(data.len() as u64));
    assert!(store.exists(&stored.sha256).await.unwrap());
    let download = store.get(&stored.sha256).await.unwrap();
    assert_eq!(download.size, data.len() as u64);
    assert_eq!(read_all(&store, &stored.sha256).await.unwrap(), data);
}

async fn identical_content_is_stored_once(backend: Backend) {
    let store = backend.store();
    let first = store.put_stream(chunks(b"same bytes", 3), None).await.unwrap();
    let second = store.put_stream(chunks(b"same bytes", 5), Some(&sha(b"same bytes"))).await.unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(backend.objects().await, vec![address(&first.sha256)]);
}

async fn a_stream_that_breaks_off_leaves_nothing_behind(backend: Backend) {
    let store = backend.store();
    // Two parts sent before the break: on S3 a multipart upload is under way.
    let good = chunks(&vec![7u8; 11 * 1024 * 1024], 1024 * 1024);
    let broken = good.chain(stream::iter([Err(std::io::Error::other("connection reset"))]));
    let err = store.put_stream(broken, None).await.unwrap_err();
    assert!(matches!(err, ArtifactError::Body(_)), "{err:?}");
    let core: modelops_core::Error = err.into();
    assert_eq!(core.field(), Some("body"));
    // Aborting removes the staged file, possibly on a blocking thread.
    tokio::task::yield_now().await;
    assert_eq!(backend.objects().await, Vec::<String>::new());
}

async fn the_size_limit_refuses_and_removes_the_upload(backend: Backend) {
    let store = backend.store().with_max_size(Some(1000));
    let ok = store.put_stream(chunks(&[1u8; 1000], 300), None).await.unwrap();
    assert_eq!(ok.size, 1000);
    let err = store.put_stream(chunks(&[2u8; 1001], 300), None).await.unwrap_err();
    assert!(matches!(err, ArtifactError::TooLarge { limit: 1000 }), "{err:?}");
    assert_eq!(backend.objects().await, vec![address(&ok.sha256)]);
}

async fn a_wrong_expected_digest_is_refused_on_the_sha256_field(backend: Backend) {
    let store = backend.store();
    let claimed = sha(b"other");
    let err = store.put_stream(chunks(b"content", 4), Some(&claimed)).await.unwrap_err();
    let core: modelops_core::Error = err.into();
    assert_eq!(core.kind(), modelops_core::ErrorKind::InvalidInput);
    assert_eq!(core.field(), Some("sha256"));
    assert!(core.to_string().contains(claimed.as_str()), "{core}");
    assert_eq!(backend.objects().await, Vec::<String>::new());
}

async fn a_tampered_object_fails_verification_on_read(backend: Backend) {
    let store = backend.store();
    let data = vec![42u8; 300_000];
    let stored = store.put_stream(chunks(&data, 10_000), None).await.unwrap();
    let mut tampered = data.clone();
    tampered[150_000] = 43;
    backend.overwrite(stored.sha256.as_str(), tampered).await;

    let download = store.get(&stored.sha256).await.unwrap();
    let mut received = 0usize;
    let mut stream = download.stream;
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => received += chunk.len(),
            Err(e) => failure = Some(e),
        }
    }
    assert!(matches!(failure, Some(ArtifactError::Corrupt { .. })), "{failure:?}");
    assert!(received < data.len(), "the client must not get a complete wrong artifact");
    let core: modelops_core::Error = failure.unwrap().into();
    assert_eq!(core.kind(), modelops_core::ErrorKind::Internal);
}

async fn unknown_digests_are_not_found(backend: Backend) {
    let store = backend.store();
    let missing = sha(b"never stored");
    assert_eq!(store.head(&missing).await.unwrap(), None);
    let err = store.get(&missing).await.unwrap_err();
    assert!(matches!(err, ArtifactError::NotFound { .. }));
}

async fn deleting_an_artifact_removes_only_it_and_twice_is_fine(backend: Backend) {
    let store = backend.store();
    let gone = store.put_stream(chunks(b"to delete", 4), None).await.unwrap();
    let kept = store.put_stream(chunks(b"to keep", 4), None).await.unwrap();
    store.delete(&gone.sha256).await.unwrap();
    assert!(!store.exists(&gone.sha256).await.unwrap());
    assert!(matches!(store.get(&gone.sha256).await.unwrap_err(), ArtifactError::NotFound { .. }));
    store.delete(&gone.sha256).await.unwrap();
    assert_eq!(read_all(&store, &kept.sha256).await.unwrap(), b"to keep");
    assert_eq!(backend.objects().await, vec![address(&kept.sha256)]);
}

async fn listing_yields_every_artifact(backend: Backend) {
    let store = backend.store();
    let before = Utc::now() - TimeDelta::minutes(5);
    let a = store.put_stream(chunks(b"first artifact", 3), None).await.unwrap();
    let b = store.put_stream(chunks(b"second, longer artifact", 5), None).await.unwrap();
    let mut listed: Vec<ArtifactInfo> = store.list_artifacts().try_collect().await.unwrap();
    listed.sort_by(|x, y| x.sha256.cmp(&y.sha256));
    let mut expected = vec![(a.sha256.clone(), 14), (b.sha256.clone(), 23)];
    expected.sort();
    assert_eq!(listed.iter().map(|i| (i.sha256.clone(), i.size)).collect::<Vec<_>>(), expected);
    assert!(listed.iter().all(|i| i.last_modified > before), "{listed:?}");
}

// ---- S3 only ----------------------------------------------------------------

#[tokio::test]
async fn an_s3_store_never_accepts_more_than_one_copy_can_move() {
    let store = Backend::s3().store();
    assert_eq!(store.max_size(), Some(modelops_artifacts::S3_COPY_LIMIT));
    assert_eq!(store.clone().with_max_size(Some(10 << 30)).max_size(), Some(modelops_artifacts::S3_COPY_LIMIT));
    assert_eq!(store.clone().with_max_size(Some(1000)).max_size(), Some(1000));
    assert_eq!(store.with_max_size(None).max_size(), Some(modelops_artifacts::S3_COPY_LIMIT));
}

#[tokio::test]
async fn an_unreachable_s3_is_unavailable_soon_and_says_so() {
    let bucket_url = std::env::var("MODELOPS_TEST_S3_URL").expect("MODELOPS_TEST_S3_URL (scripts/with-s3)");
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut options = modelops_artifacts::options_from_env();
    options.push(("aws_endpoint".into(), format!("http://{closed}")));
    let store = ArtifactStore::from_url(&format!("{bucket_url}/unreachable"), options).unwrap();
    let started = std::time::Instant::now();
    let err = store.put_stream(chunks(b"model bytes", 4), None).await.unwrap_err();
    let core: modelops_core::Error = err.into();
    assert_eq!(core.kind(), modelops_core::ErrorKind::Unavailable, "{core}");
    assert!(started.elapsed() < Duration::from_secs(20), "retries bounded: took {:?}", started.elapsed());
    let err = store.head(&sha(b"model bytes")).await.unwrap_err();
    assert_eq!(modelops_core::Error::from(err).kind(), modelops_core::ErrorKind::Unavailable);
}

#[tokio::test]
async fn stores_open_from_paths_and_urls() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    let by_path = ArtifactStore::from_url(nested.to_str().unwrap(), std::iter::empty::<(&str, &str)>()).unwrap();
    let stored = by_path.put_stream(chunks(b"x", 1), None).await.unwrap();
    let url = format!("file://{}", nested.display());
    let by_url = ArtifactStore::from_url(&url, std::iter::empty::<(&str, &str)>()).unwrap();
    assert!(by_url.exists(&stored.sha256).await.unwrap());
    let memory = ArtifactStore::from_url("memory:///", std::iter::empty::<(&str, &str)>()).unwrap();
    let m = memory.put_stream(chunks(b"in memory", 2), None).await.unwrap();
    assert_eq!(read_all(&memory, &m.sha256).await.unwrap(), b"in memory");
}

// ---- sweeping and garbage collection ----------------------------------------

/// A fixed "now" for the local-folder cases: every file time there is set
/// explicitly relative to it, so no case depends on the wall clock.
fn t0() -> DateTime<Utc> {
    "2030-06-01T12:00:00Z".parse().unwrap()
}

fn local_store_at(dir: &Path, now: DateTime<Utc>) -> ArtifactStore {
    ArtifactStore::local(dir).unwrap().with_clock(Arc::new(MockClock::new(now)))
}

fn set_mtime(path: &Path, t: DateTime<Utc>) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::from(t)).unwrap();
}

fn address_on_disk(dir: &Path, sha256: &Sha256Hex) -> PathBuf {
    let hex = sha256.as_str();
    dir.join("sha256").join(&hex[..2]).join(hex)
}

/// Leaves `object_store`'s staging file for `tmp/<id>` behind, as a crash in
/// the middle of an upload does: the upload is never finished, aborted or
/// dropped. Returns the staging file's path.
async fn crash_during_upload(dir: &Path, data: &'static [u8]) -> PathBuf {
    let fs = LocalFileSystem::new_with_prefix(dir).unwrap();
    let id = uuid_like(data);
    let mut upload = fs.put_multipart(&StorePath::from(format!("tmp/{id}"))).await.unwrap();
    upload.put_part(PutPayload::from_static(data)).await.unwrap();
    std::mem::forget(upload);
    let staged = dir.join("tmp").join(format!("{id}#1"));
    assert!(staged.is_file(), "object_store stages uploads as `<destination>#1`");
    staged
}

fn uuid_like(seed: &[u8]) -> String {
    let hex = sha(seed);
    format!("{}-{}", &hex.as_str()[..8], &hex.as_str()[8..20])
}

fn relative(dir: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(dir).unwrap().to_path_buf()
}

#[tokio::test]
async fn start_up_sweeps_what_crashed_uploads_left_and_keeps_fresh_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let store = local_store_at(&root, t0());
    let stored = store.put_stream(chunks(b"a stored artifact", 4), None).await.unwrap();
    // Old stored artifacts are not temporaries.
    set_mtime(&address_on_disk(&root, &stored.sha256), t0() - TimeDelta::days(30));

    // Finished but never moved to its address (crash before the rename).
    let unrenamed_old = root.join("tmp").join(uuid_like(b"old"));
    std::fs::write(&unrenamed_old, [1u8; 100]).unwrap();
    set_mtime(&unrenamed_old, t0() - TimeDelta::days(2));
    let unrenamed_fresh = root.join("tmp").join(uuid_like(b"fresh"));
    std::fs::write(&unrenamed_fresh, [2u8; 50]).unwrap();
    set_mtime(&unrenamed_fresh, t0() - TimeDelta::minutes(1));
    // Crashed in the middle: object_store's staging files.
    let staged_old = crash_during_upload(&root, &[3u8; 70]).await;
    set_mtime(&staged_old, t0() - TimeDelta::days(2));
    let staged_fresh = crash_during_upload(&root, &[4u8; 30]).await;
    set_mtime(&staged_fresh, t0() - TimeDelta::minutes(1));

    // Why the staging files need handling of their own: object_store hides them.
    let fs = LocalFileSystem::new_with_prefix(&root).unwrap();
    let mut visible: Vec<String> =
        fs.list(Some(&StorePath::from("tmp"))).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    visible.sort();
    let mut expected_visible = vec![format!("tmp/{}", uuid_like(b"old")), format!("tmp/{}", uuid_like(b"fresh"))];
    expected_visible.sort();
    assert_eq!(visible, expected_visible);

    let report = store.sweep_temporaries(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report, SweepReport { count: 2, bytes: 170 });
    let mut expected = vec![
        relative(&root, &address_on_disk(&root, &stored.sha256)),
        relative(&root, &unrenamed_fresh),
        relative(&root, &staged_fresh),
    ];
    expected.sort();
    assert_eq!(files(&root), expected);
    assert_eq!(read_all(&store, &stored.sha256).await.unwrap(), b"a stored artifact");

    // Once the fresh ones are old enough they go too; the artifact never does.
    let later = local_store_at(&root, t0() + TimeDelta::hours(2));
    assert_eq!(later.sweep_temporaries(Duration::from_secs(3600)).await.unwrap(), SweepReport { count: 2, bytes: 80 });
    assert_eq!(files(&root), vec![relative(&root, &address_on_disk(&root, &stored.sha256))]);
}

#[tokio::test]
async fn an_upload_in_progress_survives_a_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(dir.path()).unwrap();
    let data: Vec<u8> = (0..12 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    let (first, rest) = data.split_at(6 * 1024 * 1024);
    let (second, rest) = rest.split_at(1024);
    let (started_tx, started_rx) = futures::channel::oneshot::channel::<()>();
    let (more_tx, more_rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
    let first = Bytes::copy_from_slice(first);
    let second = Bytes::copy_from_slice(second);
    // More than one part: the upload is staged once the first part is in,
    // before the body is polled again.
    let body = stream::iter([Ok(first)])
        .chain(stream::once(async move {
            started_tx.send(()).unwrap();
            Ok(second)
        }))
        .chain(more_rx);
    let uploading = tokio::spawn({
        let store = store.clone();
        async move { store.put_stream(body, None).await }
    });
    started_rx.await.unwrap();
    assert_eq!(files(&dir.path().join("tmp")).len(), 1, "the upload is staged");

    let report = store.sweep_temporaries(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report, SweepReport::default());

    more_tx.unbounded_send(Ok(Bytes::copy_from_slice(rest))).unwrap();
    drop(more_tx);
    let stored = uploading.await.unwrap().unwrap();
    assert_eq!(stored.sha256, sha(&data));
    assert_eq!(read_all(&store, &stored.sha256).await.unwrap(), data);
}

#[tokio::test]
async fn a_leftover_temporary_in_a_cloud_like_store_goes_once_old_enough() {
    let memory = Arc::new(InMemory::new());
    let clock = Arc::new(MockClock::new(Utc::now()));
    let store = ArtifactStore::new(memory.clone(), StorePath::from("artifacts")).with_clock(clock.clone());
    let leftover = StorePath::from("artifacts/tmp/leftover");
    memory.put(&leftover, PutPayload::from_static(b"partial")).await.unwrap();
    let stored = store.put_stream(chunks(b"kept", 2), None).await.unwrap();

    clock.advance(TimeDelta::minutes(1));
    assert_eq!(store.sweep_temporaries(Duration::from_secs(3600)).await.unwrap(), SweepReport::default());
    assert!(memory.head(&leftover).await.is_ok());

    clock.advance(TimeDelta::hours(2));
    assert_eq!(store.sweep_temporaries(Duration::from_secs(3600)).await.unwrap(), SweepReport { count: 1, bytes: 7 });
    assert!(matches!(memory.head(&leftover).await, Err(object_store::Error::NotFound { .. })));
    assert_eq!(read_all(&store, &stored.sha256).await.unwrap(), b"kept");
}

#[tokio::test]
async fn listing_yields_every_artifact_and_leaves_out_foreign_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store_at(dir.path(), t0());
    let empty: Vec<ArtifactInfo> = store.list_artifacts().try_collect().await.unwrap();
    assert_eq!(empty, vec![]);

    let a = store.put_stream(chunks(b"first artifact", 3), None).await.unwrap();
    let b = store.put_stream(chunks(b"second, longer artifact", 5), None).await.unwrap();
    let a_time = t0() - TimeDelta::days(3);
    set_mtime(&address_on_disk(dir.path(), &a.sha256), a_time);
    std::fs::write(dir.path().join("sha256").join("README"), "not an artifact").unwrap();

    let mut listed: Vec<ArtifactInfo> = store.list_artifacts().try_collect().await.unwrap();
    listed.sort_by(|x, y| x.sha256.cmp(&y.sha256));
    let mut expected = vec![(a.sha256.clone(), 14), (b.sha256.clone(), 23)];
    expected.sort();
    assert_eq!(listed.iter().map(|i| (i.sha256.clone(), i.size)).collect::<Vec<_>>(), expected);
    let a_listed = listed.iter().find(|i| i.sha256 == a.sha256).unwrap();
    assert_eq!(a_listed.last_modified, a_time);
}

/// A local store with, relative to [`t0`]: a referenced old artifact, an
/// unreferenced old one, an unreferenced recent one and three foreign objects.
struct GcFixture {
    dir: tempfile::TempDir,
    store: ArtifactStore,
    referenced: StoredArtifact,
    unreferenced_old: StoredArtifact,
    unreferenced_recent: StoredArtifact,
    foreign: Vec<String>,
}

async fn gc_fixture() -> GcFixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = local_store_at(root, t0());
    let referenced = store.put_stream(chunks(b"referenced by version 1", 5), None).await.unwrap();
    let unreferenced_old = store.put_stream(chunks(b"uploaded, never used", 5), None).await.unwrap();
    let unreferenced_recent = store.put_stream(chunks(b"just uploaded", 5), None).await.unwrap();
    set_mtime(&address_on_disk(root, &referenced.sha256), t0() - TimeDelta::days(10));
    set_mtime(&address_on_disk(root, &unreferenced_old.sha256), t0() - TimeDelta::days(10));
    set_mtime(&address_on_disk(root, &unreferenced_recent.sha256), t0() - TimeDelta::minutes(5));

    let misfiled = sha(b"filed under the wrong two digits");
    let wrong = if misfiled.as_str().starts_with("00") { "11" } else { "00" };
    let foreign = vec![
        "sha256/README".to_owned(),
        format!("sha256/{wrong}/{misfiled}"),
        "sha256/ab/not-a-digest".to_owned(),
    ];
    for path in &foreign {
        let on_disk = root.join(path);
        std::fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
        std::fs::write(&on_disk, "foreign").unwrap();
        set_mtime(&on_disk, t0() - TimeDelta::days(100));
    }
    let mut foreign = foreign;
    foreign.sort();
    GcFixture { dir, store, referenced, unreferenced_old, unreferenced_recent, foreign }
}

#[tokio::test]
async fn a_gc_dry_run_lists_exactly_the_old_unreferenced_artifact_and_removes_nothing() {
    let f = gc_fixture().await;
    let before = files(f.dir.path());
    let references: HashSet<Sha256Hex> = [f.referenced.sha256.clone()].into();

    let report = f.store.collect_garbage(|d| references.contains(d), Duration::from_secs(86_400), GcMode::DryRun).await.unwrap();
    assert_eq!(report.mode, GcMode::DryRun);
    assert_eq!(report.now, t0());
    assert_eq!(
        report.removed.iter().map(|a| (a.sha256.clone(), a.size)).collect::<Vec<_>>(),
        vec![(f.unreferenced_old.sha256.clone(), f.unreferenced_old.size)]
    );
    assert_eq!(report.removed_bytes, f.unreferenced_old.size);
    assert_eq!(report.referenced, 1);
    assert_eq!(report.kept_recent, 1);
    assert_eq!(report.skipped, f.foreign);
    assert_eq!(files(f.dir.path()), before);
    assert_eq!(read_all(&f.store, &f.unreferenced_old.sha256).await.unwrap(), b"uploaded, never used");
}

#[tokio::test]
async fn gc_removes_the_old_unreferenced_artifact_and_keeps_the_rest_readable() {
    let f = gc_fixture().await;
    let before = files(f.dir.path());
    let references: HashSet<Sha256Hex> = [f.referenced.sha256.clone()].into();

    let report = f.store.collect_garbage(|d| references.contains(d), Duration::from_secs(86_400), GcMode::Delete).await.unwrap();
    assert_eq!(report.mode, GcMode::Delete);
    assert_eq!(report.removed.iter().map(|a| a.sha256.clone()).collect::<Vec<_>>(), vec![f.unreferenced_old.sha256.clone()]);
    assert_eq!(report.removed_bytes, f.unreferenced_old.size);
    assert_eq!((report.referenced, report.kept_recent), (1, 1));
    assert_eq!(report.skipped, f.foreign);

    let removed = relative(f.dir.path(), &address_on_disk(f.dir.path(), &f.unreferenced_old.sha256));
    let expected: Vec<PathBuf> = before.into_iter().filter(|p| *p != removed).collect();
    assert_eq!(files(f.dir.path()), expected, "foreign objects stay");
    assert!(matches!(f.store.get(&f.unreferenced_old.sha256).await.unwrap_err(), ArtifactError::NotFound { .. }));
    assert_eq!(read_all(&f.store, &f.referenced.sha256).await.unwrap(), b"referenced by version 1");
    assert_eq!(read_all(&f.store, &f.unreferenced_recent.sha256).await.unwrap(), b"just uploaded");

    let again = f.store.collect_garbage(|d| references.contains(d), Duration::from_secs(86_400), GcMode::Delete).await.unwrap();
    assert_eq!(again.removed, vec![]);
    assert_eq!((again.referenced, again.kept_recent, again.removed_bytes), (1, 1, 0));
}

#[tokio::test]
async fn the_grace_period_decides_on_an_in_memory_store() {
    let clock = Arc::new(MockClock::new(Utc::now()));
    let store = ArtifactStore::new(Arc::new(InMemory::new()), StorePath::from("artifacts")).with_clock(clock.clone());
    let used = store.put_stream(chunks(b"used", 2), None).await.unwrap();
    let unused = store.put_stream(chunks(b"unused", 2), None).await.unwrap();
    clock.advance(TimeDelta::minutes(1));
    let references: HashSet<Sha256Hex> = [used.sha256.clone()].into();

    let within = store.collect_garbage(|d| references.contains(d), Duration::from_secs(86_400), GcMode::Delete).await.unwrap();
    assert_eq!(within.removed, vec![]);
    assert_eq!((within.referenced, within.kept_recent), (1, 1));
    assert!(store.exists(&unused.sha256).await.unwrap());

    let none = store.collect_garbage(|d| references.contains(d), Duration::ZERO, GcMode::Delete).await.unwrap();
    assert_eq!(none.removed.iter().map(|a| a.sha256.clone()).collect::<Vec<_>>(), vec![unused.sha256.clone()]);
    assert_eq!(none.removed_bytes, 6);
    assert!(!store.exists(&unused.sha256).await.unwrap());
    assert_eq!(read_all(&store, &used.sha256).await.unwrap(), b"used");
}

#[tokio::test]
async fn uploading_stored_content_again_restarts_its_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(MockClock::new(Utc::now()));
    let store = ArtifactStore::local(dir.path()).unwrap().with_clock(clock.clone());
    let first = store.put_stream(chunks(b"uploaded twice", 3), None).await.unwrap();
    set_mtime(&address_on_disk(dir.path(), &first.sha256), clock.now() - TimeDelta::days(10));
    // The client uploads it again to create a version from it.
    let again = store.put_stream(chunks(b"uploaded twice", 3), None).await.unwrap();
    assert!(!again.created);
    clock.advance(TimeDelta::minutes(1));

    let report = store.collect_garbage(|_| false, Duration::from_secs(86_400), GcMode::Delete).await.unwrap();
    assert_eq!(report.removed, vec![]);
    assert_eq!(report.kept_recent, 1);
    assert_eq!(read_all(&store, &first.sha256).await.unwrap(), b"uploaded twice");
    assert_eq!(files(dir.path()).len(), 1, "still stored once");
}

#[tokio::test]
async fn an_artifact_uploaded_again_while_gc_runs_is_kept() {
    let f = gc_fixture().await;
    let target = f.unreferenced_old.sha256.clone();
    let on_disk = address_on_disk(f.dir.path(), &target);
    // The reference check runs after the artifact was listed as old and
    // before it is deleted: renew it right then, as a concurrent re-upload of
    // the same content would.
    let report = f
        .store
        .collect_garbage(
            |d| {
                if *d == target {
                    set_mtime(&on_disk, t0() - TimeDelta::seconds(1));
                }
                *d == f.referenced.sha256
            },
            Duration::from_secs(86_400),
            GcMode::Delete,
        )
        .await
        .unwrap();
    assert_eq!(report.removed, vec![]);
    assert_eq!((report.referenced, report.kept_recent), (1, 2));
    assert_eq!(read_all(&f.store, &target).await.unwrap(), b"uploaded, never used");
}
