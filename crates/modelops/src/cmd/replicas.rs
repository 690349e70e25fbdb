//! Running as one of several replicas on one database: the background lease
//! (who signs checkpoints, judges canaries, follows monitors, starts
//! retraining runs, prunes records) and acting on changes other replicas
//! commit (forgetting what is cached about them, re-reading deployments).
//! A single server runs the same code and is simply always the leader.

use modelops_core::replica::{Leadership, Notice, BACKGROUND_LEASE, LEASE_RENEW, LEASE_TTL};
use modelops_registry::Registry;

/// This process's name in the lease table: host (the pod's name on
/// Kubernetes), process id and a random suffix, so a restarted process
/// never mistakes its predecessor's lease for its own.
pub fn holder_id() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string())).unwrap_or_else(|| "host".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &suffix[..8])
}

/// Asks for the lease once (so a lone server leads from its first
/// second), then keeps renewing or asking every [`LEASE_RENEW`] in a task.
pub async fn hold_background_lease(registry: Registry, holder: String, leadership: Leadership) -> tokio::task::JoinHandle<()> {
    renew(&registry, &holder, &leadership).await;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LEASE_RENEW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            renew(&registry, &holder, &leadership).await;
        }
    })
}

async fn renew(registry: &Registry, holder: &str, leadership: &Leadership) {
    let was = leadership.is_leader();
    let started = std::time::Instant::now();
    // A renewal that cannot reach the database leaves leadership to end at
    // its deadline, before the lease expires for the others.
    match tokio::time::timeout(LEASE_TTL / 2, registry.try_lease(BACKGROUND_LEASE, holder, LEASE_TTL)).await {
        Ok(Ok(true)) => leadership.hold_until(started + LEASE_TTL - LEASE_MARGIN),
        Ok(Ok(false)) => leadership.step_down(),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot renew the background lease; background work stops here when it runs out"),
        Err(_) => tracing::warn!("renewing the background lease timed out; background work stops here when it runs out"),
    }
    let now = leadership.is_leader();
    if now && !was {
        tracing::info!(%holder, "took the background lease: this replica signs checkpoints, judges canaries, follows monitors and starts retraining");
    } else if was && !now {
        tracing::info!(%holder, "no longer holds the background lease");
    }
}

/// How long before the lease's expiry this replica stops its background
/// work: the others may take the lease only after it expires by their clocks.
const LEASE_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Gives the lease up at shutdown, so another replica leads at once
/// instead of after [`LEASE_TTL`].
pub async fn release_background_lease(registry: &Registry, holder: &str, leadership: &Leadership) {
    leadership.step_down();
    if let Err(e) = registry.release_lease(BACKGROUND_LEASE, holder).await {
        tracing::warn!(error = %e, "could not give the background lease up; another replica takes it when it expires");
    }
}

/// Acts on the changes other replicas commit, as the database announces
/// them (PostgreSQL), until the announcements end.
pub fn follow_changes(
    mut notices: tokio::sync::mpsc::Receiver<Notice>,
    registry: Registry,
    serving: modelops_serving::Serving,
    deployments: modelops_deploy::Deployments,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(notice) = notices.recv().await {
            match notice {
                Notice::Changed(change) => {
                    registry.forget_cached(Some(&change));
                    if let Some(model) = change.model().map(|m| modelops_core::name::ModelName::from_stored(m.to_string())) {
                        serving.forget(&model);
                    }
                    if change.action.starts_with("deployment.") {
                        deployments.changed_elsewhere();
                    }
                }
                Notice::Missed => {
                    registry.forget_cached(None);
                    serving.forget_all();
                    deployments.changed_elsewhere();
                }
            }
        }
    })
}
