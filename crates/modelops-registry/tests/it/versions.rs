use crate::harness::*;
use chrono::Duration;
use modelops_core::name::{AliasName, TagKey};
use modelops_core::page::{Direction, PageRequest, VersionQuery};
use modelops_core::repo::{verify_chain, TagTarget};
use modelops_core::version::{ModelCard, SignatureField, DataType, VersionPatch, VersionState};
use modelops_core::ErrorKind;
use std::collections::BTreeSet;

pub async fn versions_are_numbered_per_model(ctx: &Ctx) {
    let s = &ctx.registry;
    s.create_model(&actor("ana"), new_model("a")).await.unwrap();
    s.create_model(&actor("ana"), new_model("b")).await.unwrap();
    let mut new = new_version();
    new.tags = [("stage".to_string(), "exp".to_string())].into();
    new.signature.inputs = vec![SignatureField { name: "income".into(), dtype: DataType::Float64, shape: vec![], allow_nan: false }];
    new.signature.outputs = vec![SignatureField { name: "score".into(), dtype: DataType::Float32, shape: vec![-1, 2], allow_nan: false }];
    let v1 = s.create_version(&actor("bob"), &name("a"), new.clone()).await.unwrap();
    assert_eq!((v1.number, v1.state, v1.created_by.as_str()), (1, VersionState::Draft, "bob"));
    assert_eq!((&v1.artifact.sha256, &v1.artifact.filename, v1.artifact.size), (&new.artifact.sha256, &new.artifact.filename, ARTIFACT.len() as u64));
    assert_eq!(v1.lineage, new.lineage);
    assert_eq!(v1.signature, new.signature);
    assert_eq!(v1.tags, new.tags);
    assert_eq!(v1.created_at, start_time());
    assert_eq!(s.get_version(&name("a"), 1).await.unwrap(), v1, "a version reads back exactly as created");

    assert_eq!(s.create_version(&actor("ana"), &name("a"), new_version()).await.unwrap().number, 2);
    assert_eq!(s.create_version(&actor("ana"), &name("b"), new_version()).await.unwrap().number, 1);
    assert_eq!(s.create_version(&actor("ana"), &name("a"), new_version()).await.unwrap().number, 3);
    assert_eq!(s.get_model(&name("a")).await.unwrap().latest_version, Some(3));
    assert_eq!(s.get_model(&name("b")).await.unwrap().latest_version, Some(1));
    assert_not_found(s.get_version(&name("a"), 4).await, "version", "a/4");
    assert_not_found(s.get_version(&name("b"), 0).await, "version", "b/0");
}

pub async fn parent_version_must_exist(ctx: &Ctx) {
    let s = &ctx.registry;
    s.create_model(&actor("ana"), new_model("a")).await.unwrap();
    s.create_model(&actor("ana"), new_model("b")).await.unwrap();
    s.create_version(&actor("ana"), &name("b"), new_version()).await.unwrap();
    let mut child = new_version();
    child.lineage.parent_version = Some(1);
    // Version 1 exists, but of another model.
    assert_invalid(s.create_version(&actor("ana"), &name("a"), child.clone()).await, "lineage.parent_version");
    assert_eq!(s.get_model(&name("a")).await.unwrap().latest_version, None, "a refused version takes no number");
    s.create_version(&actor("ana"), &name("a"), new_version()).await.unwrap();
    let v2 = s.create_version(&actor("ana"), &name("a"), child).await.unwrap();
    assert_eq!((v2.number, v2.lineage.parent_version), (2, Some(1)));
}

pub async fn only_description_and_card_change(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("m");
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    let created = s.create_version(&actor("ana"), &m, new_version()).await.unwrap();
    ctx.clock.advance(Duration::minutes(1));
    let card = ModelCard { limitations: "thin files".into(), metrics: [("auc".to_string(), 0.77)].into(), ..created.card.clone() };
    let patch = VersionPatch { description: Some("second look".into()), card: Some(card.clone()) };
    let updated = s.update_version(&actor("ana"), &m, 1, patch).await.unwrap();
    assert_eq!(updated.description, "second look");
    assert_eq!(updated.card, card);
    assert_eq!(updated.updated_at, start_time() + Duration::minutes(1));
    // What the API cannot change did not change.
    assert_eq!((&updated.artifact, &updated.lineage, &updated.signature), (&created.artifact, &created.lineage, &created.signature));
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(s.get_version(&m, 1).await.unwrap(), updated);
    assert_not_found(s.update_version(&actor("ana"), &m, 9, VersionPatch::default()).await, "version", "m/9");
}

pub async fn retire_version_removes_its_aliases(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("m");
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    s.create_version(&actor("ana"), &m, new_version()).await.unwrap();
    s.create_version(&actor("ana"), &m, new_version()).await.unwrap();
    let staging = AliasName::parse("staging").unwrap();
    let shadow = AliasName::parse("shadow").unwrap();
    let challenger = AliasName::parse("challenger").unwrap();
    s.set_alias(&actor("ana"), &m, &staging, 1).await.unwrap();
    s.set_alias(&actor("ana"), &m, &shadow, 1).await.unwrap();
    s.set_alias(&actor("ana"), &m, &challenger, 2).await.unwrap();

    let retired = s.retire_version(&actor("ana"), &m, 1).await.unwrap();
    assert_eq!(retired.state, VersionState::Retired);
    assert!(retired.aliases.is_empty());
    assert_eq!(s.get_version(&m, 1).await.unwrap(), retired);
    assert_not_found(s.get_version_by_alias(&m, &staging).await, "alias", "m@staging");
    assert_eq!(s.get_model(&m).await.unwrap().aliases, [("challenger".to_string(), 2)].into());

    let event = chain(&*ctx.store, 0, 100).await.pop().unwrap();
    assert_eq!((event.action.as_str(), event.subject.as_str()), ("version.retire", "model/m/version/1"));
    assert_eq!(event.before.unwrap()["aliases"], serde_json::json!(["shadow", "staging"]));

    let conflict = |r: Result<(), modelops_core::Error>| assert_kind(r, ErrorKind::Conflict);
    conflict(s.retire_version(&actor("ana"), &m, 1).await.map(|_| ()));
    conflict(s.update_version(&actor("ana"), &m, 1, VersionPatch { description: Some("x".into()), card: None }).await.map(|_| ()));
    conflict(s.set_alias(&actor("ana"), &m, &staging, 1).await.map(|_| ()));
    conflict(s.set_tag(&actor("ana"), &TagTarget::Version(m.clone(), 1), &TagKey::parse("k").unwrap(), "v").await);
    // The model itself is still active and takes new versions.
    assert_eq!(s.create_version(&actor("ana"), &m, new_version()).await.unwrap().number, 3);
}

fn numbers(page: &modelops_core::page::Page<modelops_core::version::ModelVersion>) -> Vec<u32> {
    page.items.iter().map(|v| v.number).collect()
}

pub async fn list_versions_filters_orders_and_pages(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("m");
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    s.create_model(&actor("ana"), new_model("other")).await.unwrap();
    s.create_version(&actor("ana"), &name("other"), new_version()).await.unwrap();
    for n in 1..=7u32 {
        let mut new = new_version();
        if n % 2 == 0 {
            new.tags = [("gpu".to_string(), if n == 4 { "a100" } else { "t4" }.to_string())].into();
        }
        s.create_version(&actor("ana"), &m, new).await.unwrap();
    }
    s.retire_version(&actor("ana"), &m, 3).await.unwrap();
    s.retire_version(&actor("ana"), &m, 6).await.unwrap();

    let q = VersionQuery::default;
    assert_eq!(numbers(&s.list_versions(&m, &q()).await.unwrap()), [7, 6, 5, 4, 3, 2, 1], "newest first by default");
    let asc = VersionQuery { direction: Some(Direction::Asc), ..q() };
    assert_eq!(numbers(&s.list_versions(&m, &asc).await.unwrap()), [1, 2, 3, 4, 5, 6, 7]);
    let retired = VersionQuery { state: Some(VersionState::Retired), ..q() };
    assert_eq!(numbers(&s.list_versions(&m, &retired).await.unwrap()), [6, 3]);
    let draft = VersionQuery { state: Some(VersionState::Draft), ..q() };
    assert_eq!(numbers(&s.list_versions(&m, &draft).await.unwrap()), [7, 5, 4, 2, 1]);
    let tagged = VersionQuery { tag: Some(("gpu".into(), None)), ..q() };
    assert_eq!(numbers(&s.list_versions(&m, &tagged).await.unwrap()), [6, 4, 2]);
    let t4 = VersionQuery { tag: Some(("gpu".into(), Some("t4".into()))), state: Some(VersionState::Draft), ..q() };
    assert_eq!(numbers(&s.list_versions(&m, &t4).await.unwrap()), [2]);

    for direction in [Direction::Asc, Direction::Desc] {
        let mut walked = Vec::new();
        let mut token = None;
        loop {
            let q = VersionQuery { direction: Some(direction), page: PageRequest::new(Some(2), token.clone()).unwrap(), ..q() };
            let page = s.list_versions(&m, &q).await.unwrap();
            assert!(page.items.len() <= 2);
            walked.extend(numbers(&page));
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let mut expected: Vec<u32> = (1..=7).collect();
        if direction == Direction::Desc {
            expected.reverse();
        }
        assert_eq!(walked, expected);
    }
    let garbage = VersionQuery { page: PageRequest::new(Some(2), Some("%%%".into())).unwrap(), ..q() };
    assert_invalid(s.list_versions(&m, &garbage).await, "page_token");
}

pub async fn concurrent_creators_each_get_their_own_number(ctx: &Ctx) {
    let s = &ctx.registry;
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..20 {
        let registry = ctx.registry.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..5 {
                let v = registry.create_version(&actor(&format!("writer-{t}")), &name("m"), new_version()).await.unwrap();
                got.push(v.number);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: BTreeSet<u32> = all.iter().copied().collect();
    assert_eq!(all.len(), 100);
    assert_eq!(unique, (1..=100).collect::<BTreeSet<u32>>(), "numbers 1..=100, each exactly once");
    assert_eq!(s.get_model(&name("m")).await.unwrap().latest_version, Some(100));
    let listed = s.list_versions(&name("m"), &VersionQuery { page: PageRequest::new(Some(1000), None).unwrap(), ..Default::default() }).await.unwrap();
    assert_eq!(listed.items.len(), 100);
    let summary = verify_chain(&*ctx.store).await.unwrap().unwrap();
    assert_eq!(summary.events, 101);
}
