//! A deployment: a named endpoint serving one model (DESIGN §5). It holds
//! the routes production traffic takes (version, weight), the versions that
//! see a mirrored share of it (shadows), the strategy that moves traffic
//! (`direct`, `ab`, `canary`, `shadow`), its state and the versions it
//! served before (what `rollback` returns to). And the prediction record:
//! one call through a deployment as it was answered.
//!
//! The rules here are structural (weights sum to 100, steps increase, a
//! strategy has the routes it needs) and the canary's step arithmetic; the
//! rollback condition is compiled by the deployments crate, the governance
//! gates are checked by the registry inside the change's transaction.

use crate::error::{Error, Result};
use crate::model::{check_text, string_enum, MAX_SHORT_TEXT_LEN};
use crate::name::{quote, ModelName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

string_enum!(
    /// How a deployment moves traffic.
    Strategy {
        // One version takes all traffic.
        Direct => "direct",
        // Fixed weights, sticky by a request key.
        Ab => "ab",
        // A new version takes growing steps of traffic while the rollback
        // condition stays false.
        Canary => "canary",
        // One version answers; shadows see a share of the traffic, unanswered.
        Shadow => "shadow",
    }
);

string_enum!(
    /// Where a deployment stands.
    DeploymentState {
        // Serving its routes; nothing in progress.
        Stable => "stable",
        // A canary is taking steps.
        Progressing => "progressing",
        // The last canary was rolled back (by its condition or by hand);
        // the stable version serves.
        RolledBack => "rolled_back",
        // Removed: serves nothing, kept for the record.
        Retired => "retired",
    }
);

string_enum!(
    /// Which part of a deployment answered a call.
    RecordRoute { Primary => "primary", Shadow => "shadow" }
);

/// The most routes, shadows or canary steps a deployment holds.
pub const MAX_ROUTES: usize = 16;
/// The most earlier versions kept for `rollback`.
pub const MAX_PREVIOUS: usize = 20;
/// The longest request header name a sticky key is read from.
const MAX_HEADER_LEN: usize = 128;

/// A version and the percentage of the deployment's traffic it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub version: u32,
    pub weight: u32,
}

/// A version that sees `percent` of the calls, its answers recorded and
/// discarded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShadowRoute {
    pub version: u32,
    pub percent: f64,
}

/// How long a canary step lasts: until both the requests the canary has
/// answered in it and the time since it began reach what is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hold {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl Hold {
    pub fn duration(&self) -> Option<Duration> {
        self.duration_ms.map(Duration::from_millis)
    }

    fn check(&self, field: &str) -> Result<()> {
        if self.requests.is_none() && self.duration_ms.is_none() {
            return Err(Error::invalid(field, "a step is held for a number of requests, a duration or both; neither is given"));
        }
        if self.requests == Some(0) {
            return Err(Error::invalid(format!("{field}.requests"), "`0`: a step holds for at least one request"));
        }
        if self.duration_ms == Some(0) {
            return Err(Error::invalid(format!("{field}.duration"), "`0`: a step holds for a positive duration"));
        }
        Ok(())
    }
}

/// One canary step: the canary's share of traffic, and how long it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryStep {
    pub weight: u32,
    pub hold: Hold,
}

/// A canary as asked for: the new version, its steps and the condition that
/// rolls it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryPlan {
    pub version: u32,
    pub steps: Vec<CanaryStep>,
    /// A CEL condition over the step's live metrics; true rolls back.
    pub condition: String,
}

impl CanaryPlan {
    /// Steps strictly increasing, each 1–100 %, each held.
    pub fn check(&self) -> Result<()> {
        if self.version == 0 {
            return Err(Error::invalid("canary.version", "`0` is not a version number (1, 2, 3…)"));
        }
        if self.steps.is_empty() {
            return Err(Error::invalid("canary.steps", "a canary needs at least one step, such as [5, 25, 50, 100]"));
        }
        if self.steps.len() > MAX_ROUTES {
            return Err(Error::invalid("canary.steps", format!("{} steps; at most {MAX_ROUTES}", self.steps.len())));
        }
        let mut last = 0;
        for (i, step) in self.steps.iter().enumerate() {
            let field = format!("canary.steps[{i}]");
            if step.weight == 0 || step.weight > 100 {
                return Err(Error::invalid(format!("{field}.weight"), format!("`{}` is not a percentage from 1 to 100", step.weight)));
            }
            if step.weight <= last {
                let weights: Vec<String> = self.steps.iter().map(|s| s.weight.to_string()).collect();
                return Err(Error::invalid(
                    "canary.steps",
                    format!("the steps must increase: {} after {last} in [{}]", step.weight, weights.join(", ")),
                ));
            }
            last = step.weight;
            step.hold.check(&field)?;
        }
        if self.condition.trim().is_empty() {
            return Err(Error::invalid("canary.condition", "must not be empty"));
        }
        Ok(())
    }
}

/// A canary under way: its plan, the version it replaces and the step it is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryProgress {
    pub plan: CanaryPlan,
    /// The version the canary replaces, which serves the rest.
    pub stable: u32,
    /// Index into `plan.steps`.
    pub step: usize,
    pub step_started_at: DateTime<Utc>,
}

impl CanaryProgress {
    /// The routes of the current step: the canary takes its weight, the
    /// stable version the rest.
    pub fn routes(&self) -> Vec<Route> {
        let weight = self.plan.steps.get(self.step).map_or(100, |s| s.weight);
        let mut routes = vec![Route { version: self.plan.version, weight }];
        if weight < 100 {
            routes.insert(0, Route { version: self.stable, weight: 100 - weight });
        }
        routes
    }

    pub fn current_step(&self) -> Option<&CanaryStep> {
        self.plan.steps.get(self.step)
    }

    pub fn is_last_step(&self) -> bool {
        self.step + 1 >= self.plan.steps.len()
    }
}

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub name: ModelName,
    pub model: ModelName,
    #[serde(default)]
    pub description: String,
    pub strategy: Strategy,
    pub routes: Vec<Route>,
    #[serde(default)]
    pub shadows: Vec<ShadowRoute>,
    /// A request header whose value picks the route (`ab`): one customer
    /// always meets the same version while the weights stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryProgress>,
    /// The share of calls whose predictions are recorded, 0–1.
    pub sampling: f64,
    pub state: DeploymentState,
    /// Why the deployment is in its state (a rollback's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The versions that served all traffic before, oldest first: where
    /// `rollback` goes.
    #[serde(default)]
    pub previous: Vec<u32>,
    /// Increases with every change; a change may name the revision it was
    /// made against, and is refused when another came first.
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

impl Deployment {
    /// Checks what the strategy needs and what every deployment must hold.
    pub fn check(&self) -> Result<()> {
        check_text("description", &self.description, MAX_SHORT_TEXT_LEN)?;
        check_routes(&self.routes)?;
        match self.strategy {
            Strategy::Direct | Strategy::Shadow if self.routes.len() != 1 => {
                return Err(Error::invalid(
                    "routes",
                    format!("a `{}` deployment has one route (one version, weight 100); {} are given", self.strategy, self.routes.len()),
                ));
            }
            Strategy::Ab if self.routes.len() < 2 => {
                return Err(Error::invalid("routes", "an `ab` deployment splits traffic between two or more versions; one is given"));
            }
            Strategy::Canary if self.canary.is_none() => {
                return Err(Error::invalid("canary", "a `canary` deployment names its canary: the version, the steps and (optionally) the rollback condition"));
            }
            Strategy::Shadow if self.shadows.is_empty() => {
                return Err(Error::invalid("shadows", "a `shadow` deployment mirrors traffic to at least one version; none is given"));
            }
            _ => {}
        }
        if let Some(canary) = &self.canary {
            canary.plan.check()?;
            if canary.plan.version == canary.stable {
                return Err(Error::invalid("canary.version", format!("`{}` is already the version serving", canary.stable)));
            }
        }
        if self.shadows.len() > MAX_ROUTES {
            return Err(Error::invalid("shadows", format!("{} shadows; at most {MAX_ROUTES}", self.shadows.len())));
        }
        for (i, shadow) in self.shadows.iter().enumerate() {
            if shadow.version == 0 {
                return Err(Error::invalid(format!("shadows[{i}].version"), "`0` is not a version number (1, 2, 3…)"));
            }
            if !(shadow.percent > 0.0 && shadow.percent <= 100.0) {
                return Err(Error::invalid(format!("shadows[{i}].percent"), format!("`{}` is not a percentage above 0 and at most 100", shadow.percent)));
            }
            if self.routes.iter().any(|r| r.version == shadow.version) {
                return Err(Error::invalid(format!("shadows[{i}].version"), format!("`{}` already answers traffic on a route", shadow.version)));
            }
            if self.shadows[..i].iter().any(|s| s.version == shadow.version) {
                return Err(Error::invalid(format!("shadows[{i}].version"), format!("`{}` is listed twice", shadow.version)));
            }
        }
        if !(0.0..=1.0).contains(&self.sampling) {
            return Err(Error::invalid("sampling", format!("`{}` is not a share from 0 to 1", self.sampling)));
        }
        if let Some(header) = &self.sticky_header {
            check_header_name(header)?;
        }
        Ok(())
    }

    /// The version that takes all traffic when nothing is split: the only
    /// route, or the canary's stable version.
    pub fn stable_version(&self) -> Option<u32> {
        if let Some(canary) = &self.canary {
            return Some(canary.stable);
        }
        match self.routes.as_slice() {
            [only] => Some(only.version),
            _ => None,
        }
    }

    /// Every version the deployment runs (routes, canary, shadows).
    pub fn versions(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self.routes.iter().map(|r| r.version).collect();
        // The canary's stable version too, even at a 100 % step: a rollback
        // returns to it.
        all.extend(self.canary.as_ref().into_iter().flat_map(|c| [c.plan.version, c.stable]));
        all.extend(self.shadows.iter().map(|s| s.version));
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Remembers `version` as one served before (for `rollback`).
    pub fn remember(&mut self, version: u32) {
        self.previous.retain(|v| *v != version);
        self.previous.push(version);
        let excess = self.previous.len().saturating_sub(MAX_PREVIOUS);
        self.previous.drain(..excess);
    }
}

/// Weights are whole percentages summing to 100, versions distinct.
pub fn check_routes(routes: &[Route]) -> Result<()> {
    if routes.is_empty() {
        return Err(Error::invalid("routes", "a deployment needs at least one route (a version and its weight)"));
    }
    if routes.len() > MAX_ROUTES {
        return Err(Error::invalid("routes", format!("{} routes; at most {MAX_ROUTES}", routes.len())));
    }
    for (i, route) in routes.iter().enumerate() {
        if route.version == 0 {
            return Err(Error::invalid(format!("routes[{i}].version"), "`0` is not a version number (1, 2, 3…)"));
        }
        if route.weight > 100 {
            return Err(Error::invalid(format!("routes[{i}].weight"), format!("`{}` is not a percentage from 0 to 100", route.weight)));
        }
        if routes[..i].iter().any(|r| r.version == route.version) {
            return Err(Error::invalid(format!("routes[{i}].version"), format!("`{}` is listed twice", route.version)));
        }
    }
    let total: u32 = routes.iter().map(|r| r.weight).sum();
    if total != 100 {
        let weights: Vec<String> = routes.iter().map(|r| format!("{}: {}", r.version, r.weight)).collect();
        return Err(Error::invalid("routes", format!("the weights sum to {total}, not 100 ({})", weights.join(", "))));
    }
    Ok(())
}

/// An HTTP header name (RFC 9110 token characters).
fn check_header_name(header: &str) -> Result<()> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if header.is_empty() || header.len() > MAX_HEADER_LEN || !header.bytes().all(token) {
        return Err(Error::invalid("sticky_header", format!("{} is not an HTTP header name", quote(header))));
    }
    Ok(())
}

/// A duration as `500ms`, `30s`, `5m`, `2h` or a number of seconds.
pub fn parse_duration(field: &str, text: &str) -> Result<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| Error::invalid(field, format!("{} is not a duration such as `30s`, `5m` or `500ms`", quote(text))))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(Error::invalid(field, format!("{} is not a duration such as `30s`, `5m` or `500ms`", quote(text)))),
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 30.0 * 86_400.0) {
        return Err(Error::invalid(field, format!("{} is not a duration above 0 and at most 30 days", quote(text))));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// One call answered through a deployment, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    /// Assigned by the store, increasing; 0 before it is written.
    pub id: i64,
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub deployment: ModelName,
    pub model: ModelName,
    pub version: u32,
    pub route: RecordRoute,
    /// The inputs as Open Inference Protocol JSON tensors.
    pub inputs: String,
    /// The outputs as Open Inference Protocol JSON tensors (`[]` on error).
    pub outputs: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_us: u64,
}

/// Which records a listing reads: one deployment's, in a time window, after
/// an id (the page token), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionQuery {
    pub deployment: ModelName,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub after_id: Option<i64>,
    pub limit: u32,
    /// Reads only what a reader of the tensors needs — `id`, `at`,
    /// `version`, `inputs`, `outputs`, `error` — and leaves the rest empty
    /// (`request_id` and `model` "", route primary, latency 0). Live
    /// monitoring follows the log this way: each column read costs the
    /// store a copy and an allocation, and the five it skips made reading
    /// a one-row call about a third slower.
    pub payload_only: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn deployment(strategy: Strategy, routes: &[(u32, u32)]) -> Deployment {
        let now = Utc::now();
        Deployment {
            name: ModelName::parse("churn-prod").unwrap(),
            model: ModelName::parse("churn").unwrap(),
            description: String::new(),
            strategy,
            routes: routes.iter().map(|&(version, weight)| Route { version, weight }).collect(),
            shadows: vec![],
            sticky_header: None,
            canary: None,
            sampling: 1.0,
            state: DeploymentState::Stable,
            reason: None,
            previous: vec![],
            revision: 1,
            created_at: now,
            created_by: "ada".into(),
            updated_at: now,
            updated_by: "ada".into(),
        }
    }

    fn plan(weights: &[u32]) -> CanaryPlan {
        CanaryPlan {
            version: 4,
            steps: weights.iter().map(|&weight| CanaryStep { weight, hold: Hold { requests: Some(10), duration_ms: None } }).collect(),
            condition: "false".into(),
        }
    }

    #[test]
    fn weights_sum_to_one_hundred_and_name_the_field() {
        assert!(deployment(Strategy::Ab, &[(1, 90), (2, 10)]).check().is_ok());
        let err = deployment(Strategy::Ab, &[(1, 90), (2, 20)]).check().unwrap_err().to_string();
        assert!(err.contains("`routes`") && err.contains("sum to 110"), "{err}");
        let err = deployment(Strategy::Ab, &[(1, 50), (1, 50)]).check().unwrap_err().to_string();
        assert!(err.contains("routes[1].version") && err.contains("twice"), "{err}");
        let err = deployment(Strategy::Direct, &[(1, 50), (2, 50)]).check().unwrap_err().to_string();
        assert!(err.contains("one route"), "{err}");
        let err = deployment(Strategy::Ab, &[(1, 100)]).check().unwrap_err().to_string();
        assert!(err.contains("two or more"), "{err}");
        let err = deployment(Strategy::Shadow, &[(1, 100)]).check().unwrap_err().to_string();
        assert!(err.contains("`shadows`"), "{err}");
        let mut d = deployment(Strategy::Direct, &[(1, 100)]);
        d.shadows = vec![ShadowRoute { version: 2, percent: 150.0 }];
        assert!(d.check().unwrap_err().to_string().contains("shadows[0].percent"));
        d.shadows = vec![ShadowRoute { version: 1, percent: 10.0 }];
        assert!(d.check().unwrap_err().to_string().contains("already answers"));
        d.shadows.clear();
        d.sticky_header = Some("x customer".into());
        assert!(d.check().unwrap_err().to_string().contains("sticky_header"));
        d.sticky_header = None;
        d.sampling = 1.5;
        assert!(d.check().unwrap_err().to_string().contains("`sampling`"));
    }

    #[test]
    fn canary_steps_increase_and_hold() {
        assert!(plan(&[5, 25, 50, 100]).check().is_ok());
        let err = plan(&[5, 50, 25, 100]).check().unwrap_err().to_string();
        assert!(err.contains("canary.steps") && err.contains("increase"), "{err}");
        let err = plan(&[0, 50]).check().unwrap_err().to_string();
        assert!(err.contains("canary.steps[0].weight"), "{err}");
        let err = plan(&[5, 101]).check().unwrap_err().to_string();
        assert!(err.contains("canary.steps[1].weight"), "{err}");
        let mut p = plan(&[5, 100]);
        p.steps[1].hold = Hold::default();
        assert!(p.check().unwrap_err().to_string().contains("canary.steps[1]"));
        p.steps[1].hold.requests = Some(0);
        assert!(p.check().unwrap_err().to_string().contains("canary.steps[1].requests"));
    }

    #[test]
    fn a_canary_step_splits_between_stable_and_canary() {
        let progress = CanaryProgress { plan: plan(&[5, 25, 100]), stable: 3, step: 0, step_started_at: Utc::now() };
        assert_eq!(progress.routes(), vec![Route { version: 3, weight: 95 }, Route { version: 4, weight: 5 }]);
        let last = CanaryProgress { step: 2, ..progress };
        assert_eq!(last.routes(), vec![Route { version: 4, weight: 100 }]);
        assert!(last.is_last_step());
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("d", "30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("d", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("d", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("d", "2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("d", "soon").unwrap_err().to_string().contains("`d`"));
        assert!(parse_duration("d", "0s").is_err());
    }

    #[test]
    fn previous_versions_are_bounded_and_unique() {
        let mut d = deployment(Strategy::Direct, &[(1, 100)]);
        for v in 1..=30 {
            d.remember(v);
        }
        d.remember(15);
        assert_eq!(d.previous.len(), MAX_PREVIOUS);
        assert_eq!(d.previous.last(), Some(&15));
    }
}
