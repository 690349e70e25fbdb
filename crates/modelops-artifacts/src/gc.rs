//! Clean-up: sweeping what crashed uploads left under `tmp/`, and collecting
//! artifacts no version references. The races both must survive are in the
//! crate documentation.

use crate::{ArtifactError, ArtifactInfo, ArtifactStore, Listed};
use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt;
use modelops_core::version::Sha256Hex;
use object_store::path::Path;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Deletions in flight at once: enough to hide a cloud store's latency,
/// few enough not to crowd out the requests being served.
const CONCURRENCY: usize = 8;

/// What [`ArtifactStore::sweep_temporaries`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub count: u64,
    pub bytes: u64,
}

/// Whether [`ArtifactStore::collect_garbage`] removes or only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcMode {
    DryRun,
    Delete,
}

/// What [`ArtifactStore::collect_garbage`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub mode: GcMode,
    /// The time ages were measured against.
    pub now: DateTime<Utc>,
    /// Unreferenced artifacts older than the grace period, sorted by digest:
    /// removed, or with [`GcMode::DryRun`] the ones that would be.
    pub removed: Vec<ArtifactInfo>,
    pub removed_bytes: u64,
    /// Artifacts kept because something references them.
    pub referenced: u64,
    /// Unreferenced artifacts kept because they are within the grace period
    /// (uploaded recently, or re-uploaded while the collection ran).
    pub kept_recent: u64,
    /// Objects under `sha256/` that are not artifact addresses, sorted:
    /// never deleted, worth a look.
    pub skipped: Vec<String>,
}

/// What became of one listed object.
enum Outcome {
    Referenced,
    Recent,
    Skipped(String),
    /// Removed, or in a dry run due for removal.
    Removed(ArtifactInfo),
    /// Gone before it could be removed: another collector was first.
    Gone,
}

impl ArtifactStore {
    /// Removes what crashed uploads left behind: objects under `tmp/`, and
    /// for a store opened with [`ArtifactStore::local`] the staging files of
    /// unfinished uploads there (`tmp/<id>#<n>`, which `object_store` does not
    /// list and will not delete). Only what was last written longer than
    /// `older_than` ago goes: an upload in progress writes its staging file
    /// part by part and is moved to its address right after it finishes, so
    /// pick an age well beyond the longest pause in an upload. Meant for
    /// start-up, but safe while uploads run.
    pub async fn sweep_temporaries(&self, older_than: Duration) -> Result<SweepReport, ArtifactError> {
        let now = self.clock.now();
        let mut report = SweepReport::default();
        let Some(cutoff) = cutoff(now, older_than) else {
            return Ok(report);
        };
        let mut removals = self
            .store
            .list(Some(&self.temp_root()))
            .map_err(|e| ArtifactError::backend("list temporary artifacts", e))
            .try_filter(|meta| futures::future::ready(meta.last_modified < cutoff))
            .map_ok(|meta| async move { Ok(self.remove_temporary(&meta.location).await?.then_some(meta.size)) })
            .try_buffer_unordered(CONCURRENCY);
        while let Some(removed) = removals.try_next().await? {
            if let Some(size) = removed {
                report.count += 1;
                report.bytes += size;
            }
        }
        if let Some(dir) = self.local_tmp.clone() {
            let cutoff = SystemTime::from(cutoff);
            let staged = tokio::task::spawn_blocking(move || sweep_staged_uploads(&dir, cutoff))
                .await
                .map_err(|e| ArtifactError::Internal(format!("sweep of staged uploads failed: {e}")))??;
            report.count += staged.count;
            report.bytes += staged.bytes;
        }
        if report.count > 0 {
            tracing::info!(count = report.count, bytes = report.bytes, "swept leftovers of interrupted uploads");
        }
        Ok(report)
    }

    /// Whether it removed the object; `false` when it was already gone (the
    /// upload committed it, or another server swept it).
    async fn remove_temporary(&self, path: &Path) -> Result<bool, ArtifactError> {
        match self.store.delete(path).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(ArtifactError::backend("remove temporary artifact", e)),
        }
    }

    /// Removes (or with [`GcMode::DryRun`] only lists) every artifact for
    /// which `is_referenced` is false and whose last upload is older than
    /// `grace`. Read the references just before calling, and choose a grace
    /// period longer than the time between uploading an artifact and creating
    /// its version: within it an unreferenced artifact may be about to be
    /// referenced (see the crate documentation). Each removal re-reads the
    /// artifact's age first, so one re-uploaded during the collection stays.
    /// Objects that are not artifact addresses are reported, never deleted.
    pub async fn collect_garbage<F>(&self, is_referenced: F, grace: Duration, mode: GcMode) -> Result<GcReport, ArtifactError>
    where
        F: Fn(&Sha256Hex) -> bool,
    {
        let now = self.clock.now();
        let cutoff = cutoff(now, grace);
        let is_old = |t: DateTime<Utc>| cutoff.is_some_and(|cutoff| t < cutoff);
        let mut outcomes = self
            .list_objects()
            .map_ok(|listed| {
                let outcome = match listed {
                    Listed::Unrecognised(meta) => Outcome::Skipped(meta.location.to_string()),
                    Listed::Artifact(artifact) if is_referenced(&artifact.sha256) => Outcome::Referenced,
                    Listed::Artifact(artifact) if !is_old(artifact.last_modified) => Outcome::Recent,
                    Listed::Artifact(artifact) => Outcome::Removed(artifact),
                };
                async move {
                    match (outcome, mode) {
                        (Outcome::Removed(artifact), GcMode::Delete) => self.remove_if_still_old(artifact, is_old).await,
                        (outcome, _) => Ok(outcome),
                    }
                }
            })
            .try_buffer_unordered(CONCURRENCY);

        let mut report = GcReport {
            mode,
            now,
            removed: Vec::new(),
            removed_bytes: 0,
            referenced: 0,
            kept_recent: 0,
            skipped: Vec::new(),
        };
        while let Some(outcome) = outcomes.try_next().await? {
            match outcome {
                Outcome::Referenced => report.referenced += 1,
                Outcome::Recent => report.kept_recent += 1,
                Outcome::Skipped(path) => {
                    tracing::warn!(%path, "not an artifact address; left alone");
                    report.skipped.push(path);
                }
                Outcome::Removed(artifact) => {
                    report.removed_bytes += artifact.size;
                    report.removed.push(artifact);
                }
                Outcome::Gone => {}
            }
        }
        report.removed.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        report.skipped.sort();
        tracing::info!(
            ?mode,
            removed = report.removed.len(),
            removed_bytes = report.removed_bytes,
            referenced = report.referenced,
            kept_recent = report.kept_recent,
            skipped = report.skipped.len(),
            "artifact garbage collection finished"
        );
        Ok(report)
    }

    /// Deletes an unreferenced artifact unless it was uploaded again since it
    /// was listed. The listing may be minutes old on a large store, and a
    /// re-upload of identical content renews the object in place.
    async fn remove_if_still_old(
        &self,
        artifact: ArtifactInfo,
        is_old: impl Fn(DateTime<Utc>) -> bool,
    ) -> Result<Outcome, ArtifactError> {
        let address = self.address(&artifact.sha256);
        match self.store.head(&address).await {
            Ok(meta) if !is_old(meta.last_modified) => return Ok(Outcome::Recent),
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(Outcome::Gone),
            Err(e) => return Err(ArtifactError::backend("read artifact metadata", e)),
        }
        match self.store.delete(&address).await {
            Ok(()) => {
                tracing::info!(sha256 = %artifact.sha256, size = artifact.size, "removed unreferenced artifact");
                Ok(Outcome::Removed(artifact))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Outcome::Gone),
            Err(e) => Err(ArtifactError::backend("delete artifact", e)),
        }
    }
}

/// The moment before which an object counts as older than `age`; `None` when
/// `age` reaches back past any representable time, so nothing is that old.
fn cutoff(now: DateTime<Utc>, age: Duration) -> Option<DateTime<Utc>> {
    now.checked_sub_signed(TimeDelta::from_std(age).ok()?)
}

/// Removes `LocalFileSystem`'s staging files in `dir` last written before
/// `cutoff`. Its multipart upload writes `<destination>#<n>` and renames it
/// at the end; a crash in between leaves the file, and `object_store` hides
/// such names from listings and refuses them as paths. Uploads only ever
/// stage under `tmp/` (commits link files, they do not copy), so that is the
/// only folder to look in.
fn sweep_staged_uploads(dir: &std::path::Path, cutoff: SystemTime) -> Result<SweepReport, ArtifactError> {
    let failed = |path: PathBuf, e: std::io::Error| {
        tracing::error!(path = %path.display(), error = %e, "cannot sweep staged uploads");
        ArtifactError::Internal(format!("cannot sweep staged upload `{}`: {e}", path.display()))
    };
    let mut report = SweepReport::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(failed(dir.to_path_buf(), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| failed(dir.to_path_buf(), e))?;
        if !entry.file_name().to_str().is_some_and(is_staged_upload_name) {
            continue;
        }
        let path = entry.path();
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            // Finished (renamed) or aborted since the folder was read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(failed(path, e)),
        };
        let modified = metadata.modified().map_err(|e| failed(path.clone(), e))?;
        if !metadata.is_file() || modified >= cutoff {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                report.count += 1;
                report.bytes += metadata.len();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(path, e)),
        }
    }
    Ok(report)
}

/// `LocalFileSystem`'s rule for staging names: `#` followed by digits only.
fn is_staged_upload_name(name: &str) -> bool {
    matches!(name.split_once('#'), Some((_, suffix)) if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_recognised_as_object_store_makes_them() {
        assert!(is_staged_upload_name("0b6e4f1c-7d1a-4c36-9a7e-2f0d8f1d7c11#1"));
        assert!(is_staged_upload_name("x#12"));
        for name in ["0b6e4f1c-7d1a-4c36-9a7e-2f0d8f1d7c11", "x#", "x#1a", "x#😁1", ""] {
            assert!(!is_staged_upload_name(name), "{name}");
        }
    }

    #[test]
    fn clean_up_can_run_on_a_spawned_task() {
        fn send<T: Send>(_: T) {}
        let store = ArtifactStore::new(std::sync::Arc::new(object_store::memory::InMemory::new()), Path::default());
        let references = std::collections::HashSet::<Sha256Hex>::new();
        send(store.sweep_temporaries(Duration::ZERO));
        send(store.collect_garbage(|d| references.contains(d), Duration::ZERO, GcMode::DryRun));
    }

    #[test]
    fn an_age_beyond_the_calendar_makes_nothing_old() {
        let now = Utc::now();
        assert_eq!(cutoff(now, Duration::ZERO), Some(now));
        assert_eq!(cutoff(now, Duration::from_secs(60)), Some(now - TimeDelta::seconds(60)));
        assert_eq!(cutoff(now, Duration::MAX), None);
    }
}
