use crate::harness::*;
use chrono::Duration;
use modelops_core::model::{ModelKind, ModelPatch, ModelState, RiskTier};
use modelops_core::name::{AliasName, TagKey};
use modelops_core::page::{Direction, ModelOrder, ModelQuery, PageRequest};
use modelops_core::repo::TagTarget;
use modelops_core::version::VersionState;
use modelops_core::ErrorKind;

pub async fn create_and_get_model(ctx: &Ctx) {
    let s = &ctx.registry;
    s.create_model(&actor("ana"), new_model("upstream")).await.unwrap();
    let mut new = new_model("credit-risk");
    new.tags = [("domain".to_string(), "retail".to_string()), ("pii".to_string(), String::new())].into();
    new.dependencies = vec![name("upstream")];
    let created = s.create_model(&actor("bob"), new.clone()).await.unwrap();
    assert_eq!(created.name, new.name);
    assert_eq!(created.tags, new.tags);
    assert_eq!(created.dependencies, vec![name("upstream")]);
    assert_eq!(created.state, ModelState::Active);
    assert_eq!(created.latest_version, None);
    assert!(created.aliases.is_empty());
    assert_eq!(created.created_by, "bob");
    assert_eq!(created.created_at, start_time());
    assert_eq!(created.updated_at, start_time());

    let got = s.get_model(&name("credit-risk")).await.unwrap();
    assert_eq!(got, created, "a model reads back exactly as created, times to the microsecond");
}

pub async fn duplicate_name_is_already_exists(ctx: &Ctx) {
    let s = &ctx.registry;
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    let err = assert_kind(s.create_model(&actor("ana"), new_model("m")).await, ErrorKind::AlreadyExists);
    assert_eq!(err.to_string(), "model `m` already exists");
    // Names are case-sensitive.
    s.create_model(&actor("ana"), new_model("M")).await.unwrap();
}

pub async fn unknown_model_is_not_found(ctx: &Ctx) {
    let s = &ctx.registry;
    let nope = name("nope");
    assert_not_found(s.get_model(&nope).await, "model", "nope");
    assert_not_found(s.update_model(&actor("ana"), &nope, ModelPatch { owner: Some("x".into()), ..Default::default() }).await, "model", "nope");
    assert_not_found(s.retire_model(&actor("ana"), &nope).await, "model", "nope");
    assert_not_found(s.create_version(&actor("ana"), &nope, new_version()).await, "model", "nope");
    assert_not_found(s.get_version(&nope, 1).await, "model", "nope");
    assert_not_found(s.list_versions(&nope, &Default::default()).await, "model", "nope");
    let staging = AliasName::parse("staging").unwrap();
    assert_not_found(s.get_version_by_alias(&nope, &staging).await, "model", "nope");
    assert_not_found(s.set_alias(&actor("ana"), &nope, &staging, 1).await, "model", "nope");
    let key = TagKey::parse("k").unwrap();
    assert_not_found(s.set_tag(&actor("ana"), &TagTarget::Model(nope.clone()), &key, "v").await, "model", "nope");
}

pub async fn dependencies_must_name_registered_models(ctx: &Ctx) {
    let s = &ctx.registry;
    let mut new = new_model("m");
    new.dependencies = vec![name("ghost")];
    assert_invalid(s.create_model(&actor("ana"), new).await, "dependencies");
    assert_not_found(s.get_model(&name("m")).await, "model", "m");

    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    let patch = ModelPatch { dependencies: Some(vec![name("ghost")]), ..Default::default() };
    assert_invalid(s.update_model(&actor("ana"), &name("m"), patch).await, "dependencies");
    let patch = ModelPatch { dependencies: Some(vec![name("m")]), ..Default::default() };
    assert_invalid(s.update_model(&actor("ana"), &name("m"), patch).await, "dependencies");
}

pub async fn update_changes_fields_and_updated_at(ctx: &Ctx) {
    let s = &ctx.registry;
    for n in ["a", "b", "c"] {
        s.create_model(&actor("ana"), new_model(n)).await.unwrap();
    }
    let mut new = new_model("m");
    new.dependencies = vec![name("a")];
    let created = s.create_model(&actor("ana"), new).await.unwrap();
    ctx.clock.advance(Duration::seconds(5));
    let patch = ModelPatch {
        description: Some("new description".into()),
        owner: Some("carl".into()),
        risk_tier: Some(RiskTier::Critical),
        dependencies: Some(vec![name("c"), name("b")]),
        ..Default::default()
    };
    let updated = s.update_model(&actor("ana"), &name("m"), patch).await.unwrap();
    assert_eq!(updated.description, "new description");
    assert_eq!(updated.owner, "carl");
    assert_eq!(updated.team, created.team, "fields not in the patch stay");
    assert_eq!(updated.risk_tier, RiskTier::Critical);
    assert_eq!(updated.dependencies, vec![name("c"), name("b")], "dependency order is kept");
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(updated.updated_at, start_time() + Duration::seconds(5));
    assert_eq!(s.get_model(&name("m")).await.unwrap(), updated);
    // The text filter follows the new description.
    let q = ModelQuery { text: Some("NEW DESCR".into()), ..Default::default() };
    assert_eq!(names(&s.list_models(&q).await.unwrap().items), ["m"]);
}

pub async fn retire_model_retires_versions_and_aliases(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("m");
    s.create_model(&actor("ana"), new_model("m")).await.unwrap();
    for _ in 0..3 {
        s.create_version(&actor("ana"), &m, new_version()).await.unwrap();
    }
    let staging = AliasName::parse("staging").unwrap();
    s.set_alias(&actor("ana"), &m, &staging, 2).await.unwrap();
    s.retire_version(&actor("ana"), &m, 1).await.unwrap();
    ctx.clock.advance(Duration::seconds(1));

    let retired = s.retire_model(&actor("ana"), &m).await.unwrap();
    assert_eq!(retired.state, ModelState::Retired);
    assert!(retired.aliases.is_empty());
    assert_eq!(retired.latest_version, Some(3));
    assert_eq!(s.get_model(&m).await.unwrap(), retired, "the record is kept");
    for n in 1..=3 {
        let v = s.get_version(&m, n).await.unwrap();
        assert_eq!(v.state, VersionState::Retired);
        assert!(v.aliases.is_empty());
    }
    assert_not_found(s.get_version_by_alias(&m, &staging).await, "alias", "m@staging");

    let conflict = |r: Result<_, modelops_core::Error>| assert_kind(r.map(|_| ()), ErrorKind::Conflict);
    conflict(s.retire_model(&actor("ana"), &m).await.map(|_| ()));
    conflict(s.update_model(&actor("ana"), &m, ModelPatch { owner: Some("x".into()), ..Default::default() }).await.map(|_| ()));
    conflict(s.create_version(&actor("ana"), &m, new_version()).await.map(|_| ()));
    conflict(s.set_alias(&actor("ana"), &m, &staging, 3).await.map(|_| ()));
    conflict(s.delete_alias(&actor("ana"), &m, &staging).await);
    let key = TagKey::parse("k").unwrap();
    conflict(s.set_tag(&actor("ana"), &TagTarget::Model(m.clone()), &key, "v").await);
    conflict(s.set_tag(&actor("ana"), &TagTarget::Version(m.clone(), 3), &key, "v").await);

    // Retiring the model recorded one event per version it retired (2 and 3,
    // not the already retired 1), then the model's own.
    let events = chain(&*ctx.store, 0, 100).await;
    let tail: Vec<_> = events.iter().rev().take(3).rev().map(|e| (e.action.as_str(), e.subject.as_str())).collect();
    assert_eq!(tail, [("version.retire", "model/m/version/2"), ("version.retire", "model/m/version/3"), ("model.retire", "model/m")]);
    let v2 = &events[events.len() - 3];
    assert_eq!(v2.before.as_ref().unwrap()["aliases"], serde_json::json!(["staging"]));
    assert_eq!(v2.after.as_ref().unwrap()["aliases"], serde_json::json!([]));
    let last = events.last().unwrap();
    assert_eq!(last.before.as_ref().unwrap()["aliases"], serde_json::json!({"staging": 2}));
    assert_eq!(last.after.as_ref().unwrap()["state"], "retired");
}

pub fn names(models: &[modelops_core::model::Model]) -> Vec<String> {
    models.iter().map(|m| m.name.to_string()).collect()
}

async fn seed_inventory(ctx: &Ctx) {
    let s = &ctx.registry;
    /// name, kind, owner, team, tier, tags, description
    type Spec<'a> = (&'a str, ModelKind, &'a str, &'a str, RiskTier, &'a [(&'a str, &'a str)], &'a str);
    let specs: [Spec; 6] = [
        ("credit-risk", ModelKind::Onnx, "ana", "risk", RiskTier::High, &[("domain", "retail"), ("pii", "yes")], "Scores Loan applicants"),
        ("credit-limit", ModelKind::Statistical, "bob", "risk", RiskTier::Medium, &[("domain", "retail")], "sets limits"),
        ("churn", ModelKind::Onnx, "ana", "growth", RiskTier::Low, &[("domain", "marketing")], "predicts churn"),
        ("fraud", ModelKind::Rules, "carl", "fincrime", RiskTier::Critical, &[("pii", "no")], "flags ÉCHANGE transfers"),
        ("chat-assist", ModelKind::Llm, "dana", "support", RiskTier::Medium, &[], "answers loan questions"),
        ("legacy", ModelKind::External, "ana", "risk", RiskTier::Low, &[], "old scorer"),
    ];
    for (n, kind, owner, team, tier, tags, description) in specs {
        let mut new = new_model(n);
        new.kind = kind;
        new.owner = owner.into();
        new.team = team.into();
        new.risk_tier = tier;
        new.tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        new.description = description.into();
        s.create_model(&actor("ana"), new).await.unwrap();
        ctx.clock.advance(Duration::seconds(1));
    }
    s.retire_model(&actor("ana"), &name("legacy")).await.unwrap();
}

async fn list(ctx: &Ctx, q: ModelQuery) -> Vec<String> {
    names(&ctx.registry.list_models(&q).await.unwrap().items)
}

pub async fn list_models_filters(ctx: &Ctx) {
    seed_inventory(ctx).await;
    let q = ModelQuery::default;
    assert_eq!(list(ctx, q()).await, ["chat-assist", "churn", "credit-limit", "credit-risk", "fraud", "legacy"]);
    assert_eq!(list(ctx, ModelQuery { kind: Some(ModelKind::Onnx), ..q() }).await, ["churn", "credit-risk"]);
    assert_eq!(list(ctx, ModelQuery { owner: Some("ana".into()), ..q() }).await, ["churn", "credit-risk", "legacy"]);
    assert_eq!(list(ctx, ModelQuery { team: Some("risk".into()), ..q() }).await, ["credit-limit", "credit-risk", "legacy"]);
    assert_eq!(list(ctx, ModelQuery { risk_tier: Some(RiskTier::Medium), ..q() }).await, ["chat-assist", "credit-limit"]);
    assert_eq!(list(ctx, ModelQuery { tag: Some(("pii".into(), None)), ..q() }).await, ["credit-risk", "fraud"]);
    assert_eq!(list(ctx, ModelQuery { tag: Some(("domain".into(), Some("retail".into()))), ..q() }).await, ["credit-limit", "credit-risk"]);
    assert!(list(ctx, ModelQuery { tag: Some(("domain".into(), Some("RETAIL".into()))), ..q() }).await.is_empty());
    assert_eq!(list(ctx, ModelQuery { name_prefix: Some("cr".into()), ..q() }).await, ["credit-limit", "credit-risk"]);
    assert_eq!(list(ctx, ModelQuery { name_prefix: Some("credit-risk".into()), ..q() }).await, ["credit-risk"]);
    assert!(list(ctx, ModelQuery { name_prefix: Some("CR".into()), ..q() }).await.is_empty(), "prefixes are case-sensitive");
    assert!(list(ctx, ModelQuery { name_prefix: Some("c%".into()), ..q() }).await.is_empty(), "no wildcards");
    assert_eq!(list(ctx, ModelQuery { state: Some(ModelState::Retired), ..q() }).await, ["legacy"]);
    assert_eq!(list(ctx, ModelQuery { state: Some(ModelState::Active), ..q() }).await.len(), 5);
    // Text: case-insensitive substring of name, description or business purpose.
    assert_eq!(list(ctx, ModelQuery { text: Some("LOAN".into()), ..q() }).await, ["chat-assist", "credit-risk"]);
    assert_eq!(list(ctx, ModelQuery { text: Some("échange".into()), ..q() }).await, ["fraud"], "case folding is not ASCII-only");
    assert_eq!(list(ctx, ModelQuery { text: Some("churn".into()), ..q() }).await, ["churn"]);
    assert_eq!(list(ctx, ModelQuery { text: Some("CREDIT DECISIONS".into()), ..q() }).await.len(), 6);
    assert!(list(ctx, ModelQuery { text: Some("_".into()), ..q() }).await.is_empty(), "no wildcards");
    // Filters combine.
    let combined = ModelQuery { owner: Some("ana".into()), kind: Some(ModelKind::Onnx), tag: Some(("pii".into(), None)), ..q() };
    assert_eq!(list(ctx, combined).await, ["credit-risk"]);
}

pub async fn list_models_orderings(ctx: &Ctx) {
    seed_inventory(ctx).await;
    // `legacy` was retired last, so it was updated last; then touch `churn`.
    ctx.clock.advance(Duration::seconds(10));
    ctx.registry.update_model(&actor("ana"), &name("churn"), ModelPatch { owner: Some("eve".into()), ..Default::default() }).await.unwrap();
    let by = |order, direction| ModelQuery { order_by: Some(order), direction: Some(direction), ..Default::default() };
    let created = ["credit-risk", "credit-limit", "churn", "fraud", "chat-assist", "legacy"];
    assert_eq!(list(ctx, by(ModelOrder::CreatedAt, Direction::Asc)).await, created);
    let mut reversed = created;
    reversed.reverse();
    assert_eq!(list(ctx, by(ModelOrder::CreatedAt, Direction::Desc)).await, reversed);
    assert_eq!(list(ctx, by(ModelOrder::Name, Direction::Desc)).await, ["legacy", "fraud", "credit-risk", "credit-limit", "churn", "chat-assist"]);
    assert_eq!(list(ctx, by(ModelOrder::UpdatedAt, Direction::Desc)).await, ["churn", "legacy", "chat-assist", "fraud", "credit-limit", "credit-risk"]);
    assert_eq!(list(ctx, by(ModelOrder::UpdatedAt, Direction::Asc)).await, ["credit-risk", "credit-limit", "fraud", "chat-assist", "legacy", "churn"]);
}

pub async fn list_models_pages(ctx: &Ctx) {
    let s = &ctx.registry;
    // Equal creation times for some, so ties are broken by name.
    for (i, n) in ["g", "b", "e", "a", "f", "c", "d"].into_iter().enumerate() {
        s.create_model(&actor("ana"), new_model(n)).await.unwrap();
        if i % 2 == 1 {
            ctx.clock.advance(Duration::microseconds(1));
        }
    }
    for order in [ModelOrder::Name, ModelOrder::CreatedAt, ModelOrder::UpdatedAt] {
        for direction in [Direction::Asc, Direction::Desc] {
            let base = ModelQuery { order_by: Some(order), direction: Some(direction), ..Default::default() };
            let all = list(ctx, base.clone()).await;
            assert_eq!(all.len(), 7);
            let mut walked = Vec::new();
            let mut token = None;
            let mut pages = 0;
            loop {
                let q = ModelQuery { page: PageRequest::new(Some(3), token.clone()).unwrap(), ..base.clone() };
                let page = s.list_models(&q).await.unwrap();
                walked.extend(names(&page.items));
                pages += 1;
                match page.next_page_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            assert_eq!(walked, all, "{order} {direction}");
            assert_eq!(pages, 3);
        }
    }
    // An exact fit leaves no dangling token.
    let q = ModelQuery { page: PageRequest::new(Some(7), None).unwrap(), ..Default::default() };
    assert_eq!(s.list_models(&q).await.unwrap().next_page_token, None);

    let garbage = ModelQuery { page: PageRequest::new(Some(3), Some("not-a-token!".into())).unwrap(), ..Default::default() };
    assert_invalid(s.list_models(&garbage).await, "page_token");
    let first = s.list_models(&ModelQuery { page: PageRequest::new(Some(3), None).unwrap(), ..Default::default() }).await.unwrap();
    let other_order = ModelQuery { order_by: Some(ModelOrder::CreatedAt), page: PageRequest::new(Some(3), first.next_page_token).unwrap(), ..Default::default() };
    assert_invalid(s.list_models(&other_order).await, "page_token");
}
