//! The verifiable audit log on both backends: signed checkpoints, proofs,
//! a history rewritten with every hash recomputed caught against a witness,
//! signing refused over a rewritten tree, and erasure that keeps the log
//! verifying.

use crate::harness::*;
use crate::tamper::RawConn;
use modelops_audit::personal::pseudonym;
use modelops_audit::tree::{first_stored_index, leaf_hash, Hash, TreeRead};
use modelops_audit::verify::Failure;
use modelops_audit::witness::Witness;
use modelops_audit::{LogSigner, SignedCheckpoint};
use modelops_core::auth::Role;
use modelops_core::governance::NewUser;
use modelops_core::repo::verify_chain;
use modelops_registry::audit::{verify_log_against, AuditSigning};
use modelops_registry::Registry;
use std::collections::HashMap;

struct Signed {
    registry: Registry,
    signer: LogSigner,
    witness: Witness,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn signing(ctx: &Ctx) -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let witness_dir = tempfile::tempdir().unwrap();
    let (signer, _) = LogSigner::generate("bank.example/audit").unwrap();
    let witness = Witness::parse(witness_dir.path().to_str().unwrap()).unwrap();
    let registry = registry_for(ctx.store.clone(), ctx.clock.clone(), dir.path())
        .await
        .with_audit_signing(AuditSigning { signer: signer.clone(), witnesses: vec![witness.clone()] });
    Signed { registry, signer, witness, _dirs: (dir, witness_dir) }
}

async fn some_events(registry: &Registry, prefix: &str, n: usize) {
    for i in 0..n {
        registry.create_model(&actor("ana"), new_model(&format!("{prefix}-{i}"))).await.unwrap();
    }
}

pub async fn checkpoints_and_proofs_hold_and_forgeries_do_not(ctx: &Ctx) {
    let s = signing(ctx).await;
    some_events(&s.registry, "a", 5).await;
    let first = s.registry.sign_checkpoint(&actor("audra")).await.unwrap();
    assert!(first.new && first.witness_failures.is_empty());
    assert_eq!(first.checkpoint.size, 5);
    // Nothing new: the same checkpoint again, not a new one.
    assert!(!s.registry.sign_checkpoint_now().await.unwrap().new);
    let opened = SignedCheckpoint::open(&first.checkpoint.note, s.signer.public_key()).unwrap();

    for seq in 1..=5 {
        let inclusion = s.registry.inclusion_proof(&actor("viv"), seq, None).await.unwrap();
        inclusion.proof.verify(&opened).unwrap();
        assert_eq!(inclusion.readable.actor, "ana", "the readable event opens the sealed actor");
        assert!(inclusion.event.actor.starts_with("sealed:"), "the proved event is the hashed one");
    }
    // A proof for another event's leaf does not verify.
    let mut wrong = s.registry.inclusion_proof(&actor("viv"), 2, None).await.unwrap().proof;
    wrong.sequence = 3;
    assert!(wrong.verify(&opened).is_err());

    some_events(&s.registry, "b", 6).await;
    let second = s.registry.sign_checkpoint_now().await.unwrap().checkpoint;
    let newer = SignedCheckpoint::open(&second.note, s.signer.public_key()).unwrap();
    let consistency = s.registry.consistency_proof(&actor("viv"), 5, None).await.unwrap();
    consistency.proof.verify(&opened, &newer).unwrap();
    // From a size no checkpoint has, too (a witness's own).
    let mid = s.registry.consistency_proof(&actor("viv"), 7, Some(11)).await.unwrap();
    assert!(mid.from.is_none());

    let verified = s.registry.verify_log(None).await.unwrap().unwrap();
    assert_eq!(verified.checkpoints_matched, vec![5, 11]);
    assert_eq!(s.witness.read_all().await.unwrap().len(), 2, "both checkpoints reached the witness");

    // A forged checkpoint: the size changed, or signed by another key.
    let forged = second.note.replacen("\n11\n", "\n12\n", 1);
    assert!(SignedCheckpoint::open(&forged, s.signer.public_key()).is_err());
    let (mallory, _) = LogSigner::generate("bank.example/audit").unwrap();
    let fake = SignedCheckpoint::sign(&mallory, 11, newer.root, newer.time).unwrap();
    assert!(SignedCheckpoint::open(&fake.note, s.signer.public_key()).is_err());
    // Bad reads are refused, not answered 5xx.
    assert!(matches!(s.registry.inclusion_proof(&actor("viv"), 12, Some(11)).await, Err(modelops_core::Error::InvalidInput { .. })));
    assert!(matches!(s.registry.consistency_proof(&actor("viv"), 0, None).await, Err(modelops_core::Error::InvalidInput { .. })));
    assert!(matches!(s.registry.checkpoint(&actor("viv"), Some(6)).await, Err(modelops_core::Error::NotFound { .. })));
}

/// Rewrites every event from `from` on with recomputed hashes (actor of
/// event `from` changed), the head, and — when `tree` — the Merkle tree:
/// what someone holding the database and no signing key can do.
async fn rewrite_history(ctx: &Ctx, from: i64, tree: bool) {
    let mut raw = RawConn::open(&ctx.raw).await;
    let drop = match ctx.raw {
        Raw::Sqlite(_) => "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_head_forward_only; DROP TRIGGER audit_tree_no_delete;",
        Raw::Postgres(_) => "DROP TRIGGER audit_events_no_update ON audit_events; DROP TRIGGER audit_head_forward_only ON audit_head; DROP TRIGGER audit_tree_no_update ON audit_tree;",
    };
    raw.exec(drop).await.unwrap();
    let mut events = sealed_chain(&*ctx.store, None, 10_000).await;
    for i in (from as usize - 1)..events.len() {
        if i == from as usize - 1 {
            events[i].subject = "model/forged".into();
        }
        if i > 0 {
            events[i].prev_hash = events[i - 1].hash.clone();
        }
        events[i].hash = events[i].compute_hash().unwrap();
        let e = &events[i];
        raw.exec(&format!(
            "UPDATE audit_events SET subject = '{}', prev_hash = '{}', hash = '{}' WHERE sequence = {}",
            e.subject, e.prev_hash, e.hash, e.sequence
        ))
        .await
        .unwrap();
    }
    let last = events.last().unwrap();
    raw.exec(&format!("UPDATE audit_head SET sequence = {}, hash = '{}' WHERE id = 1", last.sequence, last.hash)).await.unwrap();
    if tree {
        let mut stored: HashMap<u64, Hash> = HashMap::new();
        raw.exec("DELETE FROM audit_tree").await.unwrap();
        for (n, e) in events.iter().enumerate() {
            let n = n as u64;
            let hashes = TreeRead::Append { n, leaf: leaf_hash(e).unwrap() }.run_with(|idx| Ok(idx.iter().map(|i| stored[i]).collect())).unwrap();
            for (k, h) in hashes.into_iter().enumerate() {
                let index = first_stored_index(n) + k as u64;
                stored.insert(index, h);
                let literal = match ctx.raw {
                    Raw::Sqlite(_) => format!("X'{}'", hex::encode(h.0)),
                    Raw::Postgres(_) => format!("'\\x{}'::bytea", hex::encode(h.0)),
                };
                raw.exec(&format!("INSERT INTO audit_tree (idx, hash) VALUES ({index}, {literal})")).await.unwrap();
            }
        }
    }
}

pub async fn a_rewritten_history_is_caught_against_a_witness(ctx: &Ctx) {
    let s = signing(ctx).await;
    some_events(&s.registry, "a", 6).await;
    s.registry.sign_checkpoint_now().await.unwrap();
    some_events(&s.registry, "b", 4).await;
    s.registry.sign_checkpoint_now().await.unwrap();

    rewrite_history(ctx, 4, true).await;
    // The chain alone verifies: every hash was recomputed.
    assert!(verify_chain(&*ctx.store).await.unwrap().is_ok(), "the hash chain alone cannot see it");
    // The witness's checkpoints cannot be recomputed without the key: the
    // first one signed over the old event 4 is named.
    let witnessed: Vec<SignedCheckpoint> = s
        .witness
        .read_all()
        .await
        .unwrap()
        .iter()
        .map(|(_, note)| SignedCheckpoint::open(note, s.signer.public_key()).unwrap())
        .collect();
    let failure = verify_log_against(&*ctx.store, witnessed).await.unwrap().unwrap_err();
    assert!(matches!(failure, Failure::Diverged { checkpoint_size: 6, .. }), "{failure}");
    // The server's own verification (its stored checkpoints) says so too.
    assert!(s.registry.verify_log(None).await.unwrap().is_err());
    // And it refuses to sign over the rewritten tree.
    some_events(&s.registry, "c", 1).await;
    let refused = s.registry.sign_checkpoint_now().await.unwrap_err();
    assert!(matches!(refused, modelops_core::Error::Conflict(_)) && refused.to_string().contains("refusing to sign"), "{refused}");
}

/// The signer reads back and hashes only events it did not append: a row
/// edited since its append stops a store that did not write it from signing,
/// while the store that wrote it signs the leaf it hashed — and verification
/// then names the edited event. A stored leaf edited stops both.
pub async fn the_signer_hashes_again_only_what_it_did_not_append(ctx: &Ctx) {
    let a = signing(ctx).await;
    some_events(&a.registry, "a", 3).await;
    a.registry.sign_checkpoint_now().await.unwrap();
    some_events(&a.registry, "b", 3).await;
    let mut raw = RawConn::open(&ctx.raw).await;
    let drop = match ctx.raw {
        Raw::Sqlite(_) => "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_tree_no_update;",
        Raw::Postgres(_) => "DROP TRIGGER audit_events_no_update ON audit_events; DROP TRIGGER audit_tree_no_update ON audit_tree;",
    };
    raw.exec(drop).await.unwrap();
    raw.exec("UPDATE audit_events SET subject = 'model/forged' WHERE sequence = 5").await.unwrap();

    let store_b = reopen(ctx).await;
    let dir_b = tempfile::tempdir().unwrap();
    let b = registry_for(store_b.clone(), ctx.clock.clone(), dir_b.path())
        .await
        .with_audit_signing(AuditSigning { signer: a.signer.clone(), witnesses: vec![] });
    let refused = b.sign_checkpoint_now().await.unwrap_err();
    assert!(refused.to_string().contains("event 5"), "{refused}");

    let signed = a.registry.sign_checkpoint_now().await.unwrap();
    assert_eq!(signed.checkpoint.size, 6);
    let failure = a.registry.verify_log(None).await.unwrap().unwrap_err();
    assert!(matches!(failure, Failure::Chain { sequence: 5, .. }), "{failure}");

    some_events(&a.registry, "c", 2).await;
    let literal = match ctx.raw {
        Raw::Sqlite(_) => format!("X'{}'", "00".repeat(32)),
        Raw::Postgres(_) => format!("'\\x{}'::bytea", "00".repeat(32)),
    };
    raw.exec(&format!("UPDATE audit_tree SET hash = {literal} WHERE idx = {}", first_stored_index(7))).await.unwrap();
    let refused = a.registry.sign_checkpoint_now().await.unwrap_err();
    assert!(refused.to_string().contains("leaf of event 8 is not the one appended"), "{refused}");
    let refused = b.sign_checkpoint_now().await.unwrap_err();
    assert!(refused.to_string().contains("event 8"), "{refused}");
    store_b.close().await;
}

pub async fn an_erased_person_stays_erased_and_the_log_verifies(ctx: &Ctx) {
    let s = signing(ctx).await;
    let admin = actor("admin");
    s.registry
        .create_user(&admin, NewUser { name: "zelda-quist".into(), roles: [Role::Developer, Role::Validator].into(), team: "risk".into() })
        .await
        .unwrap();
    let zelda = actor("zelda-quist");
    let mut model = new_model("zq-model");
    model.owner = "zelda-quist".into();
    s.registry.create_model(&zelda, model).await.unwrap();
    s.registry.sign_checkpoint_now().await.unwrap();
    let before = s.registry.list_events(&modelops_core::audit::AuditQuery { actor: Some("zelda-quist".into()), ..Default::default() }).await.unwrap();
    assert_eq!(before.items.len(), 1, "filtering by a sealed actor's name works");
    assert_eq!(before.items[0].actor, "zelda-quist");

    // Not oneself; not someone unknown.
    assert!(matches!(s.registry.erase_user(&zelda, "zelda-quist").await, Err(modelops_core::Error::Forbidden(_) | modelops_core::Error::Conflict(_))));
    assert!(matches!(s.registry.erase_user(&admin, "nobody").await, Err(modelops_core::Error::NotFound { .. })));

    let erasure = s.registry.erase_user(&admin, "zelda-quist").await.unwrap();
    assert!(erasure.pseudonym.starts_with("erased-"));
    assert_eq!(erasure.legacy_events, 0);
    // The log verifies end to end, checkpoints included, and can be signed on.
    let verified = s.registry.verify_log(None).await.unwrap().unwrap();
    assert_eq!(verified.checkpoints_matched.len(), 1);
    s.registry.sign_checkpoint_now().await.unwrap();
    // Her name reads as her pseudonym everywhere.
    let events = chain(&*ctx.store, None, 1000).await;
    assert!(events.iter().all(|e| !serde_json::to_string(e).unwrap().contains("zelda")), "{events:#?}");
    assert!(events.iter().any(|e| e.actor == erasure.pseudonym));
    assert_eq!(s.registry.get_model(&name("zq-model")).await.unwrap().owner, erasure.pseudonym);
    assert!(s.registry.get_user(&admin, "zelda-quist").await.is_err());
    let erased_user = s.registry.get_user(&admin, &erasure.pseudonym).await.unwrap();
    assert!(erased_user.disabled);
    let id = erasure.pseudonym.trim_start_matches("erased-").to_string();
    assert_eq!(pseudonym(&id), erasure.pseudonym);
    assert!(ctx.store.person_keys(&[id]).await.unwrap().is_empty(), "the key is gone");
    // The erasure itself is on the record, without her name.
    let last = events.last().unwrap();
    assert_eq!((last.action.as_str(), last.subject.clone()), ("user.erase", format!("user/{}", erasure.pseudonym)));

    // Nothing in the database file spells her name any more.
    if let Raw::Sqlite(path) = &ctx.raw {
        for file in [path.clone(), path.with_extension("db-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                assert!(!bytes.windows(11).any(|w| w == b"zelda-quist"), "`zelda-quist` in {}", file.display());
            }
        }
    }
}

/// Two stores on one database, as two replicas (or the server and a CLI)
/// are: each remembers the keys it used and the tree's right edge between
/// its own writes, and must drop both when the other wrote — above all when
/// the other erased someone whose name then comes back.
pub async fn two_writers_keep_one_tree_and_an_erasure_on_one_holds_on_the_other(ctx: &Ctx) {
    let a = signing(ctx).await;
    let store_b = reopen(ctx).await;
    let dir_b = tempfile::tempdir().unwrap();
    let b = registry_for(store_b.clone(), ctx.clock.clone(), dir_b.path())
        .await
        .with_audit_signing(AuditSigning { signer: a.signer.clone(), witnesses: vec![] });
    let admin = actor("admin");
    let yara_user = || NewUser { name: "yara-lind".into(), roles: [Role::Developer].into(), team: "risk".into() };
    a.registry.create_user(&admin, yara_user()).await.unwrap();
    let yara = actor("yara-lind");
    // Turns, so each store's remembered tail is stale at its next write.
    for i in 0..6 {
        let registry = if i % 2 == 0 { &a.registry } else { &b };
        registry.create_model(&yara, new_model(&format!("yl-{i}"))).await.unwrap();
        // And several writes in a row on one, which the cache serves.
        registry.create_model(&actor("ana"), new_model(&format!("yl-ana-{i}"))).await.unwrap();
    }
    a.registry.sign_checkpoint_now().await.unwrap();
    b.sign_checkpoint_now().await.unwrap();
    let old_id = ctx.store.list_events(&modelops_core::audit::AuditQuery { actor: Some("yara-lind".into()), ..Default::default() }).await.unwrap();
    assert_eq!(old_id.items.len(), 6, "both stores sealed her name with the one key");

    // B knows her key; A erases her; a new person takes the name, on B.
    let erasure = a.registry.erase_user(&admin, "yara-lind").await.unwrap();
    let erased_id = erasure.pseudonym.trim_start_matches("erased-").to_string();
    b.create_user(&admin, yara_user()).await.unwrap();
    b.create_model(&yara, new_model("yl-after")).await.unwrap();
    let events = chain(&*ctx.store, None, 1000).await;
    let after = events.iter().find(|e| e.subject == "model/yl-after").unwrap();
    assert_eq!(after.actor, "yara-lind", "the new person's name reads back: sealed with a key the database holds");
    let sealed = sealed_chain(&*ctx.store, None, 1000).await;
    let sealed_after = sealed.iter().find(|e| e.subject == "model/yl-after").unwrap();
    assert!(sealed_after.personal.iter().all(|p| p.person != erased_id), "the erased person's key was not used again: {:?}", sealed_after.personal);
    // The old events still read as her pseudonym, not as the new person.
    let first = events.iter().find(|e| e.subject == "model/yl-0").unwrap();
    assert_eq!(first.actor, erasure.pseudonym);
    // Both stores' appends built one tree: it verifies, and each signs on.
    assert!(a.registry.verify_log(None).await.unwrap().is_ok());
    b.sign_checkpoint_now().await.unwrap();
    a.registry.create_model(&yara, new_model("yl-last")).await.unwrap();
    a.registry.sign_checkpoint_now().await.unwrap();
    assert!(b.verify_log(None).await.unwrap().is_ok());
    store_b.close().await;
}
