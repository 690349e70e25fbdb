//! The governance storage (migration 0003, `sql/governance.rs`) on both
//! backends, through the store's traits directly: users and tokens,
//! approvals, evidence, reviews and their schedule, policies, a model's
//! developers and validation target; the append-only tables refuse rewrites
//! in the database itself; a dropped transaction leaves nothing.

use crate::harness::*;
use crate::tamper::RawConn;
use chrono::{DateTime, Duration, TimeZone, Utc};
use modelops_core::auth::{authorize, Action, Role};
use modelops_core::governance::{
    hash_token_secret, policy_hash, ApiToken, Approval, Decision, DocumentRef, Evidence, EvidenceKind, Review, ReviewOutcome,
    ScheduledReview, StoredPolicy, User,
};
use modelops_core::model::{Model, ValidationTarget};
use modelops_core::name::ModelName;
use modelops_core::repo::WriteTx;
use modelops_core::version::Sha256Hex;
use modelops_core::{Error, ErrorKind};
use std::collections::BTreeSet;

/// A write transaction for an admin.
async fn begin(ctx: &Ctx) -> Box<dyn WriteTx> {
    ctx.store.begin(&authorize(&actor("root"), Action::UserCreate).unwrap()).await.unwrap()
}

/// A time with every microsecond digit in use, `secs` seconds after the start.
fn at(secs: i64) -> DateTime<Utc> {
    start_time() + Duration::seconds(secs) + Duration::microseconds(654_321 - 123_456)
}

fn roles(r: &[Role]) -> BTreeSet<Role> {
    r.iter().copied().collect()
}

/// Stores model `n` through the store alone, with `versions` versions.
async fn stored_model(ctx: &Ctx, n: &str, versions: u32) -> Model {
    let model = new_model(n).into_model(at(0), "ana");
    let mut tx = begin(ctx).await;
    tx.insert_model(&model).await.unwrap();
    for _ in 0..versions {
        let number = tx.next_version_number(&model.name).await.unwrap();
        let v = new_version().into_version(model.name.clone(), number, ARTIFACT.len() as u64, at(1), "ana");
        tx.insert_version(&v).await.unwrap();
    }
    tx.commit().await.unwrap();
    model
}

fn user(name: &str, r: &[Role], team: &str, created: i64) -> User {
    User {
        name: name.into(),
        roles: roles(r),
        team: team.into(),
        disabled: false,
        created_at: at(created),
        created_by: "root".into(),
        updated_at: at(created),
    }
}

pub async fn users_insert_lock_update_list_and_count(ctx: &Ctx) {
    let s = &*ctx.store;
    assert_eq!(s.count_users().await.unwrap(), 0);
    assert_eq!(s.list_users().await.unwrap(), vec![]);
    assert_eq!(s.get_user("alice").await.unwrap(), None);

    let zed = user("zed", &[Role::Viewer], "", 1);
    let alice = user("alice", &[Role::Developer, Role::Validator], "risk", 2);
    let taken = |result: modelops_core::Result<()>| match result {
        Err(Error::AlreadyExists { what, key }) => assert_eq!((what, key.as_str()), ("user", "alice")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    };
    let mut tx = begin(ctx).await;
    tx.insert_user(&alice).await.unwrap();
    // A taken name within the same transaction, which stays usable (also on
    // PostgreSQL, where a failed statement would abort it).
    taken(tx.insert_user(&user("alice", &[Role::Admin], "", 3)).await);
    tx.insert_user(&zed).await.unwrap();
    assert_eq!(tx.lock_user("alice").await.unwrap().as_ref(), Some(&alice));
    tx.commit().await.unwrap();

    // And in a later one.
    let mut tx = begin(ctx).await;
    taken(tx.insert_user(&user("alice", &[Role::Admin], "", 3)).await);
    drop(tx);

    assert_eq!(s.get_user("alice").await.unwrap().as_ref(), Some(&alice));
    assert_eq!(s.list_users().await.unwrap(), vec![alice.clone(), zed.clone()], "by name");
    assert_eq!(s.count_users().await.unwrap(), 2);

    let mut tx = begin(ctx).await;
    assert_eq!(tx.lock_user("nobody").await.unwrap(), None);
    let mut locked = tx.lock_user("alice").await.unwrap().unwrap();
    locked.roles = roles(&[Role::Admin, Role::Auditor, Role::Approver]);
    locked.team = "model risk".into();
    locked.disabled = true;
    locked.updated_at = at(10);
    tx.update_user(&locked).await.unwrap();
    tx.commit().await.unwrap();
    let read = s.get_user("alice").await.unwrap().unwrap();
    assert_eq!(read, locked);
    assert_eq!(read.created_at, alice.created_at, "created_at is not rewritten");
    assert_eq!(s.get_user("zed").await.unwrap().as_ref(), Some(&zed));
}

fn token(id: &str, user: &str, created: i64, expires_at: Option<DateTime<Utc>>) -> ApiToken {
    ApiToken {
        id: id.into(),
        name: format!("{user}'s laptop"),
        user: user.into(),
        created_at: at(created),
        created_by: user.into(),
        expires_at,
        revoked_at: None,
        scope: None,
    }
}

pub async fn tokens_are_stored_with_their_hash_listed_and_revoked(ctx: &Ctx) {
    let s = &*ctx.store;
    let alice = user("alice", &[Role::Developer], "risk", 1);
    let bob = user("bob", &[Role::Deployer, Role::Viewer], "", 1);
    // Created out of id order: listing is by creation time.
    let t_b1 = token("ffff00000001", "bob", 2, None);
    let t_a1 = token("0000000000a1", "alice", 3, Some(Utc.with_ymd_and_hms(2100, 1, 2, 3, 4, 5).unwrap() + Duration::microseconds(6)));
    let t_a2 = token("aaaaaaaaaaa2", "alice", 4, None);
    let t_a0 = token("bbbbbbbbbbb0", "alice", 1, None);
    let mut tx = begin(ctx).await;
    tx.insert_user(&alice).await.unwrap();
    tx.insert_user(&bob).await.unwrap();
    for t in [&t_b1, &t_a1, &t_a2, &t_a0] {
        tx.insert_token(t, &hash_token_secret(&format!("secret of {}", t.id))).await.unwrap();
    }
    // Refusals leave the transaction usable on both backends.
    assert_not_found(tx.insert_token(&token("cccccccccccc", "nobody", 5, None), &hash_token_secret("x")).await, "user", "nobody");
    let e = assert_kind(tx.insert_token(&token("ffff00000001", "alice", 5, None), &hash_token_secret("x")).await, ErrorKind::Conflict);
    assert!(e.to_string().contains("`ffff00000001` is taken"), "{e}");
    tx.commit().await.unwrap();

    let (tok, hash, owner) = s.token_for_auth("0000000000a1").await.unwrap().unwrap();
    assert_eq!((tok, hash.as_str(), owner), (t_a1.clone(), hash_token_secret("secret of 0000000000a1").as_str(), alice.clone()));
    let (tok, _, owner) = s.token_for_auth("ffff00000001").await.unwrap().unwrap();
    assert_eq!((tok, owner), (t_b1.clone(), bob.clone()));
    assert!(s.token_for_auth("cccccccccccc").await.unwrap().is_none());

    assert_eq!(s.list_tokens(Some("alice")).await.unwrap(), vec![t_a0.clone(), t_a1.clone(), t_a2.clone()]);
    assert_eq!(s.list_tokens(Some("bob")).await.unwrap(), vec![t_b1.clone()]);
    assert_eq!(s.list_tokens(Some("nobody")).await.unwrap(), vec![]);
    assert_eq!(s.list_tokens(None).await.unwrap(), vec![t_a0.clone(), t_b1.clone(), t_a1.clone(), t_a2.clone()]);

    // Revoking writes revoked_at; the token still authenticates as a row, which
    // the caller refuses through `ApiToken::unusable`.
    let mut tx = begin(ctx).await;
    assert_eq!(tx.lock_token("cccccccccccc").await.unwrap(), None);
    let mut locked = tx.lock_token("0000000000a1").await.unwrap().unwrap();
    assert_eq!(locked, t_a1);
    locked.revoked_at = Some(at(20));
    tx.update_token(&locked).await.unwrap();
    tx.commit().await.unwrap();
    let (tok, hash, _) = s.token_for_auth("0000000000a1").await.unwrap().unwrap();
    assert_eq!(tok, locked);
    assert_eq!(tok.unusable(at(21)), Some("the token was revoked"));
    assert_eq!(hash, hash_token_secret("secret of 0000000000a1"), "revoking keeps the hash");
    assert_eq!(s.list_tokens(Some("alice")).await.unwrap(), vec![t_a0, locked, t_a2]);

    // A user's change shows in the token's read.
    let mut tx = begin(ctx).await;
    let mut b = tx.lock_user("bob").await.unwrap().unwrap();
    b.disabled = true;
    b.updated_at = at(30);
    tx.update_user(&b).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.token_for_auth("ffff00000001").await.unwrap().unwrap().2, b);
}

fn approval(model: &ModelName, version: u32, approver: &str, decision: Decision, created: i64) -> Approval {
    Approval {
        model: model.clone(),
        version,
        approver: approver.into(),
        roles: roles(&[Role::Validator, Role::Approver]),
        decision,
        comment: format!("{approver} looked at it"),
        conditions: String::new(),
        expires_at: None,
        created_at: at(created),
    }
}

fn metric(model: &ModelName, version: u32, name: &str, value: f64) -> Evidence {
    Evidence {
        model: model.clone(),
        version,
        kind: EvidenceKind::Metric,
        name: name.into(),
        value: Some(value),
        dataset: "holdout-2026Q1".into(),
        document: None,
        created_at: at(5),
        created_by: "val".into(),
    }
}

pub async fn approvals_evidence_and_reviews_round_trip_exactly(ctx: &Ctx) {
    let s = &*ctx.store;
    let m = stored_model(ctx, "credit", 2).await.name;
    let other = stored_model(ctx, "fraud", 1).await.name;

    assert_eq!(s.approvals(&m, 1).await.unwrap(), vec![], "a version with none");
    assert_eq!(s.evidence(&m, 1).await.unwrap(), vec![]);
    assert_eq!(s.reviews(&m).await.unwrap(), vec![]);
    assert_not_found(s.approvals(&m, 9).await, "version", "credit/9");
    assert_not_found(s.evidence(&m, 9).await, "version", "credit/9");
    assert_not_found(s.approvals(&name("ghost"), 1).await, "model", "ghost");
    assert_not_found(s.reviews(&name("ghost")).await, "model", "ghost");

    let a1 = Approval {
        conditions: "re-validate after Q3".into(),
        expires_at: Some(Utc.with_ymd_and_hms(2099, 12, 31, 23, 59, 59).unwrap() + Duration::microseconds(999_999)),
        ..approval(&m, 1, "val", Decision::Approve, 3)
    };
    let a2 = Approval { roles: roles(&[Role::Admin]), comment: String::new(), ..approval(&m, 1, "risk-officer", Decision::Reject, 4) };
    let a_other = approval(&m, 2, "val", Decision::Approve, 5);
    // Values whose every bit matters, an integral one (SQLite may store it as
    // an integer) and the extremes.
    let values = [0.1 + 0.2, std::f64::consts::PI, -12_345.678_901_234_567, 3.0, 1e-300, f64::MAX, f64::MIN_POSITIVE, -0.5];
    let metrics: Vec<Evidence> = values.iter().enumerate().map(|(i, v)| metric(&m, 1, &format!("m{i}"), *v)).collect();
    let document = Evidence {
        kind: EvidenceKind::Document,
        name: "validation_report".into(),
        value: None,
        dataset: String::new(),
        document: Some(DocumentRef { sha256: Sha256Hex::from_digest(&[7; 32]), size: 1 << 40, filename: "report (final).pdf".into() }),
        created_by: "dana".into(),
        ..metric(&m, 1, "x", 0.0)
    };
    let r1 = Review {
        model: m.clone(),
        version: 1,
        reviewer: "val".into(),
        outcome: ReviewOutcome::Findings,
        comment: "drift in segment B".into(),
        reviewed_at: at(100),
        next_review_at: at(100) + Duration::days(90),
    };
    let r2 = Review { version: 2, outcome: ReviewOutcome::Satisfactory, comment: String::new(), reviewed_at: at(200), ..r1.clone() };
    let r_other = Review { model: other.clone(), version: 1, outcome: ReviewOutcome::Unsatisfactory, ..r1.clone() };

    let mut tx = begin(ctx).await;
    // Writes address versions of models locked in the transaction.
    tx.lock_model(&m).await.unwrap().unwrap();
    tx.lock_model(&other).await.unwrap().unwrap();
    for a in [&a1, &a2, &a_other] {
        tx.insert_approval(a).await.unwrap();
    }
    for e in metrics.iter().chain([&document]) {
        tx.insert_evidence(e).await.unwrap();
    }
    for r in [&r1, &r_other, &r2] {
        tx.insert_review(r).await.unwrap();
    }
    // Inside the transaction, its own writes are read back.
    assert_eq!(tx.version_approvals(&m, 1).await.unwrap(), vec![a1.clone(), a2.clone()]);
    assert_eq!(tx.version_evidence(&m, 1).await.unwrap().len(), values.len() + 1);
    assert_eq!(tx.version_evidence(&m, 2).await.unwrap(), vec![]);
    assert_not_found(tx.version_approvals(&m, 9).await, "version", "credit/9");
    assert_not_found(tx.insert_approval(&approval(&m, 9, "val", Decision::Approve, 6)).await, "version", "credit/9");
    let nan = Evidence { value: Some(f64::NAN), ..metric(&m, 1, "nan", 0.0) };
    assert_invalid(tx.insert_evidence(&nan).await, "value");
    let inf = Evidence { value: Some(f64::INFINITY), ..metric(&m, 1, "inf", 0.0) };
    assert_invalid(tx.insert_evidence(&inf).await, "value");
    tx.commit().await.unwrap();

    assert_eq!(s.approvals(&m, 1).await.unwrap(), vec![a1.clone(), a2.clone()], "oldest first");
    assert_eq!(s.approvals(&m, 2).await.unwrap(), vec![a_other.clone()]);
    let mut expected = metrics.clone();
    expected.push(document.clone());
    let stored = s.evidence(&m, 1).await.unwrap();
    assert_eq!(stored, expected);
    for (e, v) in stored.iter().zip(values) {
        assert_eq!(e.value.map(f64::to_bits), Some(v.to_bits()), "{} keeps every bit", e.name);
    }
    assert_eq!(stored.last().and_then(|e| e.document.as_ref()).map(|d| d.size), Some(1 << 40));
    assert_eq!(s.evidence(&m, 2).await.unwrap(), vec![]);
    assert_eq!(s.reviews(&m).await.unwrap(), vec![r1.clone(), r2.clone()], "every version's, oldest first");
    assert_eq!(s.reviews(&other).await.unwrap(), vec![r_other.clone()]);

    let mut tx = begin(ctx).await;
    tx.lock_model(&m).await.unwrap().unwrap();
    assert_eq!(tx.version_approvals(&m, 1).await.unwrap(), vec![a1, a2]);
    assert_eq!(tx.version_evidence(&m, 1).await.unwrap(), expected);
}

pub async fn review_schedule_upserts_clears_and_orders(ctx: &Ctx) {
    let s = &*ctx.store;
    let a = stored_model(ctx, "a", 3).await.name;
    let b = stored_model(ctx, "b", 1).await.name;
    assert_eq!(s.review_schedule().await.unwrap(), vec![]);

    let (t0, t1) = (at(1000), at(2000));
    let mut tx = begin(ctx).await;
    tx.lock_model(&a).await.unwrap().unwrap();
    tx.lock_model(&b).await.unwrap().unwrap();
    assert_eq!(tx.next_review(&a, 1).await.unwrap(), None);
    tx.set_next_review(&b, 1, Some(t1)).await.unwrap();
    tx.set_next_review(&a, 2, Some(at(5000))).await.unwrap();
    tx.set_next_review(&a, 2, Some(t1)).await.unwrap();
    tx.set_next_review(&a, 1, Some(t0)).await.unwrap();
    tx.set_next_review(&a, 3, Some(t0)).await.unwrap();
    assert_eq!(tx.next_review(&a, 2).await.unwrap(), Some(t1), "the second date replaces the first");
    tx.set_next_review(&a, 3, None).await.unwrap();
    assert_eq!(tx.next_review(&a, 3).await.unwrap(), None, "cleared");
    tx.set_next_review(&a, 3, None).await.unwrap();
    assert_not_found(tx.set_next_review(&a, 9, Some(t0)).await, "version", "a/9");
    // The last review is the latest reviewed_at, whatever the recording order.
    for reviewed in [at(900), at(800)] {
        let r = Review {
            model: a.clone(),
            version: 1,
            reviewer: "val".into(),
            outcome: ReviewOutcome::Satisfactory,
            comment: String::new(),
            reviewed_at: reviewed,
            next_review_at: t0,
        };
        tx.insert_review(&r).await.unwrap();
    }
    tx.commit().await.unwrap();

    let scheduled = |model: &ModelName, version, next_review_at, last_reviewed_at| ScheduledReview {
        model: model.clone(),
        version,
        next_review_at,
        last_reviewed_at,
    };
    assert_eq!(
        s.review_schedule().await.unwrap(),
        vec![scheduled(&a, 1, t0, Some(at(900))), scheduled(&a, 2, t1, None), scheduled(&b, 1, t1, None)],
        "by date, then model, then version"
    );

    let mut tx = begin(ctx).await;
    tx.lock_model(&a).await.unwrap().unwrap();
    tx.set_next_review(&a, 1, None).await.unwrap();
    tx.set_next_review(&a, 2, Some(at(3000))).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.review_schedule().await.unwrap(), vec![scheduled(&b, 1, t1, None), scheduled(&a, 2, at(3000), None)]);
}

fn policy(source: &str, loaded: i64) -> StoredPolicy {
    StoredPolicy { sha256: policy_hash(source), source: source.into(), format: "toml".into(), loaded_at: at(loaded), loaded_by: "root".into() }
}

pub async fn the_policy_loaded_last_is_active(ctx: &Ctx) {
    let s = &*ctx.store;
    assert_eq!(s.active_policy().await.unwrap(), None);
    let first = policy("[tiers.low]\napprovals = 1\n", 1);
    let second = StoredPolicy { format: "yaml".into(), ..policy("tiers:\n  low:\n    approvals: 2\n", 2) };

    let mut tx = begin(ctx).await;
    assert_eq!(tx.locked_policy().await.unwrap(), None);
    tx.insert_policy(&first).await.unwrap();
    assert_eq!(tx.locked_policy().await.unwrap().as_ref(), Some(&first));
    tx.commit().await.unwrap();
    assert_eq!(s.active_policy().await.unwrap().as_ref(), Some(&first));

    let mut tx = begin(ctx).await;
    tx.insert_policy(&second).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.active_policy().await.unwrap().as_ref(), Some(&second));

    // Loading the first text again makes it active again, as loaded now.
    let again = StoredPolicy { loaded_by: "ops".into(), ..policy(&first.source, 3) };
    let mut tx = begin(ctx).await;
    assert_eq!(tx.locked_policy().await.unwrap().as_ref(), Some(&second));
    tx.insert_policy(&again).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.active_policy().await.unwrap().as_ref(), Some(&again));
    let mut tx = begin(ctx).await;
    assert_eq!(tx.locked_policy().await.unwrap().as_ref(), Some(&again));
}

pub async fn model_developers_and_validation_round_trip(ctx: &Ctx) {
    let s = &*ctx.store;
    let mut with = new_model("with").into_model(at(0), "ana");
    with.developers = vec!["zoe".into(), "dana".into(), "jos\u{e9}".into()];
    with.validation = Some(ValidationTarget { metric: "auc".into(), threshold: 0.1 + 0.7 });
    let without = new_model("without").into_model(at(0), "ana");
    assert!(without.developers.is_empty() && without.validation.is_none());

    let mut tx = begin(ctx).await;
    tx.insert_model(&with).await.unwrap();
    tx.insert_model(&without).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.get_model(&with.name).await.unwrap(), with, "developers keep their order");
    assert_eq!(s.get_model(&without.name).await.unwrap(), without);

    // Updating writes both, also back to none.
    let mut tx = begin(ctx).await;
    let mut changed = tx.lock_model(&with.name).await.unwrap().unwrap();
    changed.developers = vec!["dana".into()];
    changed.validation = None;
    changed.updated_at = at(10);
    tx.update_model(&changed).await.unwrap();
    let mut gained = tx.lock_model(&without.name).await.unwrap().unwrap();
    gained.validation = Some(ValidationTarget { metric: "ks.stat".into(), threshold: -3.0 });
    gained.updated_at = at(11);
    tx.update_model(&gained).await.unwrap();
    let mut bad = gained.clone();
    bad.validation = Some(ValidationTarget { metric: "auc".into(), threshold: f64::NAN });
    assert_invalid(tx.update_model(&bad).await, "validation.threshold");
    tx.commit().await.unwrap();
    assert_eq!(s.get_model(&with.name).await.unwrap(), changed);
    assert_eq!(s.get_model(&without.name).await.unwrap(), gained);

    // Rows as written before migration 0003 (the column's default), with a
    // key missing, or with a key a later release adds, still read.
    let mut raw = RawConn::open(&ctx.raw).await;
    for (stored, developers, validation) in [
        ("{}", vec![], None),
        (r#"{"developers": ["ana"]}"#, vec!["ana".to_string()], None),
        (r#"{"validation": {"metric": "f1", "threshold": 0.5}, "reviewers": ["x"]}"#, vec![], Some(ValidationTarget { metric: "f1".into(), threshold: 0.5 })),
    ] {
        raw.exec(&format!("UPDATE models SET governance = '{stored}' WHERE name = 'with'")).await.unwrap();
        let read = s.get_model(&with.name).await.unwrap();
        assert_eq!((read.developers, read.validation), (developers, validation), "{stored}");
    }
    // A row inserted without the column, as the first release's code did.
    raw.exec(
        "INSERT INTO models (name, kind, description, owner, team, business_purpose, intended_use, restrictions, risk_tier, \
         state, search_text, created_at, created_by, updated_at) \
         SELECT 'old', kind, description, owner, team, business_purpose, intended_use, restrictions, risk_tier, state, \
         'old', created_at, created_by, updated_at FROM models WHERE name = 'without'",
    )
    .await
    .unwrap();
    let old = s.get_model(&name("old")).await.unwrap();
    assert_eq!((old.developers, old.validation), (vec![], None));
}

pub async fn the_governance_record_is_append_only_in_the_database(ctx: &Ctx) {
    let s = &*ctx.store;
    let m = stored_model(ctx, "m", 1).await.name;
    let a = approval(&m, 1, "val", Decision::Approve, 3);
    let e = metric(&m, 1, "auc", 0.8125);
    let r = Review {
        model: m.clone(),
        version: 1,
        reviewer: "val".into(),
        outcome: ReviewOutcome::Satisfactory,
        comment: String::new(),
        reviewed_at: at(50),
        next_review_at: at(60),
    };
    let p = policy("[tiers]\n", 4);
    let mut tx = begin(ctx).await;
    tx.lock_model(&m).await.unwrap().unwrap();
    tx.insert_approval(&a).await.unwrap();
    tx.insert_evidence(&e).await.unwrap();
    tx.insert_review(&r).await.unwrap();
    tx.insert_policy(&p).await.unwrap();
    tx.commit().await.unwrap();

    let mut raw = RawConn::open(&ctx.raw).await;
    let postgres = matches!(raw, RawConn::Postgres(_));
    for (table, column) in [("approvals", "decision"), ("evidence", "name"), ("reviews", "outcome"), ("policies", "source")] {
        let mut statements = vec![format!("UPDATE {table} SET {column} = 'forged'"), format!("DELETE FROM {table}")];
        if postgres {
            statements.push(format!("TRUNCATE {table}"));
        }
        for sql in statements {
            let err = raw.exec(&sql).await.expect_err(&sql);
            assert!(err.to_string().contains(&format!("{table} is append-only")), "{sql}: {err}");
        }
    }
    assert_eq!(s.approvals(&m, 1).await.unwrap(), vec![a]);
    assert_eq!(s.evidence(&m, 1).await.unwrap(), vec![e]);
    assert_eq!(s.reviews(&m).await.unwrap(), vec![r]);
    assert_eq!(s.active_policy().await.unwrap(), Some(p));
}

pub async fn a_dropped_transaction_leaves_nothing(ctx: &Ctx) {
    let s = &*ctx.store;
    let m = stored_model(ctx, "m", 1).await.name;
    let mut tx = begin(ctx).await;
    tx.lock_model(&m).await.unwrap().unwrap();
    tx.insert_user(&user("alice", &[Role::Admin], "", 1)).await.unwrap();
    tx.insert_token(&token("0123456789ab", "alice", 2, None), &hash_token_secret("s")).await.unwrap();
    tx.insert_approval(&approval(&m, 1, "val", Decision::Approve, 3)).await.unwrap();
    tx.insert_evidence(&metric(&m, 1, "auc", 0.9)).await.unwrap();
    let r = Review {
        model: m.clone(),
        version: 1,
        reviewer: "val".into(),
        outcome: ReviewOutcome::Satisfactory,
        comment: String::new(),
        reviewed_at: at(50),
        next_review_at: at(60),
    };
    tx.insert_review(&r).await.unwrap();
    tx.set_next_review(&m, 1, Some(at(60))).await.unwrap();
    tx.insert_policy(&policy("x = 1\n", 4)).await.unwrap();
    drop(tx);

    assert_eq!(s.count_users().await.unwrap(), 0);
    assert_eq!(s.get_user("alice").await.unwrap(), None);
    assert!(s.token_for_auth("0123456789ab").await.unwrap().is_none());
    assert_eq!(s.list_tokens(None).await.unwrap(), vec![]);
    assert_eq!(s.approvals(&m, 1).await.unwrap(), vec![]);
    assert_eq!(s.evidence(&m, 1).await.unwrap(), vec![]);
    assert_eq!(s.reviews(&m).await.unwrap(), vec![]);
    assert_eq!(s.review_schedule().await.unwrap(), vec![]);
    assert_eq!(s.active_policy().await.unwrap(), None);

    // And the next transaction starts from there.
    let mut tx = begin(ctx).await;
    tx.insert_user(&user("alice", &[Role::Admin], "", 5)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.count_users().await.unwrap(), 1);
}
