//! Integration tests of the artifact store on a real local folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use modelops_artifacts::{ArtifactError, ArtifactStore};
use modelops_core::version::Sha256Hex;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

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

#[tokio::test]
async fn a_large_upload_round_trips_and_lands_at_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(dir.path()).unwrap();
    // Larger than one 5 MiB part, in uneven chunks.
    let data: Vec<u8> = (0..12 * 1024 * 1024 + 17).map(|i| (i * 31 % 251) as u8).collect();
    let stored = store.put_stream(chunks(&data, 64 * 1024 + 3), None).await.unwrap();
    assert_eq!(stored.sha256, sha(&data));
    assert_eq!(stored.size, data.len() as u64);
    assert!(stored.created);
    let hex = stored.sha256.as_str();
    assert_eq!(files(dir.path()), vec![PathBuf::from(format!("sha256/{}/{hex}", &hex[..2]))]);
    assert_eq!(store.head(&stored.sha256).await.unwrap(), Some(data.len() as u64));
    assert!(store.exists(&stored.sha256).await.unwrap());
    let download = store.get(&stored.sha256).await.unwrap();
    assert_eq!(download.size, data.len() as u64);
    assert_eq!(read_all(&store, &stored.sha256).await.unwrap(), data);
}

#[tokio::test]
async fn identical_content_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(dir.path()).unwrap();
    let first = store.put_stream(chunks(b"same bytes", 3), None).await.unwrap();
    let second = store.put_stream(chunks(b"same bytes", 5), Some(&sha(b"same bytes"))).await.unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(files(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_stream_that_breaks_off_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(dir.path()).unwrap();
    let good = chunks(&vec![7u8; 6 * 1024 * 1024], 1024 * 1024);
    let broken = good.chain(stream::iter([Err(std::io::Error::other("connection reset"))]));
    let err = store.put_stream(broken, None).await.unwrap_err();
    assert!(matches!(err, ArtifactError::Body(_)), "{err:?}");
    let core: modelops_core::Error = err.into();
    assert_eq!(core.field(), Some("body"));
    // Aborting removes the staged file, possibly on a blocking thread.
    tokio::task::yield_now().await;
    assert_eq!(files(dir.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn the_size_limit_refuses_and_removes_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(dir.path()).unwrap().with_max_size(Some(1000));
    let ok = store.put_stream(chunks(&[1u8; 1000], 300), None).await.unwrap();
    assert_eq!(ok.size, 1000);
    let err = store.put_stream(chunks(&[2u8; 1001], 300), None).await.unwrap_err();
    assert!(matches!(err, ArtifactError::TooLarge { limit: 1000 }), "{err:?}");
    assert_eq!(files(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_wrong_expected_digest_is_refused_on_the_sha256_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(dir.path()).unwrap();
    let claimed = sha(b"other");
    let err = store.put_stream(chunks(b"content", 4), Some(&claimed)).await.unwrap_err();
    let core: modelops_core::Error = err.into();
    assert_eq!(core.kind(), modelops_core::ErrorKind::InvalidInput);
    assert_eq!(core.field(), Some("sha256"));
    assert!(core.to_string().contains(claimed.as_str()), "{core}");
    assert!(files(dir.path()).is_empty());
}

#[tokio::test]
async fn a_tampered_object_fails_verification_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(dir.path()).unwrap();
    let data = vec![42u8; 300_000];
    let stored = store.put_stream(chunks(&data, 10_000), None).await.unwrap();
    let hex = stored.sha256.as_str();
    let on_disk = dir.path().join("sha256").join(&hex[..2]).join(hex);
    let mut tampered = data.clone();
    tampered[150_000] = 43;
    std::fs::write(&on_disk, &tampered).unwrap();

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

#[tokio::test]
async fn unknown_digests_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::local(dir.path()).unwrap();
    let missing = sha(b"never stored");
    assert_eq!(store.head(&missing).await.unwrap(), None);
    let err = store.get(&missing).await.unwrap_err();
    assert!(matches!(err, ArtifactError::NotFound { .. }));
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
