//! Input the database would refuse or that would make a write unbounded:
//! refused at the edge, naming the field, the same on both backends.

use crate::harness::*;
use modelops_core::audit::AuditQuery;
use modelops_core::model::{MAX_DEPENDENCIES, MAX_TAGS};
use modelops_core::name::TagKey;
use modelops_core::page::{ModelQuery, VersionQuery};
use modelops_core::repo::TagTarget;

pub async fn long_tag_values_are_stored_and_found(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("m");
    // 100,000 two-byte characters: 200 kB, far past a PostgreSQL btree entry.
    let long = "é".repeat(modelops_core::name::MAX_TAG_VALUE_LEN);
    let mut new = new_model("m");
    new.tags = [("notes".to_string(), long.clone())].into();
    s.create_model(&actor("ana"), new).await.unwrap();
    s.create_version(&actor("ana"), &m, new_version()).await.unwrap();
    let key = TagKey::parse("notes").unwrap();
    s.set_tag(&actor("ana"), &TagTarget::Version(m.clone(), 1), &key, &long).await.unwrap();
    let found = s.list_models(&ModelQuery { tag: Some(("notes".into(), Some(long.clone()))), ..Default::default() }).await.unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].tags["notes"], long);
    let versions = s.list_versions(&m, &VersionQuery { tag: Some(("notes".into(), Some(long.clone()))), ..Default::default() }).await.unwrap();
    assert_eq!(versions.items.len(), 1);
    let none = s.list_models(&ModelQuery { tag: Some(("notes".into(), Some("é".repeat(modelops_core::name::MAX_TAG_VALUE_LEN - 1)))), ..Default::default() }).await.unwrap();
    assert!(none.items.is_empty());
}

pub async fn nul_in_filters_is_refused_naming_the_parameter(ctx: &Ctx) {
    let s = &ctx.registry;
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    let nul = || Some("a\0b".to_string());
    let q = ModelQuery::default;
    assert_invalid(s.list_models(&ModelQuery { owner: nul(), ..q() }).await, "owner");
    assert_invalid(s.list_models(&ModelQuery { team: nul(), ..q() }).await, "team");
    assert_invalid(s.list_models(&ModelQuery { text: nul(), ..q() }).await, "q");
    assert_invalid(s.list_models(&ModelQuery { name_prefix: nul(), ..q() }).await, "name_prefix");
    assert_invalid(s.list_models(&ModelQuery { tag: Some(("k\0".into(), None)), ..q() }).await, "tag");
    assert_invalid(s.list_models(&ModelQuery { tag: Some(("k".into(), nul())), ..q() }).await, "tag");
    assert_invalid(s.list_versions(&name("m"), &VersionQuery { tag: Some(("k".into(), nul())), ..Default::default() }).await, "tag");
    let a = AuditQuery::default;
    assert_invalid(s.list_events(&AuditQuery { subject: nul(), ..a() }).await, "subject");
    assert_invalid(s.list_events(&AuditQuery { actor: nul(), ..a() }).await, "actor");
    assert_invalid(s.list_events(&AuditQuery { action: nul(), ..a() }).await, "action");
    let mut new = new_model("n");
    new.tags = [("k".to_string(), "a\0b".to_string())].into();
    assert_invalid(s.create_model(&actor("ana"), new).await, "tags.k");
}

pub async fn counts_are_capped(ctx: &Ctx) {
    let s = &ctx.registry;
    let mut many_tags = new_model("m");
    many_tags.tags = (0..=MAX_TAGS).map(|i| (format!("k{i}"), "v".to_string())).collect();
    assert_invalid(s.create_model(&actor("ana"), many_tags).await, "tags");
    let mut many_deps = new_model("m");
    many_deps.dependencies = (0..=MAX_DEPENDENCIES).map(|i| name(&format!("d{i}"))).collect();
    assert_invalid(s.create_model(&actor("ana"), many_deps).await, "dependencies");

    // At the limit everything is written, in batches.
    for i in 0..MAX_DEPENDENCIES {
        s.create_model(&actor("ana"), new_model(&format!("d{i:03}"))).await.unwrap();
    }
    let mut full = new_model("m");
    full.tags = (0..MAX_TAGS).map(|i| (format!("k{i:03}"), format!("v{i}"))).collect();
    full.dependencies = (0..MAX_DEPENDENCIES).rev().map(|i| name(&format!("d{i:03}"))).collect();
    let created = s.create_model(&actor("ana"), full.clone()).await.unwrap();
    let read = s.get_model(&name("m")).await.unwrap();
    assert_eq!(read, created);
    assert_eq!((read.tags, read.dependencies), (full.tags, full.dependencies), "all tags, dependencies in their order");
    // One more tag on a full model is refused; changing an existing one is not.
    let target = TagTarget::Model(name("m"));
    assert_invalid(s.set_tag(&actor("ana"), &target, &TagKey::parse("one-more").unwrap(), "v").await, "key");
    s.set_tag(&actor("ana"), &target, &TagKey::parse("k000").unwrap(), "changed").await.unwrap();
}
