//! Replicas sharing one database: the lease that picks who does the
//! background work, and what this replica forgets when another commits a
//! change (`modelops_core::replica`). The server's composition calls these;
//! no user operation does.

use crate::Registry;
use modelops_core::replica::Change;
use modelops_core::Result;

impl Registry {
    /// Takes or renews the lease `name` for `holder` for `ttl`; true when
    /// `holder` holds it now.
    pub async fn try_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<bool> {
        self.store().try_lease(name, holder, ttl).await
    }

    /// Gives a lease up (at shutdown), so another replica takes it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.store().release_lease(name, holder).await
    }

    /// Who holds a lease now, and since when.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<(String, chrono::DateTime<chrono::Utc>)>> {
        self.store().lease_holder(name).await
    }

    /// Publishes this replica's statistics of a canary's routes at
    /// `revision` (version → tally as JSON) for the replica judging it.
    pub async fn publish_canary_tallies(&self, deployment: &str, revision: u64, replica: &str, tallies: &[(u32, String)]) -> Result<()> {
        self.store().put_canary_tallies(deployment, revision, replica, tallies).await
    }

    /// Every replica's published statistics of a canary at `revision`.
    pub async fn canary_tallies(&self, deployment: &str, revision: u64) -> Result<Vec<(String, u32, String)>> {
        self.store().canary_tallies(deployment, revision).await
    }

    /// Forgets published canary statistics but those of the canaries'
    /// current steps, `keep` (deployment, revision).
    pub async fn prune_canary_tallies(&self, keep: &[(String, u64)]) -> Result<u64> {
        self.store().prune_canary_tallies(keep).await
    }

    /// Another replica committed `change`: what this registry cached about
    /// it goes. Tokens, users and retraining runs: the authentication cache (a revoked token
    /// or a disabled user stops working here at once, not after the cache's
    /// TTL). `None`: changes may have been missed; everything goes.
    pub fn forget_cached(&self, change: Option<&Change>) {
        // A retraining run's token is revoked when its run moves on or is
        // cancelled (`retrain.…` events).
        let about_identity = change.is_none_or(|c| ["token.", "user.", "retrain."].iter().any(|p| c.action.starts_with(p)));
        if about_identity {
            self.inner.auth_cache.clear();
        }
    }
}
