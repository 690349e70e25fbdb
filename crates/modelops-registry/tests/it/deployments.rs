//! Deployments through the registry's use cases: only approved versions
//! that pass the `production` gate receive production traffic, the version
//! taking all traffic is promoted in the same transaction, racing changes
//! never both apply, and what a live deployment runs cannot be retired.

use crate::harness::*;
use chrono::{Duration, Utc};
use modelops_core::audit::AuditQuery;
use modelops_core::auth::{Action, Principal, Role};
use modelops_core::deployment::{CanaryPlan, CanaryProgress, CanaryStep, Deployment, DeploymentState, Hold, Route, ShadowRoute, Strategy};
use modelops_core::governance::{Decision, DecisionInput};
use modelops_core::model::RiskTier;
use modelops_core::version::{ModelCard, VersionState};
use modelops_core::{Error, ErrorKind};
use modelops_registry::deployments::DeploymentChange;
use modelops_registry::Registry;

fn dana() -> Principal {
    with_roles("dana", &[Role::Developer])
}
fn vic() -> Principal {
    with_roles("vic", &[Role::Validator])
}
fn dep() -> Principal {
    with_roles("dep", &[Role::Deployer])
}

async fn model(s: &Registry, n: &str, tier: RiskTier) {
    let mut m = new_model(n);
    m.owner = "dana".into();
    m.team = String::new();
    m.risk_tier = tier;
    m.developers = vec!["dana".into()];
    s.create_model(&actor("admin"), m).await.unwrap();
}

async fn draft(s: &Registry, n: &str) -> u32 {
    let mut v = new_version();
    v.card = ModelCard { intended_use: "churn scoring".into(), ..Default::default() };
    s.create_version(&dana(), &name(n), v).await.unwrap().number
}

async fn in_validation(s: &Registry, n: &str) -> u32 {
    let number = draft(s, n).await;
    s.submit_version(&dana(), &name(n), number).await.unwrap();
    number
}

async fn approved(s: &Registry, n: &str, expires_at: Option<chrono::DateTime<Utc>>) -> u32 {
    let number = in_validation(s, n).await;
    let input = DecisionInput { comment: "fine".into(), expires_at, ..Default::default() };
    let outcome = s.decide(&vic(), &name(n), number, Decision::Approve, input).await.unwrap();
    assert_eq!(outcome.version.state, VersionState::Approved, "{:?}", outcome.gate);
    number
}

fn deployment(d: &str, model: &str, routes: &[(u32, u32)]) -> Deployment {
    let now = Utc::now();
    Deployment {
        name: name(d),
        model: name(model),
        description: String::new(),
        strategy: if routes.len() > 1 { Strategy::Ab } else { Strategy::Direct },
        routes: routes.iter().map(|&(version, weight)| Route { version, weight }).collect(),
        shadows: vec![],
        sticky_header: None,
        canary: None,
        sampling: 1.0,
        state: DeploymentState::Stable,
        reason: None,
        previous: vec![],
        revision: 0,
        created_at: now,
        created_by: String::new(),
        updated_at: now,
        updated_by: String::new(),
    }
}

fn update(current: &Deployment, routes: &[(u32, u32)]) -> DeploymentChange {
    let mut next = current.clone();
    next.routes = routes.iter().map(|&(version, weight)| Route { version, weight }).collect();
    next.strategy = if routes.len() > 1 { Strategy::Ab } else { Strategy::Direct };
    DeploymentChange { action: Action::DeploymentUpdate, based_on: current.revision, next }
}

pub async fn only_approved_versions_through_the_gate_take_traffic(ctx: &Ctx) {
    let s = &ctx.registry;
    model(s, "churn", RiskTier::Medium).await;
    let v1 = draft(s, "churn").await;
    let err = s.create_deployment(&dep(), deployment("churn-prod", "churn", &[(v1, 100)])).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(m) if m.contains("`draft`") && m.contains("production")), "{err}");
    assert!(s.find_deployment(&name("churn-prod")).await.unwrap().is_none(), "nothing half-written");

    // A developer may not deploy; the refusal is on the record.
    let v2 = approved(s, "churn", None).await;
    assert_kind(s.create_deployment(&dana(), deployment("churn-prod", "churn", &[(v2, 100)])).await, ErrorKind::Forbidden);
    let denials = s.list_events(&AuditQuery { action: Some("access.denied".into()), ..Default::default() }).await.unwrap();
    assert!(denials.items.iter().any(|e| e.subject == "deployment/churn-prod" && e.actor == "dana"), "{denials:?}");

    // All traffic to an approved version: created, and the version promoted in the same change.
    let created = s.create_deployment(&dep(), deployment("churn-prod", "churn", &[(v2, 100)])).await.unwrap();
    assert_eq!((created.revision, created.created_by.as_str()), (1, "dep"));
    let promoted = s.get_version(&name("churn"), v2).await.unwrap();
    assert_eq!(promoted.state, VersionState::Production);
    assert_eq!(s.get_model(&name("churn")).await.unwrap().aliases.get("champion"), Some(&v2));
    let events = s.list_events(&AuditQuery { subject: Some("deployment/churn-prod".into()), ..Default::default() }).await.unwrap();
    assert!(events.items.iter().any(|e| e.action == "deployment.create" && e.actor == "dep"), "{events:?}");
    let promotion = s.list_events(&AuditQuery { action: Some("version.promote".into()), ..Default::default() }).await.unwrap();
    assert!(promotion.items.iter().any(|e| e.subject == format!("model/churn/version/{v2}")));
    assert_kind(s.create_deployment(&dep(), deployment("churn-prod", "churn", &[(v2, 100)])).await, ErrorKind::AlreadyExists);

    // A share of traffic to a version still in validation: refused; as a shadow: allowed.
    let v3 = in_validation(s, "churn").await;
    let err = s.change_deployment(&dep(), update(&created, &[(v2, 90), (v3, 10)])).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(m) if m.contains("`in_validation`")), "{err}");
    let mut shadowed = created.clone();
    shadowed.shadows = vec![ShadowRoute { version: v3, percent: 50.0 }];
    let change = DeploymentChange { action: Action::DeploymentUpdate, based_on: created.revision, next: shadowed };
    let with_shadow = s.change_deployment(&dep(), change).await.unwrap();
    assert_eq!((with_shadow.revision, with_shadow.shadows.len()), (2, 1));
    assert_eq!(s.get_version(&name("churn"), v3).await.unwrap().state, VersionState::InValidation, "a shadow is not promoted");
}

pub async fn an_expired_approval_keeps_a_version_from_traffic(ctx: &Ctx) {
    let s = &ctx.registry;
    model(s, "fraud", RiskTier::Medium).await;
    let v1 = approved(s, "fraud", None).await;
    let d = s.create_deployment(&dep(), deployment("fraud-live", "fraud", &[(v1, 100)])).await.unwrap();
    let v2 = approved(s, "fraud", Some(s.now() + Duration::days(1))).await;
    ctx.clock.advance(Duration::days(2));
    // The gate no longer counts the expired approval: 403 with its condition, nothing changed.
    let err = assert_kind(s.change_deployment(&dep(), update(&d, &[(v1, 50), (v2, 50)])).await, ErrorKind::Forbidden);
    let Error::Forbidden(denial) = err else { unreachable!() };
    assert!(denial.reasons().iter().any(|r| r.condition == "independent_validator"), "{denial:?}");
    let stored = s.find_deployment(&name("fraud-live")).await.unwrap().unwrap();
    assert_eq!((stored.revision, stored.routes.clone()), (1, vec![Route { version: v1, weight: 100 }]));
}

pub async fn racing_changes_one_wins_the_other_conflicts(ctx: &Ctx) {
    let s = &ctx.registry;
    model(s, "price", RiskTier::Low).await;
    let v1 = approved(s, "price", None).await;
    let v2 = approved(s, "price", None).await;
    let d = s.create_deployment(&dep(), deployment("price", "price", &[(v1, 100)])).await.unwrap();
    let deployer = dep();
    let (a, b) = tokio::join!(s.change_deployment(&deployer, update(&d, &[(v1, 50), (v2, 50)])), s.change_deployment(&deployer, update(&d, &[(v2, 100)])));
    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
    let loser = match (a, b) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
        other => panic!("{other:?}"),
    };
    assert!(matches!(&loser, Error::Conflict(m) if m.contains("changed meanwhile")), "{loser}");
    assert_eq!(s.find_deployment(&name("price")).await.unwrap().unwrap().revision, 2);
}

pub async fn what_a_deployment_runs_is_not_retired_under_it(ctx: &Ctx) {
    let s = &ctx.registry;
    model(s, "rank", RiskTier::Low).await;
    let v1 = approved(s, "rank", None).await;
    let v2 = approved(s, "rank", None).await;
    let d = s.create_deployment(&dep(), deployment("rank", "rank", &[(v1, 100)])).await.unwrap();
    let err = s.retire_version(&dep(), &name("rank"), v1).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(m) if m.contains("deployment `rank`")), "{err}");
    let err = s.retire_model(&dep(), &name("rank")).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(m) if m.contains("deployment `rank`")), "{err}");
    s.retire_version(&dep(), &name("rank"), v2).await.unwrap();
    // Retired: the deployment stays on the record and holds nothing back.
    let mut retired = d.clone();
    retired.state = DeploymentState::Retired;
    let change = DeploymentChange { action: Action::DeploymentRetire, based_on: d.revision, next: retired };
    s.change_deployment(&dep(), change).await.unwrap();
    s.retire_version(&dep(), &name("rank"), v1).await.unwrap();
    let all = s.list_deployments(&dep(), Some(&name("rank")), true).await.unwrap();
    assert_eq!(all.iter().map(|d| d.state).collect::<Vec<_>>(), [DeploymentState::Retired]);
    assert!(s.list_deployments(&dep(), None, false).await.unwrap().is_empty());
}

pub async fn a_rollback_never_waits_on_a_gate_and_edits_do_not_promote(ctx: &Ctx) {
    let s = &ctx.registry;
    model(s, "loans", RiskTier::Medium).await;
    model(s, "other", RiskTier::Low).await;
    // A deployment may not take another model's name (its OIP endpoint).
    let v = approved(s, "loans", None).await;
    let err = s.create_deployment(&dep(), deployment("other", "loans", &[(v, 100)])).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(m) if m.contains("another model")), "{err}");

    let stable = approved(s, "loans", Some(s.now() + Duration::days(1))).await;
    let d = s.create_deployment(&dep(), deployment("loans-live", "loans", &[(stable, 100)])).await.unwrap();
    let canary = approved(s, "loans", None).await;
    // Somebody moves champion elsewhere; an edit of the deployment does not move it back.
    s.promote_version(&dep(), &name("loans"), v).await.unwrap();
    let mut edited = d.clone();
    edited.description = "scores loan applications".into();
    let d = s.change_deployment(&dep(), DeploymentChange { action: Action::DeploymentUpdate, based_on: d.revision, next: edited }).await.unwrap();
    assert_eq!(s.get_model(&name("loans")).await.unwrap().aliases.get("champion"), Some(&v), "an edit promotes nothing");

    // A canary at its last step (the stable version takes no traffic).
    let mut progressing = d.clone();
    let plan = CanaryPlan { version: canary, steps: vec![CanaryStep { weight: 100, hold: Hold { requests: Some(10), duration_ms: None } }], condition: "false".into() };
    progressing.canary = Some(CanaryProgress { plan, stable, step: 0, step_started_at: s.now() });
    progressing.routes = vec![Route { version: canary, weight: 100 }];
    progressing.strategy = Strategy::Canary;
    progressing.state = DeploymentState::Progressing;
    let d = s.change_deployment(&dep(), DeploymentChange { action: Action::DeploymentUpdate, based_on: d.revision, next: progressing }).await.unwrap();
    // Its stable version cannot be retired under it.
    let err = s.retire_version(&dep(), &name("loans"), stable).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(m) if m.contains("loans-live")), "{err}");
    // The stable version's approval expires; the canary trips: back to stable all the same.
    ctx.clock.advance(Duration::days(2));
    let mut back = d.clone();
    back.routes = vec![Route { version: stable, weight: 100 }];
    back.canary = None;
    back.strategy = Strategy::Direct;
    back.state = DeploymentState::RolledBack;
    back.reason = Some("tripped".into());
    let system = Principal::system();
    let d = s.change_deployment(&system, DeploymentChange { action: Action::DeploymentRollback, based_on: d.revision, next: back }).await.unwrap();
    assert_eq!(d.routes, vec![Route { version: stable, weight: 100 }]);
    assert_eq!(s.get_model(&name("loans")).await.unwrap().aliases.get("champion"), Some(&v), "restoring promotes nothing");
}
