//! Databases written by the first release keep verifying: their events were
//! hashed in the legacy form and carry the migration's default encoding (1);
//! new events continue the same chain in RFC 8785.

use crate::harness::*;
use crate::tamper::RawConn;
use modelops_core::audit::{AuditEvent, ChainHead, HashEncoding, GENESIS_HASH};
use modelops_core::clock::format_time;
use modelops_core::repo::verify_chain;
use serde_json::json;

/// Appends an event the way the first release did: every column but
/// `encoding`, which did not exist then.
async fn append_as_first_release(raw: &mut RawConn, event: &AuditEvent) {
    let after = event.after.as_ref().map_or("NULL".to_string(), |v| format!("'{v}'"));
    let insert = format!(
        "INSERT INTO audit_events (sequence, time, actor, action, subject, before, after, prev_hash, hash) \
         VALUES ({}, '{}', '{}', '{}', '{}', NULL, {after}, '{}', '{}')",
        event.sequence,
        format_time(&event.time),
        event.actor,
        event.action,
        event.subject,
        event.prev_hash,
        event.hash
    );
    raw.exec(&insert).await.unwrap();
    raw.exec(&format!("UPDATE audit_head SET sequence = {}, hash = '{}' WHERE id = 1", event.sequence, event.hash)).await.unwrap();
}

pub async fn legacy_events_keep_verifying_and_new_ones_continue_the_chain(ctx: &Ctx) {
    let mut raw = RawConn::open(&ctx.raw).await;
    let mut head: Option<ChainHead> = None;
    for i in 1..=3 {
        let mut event = AuditEvent {
            sequence: i,
            time: start_time() + chrono::Duration::seconds(i),
            actor: "ana".into(),
            action: "model.create".into(),
            subject: format!("model/legacy-{i}"),
            before: None,
            // Floats whose text serde_json and RFC 8785 write differently.
            after: Some(json!({"auc": 0.1, "big": 1e100, "n": i, "tiny": 1e-7})),
            encoding: HashEncoding::Legacy,
            prev_hash: head.as_ref().map_or(GENESIS_HASH.to_string(), |h| h.hash.clone()),
            hash: String::new(),
            personal: Vec::new(),
        };
        event.hash = event.compute_hash().unwrap();
        append_as_first_release(&mut raw, &event).await;
        head = Some(event.head());
    }
    ctx.clock.advance(chrono::Duration::seconds(10));
    // The next start builds the Merkle tree over the events written before it.
    let store = reopen(ctx).await;
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_for(store.clone(), ctx.clock.clone(), dir.path()).await;
    registry.create_model(&actor("ana"), new_model("m")).await.unwrap();
    let root = modelops_audit::TreeRead::Root { size: 4 }
        .needs()
        .unwrap();
    let stored = store.tree_hashes(&root).await.unwrap();
    let mut frontier = modelops_audit::tree::Frontier::new();
    for e in sealed_chain(&*ctx.store, None, 10).await {
        frontier.push(modelops_audit::tree::leaf_hash(&e).unwrap());
    }
    let from_store = modelops_audit::TreeRead::Root { size: 4 }
        .run(&root.into_iter().zip(stored.into_iter().map(modelops_audit::Hash)).collect())
        .unwrap();
    assert_eq!(from_store, vec![frontier.root()], "the backfilled tree and the appended leaf make the root of all four events");

    let events = chain(&*ctx.store, None, 10).await;
    let encodings: Vec<HashEncoding> = events.iter().map(|e| e.encoding).collect();
    assert_eq!(encodings, [HashEncoding::Legacy, HashEncoding::Legacy, HashEncoding::Legacy, HashEncoding::Sealed]);
    assert_eq!(events[3].prev_hash, events[2].hash, "the new event extends the old chain");
    assert_eq!(verify_chain(&*ctx.store).await.unwrap().unwrap().events, 4);

    // An old event is still protected: relabel its encoding and the chain breaks there.
    raw.exec(match ctx.raw {
        Raw::Sqlite(_) => "DROP TRIGGER audit_events_no_update",
        Raw::Postgres(_) => "DROP TRIGGER audit_events_no_update ON audit_events",
    })
    .await
    .unwrap();
    raw.exec("UPDATE audit_events SET encoding = 2 WHERE sequence = 2").await.unwrap();
    assert_eq!(verify_chain(&*ctx.store).await.unwrap().unwrap_err().sequence, 2);
}

/// `tests/fixtures/release-0.1.sqlite` was written by the first release
/// (commit e8b8f7e) through its CLI: two models, two versions with float
/// metrics and parameters, an alias moved, a tag, an update with non-ASCII
/// text, a retired version — 9 events, head `fa20e4e2…`.
#[tokio::test]
async fn a_database_written_by_the_first_release_upgrades_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("modelops.db");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/release-0.1.sqlite"), &path).unwrap();
    let clock = std::sync::Arc::new(modelops_core::clock::MockClock::new(start_time()));
    let store: std::sync::Arc<dyn modelops_core::repo::Store> =
        std::sync::Arc::new(modelops_store::SqliteStore::open(&path, clock.clone()).await.unwrap());
    let old = chain(&*store, None, 100).await;
    assert_eq!(old.len(), 9);
    assert!(old.iter().all(|e| e.encoding == HashEncoding::Legacy));
    let summary = verify_chain(&*store).await.unwrap().unwrap();
    assert_eq!(summary.head.unwrap().hash, "fa20e4e2ce23338496514edbcafc3d2e5161ded7057b5850276ba166136b047d");

    // Its data reads back, and the registry carries on where it stopped.
    let registry = registry_for(store.clone(), clock, dir.path()).await;
    let model = registry.get_model(&name("credit-risk")).await.unwrap();
    assert_eq!((model.aliases.get("champion"), model.tags.get("owner.email").map(String::as_str)), (Some(&2), Some("ana@example.com")));
    assert_eq!(registry.get_model(&name("fraud")).await.unwrap().dependencies, [name("credit-risk")]);
    let v1 = registry.get_version(&name("credit-risk"), 1).await.unwrap();
    assert_eq!(v1.lineage.hyperparameters["big"], json!(1e100));
    let v3 = registry.create_version(&actor("ana"), &name("credit-risk"), new_version()).await.unwrap();
    assert_eq!(v3.number, 3);
    let all = chain(&*store, None, 100).await;
    assert_eq!((all.len(), all[9].encoding), (10, HashEncoding::Sealed));
    assert_eq!(verify_chain(&*store).await.unwrap().unwrap().events, 10);
}
