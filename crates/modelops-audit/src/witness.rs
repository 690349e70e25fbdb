//! Witnesses: places outside the database administrator's reach where each
//! checkpoint is also written, so a history rewritten in the database (rows,
//! head and tree recomputed) no longer matches a checkpoint signed before.
//!
//! A witness is a folder (a path or `file://` URL), an object-store URL
//! (`s3://bucket/prefix`, `gs://…`, `az://…`, through `object_store` with
//! credentials from the usual environment variables), or a webhook
//! (`http://` or `https://`: the note is POSTed as `text/plain`, with the
//! size in `x-modelops-checkpoint-size`). Folders and object stores hold
//! `checkpoints/<size, 20 digits>.note` and can be read back by
//! `modelops audit verify --witness`; a webhook's receiver keeps its own.

use crate::checkpoint::SignedCheckpoint;
use crate::{AuditError, Result};
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutPayload};
use std::sync::Arc;
use std::time::Duration;

/// One configured witness.
#[derive(Clone)]
pub struct Witness {
    location: String,
    target: Target,
}

#[derive(Clone)]
enum Target {
    Store { store: Arc<dyn ObjectStore>, prefix: StorePath },
    Webhook { url: reqwest::Url, client: reqwest::Client },
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location)
    }
}

impl Witness {
    /// A witness from its configured location (see the module's documentation).
    pub fn parse(location: &str) -> Result<Self> {
        let bad = |reason: String| AuditError::malformed(format!("audit witness `{location}`"), reason);
        let target = match url::Url::parse(location) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                Target::Webhook { url, client }
            }
            Ok(url) if url.scheme() == "file" => {
                let path = url.to_file_path().map_err(|()| bad("not a local path".into()))?;
                local(&path).map_err(bad)?
            }
            // A Windows drive letter parses as a one-letter scheme.
            Ok(url) if url.scheme().len() > 1 => {
                let (store, prefix) = object_store::parse_url_opts(&url, std::env::vars().filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")).map(|(k, v)| (k.to_ascii_lowercase(), v)))
                    .map_err(|e| bad(e.to_string()))?;
                Target::Store { store: Arc::from(store), prefix }
            }
            _ => local(std::path::Path::new(location)).map_err(bad)?,
        };
        Ok(Self { location: location.to_string(), target })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes the checkpoint to the witness. Writing the same checkpoint
    /// again is harmless.
    pub async fn publish(&self, checkpoint: &SignedCheckpoint) -> Result<()> {
        let fail = |e: String| AuditError::Io(format!("witness `{}`: {e}", self.location));
        match &self.target {
            Target::Store { store, prefix } => {
                let path = note_path(prefix, checkpoint.size);
                store.put(&path, PutPayload::from(checkpoint.note.clone().into_bytes())).await.map_err(|e| fail(e.to_string()))?;
            }
            Target::Webhook { url, client } => {
                let answer = client
                    .post(url.clone())
                    .header("content-type", "text/plain; charset=utf-8")
                    .header("x-modelops-checkpoint-size", checkpoint.size.to_string())
                    .body(checkpoint.note.clone())
                    .send()
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                if !answer.status().is_success() {
                    return Err(fail(format!("answered {}", answer.status())));
                }
            }
        }
        Ok(())
    }

    /// Every checkpoint note the witness holds, as text (not yet opened).
    pub async fn read_all(&self) -> Result<Vec<(String, String)>> {
        let fail = |e: String| AuditError::Io(format!("witness `{}`: {e}", self.location));
        let Target::Store { store, prefix } = &self.target else {
            return Err(fail("a webhook cannot be read back: verify against the place its receiver keeps the checkpoints".into()));
        };
        let dir = prefix.child("checkpoints");
        let listed: Vec<_> = store.list(Some(&dir)).try_collect().await.map_err(|e| fail(e.to_string()))?;
        let mut out = Vec::new();
        for meta in listed {
            if meta.location.extension() != Some("note") {
                continue;
            }
            let bytes = store.get(&meta.location).await.map_err(|e| fail(e.to_string()))?.bytes().await.map_err(|e| fail(e.to_string()))?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|e| fail(format!("`{}`: {e}", meta.location)))?;
            out.push((meta.location.to_string(), text));
        }
        out.sort();
        Ok(out)
    }
}

fn local(path: &std::path::Path) -> std::result::Result<Target, String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
    let root = std::fs::canonicalize(path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
    let fs = object_store::local::LocalFileSystem::new_with_prefix(&root).map_err(|e| e.to_string())?;
    Ok(Target::Store { store: Arc::new(fs), prefix: StorePath::default() })
}

fn note_path(prefix: &StorePath, size: u64) -> StorePath {
    prefix.child("checkpoints").child(format!("{size:020}.note"))
}
