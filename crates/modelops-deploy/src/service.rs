//! The deployment use cases every surface calls (REST, OIP, CLI through
//! them) and the live side of deployments: the table of deployments as
//! served, the choice of a route per call, shadows, recording, and the
//! canary controller.
//!
//! A change is computed ([`crate::plan`]), its versions loaded and warmed,
//! then stored through the registry (which authorises, checks the gates and
//! audits), and only then swapped into the table: a version that does not
//! load refuses the change and the previous routes keep serving. Calls in
//! flight hold the table entry they started with, so they finish on the
//! version they were routed to; a switch fails no call.

use crate::condition::{Condition, Verdict};
use crate::plan::{self, ChangeRequest, CreateRequest};
use crate::recorder::{PendingRecord, RecordCounters, Recorder};
use crate::stats::{RouteStats, StatsSnapshot, Tally};
use crate::traffic::{RouteTraffic, TrafficSnapshot, TrafficTable};
use modelops_core::auth::{Action, Principal};
use modelops_core::deployment::{Deployment, DeploymentState, RecordRoute};
use modelops_core::name::ModelName;
use modelops_core::{Error, Result};
use modelops_registry::deployments::{deployment_subject, DeploymentChange};
use modelops_registry::Registry;
use modelops_serving::{PredictInput, Prediction, ServedVersion, Serving, Tensor, TensorData, VersionRef};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Settings of the live side.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// How often canaries are judged (and their holds checked).
    pub tick: Duration,
    /// How often the table is compared with the store (changes made by
    /// another replica; deployments at start-up).
    pub refresh: Duration,
    /// Recorded predictions older than this are pruned; none: kept.
    pub retention: Option<Duration>,
    pub recorder: crate::recorder::RecorderConfig,
    /// Canaries are judged and records pruned only while this replica
    /// holds the background lease; every replica serves and refreshes.
    pub leadership: modelops_core::replica::Leadership,
    /// This replica's name among those sharing the database (the lease
    /// holder's), under which it publishes its canary statistics.
    pub replica: String,
    /// How often this replica publishes its canary statistics, and how old
    /// the others' may be when a canary is judged.
    pub publish: Duration,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(100),
            refresh: Duration::from_secs(2),
            retention: Some(Duration::from_secs(30 * 86_400)),
            recorder: crate::recorder::RecorderConfig::default(),
            leadership: modelops_core::replica::Leadership::always(),
            replica: "local".into(),
            publish: Duration::from_secs(1),
        }
    }
}

/// One version on a deployment's routes, loaded.
struct LiveRoute {
    served: ServedVersion,
    /// Upper bound (exclusive) of this route's slice of 0..100.
    until: u32,
    weight: u32,
    stats: Arc<RouteStats>,
    traffic: Arc<RouteTraffic>,
}

struct LiveShadow {
    served: ServedVersion,
    percent: f64,
    stats: Arc<RouteStats>,
    traffic: Arc<RouteTraffic>,
}

/// A canary's judge for the current step.
struct LiveCanary {
    condition: Condition,
    /// Index of the canary's route and of the stable one (absent at 100 %).
    canary: usize,
    stable: Option<usize>,
}

/// A deployment as served: immutable, replaced whole on every change.
struct Live {
    deployment: Deployment,
    routes: Vec<LiveRoute>,
    shadows: Vec<LiveShadow>,
    canary: Option<LiveCanary>,
    counters: Arc<DeploymentCounters>,
}

/// What a deployment answered since start-up (kept across its changes).
#[derive(Debug)]
struct DeploymentCounters {
    calls: AtomicU64,
    errors: AtomicU64,
    shadow_calls: AtomicU64,
    /// Calls not recorded because of the sampling rate.
    sampled_out: AtomicU64,
    /// Mirrored calls not made because the deployment's shadows already
    /// had [`MAX_SHADOWS_IN_FLIGHT`] calls running.
    shadow_skipped: AtomicU64,
    /// Bounds the shadow calls running at once: a slow shadow must not
    /// pile up work behind the traffic it mirrors.
    shadow_slots: Arc<tokio::sync::Semaphore>,
}

impl Default for DeploymentCounters {
    fn default() -> Self {
        Self {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            shadow_calls: AtomicU64::new(0),
            sampled_out: AtomicU64::new(0),
            shadow_skipped: AtomicU64::new(0),
            shadow_slots: Arc::new(tokio::sync::Semaphore::new(MAX_SHADOWS_IN_FLIGHT)),
        }
    }
}

/// How long the controller waits before retrying an automatic change that
/// failed for another reason than a race.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Calls a canary answers in a step held by duration alone before it
/// advances: the default condition gives no verdict on fewer, and a step
/// must not pass on no evidence.
pub const MIN_STEP_REQUESTS: u64 = 20;

/// Shadow calls of one deployment running at once at most; past it a
/// mirrored call is skipped and counted.
pub const MAX_SHADOWS_IN_FLIGHT: usize = 256;

/// A call's route, chosen before its inputs are decoded (the native form
/// decodes by the chosen version's signature).
pub struct Routed {
    live: Arc<Live>,
    route: usize,
}

impl Routed {
    pub fn served(&self) -> &ServedVersion {
        &self.live.routes[self.route].served
    }

    pub fn deployment(&self) -> &Deployment {
        &self.live.deployment
    }
}

/// A deployment with what it has done since start-up.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentStatus {
    #[serde(flatten)]
    pub deployment: Deployment,
    pub live: Option<LiveStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveStatus {
    pub calls: u64,
    pub errors: u64,
    pub shadow_calls: u64,
    pub shadow_skipped: u64,
    pub sampled_out: u64,
    pub records: RecordCounters,
    pub routes: Vec<RouteStatus>,
    pub shadows: Vec<RouteStatus>,
    /// The canary's judge at this moment: its condition over the current
    /// step's statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteStatus {
    pub version: u32,
    pub weight: f64,
    /// Since the route's current step (or the deployment's last change).
    pub stats: StatsSnapshot,
}

#[derive(Debug, Clone, Serialize)]
pub struct CanaryStatus {
    pub version: u32,
    pub step: usize,
    pub steps: usize,
    pub weight: u32,
    pub condition: String,
    pub tripped: Option<String>,
}

/// The deployment use cases over one registry and one serving layer.
#[derive(Clone)]
pub struct Deployments {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    serving: Serving,
    recorder: Recorder,
    config: DeployConfig,
    table: RwLock<HashMap<String, Arc<Live>>>,
    counters: RwLock<HashMap<String, Arc<DeploymentCounters>>>,
    /// Cumulative calls per deployment, version and route (monitoring).
    traffic: TrafficTable,
    /// Wakes the controller when a canary's step may have ended.
    wake: tokio::sync::Notify,
    /// Set when another replica changed a deployment: the controller
    /// refreshes at once instead of at its next poll.
    refresh_due: std::sync::atomic::AtomicBool,
    /// Other replicas' canary statistics, by deployment: the revision they
    /// are of, when they were read, and the tallies by route version.
    remote: std::sync::Mutex<HashMap<String, RemoteTallies>>,
    /// What this replica last published: (deployment, revision, version) →
    /// requests then, so an unchanged route is not written again.
    published: std::sync::Mutex<HashMap<(String, u64, u32), u64>>,
    /// Serialises the controller's changes with table refreshes.
    installing: tokio::sync::Mutex<()>,
    /// Retired deployments and the revision that retired them: an install
    /// of an earlier revision finishing late must not serve one again.
    retired: RwLock<HashMap<String, u64>>,
    /// Deployments whose last automatic change failed, and when: judged
    /// again only after [`RETRY_AFTER`], so a refusal is not repeated (and
    /// recorded) ten times a second.
    failed: std::sync::Mutex<HashMap<String, Instant>>,
    sequence: AtomicU64,
}

impl Deployments {
    /// The live side over `registry` and `serving`; records go to
    /// `recorder`. Call [`Deployments::start`] to serve the stored
    /// deployments and run the controller.
    pub fn new(registry: Registry, serving: Serving, recorder: Recorder, config: DeployConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                serving,
                recorder,
                config,
                table: RwLock::new(HashMap::new()),
                counters: RwLock::new(HashMap::new()),
                traffic: TrafficTable::default(),
                wake: tokio::sync::Notify::new(),
                refresh_due: std::sync::atomic::AtomicBool::new(false),
                remote: std::sync::Mutex::new(HashMap::new()),
                published: std::sync::Mutex::new(HashMap::new()),
                installing: tokio::sync::Mutex::new(()),
                retired: RwLock::new(HashMap::new()),
                failed: std::sync::Mutex::new(HashMap::new()),
                sequence: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
            }),
        }
    }

    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// Loads the stored deployments, then runs the controller (canaries,
    /// refresh from the store, retention) until the returned handle is
    /// aborted or the runtime stops.
    pub async fn start(&self) -> tokio::task::JoinHandle<()> {
        if let Err(e) = self.refresh().await {
            tracing::error!(error = %e, "cannot load the stored deployments");
        }
        let this = self.clone();
        tokio::spawn(async move { this.control().await })
    }

    // ---------------------------------------------------------------- changes

    pub async fn create(&self, principal: &Principal, request: CreateRequest) -> Result<DeploymentStatus> {
        // Authorised before any version is loaded: loading costs.
        let subject = request.name.as_ref().map_or_else(|| "deployment".into(), |n| deployment_subject(n.as_str()));
        self.inner.registry.check_access(principal, Action::DeploymentCreate, &subject).await?;
        let planned = plan::create(request, principal.name(), self.inner.registry.now())?;
        if self.inner.registry.find_deployment(&planned.name).await?.is_some() {
            return Err(Error::already_exists("deployment", &planned.name));
        }
        let live = self.build(&planned, None).await?;
        let stored = self.inner.registry.create_deployment(principal, planned).await?;
        Ok(self.install_built(stored, live))
    }

    pub async fn change(&self, principal: &Principal, name: &ModelName, request: ChangeRequest) -> Result<DeploymentStatus> {
        self.inner.registry.check_access(principal, Action::DeploymentUpdate, &deployment_subject(name.as_str())).await?;
        let mut attempts = 0;
        loop {
            let current = self.stored(name).await?;
            let next = plan::change(&current, request.clone(), self.inner.registry.now())?;
            match self.apply(principal, Action::DeploymentUpdate, &current, next).await {
                // A change that names no revision is made against what is
                // stored: one the controller (a canary's step) stored
                // meanwhile is read again, not a conflict for the caller.
                Err(Error::Conflict(reason)) if request.revision.is_none() && reason.contains("changed meanwhile") && attempts < 3 => attempts += 1,
                other => return other,
            }
        }
    }

    /// Back to the version served before, or a canary stopped; with
    /// `revision`, only if the deployment is still at it.
    pub async fn rollback(&self, principal: &Principal, name: &ModelName, revision: Option<u64>) -> Result<DeploymentStatus> {
        self.inner.registry.check_access(principal, Action::DeploymentRollback, &deployment_subject(name.as_str())).await?;
        let current = self.stored(name).await?;
        let next = plan::rollback(&current, principal.name(), revision)?;
        self.apply(principal, Action::DeploymentRollback, &current, next).await
    }

    /// The signature a version of a deployment's model is served with (its
    /// stored one, or the artifact's when it stores none): what its
    /// recorded calls hold.
    pub async fn served_signature(&self, model: &ModelName, version: u32) -> Result<modelops_core::version::Signature> {
        let served = self.inner.serving.version(&Principal::system(), model, &VersionRef::Number(version)).await?;
        Ok(served.signature.as_ref().clone())
    }

    /// Rolls back a running canary for `reason` (a monitoring alert's), as
    /// the server: the stable version takes all traffic again, the reason
    /// in the audit chain. `None` when no canary of `version` runs.
    /// Only a canary of `version` (the version the alert is about) is
    /// rolled back: an alert on the stable version says nothing against
    /// the canary.
    pub async fn trip_canary(&self, name: &ModelName, version: u32, reason: String) -> Result<Option<DeploymentStatus>> {
        let _installing = self.inner.installing.lock().await;
        let current = self.stored(name).await?;
        if current.canary.as_ref().is_none_or(|c| c.plan.version != version) {
            return Ok(None);
        }
        let Some(next) = plan::trip(&current, reason) else { return Ok(None) };
        self.apply(&Principal::system(), Action::DeploymentRollback, &current, next).await.map(Some)
    }

    /// Takes a deployment out of service; its records are kept.
    pub async fn retire(&self, principal: &Principal, name: &ModelName) -> Result<DeploymentStatus> {
        self.inner.registry.check_access(principal, Action::DeploymentRetire, &deployment_subject(name.as_str())).await?;
        let current = self.stored(name).await?;
        let next = plan::retire(&current, principal.name())?;
        let change = DeploymentChange { action: Action::DeploymentRetire, based_on: current.revision, next };
        let stored = self.inner.registry.change_deployment(principal, change).await?;
        self.bury(&stored);
        Ok(DeploymentStatus { deployment: stored, live: None })
    }

    pub async fn get(&self, principal: &Principal, name: &ModelName) -> Result<DeploymentStatus> {
        let deployment = self.inner.registry.get_deployment(principal, name).await?;
        Ok(self.status(deployment))
    }

    pub async fn list(&self, principal: &Principal, model: Option<&ModelName>, include_retired: bool) -> Result<Vec<DeploymentStatus>> {
        let all = self.inner.registry.list_deployments(principal, model, include_retired).await?;
        Ok(all.into_iter().map(|d| self.status(d)).collect())
    }

    async fn stored(&self, name: &ModelName) -> Result<Deployment> {
        let current = self.inner.registry.find_deployment(name).await?.ok_or_else(|| Error::not_found("deployment", name))?;
        if current.state == DeploymentState::Retired {
            return Err(Error::Conflict(format!("deployment `{name}` is retired")));
        }
        Ok(current)
    }

    async fn apply(&self, principal: &Principal, action: Action, current: &Deployment, next: Deployment) -> Result<DeploymentStatus> {
        let previous = self.live(current.name.as_str());
        let live = self.build(&next, previous.as_deref()).await?;
        let change = DeploymentChange { action, based_on: current.revision, next };
        let stored = self.inner.registry.change_deployment(principal, change).await?;
        Ok(self.install_built(stored, live))
    }

    /// Loads and warms every version `deployment` runs (those the table
    /// serves already are reused, with their statistics when the route and
    /// step are unchanged).
    async fn build(&self, deployment: &Deployment, previous: Option<&Live>) -> Result<Built> {
        let mut loaded: HashMap<u32, ServedVersion> = HashMap::new();
        if let Some(previous) = previous {
            for route in &previous.routes {
                loaded.insert(route.served.version.number, route.served.clone());
            }
            for shadow in &previous.shadows {
                loaded.insert(shadow.served.version.number, shadow.served.clone());
            }
        }
        for version in deployment.versions() {
            if loaded.contains_key(&version) {
                continue;
            }
            let served = self.inner.serving.version(&Principal::system(), &deployment.model, &VersionRef::Number(version)).await.map_err(|e| match e {
                Error::Conflict(reason) => Error::Conflict(format!("the change is refused and the deployment keeps serving as it was: {reason}")),
                other => other,
            })?;
            warm(&served).await;
            loaded.insert(version, served);
        }
        let condition = match &deployment.canary {
            Some(canary) => Some(Condition::compile(&canary.plan.condition)?),
            None => None,
        };
        Ok(Built { loaded, condition })
    }

    /// Stops serving a retired deployment, for good.
    fn bury(&self, retired: &Deployment) {
        self.inner.retired.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(retired.name.as_str().to_string(), retired.revision);
        self.table_mut().remove(retired.name.as_str());
    }

    fn install_built(&self, stored: Deployment, built: Built) -> DeploymentStatus {
        let buried = self.inner.retired.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(stored.name.as_str()).copied();
        if buried.is_some_and(|r| r >= stored.revision) {
            return self.status(stored);
        }
        let previous = self.live(stored.name.as_str());
        if let Some(live) = self.assemble(stored.clone(), built, previous.as_deref()) {
            let mut table = self.table_mut();
            // Two changes committed back to back may finish in either
            // order here: the later revision stays.
            let newer = table.get(stored.name.as_str()).is_none_or(|current| current.deployment.revision < stored.revision);
            if newer {
                table.insert(stored.name.as_str().to_string(), Arc::new(live));
            }
            drop(table);
            self.inner.wake.notify_one();
        }
        self.status(stored)
    }

    fn assemble(&self, deployment: Deployment, built: Built, previous: Option<&Live>) -> Option<Live> {
        if deployment.state == DeploymentState::Retired {
            return None;
        }
        // Statistics carry over while a route keeps its version, weight and
        // canary step: they describe "since the route took this share".
        let same_step = previous.is_some_and(|p| {
            let step = |d: &Deployment| d.canary.as_ref().map(|c| (c.plan.version, c.step, c.step_started_at));
            step(&p.deployment) == step(&deployment)
        });
        let mut routes = Vec::with_capacity(deployment.routes.len());
        let mut until = 0;
        for route in &deployment.routes {
            let served = built.loaded.get(&route.version)?.clone();
            let stats = previous
                .filter(|_| same_step)
                .and_then(|p| p.routes.iter().find(|r| r.served.version.number == route.version && r.weight == route.weight))
                .map_or_else(|| Arc::new(RouteStats::new()), |r| r.stats.clone());
            until += route.weight;
            let traffic = self.inner.traffic.of(deployment.name.as_str(), route.version, RecordRoute::Primary);
            routes.push(LiveRoute { served, until, weight: route.weight, stats, traffic });
        }
        let shadows = deployment
            .shadows
            .iter()
            .filter_map(|s| {
                let served = built.loaded.get(&s.version)?.clone();
                let stats = previous
                    .and_then(|p| p.shadows.iter().find(|x| x.served.version.number == s.version))
                    .map_or_else(|| Arc::new(RouteStats::new()), |x| x.stats.clone());
                let traffic = self.inner.traffic.of(deployment.name.as_str(), s.version, RecordRoute::Shadow);
                Some(LiveShadow { served, percent: s.percent, stats, traffic })
            })
            .collect();
        let canary = match (&deployment.canary, built.condition) {
            (Some(progress), Some(condition)) => {
                let canary = routes.iter().position(|r| r.served.version.number == progress.plan.version)?;
                let stable = routes.iter().position(|r| r.served.version.number == progress.stable);
                Some(LiveCanary { condition, canary, stable })
            }
            _ => None,
        };
        let counters = self.counters_of(deployment.name.as_str());
        Some(Live { deployment, routes, shadows, canary, counters })
    }

    fn counters_of(&self, name: &str) -> Arc<DeploymentCounters> {
        if let Some(c) = self.inner.counters.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name) {
            return c.clone();
        }
        self.inner.counters.write().unwrap_or_else(std::sync::PoisonError::into_inner).entry(name.to_string()).or_default().clone()
    }

    fn table_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Live>>> {
        self.inner.table.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn live(&self, name: &str) -> Option<Arc<Live>> {
        self.inner.table.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned()
    }

    /// Cumulative calls, errors and latency histogram per deployment,
    /// version and route since start-up (never reset, unlike the routes'
    /// statistics), and the prediction-record counters of every deployment
    /// served or called: what monitoring scrapes.
    pub fn traffic(&self) -> TrafficSnapshot {
        let served: Vec<String> = self.inner.table.read().unwrap_or_else(std::sync::PoisonError::into_inner).keys().cloned().collect();
        self.inner.traffic.snapshot(served, |name| self.inner.recorder.counters(name))
    }

    /// Whether a deployment of this name is served (the OIP routes serve a
    /// deployment under a model's path when one is so named).
    pub fn serves(&self, name: &str) -> bool {
        self.inner.table.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(name)
    }

    fn status(&self, deployment: Deployment) -> DeploymentStatus {
        let live = self.live(deployment.name.as_str()).filter(|l| l.deployment.revision == deployment.revision).map(|live| {
            // A canary's figures over every replica, as last read by the
            // judge (this replica's alone where it does not judge).
            let remote = self.cached_remote_tallies(&live);
            let route_status = |(i, r): (usize, &LiveRoute)| RouteStatus { version: r.served.version.number, weight: f64::from(r.weight), stats: route_snapshot(&live, i, &remote) };
            let canary = live.canary.as_ref().and_then(|c| {
                let progress = live.deployment.canary.as_ref()?;
                let verdict = judge(&live, c, &remote);
                Some(CanaryStatus {
                    version: progress.plan.version,
                    step: progress.step + 1,
                    steps: progress.plan.steps.len(),
                    weight: progress.current_step().map_or(100, |s| s.weight),
                    condition: progress.plan.condition.clone(),
                    tripped: match verdict {
                        Verdict::Healthy => None,
                        Verdict::Tripped { reason } => Some(reason),
                    },
                })
            });
            LiveStatus {
                calls: live.counters.calls.load(Relaxed),
                errors: live.counters.errors.load(Relaxed),
                shadow_calls: live.counters.shadow_calls.load(Relaxed),
                shadow_skipped: live.counters.shadow_skipped.load(Relaxed),
                sampled_out: live.counters.sampled_out.load(Relaxed),
                records: self.inner.recorder.counters(deployment.name.as_str()),
                routes: live.routes.iter().enumerate().map(route_status).collect(),
                shadows: live.shadows.iter().map(|s| RouteStatus { version: s.served.version.number, weight: s.percent, stats: s.stats.snapshot() }).collect(),
                canary,
            }
        });
        DeploymentStatus { deployment, live }
    }

    // ---------------------------------------------------------------- calls

    /// Chooses the route of a call to deployment `name` for a caller
    /// allowed to predict: by the sticky header's value when the
    /// deployment names one and the call carries it, else at random by the
    /// weights.
    pub async fn route<'h>(&self, principal: &Principal, name: &str, header: impl Fn(&str) -> Option<&'h str>) -> Result<Routed> {
        self.inner.registry.check_access(principal, Action::Predict, &format!("deployment/{name}")).await?;
        let live = self.live(name).ok_or_else(|| Error::not_found("deployment", name))?;
        let key = live.deployment.sticky_header.as_deref().and_then(header);
        let point = match key {
            Some(value) => sticky_point(name, value),
            None => self.random() % 100,
        };
        let route = live.routes.iter().position(|r| point < u64::from(r.until)).unwrap_or(live.routes.len() - 1);
        Ok(Routed { live, route })
    }

    /// The version taking most of a deployment's traffic (what its
    /// metadata describes), for a caller allowed to predict.
    pub async fn primary(&self, principal: &Principal, name: &str) -> Result<ServedVersion> {
        self.inner.registry.check_access(principal, Action::Predict, &format!("deployment/{name}")).await?;
        let live = self.live(name).ok_or_else(|| Error::not_found("deployment", name))?;
        let route = live.routes.iter().max_by_key(|r| r.weight).ok_or_else(|| Error::not_found("deployment", name))?;
        Ok(route.served.clone())
    }

    fn random(&self) -> u64 {
        splitmix(self.inner.sequence.fetch_add(0x9e37_79b9_7f4a_7c15, Relaxed))
    }

    /// Runs a routed call, mirrors it to the shadows whose share it falls
    /// in, records it (as sampled) and counts it for the canary's judge.
    pub async fn predict(&self, routed: &Routed, input: PredictInput, request_id: &str) -> Result<Prediction> {
        let live = &routed.live;
        let route = &live.routes[routed.route];
        let sampled = live.deployment.sampling >= 1.0 || (self.random() % 1_000_000) as f64 / 1e6 < live.deployment.sampling;
        let mirrored: Vec<&LiveShadow> =
            live.shadows.iter().filter(|s| s.percent >= 100.0 || (self.random() % 1_000_000) as f64 / 1e4 < s.percent).collect();
        // The inputs are kept only when a record or a shadow needs them.
        let kept = (sampled || !mirrored.is_empty()).then(|| Arc::new(input.inputs.clone()));
        let parameters = if mirrored.is_empty() { serde_json::Map::new() } else { input.parameters.clone() };
        let at = self.inner.registry.now();
        let started = Instant::now();
        let result = self.inner.serving.predict_with(&route.served, input).await;
        let took = started.elapsed();
        observe(&route.stats, &result, took);
        route.traffic.record(took, result.is_err());
        live.counters.calls.fetch_add(1, Relaxed);
        if result.is_err() {
            live.counters.errors.fetch_add(1, Relaxed);
        }
        if sampled {
            if let Some(inputs) = &kept {
                self.inner.recorder.submit(pending(live, &route.served, RecordRoute::Primary, request_id, at, inputs.clone(), &result, took));
            }
        } else {
            live.counters.sampled_out.fetch_add(1, Relaxed);
        }
        if let Some(inputs) = kept.filter(|_| !mirrored.is_empty()) {
            for shadow in mirrored {
                let Ok(slot) = live.counters.shadow_slots.clone().try_acquire_owned() else {
                    live.counters.shadow_skipped.fetch_add(1, Relaxed);
                    continue;
                };
                live.counters.shadow_calls.fetch_add(1, Relaxed);
                let this = self.clone();
                let live = routed.live.clone();
                let served = shadow.served.clone();
                let stats = shadow.stats.clone();
                let traffic = shadow.traffic.clone();
                let inputs = inputs.clone();
                let request_id = request_id.to_string();
                let parameters = parameters.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let at = this.inner.registry.now();
                    let started = Instant::now();
                    let input = PredictInput { inputs: (*inputs).clone(), explain: false, parameters };
                    let result = this.inner.serving.predict_with(&served, input).await;
                    let took = started.elapsed();
                    observe(&stats, &result, took);
                    traffic.record(took, result.is_err());
                    if sampled {
                        this.inner.recorder.submit(pending(&live, &served, RecordRoute::Shadow, &request_id, at, inputs, &result, took));
                    }
                });
            }
        }
        result
    }

    // ---------------------------------------------------------------- controller

    async fn control(&self) {
        let mut last_refresh = Instant::now();
        let mut last_prune = Instant::now();
        let mut last_publish = Instant::now();
        loop {
            tokio::select! {
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(self.inner.config.tick) => {}
            }
            let leader = self.inner.config.leadership.is_leader();
            if last_publish.elapsed() >= self.inner.config.publish {
                last_publish = Instant::now();
                self.publish_tallies().await;
            }
            if leader {
                self.judge_canaries().await;
            }
            if self.inner.refresh_due.swap(false, std::sync::atomic::Ordering::AcqRel) || last_refresh.elapsed() >= self.inner.config.refresh {
                last_refresh = Instant::now();
                if let Err(e) = self.refresh().await {
                    tracing::warn!(error = %e, "cannot refresh the deployments from the store");
                }
            }
            if leader && last_prune.elapsed() >= Duration::from_secs(60) {
                last_prune = Instant::now();
                if let Some(retention) = self.inner.config.retention {
                    self.prune(retention).await;
                }
                // Statistics of steps that are over go; those of a step under
                // way stay however long it holds (a replica gone meanwhile
                // served some of its calls).
                let current = self.canary_steps();
                if let Err(e) = self.inner.registry.prune_canary_tallies(&current).await {
                    tracing::warn!(error = %e, "cannot prune the statistics of canary steps that are over");
                }
            }
        }
    }

    /// Judges every canary once: rolled back when its condition is true,
    /// advanced when its step's hold is over.
    pub async fn judge_canaries(&self) {
        let lives: Vec<Arc<Live>> = self.inner.table.read().unwrap_or_else(std::sync::PoisonError::into_inner).values().filter(|l| l.canary.is_some()).cloned().collect();
        // Other replicas' statistics of canaries that are over are forgotten.
        self.inner.remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|name, _| lives.iter().any(|l| l.deployment.name.as_str() == name));
        for live in lives {
            let backing_off = self.inner.failed.lock().ok().and_then(|f| f.get(live.deployment.name.as_str()).copied()).is_some_and(|at| at.elapsed() < RETRY_AFTER);
            if backing_off {
                continue;
            }
            let Some(canary) = &live.canary else { continue };
            let Some(progress) = &live.deployment.canary else { continue };
            let remote = self.remote_tallies(&live).await;
            let verdict = judge(&live, canary, &remote);
            let next = match verdict {
                Verdict::Tripped { reason } => plan::trip(&live.deployment, reason).map(|d| (Action::DeploymentRollback, d)),
                Verdict::Healthy => {
                    let Some(step) = progress.current_step() else { continue };
                    let stats = route_snapshot(&live, canary.canary, &remote);
                    let requests_done = stats.requests >= step.hold.requests.unwrap_or(MIN_STEP_REQUESTS);
                    let elapsed = (self.inner.registry.now() - progress.step_started_at).to_std().unwrap_or_default();
                    let time_done = step.hold.duration().is_none_or(|d| elapsed >= d);
                    if !(requests_done && time_done) {
                        continue;
                    }
                    let why = format!(
                        "step {} held ({} requests, {:.1} s) with the condition false: canary error_rate {:.4}, p99 {:.1} ms",
                        progress.step + 1,
                        stats.requests,
                        elapsed.as_secs_f64(),
                        stats.error_rate,
                        stats.p99_ms
                    );
                    plan::advance(&live.deployment, self.inner.registry.now(), &why).map(|d| (Action::DeploymentAdvance, d))
                }
            };
            let Some((action, next)) = next else { continue };
            let _installing = self.inner.installing.lock().await;
            let failed = |this: &Self| {
                if let Ok(mut f) = this.inner.failed.lock() {
                    f.insert(live.deployment.name.as_str().to_string(), Instant::now());
                }
            };
            match self.apply(&Principal::system(), action, &live.deployment, next).await {
                Ok(status) => tracing::info!(deployment = %live.deployment.name, state = %status.deployment.state, reason = status.deployment.reason.as_deref().unwrap_or(""), "canary"),
                Err(Error::Forbidden(denial)) if action == Action::DeploymentAdvance => {
                    // The gate refused the canary's completion (an approval
                    // expired meanwhile): it goes back, saying why.
                    let reasons: Vec<String> = denial.reasons().iter().map(|r| r.message.clone()).collect();
                    if let Some(back) = plan::trip(&live.deployment, format!("the `production` gate refused its completion: {}", reasons.join("; "))) {
                        if let Err(e) = self.apply(&Principal::system(), Action::DeploymentRollback, &live.deployment, back).await {
                            tracing::error!(deployment = %live.deployment.name, error = %e, "cannot roll back a canary");
                            failed(self);
                        }
                    }
                }
                Err(Error::Conflict(reason)) if reason.contains("changed meanwhile") => {
                    tracing::debug!(deployment = %live.deployment.name, %reason, "canary change raced another; judged again next tick");
                }
                Err(e) => {
                    tracing::error!(deployment = %live.deployment.name, error = %e, "cannot change a canary; trying again in {} s", RETRY_AFTER.as_secs());
                    failed(self);
                }
            }
        }
    }

    /// Whether this replica holds the background lease (judges canaries).
    pub fn leadership(&self) -> &modelops_core::replica::Leadership {
        &self.inner.config.leadership
    }

    /// Another replica changed a deployment: the controller reads the
    /// store again now rather than at its next poll.
    pub fn changed_elsewhere(&self) {
        self.inner.refresh_due.store(true, std::sync::atomic::Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Serves what the store holds: deployments changed elsewhere (another
    /// replica) or not yet served (start-up) are loaded; retired ones leave.
    pub async fn refresh(&self) -> Result<()> {
        let stored = self.inner.registry.all_deployments().await?;
        let _installing = self.inner.installing.lock().await;
        let (retired, stored): (Vec<Deployment>, Vec<Deployment>) = stored.into_iter().partition(|d| d.state == DeploymentState::Retired);
        // Deployments are never deleted, only retired: one created since the
        // read above is absent from it and stays served.
        for deployment in &retired {
            if self.live(deployment.name.as_str()).is_some() {
                self.bury(deployment);
            }
        }
        for deployment in stored {
            let current = self.live(deployment.name.as_str());
            if current.as_ref().is_some_and(|c| c.deployment.revision >= deployment.revision) {
                continue;
            }
            match self.build(&deployment, current.as_deref()).await {
                Ok(built) => {
                    self.install_built(deployment, built);
                }
                Err(e) => tracing::error!(deployment = %deployment.name, error = %e, "cannot serve a stored deployment"),
            }
        }
        Ok(())
    }

    /// The canaries' current steps: (deployment, revision).
    fn canary_steps(&self) -> Vec<(String, u64)> {
        let table = self.inner.table.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        table.values().filter(|l| l.canary.is_some()).map(|l| (l.deployment.name.as_str().to_string(), l.deployment.revision)).collect()
    }

    /// Publishes this replica's statistics of every canary's routes in the
    /// current step, for the replica judging it: only routes that served
    /// calls since the last publication (the others' rows still hold).
    pub async fn publish_tallies(&self) {
        let lives: Vec<Arc<Live>> = self.inner.table.read().unwrap_or_else(std::sync::PoisonError::into_inner).values().filter(|l| l.canary.is_some()).cloned().collect();
        let mut published = self.inner.published.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        published.retain(|(name, revision, _), _| lives.iter().any(|l| l.deployment.name.as_str() == name && l.deployment.revision == *revision));
        for live in lives {
            let name = live.deployment.name.as_str();
            let revision = live.deployment.revision;
            let mut tallies: Vec<(u32, String)> = Vec::new();
            for route in &live.routes {
                let tally = route.stats.tally();
                let key = (name.to_string(), revision, route.served.version.number);
                if tally.requests == 0 || published.get(&key) == Some(&tally.requests) {
                    continue;
                }
                if let Ok(json) = serde_json::to_string(&tally) {
                    published.insert(key, tally.requests);
                    tallies.push((route.served.version.number, json));
                }
            }
            if tallies.is_empty() {
                continue;
            }
            if let Err(e) = self.inner.registry.publish_canary_tallies(name, revision, &self.inner.config.replica, &tallies).await {
                tracing::warn!(deployment = %name, error = %e, "cannot publish this replica's canary statistics");
                // Published again next time.
                published.retain(|(n, r, _), _| !(n == name && *r == revision));
            }
        }
        *self.inner.published.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = published;
    }

    /// The other replicas' tallies last read for a deployment's current
    /// revision, without reading them again.
    fn cached_remote_tallies(&self, live: &Live) -> HashMap<u32, Vec<Tally>> {
        let cache = self.inner.remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.get(live.deployment.name.as_str()).filter(|c| c.revision == live.deployment.revision).map(|c| c.by_version.clone()).unwrap_or_default()
    }

    /// The other replicas' tallies of a canary's current step, read again
    /// when older than the publication interval.
    async fn remote_tallies(&self, live: &Live) -> HashMap<u32, Vec<Tally>> {
        let name = live.deployment.name.as_str();
        let revision = live.deployment.revision;
        {
            let cache = self.inner.remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(c) = cache.get(name).filter(|c| c.revision == revision && c.read_at.elapsed() < self.inner.config.publish) {
                return c.by_version.clone();
            }
        }
        let rows = match self.inner.registry.canary_tallies(name, revision).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(deployment = %name, error = %e, "cannot read the other replicas' canary statistics; judging on this replica's");
                Vec::new()
            }
        };
        let mut by_version: HashMap<u32, Vec<Tally>> = HashMap::new();
        for (replica, version, json) in rows {
            if replica == self.inner.config.replica {
                continue;
            }
            match serde_json::from_str::<Tally>(&json) {
                Ok(t) => by_version.entry(version).or_default().push(t),
                Err(e) => tracing::warn!(deployment = %name, %replica, error = %e, "unreadable canary statistics of a replica; left out"),
            }
        }
        let mut cache = self.inner.remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.insert(name.to_string(), RemoteTallies { revision, read_at: Instant::now(), by_version: by_version.clone() });
        by_version
    }

    async fn prune(&self, retention: Duration) {
        let Some(before) = chrono::Duration::from_std(retention).ok().and_then(|age| self.inner.registry.now().checked_sub_signed(age)) else { return };
        match self.inner.registry.prune_predictions(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "pruned prediction records past retention"),
            Err(e) => tracing::warn!(error = %e, "cannot prune prediction records"),
        }
    }
}

struct Built {
    loaded: HashMap<u32, ServedVersion>,
    condition: Option<Condition>,
}

/// Judges a canary on every replica's calls in the step: this replica's
/// live statistics plus the others' published tallies.
fn judge(live: &Live, canary: &LiveCanary, remote: &HashMap<u32, Vec<Tally>>) -> Verdict {
    let canary_stats = route_snapshot(live, canary.canary, remote);
    let stable_stats = canary.stable.map(|i| route_snapshot(live, i, remote)).unwrap_or_default();
    canary.condition.evaluate(&canary_stats, &stable_stats)
}

/// A route's statistics over every replica: its live ones here and what
/// the others published for its version.
fn route_snapshot(live: &Live, route: usize, remote: &HashMap<u32, Vec<Tally>>) -> StatsSnapshot {
    let here = &live.routes[route];
    match remote.get(&here.served.version.number) {
        None => here.stats.snapshot(),
        Some(others) => {
            let mut parts = Vec::with_capacity(others.len() + 1);
            parts.push(here.stats.tally());
            parts.extend(others.iter().cloned());
            Tally::merge(&parts).snapshot()
        }
    }
}

/// Other replicas' tallies of one deployment at one revision.
struct RemoteTallies {
    revision: u64,
    read_at: Instant,
    by_version: HashMap<u32, Vec<Tally>>,
}

/// A point in 0..100 for a sticky key: the same key, the same point, on
/// every replica and across restarts (FNV-1a, not the randomly keyed std
/// hasher).
fn sticky_point(deployment: &str, key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in deployment.bytes().chain([0]).chain(key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix(hash) % 100
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The per-row values the canary's judge compares: the first float output
/// (else the first numeric one) — a single column as is, a two-column one (a binary classifier's
/// probabilities) by its second column, a wider one by the index of its
/// largest value.
fn scalars(prediction: &Prediction) -> Vec<f64> {
    // Scores before labels: a classifier export gives its int label first
    // and its probabilities after.
    let float = prediction.outputs.iter().find(|t| matches!(t.data, TensorData::Float32(_) | TensorData::Float64(_)));
    let Some(output) = float.or_else(|| prediction.outputs.iter().find(|t| !matches!(t.data, TensorData::String(_)))) else { return vec![] };
    let rows = output.shape.first().copied().unwrap_or(0);
    let width = output.row_width().max(1);
    let value = |i: usize| output.data.f64_at(i).unwrap_or(f64::NAN);
    (0..rows)
        .map(|r| match width {
            1 => value(r),
            2 => value(r * 2 + 1),
            w => (0..w).map(|c| (c, value(r * w + c))).fold((0, f64::NEG_INFINITY), |best, (c, v)| if v > best.1 { (c, v) } else { best }).0 as f64,
        })
        .collect()
}

fn observe(stats: &RouteStats, result: &Result<Prediction>, took: Duration) {
    match result {
        Ok(prediction) => {
            let (tokens, cost) = prediction.usage.as_ref().map_or((0, 0.0), |u| (u.prompt_tokens + u.completion_tokens, u.cost));
            stats.record(took, false, &scalars(prediction), tokens, cost);
        }
        Err(_) => stats.record(took, true, &[], 0, 0.0),
    }
}

#[allow(clippy::too_many_arguments)]
fn pending(
    live: &Live,
    served: &ServedVersion,
    route: RecordRoute,
    request_id: &str,
    at: chrono::DateTime<chrono::Utc>,
    inputs: Arc<Vec<Tensor>>,
    result: &Result<Prediction>,
    took: Duration,
) -> PendingRecord {
    let (outputs, error) = match result {
        Ok(p) => (p.outputs.clone(), None),
        Err(e) => (vec![], Some(e.to_string())),
    };
    PendingRecord {
        request_id: request_id.to_string(),
        at,
        deployment: live.deployment.name.clone(),
        model: live.deployment.model.clone(),
        version: served.version.number,
        route,
        inputs,
        outputs,
        error,
        latency_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
    }
}

/// One prediction on a row of zeros, so the first real call does not pay
/// for first-use allocations. Models that call an upstream are not warmed:
/// that would be a real, billed call. A version that cannot answer zeros
/// (a rule set refusing them) still serves; warming only saves time. Run
/// on the loaded model directly so the warm-up is not counted as a call.
async fn warm(served: &ServedVersion) {
    if !served.loaded.is_compute() {
        return;
    }
    let inputs: Vec<Tensor> = served
        .signature
        .inputs
        .iter()
        .map(|field| {
            let width: usize = field.shape.iter().filter(|d| **d > 0).map(|d| usize::try_from(*d).unwrap_or(1)).product::<usize>().max(1);
            let data = match TensorData::empty(field.dtype) {
                TensorData::Bool(_) => TensorData::Bool(vec![false; width]),
                TensorData::Int32(_) => TensorData::Int32(vec![0; width]),
                TensorData::Int64(_) => TensorData::Int64(vec![0; width]),
                TensorData::Float32(_) => TensorData::Float32(vec![0.0; width]),
                TensorData::Float64(_) => TensorData::Float64(vec![0.0; width]),
                TensorData::String(_) => TensorData::String(vec![String::new(); width]),
            };
            let shape = if width > 1 { vec![1, width] } else { vec![1] };
            Tensor::new(field.name.clone(), shape, data)
        })
        .collect();
    let Ok((inputs, rows)) = modelops_runtime::check_inputs(&served.signature, inputs) else { return };
    let request = modelops_runtime::PredictRequest { inputs, rows, explain: false, parameters: Default::default() };
    let _ = served.loaded.predict(request).await;
}
