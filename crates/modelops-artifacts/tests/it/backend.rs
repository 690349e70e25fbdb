//! The backends the store's tests run on, written once: a local folder, and
//! an S3-compatible server (`scripts/with-s3` starts one and exports
//! `MODELOPS_TEST_S3_URL` and the `AWS_…` variables).

use modelops_artifacts::ArtifactStore;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutPayload};
use std::sync::Arc;

pub enum Backend {
    Local(tempfile::TempDir),
    /// A fresh prefix in the shared test bucket, so cases never see each
    /// other's objects.
    S3 { raw: Arc<dyn ObjectStore>, bucket_url: String, prefix: String },
}

impl Backend {
    pub fn local() -> Self {
        Backend::Local(tempfile::tempdir().unwrap())
    }

    pub fn s3() -> Self {
        let bucket_url = std::env::var("MODELOPS_TEST_S3_URL")
            .expect("MODELOPS_TEST_S3_URL is not set: run the S3 cases under scripts/with-s3 (scripts/test does)");
        let url = url::Url::parse(&bucket_url).unwrap();
        let (raw, _) = object_store::parse_url_opts(&url, modelops_artifacts::options_from_env()).unwrap();
        Backend::S3 { raw: Arc::from(raw), bucket_url, prefix: format!("case-{}", uuid::Uuid::new_v4()) }
    }

    /// The store under test, opened from its URL as the server opens it.
    pub fn store(&self) -> ArtifactStore {
        match self {
            Backend::Local(dir) => ArtifactStore::from_url(dir.path().to_str().unwrap(), std::iter::empty::<(&str, &str)>()).unwrap(),
            Backend::S3 { bucket_url, prefix, .. } => {
                ArtifactStore::from_url(&format!("{bucket_url}/{prefix}"), modelops_artifacts::options_from_env()).unwrap()
            }
        }
    }

    /// Every object under the store's root, relative to it — staging files
    /// of a local folder and unfinished multipart uploads on S3 included
    /// (listed as `<key> (unfinished upload)`), so "nothing left behind"
    /// means nothing.
    pub async fn objects(&self) -> Vec<String> {
        match self {
            Backend::Local(dir) => crate::files(dir.path()).into_iter().map(|p| p.display().to_string()).collect(),
            Backend::S3 { raw, prefix, .. } => {
                use futures::TryStreamExt;
                let root = StorePath::from(prefix.as_str());
                let listed: Vec<object_store::ObjectMeta> = raw.list(Some(&root)).try_collect().await.unwrap();
                let mut out: Vec<String> = listed.iter().map(|m| m.location.as_ref()[prefix.len() + 1..].to_string()).collect();
                out.extend(unfinished_uploads(prefix).await.into_iter().map(|k| format!("{} (unfinished upload)", &k[prefix.len() + 1..])));
                out.sort();
                out
            }
        }
    }

    /// Replaces the bytes stored at an artifact's address behind the
    /// store's back (tampering, corruption).
    pub async fn overwrite(&self, hex: &str, bytes: Vec<u8>) {
        let relative = format!("sha256/{}/{hex}", &hex[..2]);
        match self {
            Backend::Local(dir) => std::fs::write(dir.path().join(relative), bytes).unwrap(),
            Backend::S3 { raw, prefix, .. } => {
                raw.put(&StorePath::from(format!("{prefix}/{relative}")), PutPayload::from(bytes)).await.unwrap();
            }
        }
    }
}

/// The keys of the multipart uploads begun and neither completed nor aborted
/// under `prefix` (S3's ListMultipartUploads, which object_store does not
/// offer). The test server takes unsigned requests.
async fn unfinished_uploads(prefix: &str) -> Vec<String> {
    let endpoint = std::env::var("MODELOPS_TEST_S3_ENDPOINT").expect("MODELOPS_TEST_S3_ENDPOINT (scripts/with-s3)");
    let bucket = std::env::var("MODELOPS_TEST_S3_URL").unwrap().trim_start_matches("s3://").to_string();
    let body = reqwest::get(format!("{endpoint}/{bucket}?uploads&prefix={prefix}/")).await.unwrap().error_for_status().unwrap().text().await.unwrap();
    body.split("<Key>").skip(1).filter_map(|rest| rest.split("</Key>").next()).map(str::to_string).collect()
}

