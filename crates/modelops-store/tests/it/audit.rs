use crate::harness::*;
use chrono::Duration;
use modelops_core::audit::{AuditEvent, AuditQuery};
use modelops_core::auth::Action;
use modelops_core::model::ModelPatch;
use modelops_core::name::{AliasName, TagKey};
use modelops_core::page::PageRequest;
use modelops_core::repo::{verify_chain, Store, TagTarget};
use modelops_core::version::VersionPatch;
use modelops_core::ErrorKind;
use serde_json::{json, Value};

/// The one event appended since `seq`, checked for who, what and which subject.
async fn one_new_event(s: &dyn Store, seq: &mut i64, actor: &str, action: &str, subject: &str) -> AuditEvent {
    let mut events = s.read_chain(*seq, 10).await.unwrap();
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
    let s = &*ctx.store;
    let m = name("m");
    let mut seq = 0;

    let model = s.create_model(&permit_as("ana", Action::ModelCreate), new_model("m")).await.unwrap();
    let e = one_new_event(s, &mut seq, "ana", "model.create", "model/m").await;
    assert_eq!((e.sequence, e.before, e.after, e.time), (1, None, snap(&model), start_time()));

    ctx.clock.advance(Duration::seconds(1));
    let updated = s.update_model(&permit_as("bob", Action::ModelUpdate), &m, ModelPatch { team: Some("ml".into()), ..Default::default() }).await.unwrap();
    let e = one_new_event(s, &mut seq, "bob", "model.update", "model/m").await;
    assert_eq!((e.before, e.after, e.time), (snap(&model), snap(&updated), start_time() + Duration::seconds(1)));

    let v1 = s.create_version(&permit_as("carl", Action::VersionCreate), &m, new_version()).await.unwrap();
    let e = one_new_event(s, &mut seq, "carl", "version.create", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (None, snap(&v1)));

    let v1b = s.update_version(&permit_as("dana", Action::VersionUpdate), &m, 1, VersionPatch { description: Some("d".into()), card: None }).await.unwrap();
    let e = one_new_event(s, &mut seq, "dana", "version.update", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (snap(&v1), snap(&v1b)));

    let champion = AliasName::parse("champion").unwrap();
    s.set_alias(&permit_as("eve", Action::AliasSet), &m, &champion, 1).await.unwrap();
    let e = one_new_event(s, &mut seq, "eve", "alias.set", "model/m/alias/champion").await;
    assert_eq!((e.before, e.after), (None, Some(json!({"alias": "champion", "version": 1}))));

    s.delete_alias(&permit_as("eve", Action::AliasDelete), &m, &champion).await.unwrap();
    let e = one_new_event(s, &mut seq, "eve", "alias.delete", "model/m/alias/champion").await;
    assert_eq!((e.before, e.after), (Some(json!({"alias": "champion", "version": 1})), None));

    let key = TagKey::parse("k").unwrap();
    s.set_tag(&permit_as("fay", Action::TagSet), &TagTarget::Version(m.clone(), 1), &key, "v").await.unwrap();
    let e = one_new_event(s, &mut seq, "fay", "tag.set", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (None, Some(json!({"key": "k", "value": "v"}))));

    s.delete_tag(&permit_as("fay", Action::TagDelete), &TagTarget::Version(m.clone(), 1), &key).await.unwrap();
    let e = one_new_event(s, &mut seq, "fay", "tag.delete", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (Some(json!({"key": "k", "value": "v"})), None));

    let before = s.get_version(&m, 1).await.unwrap();
    let retired = s.retire_version(&permit_as("gus", Action::VersionRetire), &m, 1).await.unwrap();
    let e = one_new_event(s, &mut seq, "gus", "version.retire", "model/m/version/1").await;
    assert_eq!((e.before, e.after), (snap(&before), snap(&retired)));

    let before = s.get_model(&m).await.unwrap();
    let retired = s.retire_model(&permit_as("gus", Action::ModelRetire), &m).await.unwrap();
    let e = one_new_event(s, &mut seq, "gus", "model.retire", "model/m").await;
    assert_eq!((e.before, e.after), (snap(&before), snap(&retired)));

    assert_eq!(verify_chain(s).await.unwrap().unwrap().events, 10);
}

pub async fn failed_mutations_record_nothing(ctx: &Ctx) {
    let s = &*ctx.store;
    let m = name("m");
    s.create_model(&permit(Action::ModelCreate), new_model("m")).await.unwrap();
    s.create_version(&permit(Action::VersionCreate), &m, new_version()).await.unwrap();
    s.retire_version(&permit(Action::VersionRetire), &m, 1).await.unwrap();
    let head = s.head().await.unwrap();
    assert_kind(s.create_model(&permit(Action::ModelCreate), new_model("m")).await, ErrorKind::AlreadyExists);
    assert_kind(s.retire_version(&permit(Action::VersionRetire), &m, 1).await, ErrorKind::Conflict);
    assert_kind(s.get_model(&name("x")).await, ErrorKind::NotFound);
    let mut bad = new_version();
    bad.lineage.parent_version = Some(7);
    assert_kind(s.create_version(&permit(Action::VersionCreate), &m, bad).await, ErrorKind::InvalidInput);
    // A no-op update changes and records nothing.
    s.update_model(&permit(Action::ModelUpdate), &m, ModelPatch::default()).await.unwrap();
    assert_eq!(s.head().await.unwrap(), head);
    assert_eq!(s.get_model(&m).await.unwrap().latest_version, Some(1));
}

pub async fn list_events_filters_and_pages(ctx: &Ctx) {
    let s = &*ctx.store;
    // seq 1..=3 at t0, t0+1s, t0+2s; then 4..=5 at t0+3s.
    s.create_model(&permit_as("ana", Action::ModelCreate), new_model("a")).await.unwrap();
    ctx.clock.advance(Duration::seconds(1));
    s.create_model(&permit_as("bob", Action::ModelCreate), new_model("ab")).await.unwrap();
    ctx.clock.advance(Duration::seconds(1));
    s.create_model(&permit_as("ana", Action::ModelCreate), new_model("b")).await.unwrap();
    ctx.clock.advance(Duration::seconds(1));
    s.create_version(&permit_as("bob", Action::VersionCreate), &name("a"), new_version()).await.unwrap();
    s.set_tag(&permit_as("ana", Action::TagSet), &TagTarget::Model(name("b")), &TagKey::parse("k").unwrap(), "v").await.unwrap();

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
    assert_eq!(s.list_events(&q()).await.unwrap().items, s.read_chain(0, 100).await.unwrap());
    assert_eq!(s.read_chain(2, 2).await.unwrap().iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 4]);
}

pub async fn chain_verifies_and_head_matches(ctx: &Ctx) {
    let s = &*ctx.store;
    assert_eq!(s.head().await.unwrap(), None);
    let empty = verify_chain(s).await.unwrap().unwrap();
    assert_eq!((empty.events, empty.head), (0, None));
    for i in 0..30 {
        s.create_model(&permit(Action::ModelCreate), new_model(&format!("m{i:02}"))).await.unwrap();
        s.create_version(&permit(Action::VersionCreate), &name(&format!("m{i:02}")), new_version()).await.unwrap();
        ctx.clock.advance(Duration::milliseconds(1));
    }
    let events = s.read_chain(0, 1000).await.unwrap();
    assert_eq!(events.len(), 60);
    assert_eq!(events[0].prev_hash, modelops_core::audit::GENESIS_HASH);
    let head = s.head().await.unwrap().unwrap();
    assert_eq!(head, events[59].head());
    let summary = verify_chain(s).await.unwrap().unwrap();
    assert_eq!((summary.events, summary.head), (60, Some(head)));
}

pub async fn a_permit_for_another_action_is_refused(ctx: &Ctx) {
    let s = &*ctx.store;
    assert_kind(s.create_model(&permit(Action::TagSet), new_model("m")).await, ErrorKind::Forbidden);
    assert_not_found(s.get_model(&name("m")).await, "model", "m");
    assert_eq!(s.head().await.unwrap(), None);
}
