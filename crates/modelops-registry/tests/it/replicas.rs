//! Replicas on one database: the background lease, and the change
//! announcements (PostgreSQL) that let a replica forget what it cached.

use crate::harness::*;
use modelops_core::clock::Clock;
use modelops_core::replica::{Notice, BACKGROUND_LEASE, LEASE_TTL};
use modelops_registry::Registry;

/// Two replicas — two stores on one database, as two processes open it.
pub async fn one_replica_leads_until_its_lease_expires_or_is_given_up(ctx: &Ctx) {
    let other = reopen(ctx).await;
    let dir = tempfile::tempdir().unwrap();
    let b = registry_for(other, ctx.clock.clone(), dir.path()).await;
    let a = &ctx.registry;
    assert_eq!(a.lease_holder(BACKGROUND_LEASE).await.unwrap(), None);
    assert!(a.try_lease(BACKGROUND_LEASE, "a", LEASE_TTL).await.unwrap());
    let since = ctx.clock.now();
    assert!(!b.try_lease(BACKGROUND_LEASE, "b", LEASE_TTL).await.unwrap(), "a holds it");
    // Renewals keep it, and keep when it was taken.
    ctx.clock.advance(chrono::Duration::seconds(8));
    assert!(a.try_lease(BACKGROUND_LEASE, "a", LEASE_TTL).await.unwrap());
    ctx.clock.advance(chrono::Duration::seconds(8));
    assert!(!b.try_lease(BACKGROUND_LEASE, "b", LEASE_TTL).await.unwrap(), "renewed 8 s ago: still a's");
    assert_eq!(b.lease_holder(BACKGROUND_LEASE).await.unwrap(), Some(("a".to_string(), since)));
    // a stops renewing (killed): once the TTL has passed, b takes it.
    ctx.clock.advance(chrono::Duration::seconds(11));
    assert_eq!(b.lease_holder(BACKGROUND_LEASE).await.unwrap(), None, "expired");
    assert!(b.try_lease(BACKGROUND_LEASE, "b", LEASE_TTL).await.unwrap());
    assert!(!a.try_lease(BACKGROUND_LEASE, "a", LEASE_TTL).await.unwrap(), "a came back: b leads now");
    assert_eq!(a.lease_holder(BACKGROUND_LEASE).await.unwrap().map(|(h, _)| h), Some("b".to_string()));
    // Giving it up: only its holder can, and then a takes it at once.
    a.release_lease(BACKGROUND_LEASE, "a").await.unwrap();
    assert!(!a.try_lease(BACKGROUND_LEASE, "a", LEASE_TTL).await.unwrap(), "a's release of b's lease did nothing");
    b.release_lease(BACKGROUND_LEASE, "b").await.unwrap();
    assert!(a.try_lease(BACKGROUND_LEASE, "a", LEASE_TTL).await.unwrap());
    // Leases are by name: another duty is free.
    assert!(b.try_lease("another", "b", LEASE_TTL).await.unwrap());
}

/// Many replicas asking at once: exactly one gets it.
pub async fn of_replicas_asking_at_once_exactly_one_leads(ctx: &Ctx) {
    let mut registries: Vec<Registry> = vec![ctx.registry.clone()];
    let mut dirs = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        registries.push(registry_for(reopen(ctx).await, ctx.clock.clone(), dir.path()).await);
        dirs.push(dir);
    }
    let asks = registries.iter().enumerate().map(|(i, r)| {
        let r = r.clone();
        tokio::spawn(async move { r.try_lease(BACKGROUND_LEASE, &format!("replica-{i}"), LEASE_TTL).await.unwrap() })
    });
    let won: Vec<bool> = futures::future::join_all(asks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
}

/// PostgreSQL announces each committed change to every listening replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announces_committed_changes_to_listeners() {
    let Some(ctx) = postgres().await else { return };
    let url = std::env::var("MODELOPS_TEST_POSTGRES_URL").unwrap();
    let mut notices = modelops_store::listen_for_changes(&url).unwrap().expect("PostgreSQL listens");
    // The first notice after connecting says "anything may have changed".
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), notices.recv()).await.unwrap().unwrap();
    assert_eq!(first, Notice::Missed);
    // Other tests write to the same database at the same time: a name of our own.
    let model = format!("announced-{}", uuid::Uuid::new_v4().simple());
    ctx.registry.create_model(&actor("ana"), new_model(&model)).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let notice = tokio::time::timeout_at(deadline, notices.recv()).await.expect("the change was announced within 10 s").unwrap();
        if let Notice::Changed(change) = notice {
            if change.subject == format!("model/{model}") {
                assert_eq!(change.action, "model.create");
                assert_eq!(change.model(), Some(model.as_str()));
                break;
            }
        }
    }
}

/// SQLite has no announcements: replicas sharing a file poll.
#[tokio::test]
async fn sqlite_has_no_listener() {
    assert!(modelops_store::listen_for_changes("sqlite://x.db").unwrap().is_none());
}
