use crate::harness::*;
use chrono::Duration;
use modelops_core::name::{AliasName, TagKey};
use modelops_core::repo::TagTarget;

pub async fn aliases_set_move_and_delete(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("m");
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    s.create_version(&actor("ana"), &m, new_version()).await.unwrap();
    s.create_version(&actor("ana"), &m, new_version()).await.unwrap();
    let staging = AliasName::parse("staging").unwrap();

    let v1 = s.set_alias(&actor("ana"), &m, &staging, 1).await.unwrap();
    assert_eq!(v1.aliases, ["staging"]);
    assert_eq!(s.get_version_by_alias(&m, &staging).await.unwrap(), v1);
    assert_eq!(s.get_model(&m).await.unwrap().aliases, [("staging".to_string(), 1)].into());

    let v2 = s.set_alias(&actor("bob"), &m, &staging, 2).await.unwrap();
    assert_eq!(v2.number, 2);
    assert_eq!(v2.aliases, ["staging"]);
    assert!(s.get_version(&m, 1).await.unwrap().aliases.is_empty(), "moving takes the alias off the old version");
    assert_eq!(s.get_version_by_alias(&m, &staging).await.unwrap().number, 2);
    let event = chain(&*ctx.store, 0, 100).await.pop().unwrap();
    assert_eq!((event.actor.as_str(), event.action.as_str(), event.subject.as_str()), ("bob", "alias.set", "model/m/alias/staging"));
    assert_eq!(event.before, Some(serde_json::json!({"alias": "staging", "version": 1})));
    assert_eq!(event.after, Some(serde_json::json!({"alias": "staging", "version": 2})));

    // Setting it where it already points changes and records nothing.
    let head = ctx.store.head().await.unwrap();
    s.set_alias(&actor("ana"), &m, &staging, 2).await.unwrap();
    assert_eq!(ctx.store.head().await.unwrap(), head);

    let challenger = AliasName::parse("challenger").unwrap();
    assert_not_found(s.set_alias(&actor("ana"), &m, &challenger, 3).await, "version", "m/3");
    assert_not_found(s.get_version_by_alias(&m, &challenger).await, "alias", "m@challenger");
    assert_not_found(s.delete_alias(&actor("ana"), &m, &challenger).await, "alias", "m@challenger");

    s.delete_alias(&actor("ana"), &m, &staging).await.unwrap();
    assert_not_found(s.get_version_by_alias(&m, &staging).await, "alias", "m@staging");
    assert!(s.get_model(&m).await.unwrap().aliases.is_empty());
    assert!(s.get_version(&m, 2).await.unwrap().aliases.is_empty());
    let event = chain(&*ctx.store, 0, 100).await.pop().unwrap();
    assert_eq!((event.action.as_str(), event.before, event.after), ("alias.delete", Some(serde_json::json!({"alias": "staging", "version": 2})), None));
    assert_not_found(s.delete_alias(&actor("ana"), &m, &staging).await, "alias", "m@staging");

    // The same alias name on another model is another alias.
    s.create_model(&actor("ana"), new_model("n")).await.unwrap();
    s.create_version(&actor("ana"), &name("n"), new_version()).await.unwrap();
    s.set_alias(&actor("ana"), &name("n"), &staging, 1).await.unwrap();
    s.set_alias(&actor("ana"), &m, &staging, 1).await.unwrap();
    assert_eq!(s.get_version_by_alias(&name("n"), &staging).await.unwrap().model, name("n"));
    assert_eq!(s.get_version_by_alias(&m, &staging).await.unwrap().model, m);
}

pub async fn tags_on_models_and_versions(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("m");
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    s.create_version(&actor("ana"), &m, new_version()).await.unwrap();
    let key = TagKey::parse("owner.email").unwrap();
    let on_model = TagTarget::Model(m.clone());
    let on_version = TagTarget::Version(m.clone(), 1);

    ctx.clock.advance(Duration::seconds(1));
    s.set_tag(&actor("ana"), &on_model, &key, "ana@example.com").await.unwrap();
    let model = s.get_model(&m).await.unwrap();
    assert_eq!(model.tags, [("owner.email".to_string(), "ana@example.com".to_string())].into());
    assert_eq!(model.updated_at, start_time() + Duration::seconds(1));
    assert!(s.get_version(&m, 1).await.unwrap().tags.is_empty(), "model and version tags are apart");

    s.set_tag(&actor("ana"), &on_model, &key, "bob@example.com").await.unwrap();
    let event = chain(&*ctx.store, 0, 100).await.pop().unwrap();
    assert_eq!((event.action.as_str(), event.subject.as_str()), ("tag.set", "model/m"));
    assert_eq!(event.before, Some(serde_json::json!({"key": "owner.email", "value": "ana@example.com"})));
    assert_eq!(event.after, Some(serde_json::json!({"key": "owner.email", "value": "bob@example.com"})));
    assert_eq!(s.get_model(&m).await.unwrap().tags["owner.email"], "bob@example.com");

    ctx.clock.advance(Duration::seconds(1));
    s.set_tag(&actor("ana"), &on_version, &key, "").await.unwrap();
    let version = s.get_version(&m, 1).await.unwrap();
    assert_eq!(version.tags, [("owner.email".to_string(), String::new())].into());
    assert_eq!(version.updated_at, start_time() + Duration::seconds(2));
    let event = chain(&*ctx.store, 0, 100).await.pop().unwrap();
    assert_eq!((event.subject.as_str(), event.before.clone()), ("model/m/version/1", None));

    s.delete_tag(&actor("ana"), &on_model, &key).await.unwrap();
    assert!(s.get_model(&m).await.unwrap().tags.is_empty());
    s.delete_tag(&actor("ana"), &on_version, &key).await.unwrap();
    assert!(s.get_version(&m, 1).await.unwrap().tags.is_empty());
    let event = chain(&*ctx.store, 0, 100).await.pop().unwrap();
    assert_eq!((event.action.as_str(), event.after.clone()), ("tag.delete", None));
    assert_not_found(s.delete_tag(&actor("ana"), &on_model, &key).await, "tag", "model/m:owner.email");
    assert_not_found(s.set_tag(&actor("ana"), &TagTarget::Version(m.clone(), 5), &key, "x").await, "version", "m/5");
    assert_invalid(s.set_tag(&actor("ana"), &on_model, &key, &"x".repeat(modelops_core::name::MAX_TAG_VALUE_LEN + 1)).await, "value");
    assert_invalid(s.set_tag(&actor("ana"), &on_model, &key, "a\0b").await, "value");
}
