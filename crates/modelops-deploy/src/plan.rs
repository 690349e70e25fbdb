//! What a deployment becomes: the requests (create, change) and the
//! transitions the server makes by itself (a canary's next step, its
//! completion, its rollback), each a pure function from the deployment as
//! stored to the deployment as it is to be. Nothing here loads a version
//! or writes; the service does, and the registry decides whether it may.

use crate::condition::{Condition, DEFAULT_CONDITION};
use chrono::{DateTime, Utc};
use modelops_core::deployment::{CanaryPlan, CanaryProgress, CanaryStep, Deployment, DeploymentState, Route, ShadowRoute, Strategy};
use modelops_core::name::ModelName;
use modelops_core::{Error, Result};

/// A canary as a request gives it; the condition defaults to
/// [`DEFAULT_CONDITION`].
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryRequest {
    pub version: u32,
    pub steps: Vec<CanaryStep>,
    pub condition: Option<String>,
}

/// `POST /api/v1/deployments`, `modelops deploy create`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateRequest {
    pub name: Option<ModelName>,
    pub model: Option<ModelName>,
    pub description: String,
    pub strategy: Option<Strategy>,
    /// Shorthand for one route of weight 100.
    pub version: Option<u32>,
    pub routes: Option<Vec<Route>>,
    pub shadows: Vec<ShadowRoute>,
    pub sticky_header: Option<String>,
    pub canary: Option<CanaryRequest>,
    pub sampling: Option<f64>,
}

/// `PATCH /api/v1/deployments/{name}`, `modelops deploy set`: only what
/// is given changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeRequest {
    /// The revision the change is made against; another change stored
    /// since makes it a conflict.
    pub revision: Option<u64>,
    pub description: Option<String>,
    pub strategy: Option<Strategy>,
    pub version: Option<u32>,
    pub routes: Option<Vec<Route>>,
    pub shadows: Option<Vec<ShadowRoute>>,
    /// `Some(None)` removes the sticky header.
    pub sticky_header: Option<Option<String>>,
    pub canary: Option<CanaryRequest>,
    pub sampling: Option<f64>,
}

impl ChangeRequest {
    pub fn is_empty(&self) -> bool {
        let Self { revision: _, description, strategy, version, routes, shadows, sticky_header, canary, sampling } = self;
        description.is_none()
            && strategy.is_none()
            && version.is_none()
            && routes.is_none()
            && shadows.is_none()
            && sticky_header.is_none()
            && canary.is_none()
            && sampling.is_none()
    }
}

fn routes_of(version: Option<u32>, routes: Option<Vec<Route>>) -> Result<Option<Vec<Route>>> {
    match (version, routes) {
        (Some(_), Some(_)) => Err(Error::invalid("version", "give `version` (one version, all traffic) or `routes`, not both")),
        (Some(0), None) => Err(Error::invalid("version", "`0` is not a version number (1, 2, 3…)")),
        (Some(v), None) => Ok(Some(vec![Route { version: v, weight: 100 }])),
        (None, routes) => Ok(routes),
    }
}

/// The strategy a set of routes implies when none is named.
fn implied_strategy(routes: &[Route], shadows: &[ShadowRoute]) -> Strategy {
    if routes.len() > 1 {
        Strategy::Ab
    } else if !shadows.is_empty() {
        Strategy::Shadow
    } else {
        Strategy::Direct
    }
}

fn canary_progress(request: CanaryRequest, stable: u32, now: DateTime<Utc>) -> Result<(CanaryProgress, Condition)> {
    let source = request.condition.unwrap_or_else(|| DEFAULT_CONDITION.to_string());
    let plan = CanaryPlan { version: request.version, steps: request.steps, condition: source };
    plan.check()?;
    let condition = Condition::compile(&plan.condition)?;
    if plan.version == stable {
        return Err(Error::invalid("canary.version", format!("`{stable}` is already the version serving")));
    }
    Ok((CanaryProgress { plan, stable, step: 0, step_started_at: now }, condition))
}

/// The deployment a create request asks for (times and revision are the
/// registry's to set).
pub fn create(request: CreateRequest, actor: &str, now: DateTime<Utc>) -> Result<Deployment> {
    let name = request.name.ok_or_else(|| Error::invalid("name", "is required"))?;
    let model = request.model.ok_or_else(|| Error::invalid("model", "is required"))?;
    let routes = routes_of(request.version, request.routes)?
        .ok_or_else(|| Error::invalid("routes", "give `version` (one version, all traffic) or `routes` (versions and weights)"))?;
    let mut deployment = Deployment {
        name,
        model,
        description: request.description,
        strategy: request.strategy.unwrap_or_else(|| implied_strategy(&routes, &request.shadows)),
        routes,
        shadows: request.shadows,
        sticky_header: request.sticky_header,
        canary: None,
        sampling: request.sampling.unwrap_or(1.0),
        state: DeploymentState::Stable,
        reason: None,
        previous: vec![],
        revision: 0,
        created_at: now,
        created_by: actor.to_string(),
        updated_at: now,
        updated_by: actor.to_string(),
    };
    if let Some(canary) = request.canary {
        start_canary(&mut deployment, canary, now)?;
    } else if deployment.strategy == Strategy::Canary {
        return Err(Error::invalid("canary", "a `canary` deployment names its canary: the version, the steps and (optionally) the rollback condition"));
    }
    deployment.check()?;
    Ok(deployment)
}

fn start_canary(deployment: &mut Deployment, request: CanaryRequest, now: DateTime<Utc>) -> Result<()> {
    let stable = match deployment.routes.as_slice() {
        [only] => only.version,
        _ => return Err(Error::invalid("canary", "a canary starts from one version taking all traffic; this deployment splits it between several")),
    };
    let (progress, _) = canary_progress(request, stable, now)?;
    deployment.routes = progress.routes();
    deployment.canary = Some(progress);
    deployment.strategy = Strategy::Canary;
    deployment.state = DeploymentState::Progressing;
    deployment.reason = None;
    Ok(())
}

/// The deployment a change request asks for.
pub fn change(current: &Deployment, request: ChangeRequest, now: DateTime<Utc>) -> Result<Deployment> {
    if request.is_empty() {
        return Err(Error::invalid("body", "names nothing to change"));
    }
    check_revision(current, request.revision)?;
    let mut next = current.clone();
    let routes = routes_of(request.version, request.routes)?;
    let progressing = current.state == DeploymentState::Progressing;
    if progressing && (routes.is_some() || request.canary.is_some() || request.strategy.is_some()) {
        return Err(Error::Conflict(format!(
            "deployment `{}` has a canary of version {} in progress; roll it back (`modelops rollback {}`) or let it finish first",
            current.name,
            current.canary.as_ref().map_or(0, |c| c.plan.version),
            current.name
        )));
    }
    if let Some(description) = request.description {
        next.description = description;
    }
    if let Some(shadows) = request.shadows {
        next.shadows = shadows;
    }
    if let Some(sticky) = request.sticky_header {
        next.sticky_header = sticky;
    }
    if let Some(sampling) = request.sampling {
        next.sampling = sampling;
    }
    match (routes, request.canary) {
        (Some(_), Some(_)) => return Err(Error::invalid("canary", "a canary starts from the routes the deployment has; give `canary` or new routes, not both")),
        (Some(routes), None) => {
            if let Some(stable) = current.stable_version() {
                if !routes.iter().any(|r| r.version == stable && r.weight == 100) {
                    next.remember(stable);
                }
            }
            next.strategy = request.strategy.unwrap_or_else(|| implied_strategy(&routes, &next.shadows));
            next.routes = routes;
            next.canary = None;
            next.state = DeploymentState::Stable;
            next.reason = None;
        }
        (None, Some(canary)) => start_canary(&mut next, canary, now)?,
        (None, None) => {
            if let Some(strategy) = request.strategy {
                next.strategy = strategy;
            }
        }
    }
    next.check()?;
    Ok(next)
}

/// A change made against `revision` is refused when another came first.
fn check_revision(current: &Deployment, revision: Option<u64>) -> Result<()> {
    match revision {
        Some(revision) if revision != current.revision => Err(Error::Conflict(format!(
            "deployment `{}` is at revision {}, not {revision}: it changed since it was read; read it again and retry",
            current.name, current.revision
        ))),
        _ => Ok(()),
    }
}

/// Where [`rollback`] sends all traffic: a running canary's stable version,
/// else the newest earlier version that is not serving now; `None` when
/// there is nowhere to go back to.
pub fn rollback_target(current: &Deployment) -> Option<u32> {
    if let Some(canary) = &current.canary {
        return Some(canary.stable);
    }
    let serving = current.stable_version();
    current.previous.iter().rev().copied().find(|v| Some(*v) != serving)
}

/// `modelops rollback NAME`: a canary in progress is stopped (the stable
/// version takes all traffic again); otherwise the version served before
/// the current one takes all traffic. `revision`: the one the caller saw
/// (a confirmation page), refused if another change came first.
pub fn rollback(current: &Deployment, actor: &str, revision: Option<u64>) -> Result<Deployment> {
    check_revision(current, revision)?;
    let mut next = current.clone();
    if let Some(canary) = &current.canary {
        next.routes = vec![Route { version: canary.stable, weight: 100 }];
        next.canary = None;
        next.strategy = if next.shadows.is_empty() { Strategy::Direct } else { Strategy::Shadow };
        next.state = DeploymentState::RolledBack;
        next.reason = Some(format!("canary of version {} rolled back by {actor}; version {} serves", canary.plan.version, canary.stable));
        return Ok(next);
    }
    let serving = current.stable_version();
    let target = rollback_target(current).ok_or_else(|| Error::Conflict(format!("deployment `{}` has no earlier version to roll back to", current.name)))?;
    next.previous.retain(|v| *v != target);
    if let Some(from) = serving {
        // Rolling forward again is a `set` to it; it is not kept as "previous".
        next.previous.retain(|v| *v != from);
    }
    next.routes = vec![Route { version: target, weight: 100 }];
    next.strategy = if next.shadows.is_empty() { Strategy::Direct } else { Strategy::Shadow };
    next.state = DeploymentState::RolledBack;
    let from = match serving {
        Some(v) => format!("version {v}"),
        None => {
            let split: Vec<String> = current.routes.iter().map(|r| format!("{}: {}%", r.version, r.weight)).collect();
            format!("the split {}", split.join(", "))
        }
    };
    next.reason = Some(format!("rolled back by {actor} from {from} to version {target}"));
    Ok(next)
}

/// The canary's next step, or its completion after the last one.
pub fn advance(current: &Deployment, now: DateTime<Utc>, why: &str) -> Option<Deployment> {
    let canary = current.canary.as_ref()?;
    let mut next = current.clone();
    if canary.is_last_step() {
        next.routes = vec![Route { version: canary.plan.version, weight: 100 }];
        next.canary = None;
        next.strategy = if next.shadows.is_empty() { Strategy::Direct } else { Strategy::Shadow };
        next.state = DeploymentState::Stable;
        next.remember(canary.stable);
        next.reason = Some(format!("canary of version {} completed and takes all traffic: {why}", canary.plan.version));
    } else {
        let mut progress = canary.clone();
        progress.step += 1;
        progress.step_started_at = now;
        next.routes = progress.routes();
        next.reason = Some(format!(
            "canary of version {} advanced to step {} of {} ({}%): {why}",
            canary.plan.version,
            progress.step + 1,
            progress.plan.steps.len(),
            progress.current_step().map_or(100, |s| s.weight)
        ));
        next.canary = Some(progress);
    }
    Some(next)
}

/// The canary rolled back by the server: its condition tripped (or its
/// completion was refused).
pub fn trip(current: &Deployment, reason: String) -> Option<Deployment> {
    let canary = current.canary.as_ref()?;
    let mut next = current.clone();
    next.routes = vec![Route { version: canary.stable, weight: 100 }];
    next.canary = None;
    next.strategy = if next.shadows.is_empty() { Strategy::Direct } else { Strategy::Shadow };
    next.state = DeploymentState::RolledBack;
    next.reason = Some(format!("canary of version {} rolled back at step {} ({}%): {reason}", canary.plan.version, canary.step + 1, canary.current_step().map_or(100, |s| s.weight)));
    Some(next)
}

/// A deployment taken out of service.
pub fn retire(current: &Deployment, actor: &str) -> Result<Deployment> {
    if current.state == DeploymentState::Retired {
        return Err(Error::Conflict(format!("deployment `{}` is retired already", current.name)));
    }
    let mut next = current.clone();
    next.canary = None;
    next.state = DeploymentState::Retired;
    next.reason = Some(format!("retired by {actor}"));
    Ok(next)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use modelops_core::deployment::Hold;

    fn name(s: &str) -> Option<ModelName> {
        Some(ModelName::parse(s).unwrap())
    }

    fn steps(weights: &[u32]) -> Vec<CanaryStep> {
        weights.iter().map(|&weight| CanaryStep { weight, hold: Hold { requests: Some(50), duration_ms: None } }).collect()
    }

    fn direct(version: u32) -> Deployment {
        create(CreateRequest { name: name("churn-prod"), model: name("churn"), version: Some(version), ..Default::default() }, "ada", Utc::now()).unwrap()
    }

    #[test]
    fn a_create_names_what_is_missing_or_wrong() {
        let err = create(CreateRequest { model: name("churn"), version: Some(1), ..Default::default() }, "ada", Utc::now()).unwrap_err();
        assert_eq!(err.field(), Some("name"));
        let err = create(CreateRequest { name: name("d"), model: name("churn"), ..Default::default() }, "ada", Utc::now()).unwrap_err();
        assert_eq!(err.field(), Some("routes"));
        let routes = vec![Route { version: 1, weight: 60 }, Route { version: 2, weight: 30 }];
        let err = create(CreateRequest { name: name("d"), model: name("churn"), routes: Some(routes), ..Default::default() }, "ada", Utc::now()).unwrap_err();
        assert!(err.to_string().contains("sum to 90"), "{err}");
        let canary = CanaryRequest { version: 2, steps: steps(&[5, 25]), condition: Some("canary.requests >".into()) };
        let err = create(CreateRequest { name: name("d"), model: name("churn"), version: Some(1), canary: Some(canary), ..Default::default() }, "ada", Utc::now()).unwrap_err();
        assert_eq!(err.field(), Some("canary.condition"), "{err}");
        let d = direct(3);
        assert_eq!((d.strategy, d.routes.clone()), (Strategy::Direct, vec![Route { version: 3, weight: 100 }]));
    }

    #[test]
    fn a_canary_walks_its_steps_and_completes() {
        let current = direct(3);
        let request = ChangeRequest { canary: Some(CanaryRequest { version: 4, steps: steps(&[5, 50, 100]), condition: None }), ..Default::default() };
        let mut d = change(&current, request, Utc::now()).unwrap();
        assert_eq!(d.state, DeploymentState::Progressing);
        assert_eq!(d.routes, vec![Route { version: 3, weight: 95 }, Route { version: 4, weight: 5 }]);
        assert_eq!(d.canary.as_ref().unwrap().plan.condition, DEFAULT_CONDITION);
        let err = change(&d, ChangeRequest { version: Some(5), ..Default::default() }, Utc::now()).unwrap_err();
        assert!(err.to_string().contains("in progress"), "{err}");
        d = advance(&d, Utc::now(), "healthy").unwrap();
        assert_eq!(d.routes, vec![Route { version: 3, weight: 50 }, Route { version: 4, weight: 50 }]);
        d = advance(&d, Utc::now(), "healthy").unwrap();
        assert_eq!(d.routes, vec![Route { version: 4, weight: 100 }]);
        d = advance(&d, Utc::now(), "healthy").unwrap();
        assert_eq!((d.routes.clone(), d.state, d.canary.is_none()), (vec![Route { version: 4, weight: 100 }], DeploymentState::Stable, true));
        assert_eq!(d.previous, vec![3]);
        let back = rollback(&d, "ada", None).unwrap();
        assert_eq!(back.routes, vec![Route { version: 3, weight: 100 }]);
        assert!(back.reason.as_deref().unwrap().contains("from version 4 to version 3"));
        assert!(rollback(&back, "ada", None).is_err(), "nothing earlier than 3");
    }

    #[test]
    fn a_tripped_canary_returns_to_stable_with_the_reason() {
        let current = direct(3);
        let request = ChangeRequest { canary: Some(CanaryRequest { version: 4, steps: steps(&[5, 100]), condition: None }), ..Default::default() };
        let d = change(&current, request, Utc::now()).unwrap();
        let back = trip(&d, "error rate 0.4".into()).unwrap();
        assert_eq!(back.routes, vec![Route { version: 3, weight: 100 }]);
        assert_eq!(back.state, DeploymentState::RolledBack);
        assert!(back.reason.as_deref().unwrap().contains("error rate 0.4"));
        let stopped = rollback(&d, "ada", None).unwrap();
        assert_eq!(stopped.routes, vec![Route { version: 3, weight: 100 }]);
    }

    #[test]
    fn a_stale_revision_is_a_conflict() {
        let current = direct(3);
        let err = change(&current, ChangeRequest { revision: Some(7), sampling: Some(0.5), ..Default::default() }, Utc::now()).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        // A rollback confirmed on another revision, too.
        let request = ChangeRequest { canary: Some(CanaryRequest { version: 4, steps: steps(&[5, 100]), condition: None }), ..Default::default() };
        let canary = change(&current, request, Utc::now()).unwrap();
        let err = rollback(&canary, "ada", Some(canary.revision + 1)).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        assert!(rollback(&canary, "ada", Some(canary.revision)).is_ok());
    }
}
