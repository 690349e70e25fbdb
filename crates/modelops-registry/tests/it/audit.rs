use crate::harness::*;
use chrono::Duration;
use modelops_core::audit::{AuditEvent, AuditQuery};
use modelops_core::model::ModelPatch;
use modelops_core::name::{AliasName, TagKey};
use modelops_core::page::PageRequest;
use modelops_core::repo::{verify_chain, Store, TagTarget};
use modelops_core::version::VersionPatch;
use modelops_core::auth::{Principal, Role};
use modelops_core::{Error, ErrorKind};
use serde_json::{json, Value};

/// The one event appended since `seq`, checked for who, what and which subject.
async fn one_new_event(s: &dyn Store, seq: &mut i64, actor: &str, action: &str, subject: &str) -> AuditEvent {
    let mut events = chain(s, *seq, 10).await;
    assert_eq!(events.len(), 1, "exactly one event for {action} on {subject}: {events:#?}");
    let e = events.remove(0);
    assert_eq!((e.actor.as_str(), e.action.as_str(), e.subject.as_str()), (actor, action, subject));
    *seq = e.sequence;
    e
}

fn snap<T: serde::Serialize>(v: &T) -> Option<Value> {
    Some(serde_json::to_value(v).unwrap())
}

pub async fn every_mutation_records_one_event(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("m");
    let mut seq = 0;

    let model = s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "ana", "model.create", "model/m").await;
    assert_eq!((e.sequence, e.before, e.after, e.time), (1, None, snap(&model), start_time()));

    ctx.clock.advance(Duration::seconds(1));
    let updated = s.update_model(&actor("bob"), &m, ModelPatch { team: Some("ml".into()), ..Default::default() }).await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "bob", "model.update", "model/m").await;
    assert_eq!((e.before, e.after, e.time), (snap(&model), snap(&updated), start_time() + Duration::seconds(1)));

    let v1 = s.create_version(&actor("carl"), &m, new_version()).await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "carl", "version.create", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (None, snap(&v1)));

    let v1b = s.update_version(&actor("dana"), &m, 1, VersionPatch { description: Some("d".into()), card: None }).await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "dana", "version.update", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (snap(&v1), snap(&v1b)));

    let staging = AliasName::parse("staging").unwrap();
    s.set_alias(&actor("eve"), &m, &staging, 1).await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "eve", "alias.set", "model/m/alias/staging").await;
    assert_eq!((e.before, e.after), (None, Some(json!({"alias": "staging", "version": 1}))));

    s.delete_alias(&actor("eve"), &m, &staging).await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "eve", "alias.delete", "model/m/alias/staging").await;
    assert_eq!((e.before, e.after), (Some(json!({"alias": "staging", "version": 1})), None));

    let key = TagKey::parse("k").unwrap();
    s.set_tag(&actor("fay"), &TagTarget::Version(m.clone(), 1), &key, "v").await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "fay", "tag.set", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (None, Some(json!({"key": "k", "value": "v"}))));

    s.delete_tag(&actor("fay"), &TagTarget::Version(m.clone(), 1), &key).await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "fay", "tag.delete", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (Some(json!({"key": "k", "value": "v"})), None));

    let before = s.get_version(&m, 1).await.unwrap();
    let retired = s.retire_version(&actor("gus"), &m, 1).await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "gus", "version.retire", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (snap(&before), snap(&retired)));

    let before = s.get_model(&m).await.unwrap();
    let retired = s.retire_model(&actor("gus"), &m).await.unwrap();
    let e = one_new_event(&*ctx.store, &mut seq, "gus", "model.retire", "model/m").await;
    assert_eq!((e.before, e.after), (snap(&before), snap(&retired)));

    assert_eq!(verify_chain(&*ctx.store).await.unwrap().unwrap().events, 10);
}

pub async fn failed_mutations_record_nothing(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("m");
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    s.create_version(&actor("ana"), &m, new_version()).await.unwrap();
    s.retire_version(&actor("ana"), &m, 1).await.unwrap();
    let head = ctx.store.head().await.unwrap();
    assert_kind(s.create_model(&actor("ana"), new_model("m")).await, ErrorKind::AlreadyExists);
    assert_kind(s.retire_version(&actor("ana"), &m, 1).await, ErrorKind::Conflict);
    assert_kind(s.get_model(&name("x")).await, ErrorKind::NotFound);
    let mut bad = new_version();
    bad.lineage.parent_version = Some(7);
    assert_kind(s.create_version(&actor("ana"), &m, bad).await, ErrorKind::InvalidInput);
    // A no-op update changes and records nothing.
    s.update_model(&actor("ana"), &m, ModelPatch::default()).await.unwrap();
    assert_eq!(ctx.store.head().await.unwrap(), head);
    assert_eq!(s.get_model(&m).await.unwrap().latest_version, Some(1));
}

pub async fn list_events_filters_and_pages(ctx: &Ctx) {
    let s = &ctx.registry;
    // seq 1..=3 at t0, t0+1s, t0+2s; then 4..=5 at t0+3s.
    s.create_model(&actor("ana"), new_model("a")).await.unwrap();
    ctx.clock.advance(Duration::seconds(1));
    s.create_model(&actor("bob"), new_model("ab")).await.unwrap();
    ctx.clock.advance(Duration::seconds(1));
    s.create_model(&actor("ana"), new_model("b")).await.unwrap();
    ctx.clock.advance(Duration::seconds(1));
    s.create_version(&actor("bob"), &name("a"), new_version()).await.unwrap();
    s.set_tag(&actor("ana"), &TagTarget::Model(name("b")), &TagKey::parse("k").unwrap(), "v").await.unwrap();

    let list = |q: AuditQuery| async move { s.list_events(&q).await.unwrap().items.iter().map(|e| e.sequence).collect::<Vec<_>>() };
    let q = AuditQuery::default;
    assert_eq!(list(q()).await, [1, 2, 3, 4, 5]);
    assert_eq!(list(AuditQuery { subject: Some("model/a".into()), ..q() }).await, [1]);
    assert_eq!(list(AuditQuery { subject: Some("model/a*".into()), ..q() }).await, [1, 2, 4]);
    assert_eq!(list(AuditQuery { subject: Some("model/a/*".into()), ..q() }).await, [4]);
    assert_eq!(list(AuditQuery { subject: Some("*".into()), ..q() }).await, [1, 2, 3, 4, 5]);
    assert_eq!(list(AuditQuery { subject: Some("model/%".into()), ..q() }).await, Vec::<i64>::new());
    assert_eq!(list(AuditQuery { actor: Some("bob".into()), ..q() }).await, [2, 4]);
    assert_eq!(list(AuditQuery { action: Some("model.create".into()), ..q() }).await, [1, 2, 3]);
    assert_eq!(list(AuditQuery { action: Some("model.create".into()), actor: Some("ana".into()), ..q() }).await, [1, 3]);
    let t = start_time();
    assert_eq!(list(AuditQuery { since: Some(t + Duration::seconds(1)), ..q() }).await, [2, 3, 4, 5], "since is inclusive");
    assert_eq!(list(AuditQuery { until: Some(t + Duration::seconds(2)), ..q() }).await, [1, 2], "until is exclusive");
    let window = AuditQuery { since: Some(t + Duration::microseconds(1)), until: Some(t + Duration::seconds(3)), ..q() };
    assert_eq!(list(window).await, [2, 3]);

    let mut walked = Vec::new();
    let mut token = None;
    loop {
        let page = s.list_events(&AuditQuery { page: PageRequest::new(Some(2), token.clone()).unwrap(), ..q() }).await.unwrap();
        walked.extend(page.items.iter().map(|e| e.sequence));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(walked, [1, 2, 3, 4, 5]);
    let garbage = AuditQuery { page: PageRequest::new(Some(2), Some("eyJ4IjoxfQ".into())).unwrap(), ..q() };
    assert_invalid(s.list_events(&garbage).await, "page_token");

    // Listing returns the stored events as read_chain does.
    assert_eq!(s.list_events(&q()).await.unwrap().items, chain(&*ctx.store, 0, 100).await);
    assert_eq!(chain(&*ctx.store, 2, 2).await.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 4]);
}

pub async fn chain_verifies_and_head_matches(ctx: &Ctx) {
    let s = &ctx.registry;
    assert_eq!(ctx.store.head().await.unwrap(), None);
    let empty = verify_chain(&*ctx.store).await.unwrap().unwrap();
    assert_eq!((empty.events, empty.head), (0, None));
    for i in 0..30 {
        s.create_model(&actor("ana"), new_model(&format!("m{i:02}"))).await.unwrap();
        s.create_version(&actor("ana"), &name(&format!("m{i:02}")), new_version()).await.unwrap();
        ctx.clock.advance(Duration::milliseconds(1));
    }
    let events = chain(&*ctx.store, 0, 1000).await;
    assert_eq!(events.len(), 60);
    assert_eq!(events[0].prev_hash, modelops_core::audit::GENESIS_HASH);
    let head = ctx.store.head().await.unwrap().unwrap();
    assert_eq!(head, events[59].head());
    let summary = verify_chain(&*ctx.store).await.unwrap().unwrap();
    assert_eq!((summary.events, summary.head), (60, Some(head)));
}

pub async fn a_refusal_names_its_reasons_and_is_audited(ctx: &Ctx) {
    let s = &ctx.registry;
    let viewer = Principal::new("vera", [Role::Viewer]).unwrap();
    let err = assert_kind(s.create_model(&viewer, new_model("m")).await, ErrorKind::Forbidden);
    let Error::Forbidden(denial) = &err else { panic!("{err}") };
    assert_eq!(denial.reasons().len(), 1);
    assert_eq!(denial.reasons()[0].condition, "role");
    assert!(denial.reasons()[0].message.contains("`developer`"), "{err}");
    assert_not_found(s.get_model(&name("m")).await, "model", "m");
    // Nothing changed, but the refusal is on the record, in the chain.
    let events = chain(&*ctx.store, None, 10).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.actor.as_str(), e.action.as_str(), e.subject.as_str()), ("vera", "access.denied", "model/m"));
    let after = e.after.clone().unwrap();
    assert_eq!(after["action"], "model.create");
    assert_eq!(after["reasons"][0]["condition"], "role");
    assert!(verify_chain(&*ctx.store).await.unwrap().is_ok());
    // Verifying the whole chain is for auditors and admins.
    assert_kind(s.verify_audit(&viewer).await, ErrorKind::Forbidden);
    let auditor = Principal::new("aude", [Role::Auditor]).unwrap();
    assert!(s.verify_audit(&auditor).await.unwrap().verdict.is_ok());
}

pub async fn verification_is_reused_while_fresh(ctx: &Ctx) {
    let s = &ctx.registry;
    s.create_model(&actor("ana"), new_model("a")).await.unwrap();
    let first = s.verify_audit(&actor("aude")).await.unwrap();
    assert_eq!((first.verdict.as_ref().unwrap().events, first.verified_at), (1, start_time()));
    ctx.clock.advance(Duration::seconds(30));
    let again = s.verify_audit(&actor("aude")).await.unwrap();
    assert_eq!(again, first, "an unchanged chain verified less than a minute ago is not hashed again");
    // A change is verified at once.
    s.create_model(&actor("ana"), new_model("b")).await.unwrap();
    let changed = s.verify_audit(&actor("aude")).await.unwrap();
    assert_eq!((changed.verdict.as_ref().unwrap().events, changed.verified_at), (2, start_time() + Duration::seconds(30)));
    // And an unchanged chain is hashed again once the minute is over.
    ctx.clock.advance(Duration::seconds(61));
    let later = s.verify_audit(&actor("aude")).await.unwrap();
    assert_eq!(later.verified_at, start_time() + Duration::seconds(91));
}
