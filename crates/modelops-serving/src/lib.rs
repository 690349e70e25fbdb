//! modelops-serving: the inference use cases every inference surface calls
//! (the Open Inference Protocol routes, the native `predict` route, the
//! CLI through them).
//!
//! Owns: naming what to run ([`VersionRef`]: a number, an alias, or the
//! production `champion`), authorising a call (`predict`, any signed-in
//! user), resolving the name to a version (cached for [`ServingConfig::resolve_ttl`]
//! so a hot path reads no database), loading its artifact once through
//! modelops-runtime into a memory-bounded LRU cache ([`cache`]), checking the
//! batch against the version's signature, running it (big batches off the
//! async executor), and counting calls, rows, errors, upstream timeouts,
//! tokens and cost per version ([`metrics`]). Also the registry's
//! [`RuntimeInspector`]: every pushed artifact is loaded as its kind before
//! anything is stored.
//!
//! Must not depend on: HTTP frameworks, SQL or a concrete store (the
//! registry is reached through its use cases only).

pub mod cache;
pub mod metrics;

use cache::{CacheKey, Cached, ModelCache};
use metrics::{VersionMetrics, VersionMetricsSnapshot};
use modelops_core::auth::{Action, Principal};
use modelops_core::model::ModelKind;
use modelops_core::tracking::ModelManifest;
use modelops_core::name::{AliasName, ModelName};
use modelops_core::version::{ArtifactInspector, ModelVersion, Signature, SignatureField, VersionState};
use modelops_core::{Error, Result};
use modelops_registry::Registry;
pub use modelops_runtime::{Explanation, LoadedModel, Prediction, RuntimeConfig, RuntimeError, Tensor, TensorData, Usage};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The alias production traffic follows when no version is named.
pub const CHAMPION: &str = "champion";

/// Which version of a model to run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionRef {
    Number(u32),
    Alias(AliasName),
    /// What the `champion` alias points at (no version named).
    Production,
}

impl VersionRef {
    /// A path segment: digits are a version number, anything else an alias.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<u32>() {
                Ok(n) if n > 0 => Ok(Self::Number(n)),
                _ => Err(Error::invalid(field, format!("`{text}` is not a version number (1 or more) or an alias"))),
            };
        }
        if text == CHAMPION {
            return Ok(Self::Production);
        }
        AliasName::parse(text).map(Self::Alias).map_err(|e| match e {
            Error::InvalidInput { reason, .. } => Error::invalid(field, format!("not a version number, and as an alias: {reason}")),
            other => other,
        })
    }

}

/// Limits and settings of the serving layer.
#[derive(Debug, Clone)]
pub struct ServingConfig {
    /// The memory the loaded models may hold together (their
    /// [`LoadedModel::memory_bytes`]); the least recently used are evicted.
    pub cache_bytes: u64,
    /// How long a name → version resolution is reused: an alias moved on
    /// another replica reaches this one within this time (on this replica
    /// at once, see [`Serving::forget`]), plus one database read: when a
    /// resolution ages, one call reads it again while the others keep the
    /// old one (rather than every call in flight reading at once); the old
    /// one is dropped anyway past twice this time.
    pub resolve_ttl: Duration,
    /// The most rows one call may carry.
    pub max_rows: usize,
    /// Batches of more rows than this run on the blocking pool rather than
    /// the async executor.
    pub inline_rows: usize,
    pub runtime: RuntimeConfig,
}

impl Default for ServingConfig {
    fn default() -> Self {
        Self {
            cache_bytes: 1 << 30,
            resolve_ttl: Duration::from_secs(1),
            max_rows: 100_000,
            inline_rows: 64,
            runtime: RuntimeConfig::default(),
        }
    }
}

/// A version ready to serve: what the inference surfaces describe
/// (metadata) and run.
#[derive(Clone)]
pub struct ServedVersion {
    pub model: ModelName,
    pub kind: ModelKind,
    pub version: Arc<ModelVersion>,
    /// The version's stored signature, or the artifact's when the version
    /// stores none.
    pub signature: Arc<Signature>,
    pub loaded: Arc<dyn LoadedModel>,
    pub metrics: Arc<VersionMetrics>,
}

impl std::fmt::Debug for ServedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedVersion").field("model", &self.model).field("version", &self.version.number).finish_non_exhaustive()
    }
}

/// One call's inputs, as the surfaces decoded them.
#[derive(Debug, Clone, Default)]
pub struct PredictInput {
    pub inputs: Vec<Tensor>,
    pub explain: bool,
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

/// A version resolved and loaded, reused for `resolve_ttl` by every call
/// naming it the same way.
struct Resolution {
    served: ServedVersion,
    cached: Cached,
    at: Instant,
    /// Set by the one call that reads an aged resolution again.
    refreshing: AtomicBool,
}

/// Resolutions by model name, then by how the version was named: looked up
/// by borrowed keys under a read lock, as every call does.
type Resolutions = HashMap<String, HashMap<VersionRef, Resolution>>;

/// The serving use cases over one registry.
#[derive(Clone)]
pub struct Serving {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    config: ServingConfig,
    cache: ModelCache,
    resolutions: RwLock<Resolutions>,
    metrics: Mutex<HashMap<(ModelName, u32), Arc<VersionMetrics>>>,
}

/// Models whose resolutions are kept at most; past it the table starts
/// afresh (each entry is re-read once).
const MAX_RESOLVED_MODELS: usize = 10_000;

impl Serving {
    pub fn new(registry: Registry, config: ServingConfig) -> Self {
        let cache = ModelCache::new(config.cache_bytes);
        Self {
            inner: Arc::new(Inner {
                registry,
                config,
                cache,
                resolutions: RwLock::new(HashMap::new()),
                metrics: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &ServingConfig {
        &self.inner.config
    }

    /// Forgets every resolution of `model`, so a change made on this
    /// replica (an alias moved, a version retired) is served at once.
    pub fn forget(&self, model: &ModelName) {
        self.resolutions_mut().remove(model.as_str());
    }

    /// Forgets every resolution (changes may have been missed).
    pub fn forget_all(&self) {
        self.resolutions_mut().clear();
    }

    fn resolutions_mut(&self) -> std::sync::RwLockWriteGuard<'_, Resolutions> {
        // Every update is one statement: a poisoned table is still consistent.
        self.inner.resolutions.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The version `version` of `model`, loaded, for a caller allowed to
    /// predict. A retired version is not served; a version whose artifact
    /// does not load is a conflict naming the reason.
    pub async fn version(&self, principal: &Principal, model: &ModelName, version: &VersionRef) -> Result<ServedVersion> {
        self.inner.registry.check_access(principal, Action::Predict, &format!("model/{model}")).await?;
        self.resolve(model, version).await
    }

    /// Runs `input` through a version and counts the call.
    pub async fn predict(&self, principal: &Principal, model: &ModelName, version: &VersionRef, input: PredictInput) -> Result<(ServedVersion, Prediction)> {
        let served = self.version(principal, model, version).await?;
        let prediction = self.predict_with(&served, input).await?;
        Ok((served, prediction))
    }

    /// Runs `input` through a version [`Serving::version`] gave (a surface
    /// that needs the signature to decode its input), and counts the call.
    pub async fn predict_with(&self, served: &ServedVersion, input: PredictInput) -> Result<Prediction> {
        let started = Instant::now();
        let result = self.run(served, input).await;
        served.metrics.record(&result, started.elapsed());
        result
    }

    /// Calls, rows, errors, upstream timeouts, tokens and cost of every
    /// version served since start-up.
    pub fn metrics(&self) -> Vec<(ModelName, u32, VersionMetricsSnapshot)> {
        let table = self.inner.metrics.lock().map(|t| t.clone()).unwrap_or_default();
        let mut all: Vec<_> = table.into_iter().map(|((m, v), metrics)| (m, v, metrics.snapshot())).collect();
        all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        all
    }

    async fn run(&self, served: &ServedVersion, input: PredictInput) -> Result<Prediction> {
        let (inputs, rows) = modelops_runtime::check_inputs(&served.signature, input.inputs).map_err(from_runtime)?;
        if rows > self.inner.config.max_rows {
            return Err(Error::TooLarge(format!("{rows} rows in one call; at most {} are accepted", self.inner.config.max_rows)));
        }
        let request = modelops_runtime::PredictRequest { inputs, rows, explain: input.explain, parameters: input.parameters };
        let loaded = served.loaded.clone();
        let prediction = if loaded.is_compute() && rows > self.inner.config.inline_rows {
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || handle.block_on(loaded.predict(request)))
                .await
                .map_err(|e| Error::Internal(format!("prediction task failed: {e}")))?
        } else {
            loaded.predict(request).await
        };
        prediction.map_err(from_runtime)
    }

    /// A resolution of `version` at hand, its model still loaded: the path
    /// of nearly every call, which takes no lock but a shared read. An aged
    /// one is `None` for the first caller (who reads it again) and still
    /// served to the others meanwhile, for at most another `resolve_ttl`.
    fn resolved(&self, model: &ModelName, version: &VersionRef) -> Option<ServedVersion> {
        let table = self.inner.resolutions.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let resolution = table.get(model.as_str())?.get(version)?;
        if !self.inner.cache.touch(&resolution.cached) {
            return None;
        }
        let age = resolution.at.elapsed();
        let ttl = self.inner.config.resolve_ttl;
        let usable = age < ttl || (age < ttl * 2 && resolution.refreshing.swap(true, Ordering::AcqRel));
        usable.then(|| resolution.served.clone())
    }

    async fn resolve(&self, model: &ModelName, version: &VersionRef) -> Result<ServedVersion> {
        if let Some(served) = self.resolved(model, version) {
            return Ok(served);
        }
        let resolved = self.resolve_again(model, version).await;
        if resolved.is_err() {
            // Whatever was resolved before is not served on (a retired
            // version, a moved alias that no longer resolves).
            if let Some(versions) = self.resolutions_mut().get_mut(model.as_str()) {
                versions.remove(version);
            }
        }
        resolved
    }

    async fn resolve_again(&self, model: &ModelName, version: &VersionRef) -> Result<ServedVersion> {
        let registry = &self.inner.registry;
        let model_record = registry.get_model(model).await?;
        let found = match version {
            VersionRef::Number(n) => registry.get_version(model, *n).await?,
            VersionRef::Alias(alias) => registry.get_version_by_alias(model, alias).await?,
            VersionRef::Production => {
                let champion = AliasName::parse(CHAMPION)?;
                registry.get_version_by_alias(model, &champion).await.map_err(|e| match e {
                    // "production version of model `m` not found"
                    Error::NotFound { .. } => Error::not_found("production version of model", model),
                    other => other,
                })?
            }
        };
        if found.state == VersionState::Retired {
            return Err(Error::Conflict(format!("version {} of model `{model}` is retired and is not served", found.number)));
        }
        let found = Arc::new(found);
        let kind = model_record.kind;
        let cache_key = CacheKey { model: model.clone(), version: found.number, sha256: found.artifact.sha256.clone() };
        let cached = self.inner.cache.get_or_load(cache_key, || self.load(kind, found.clone())).await?;
        let loaded = cached.model.clone();
        // Versions pushed before artifacts were inspected may store none.
        let signature = if found.signature.inputs.is_empty() { loaded.signature().clone() } else { found.signature.clone() };
        let metrics = self.metrics_of(model, found.number);
        let served = ServedVersion { model: model.clone(), kind, version: found, signature: Arc::new(signature), loaded, metrics };
        let mut table = self.resolutions_mut();
        if table.len() >= MAX_RESOLVED_MODELS && !table.contains_key(model.as_str()) {
            table.clear();
        }
        let resolution = Resolution { served: served.clone(), cached, at: Instant::now(), refreshing: AtomicBool::new(false) };
        table.entry(model.as_str().to_owned()).or_default().insert(version.clone(), resolution);
        Ok(served)
    }

    async fn load(&self, kind: ModelKind, version: Arc<ModelVersion>) -> Result<Arc<dyn LoadedModel>> {
        let bytes = self.inner.registry.read_artifact(&version.artifact.sha256).await?;
        let (kind, bytes) = match kind {
            ModelKind::Mlflow => self.mlflow_model_file(&version, &bytes).await?,
            kind => (kind, bytes),
        };
        let config = self.inner.config.runtime.clone();
        let loaded = tokio::task::spawn_blocking(move || modelops_runtime::load(kind, &bytes, &config))
            .await
            .map_err(|e| Error::Internal(format!("loading task failed: {e}")))?;
        let loaded = loaded.map_err(|e| {
            Error::Conflict(format!("version {} of model `{}` cannot be served: {e}", version.number, version.model))
        })?;
        if !version.signature.inputs.is_empty() {
            reconcile(&version.signature, loaded.signature()).map_err(|e| {
                Error::Conflict(format!("version {} of model `{}` cannot be served: {e}", version.number, version.model))
            })?;
        }
        Ok(loaded)
    }

    /// A version registered through MLflow is a manifest of the logged
    /// model's files: its `MLmodel` names the flavour (and file) a runtime
    /// loads.
    async fn mlflow_model_file(&self, version: &ModelVersion, manifest: &[u8]) -> Result<(ModelKind, Vec<u8>)> {
        let cannot = |reason: String| Error::Conflict(format!("version {} of model `{}` cannot be served: {reason}", version.number, version.model));
        let manifest = ModelManifest::parse(manifest).ok_or_else(|| cannot("its artifact is not an MLflow model's manifest".into()))?;
        let file = |path: &str| manifest.files.iter().find(|f| f.path == path).map(|f| f.sha256.clone());
        let mlmodel = file("MLmodel").ok_or_else(|| cannot(format!("it has no MLmodel file (registered from `{}`)", manifest.source)))?;
        let mlmodel = self.inner.registry.read_artifact(&mlmodel).await?;
        let flavour = modelops_runtime::mlflow::servable_flavour(&mlmodel).map_err(|e| cannot(e.to_string()))?;
        let data = file(&flavour.path).ok_or_else(|| cannot(format!("its MLmodel names `{}`, which is not among its files", flavour.path)))?;
        Ok((flavour.kind, self.inner.registry.read_artifact(&data).await?))
    }

    fn metrics_of(&self, model: &ModelName, version: u32) -> Arc<VersionMetrics> {
        match self.inner.metrics.lock() {
            Ok(mut table) => table.entry((model.clone(), version)).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }
}

/// A runtime error as the crate-wide error: the client's input names its
/// field (400), an upstream's failure is 502 and its silence 504.
pub fn from_runtime(e: RuntimeError) -> Error {
    match e {
        RuntimeError::Input { field, reason } => Error::InvalidInput { field, reason },
        RuntimeError::Unsupported(reason) => Error::invalid("explain", reason),
        RuntimeError::Load(reason) => Error::Conflict(format!("the artifact cannot be loaded: {reason}")),
        e @ RuntimeError::UpstreamTimeout { .. } => Error::GatewayTimeout(e.to_string()),
        e @ RuntimeError::Upstream { .. } => Error::BadGateway(e.to_string()),
        RuntimeError::Internal(reason) => Error::Internal(reason),
    }
}

/// The signature to store for a push: the declared one when given (every
/// input the artifact takes, with its datatype and shape; outputs the
/// artifact has), else the artifact's own.
pub fn reconcile(declared: &Signature, artifact: &Signature) -> Result<Signature> {
    if declared.inputs.is_empty() && declared.outputs.is_empty() {
        return Ok(artifact.clone());
    }
    let same_shape = |a: &SignatureField, b: &SignatureField| {
        a.shape.len() == b.shape.len() && a.shape.iter().zip(&b.shape).all(|(x, y)| x == y || *x == -1 || *y == -1)
    };
    for (i, field) in declared.inputs.iter().enumerate() {
        let Some(actual) = artifact.inputs.iter().find(|f| f.name == field.name) else {
            let names: Vec<&str> = artifact.inputs.iter().map(|f| f.name.as_str()).collect();
            return Err(Error::invalid(
                format!("signature.inputs[{i}].name"),
                format!("`{}` is not an input of the artifact, which takes {}", field.name, names.join(", ")),
            ));
        };
        if actual.dtype != field.dtype {
            return Err(Error::invalid(
                format!("signature.inputs[{i}].dtype"),
                format!("`{}` is {} in the artifact, not {}", field.name, actual.dtype, field.dtype),
            ));
        }
        if !same_shape(field, actual) {
            return Err(Error::invalid(
                format!("signature.inputs[{i}].shape"),
                format!("`{}` has shape {:?} in the artifact, not {:?}", field.name, actual.shape, field.shape),
            ));
        }
    }
    if let Some(missing) = artifact.inputs.iter().find(|a| !declared.inputs.iter().any(|d| d.name == a.name)) {
        return Err(Error::invalid("signature.inputs", format!("the artifact also takes `{}`; declare every input or none", missing.name)));
    }
    for (i, field) in declared.outputs.iter().enumerate() {
        if !artifact.outputs.iter().any(|f| f.name == field.name) {
            let names: Vec<&str> = artifact.outputs.iter().map(|f| f.name.as_str()).collect();
            return Err(Error::invalid(
                format!("signature.outputs[{i}].name"),
                format!("`{}` is not an output of the artifact, which gives {}", field.name, names.join(", ")),
            ));
        }
    }
    let mut stored = declared.clone();
    if stored.outputs.is_empty() {
        stored.outputs = artifact.outputs.clone();
    }
    Ok(stored)
}

/// The registry's check at push: the artifact loads as its kind, and the
/// signature to store.
#[derive(Debug, Clone, Default)]
pub struct RuntimeInspector {
    pub config: RuntimeConfig,
}

impl ArtifactInspector for RuntimeInspector {
    fn inspect(&self, kind: ModelKind, artifact: &[u8], declared: &Signature) -> Result<Signature> {
        if kind == ModelKind::Mlflow {
            // A manifest of files (an MLflow model): served by its flavour,
            // resolved when it is loaded (`mlflow_model_file`).
            return Ok(declared.clone());
        }
        let loaded = modelops_runtime::load(kind, artifact, &self.config).map_err(|e| match e {
            RuntimeError::Load(reason) => Error::invalid("artifact", format!("cannot be served as a `{kind}` model: {reason}")),
            other => from_runtime(other),
        })?;
        reconcile(declared, loaded.signature())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use modelops_core::version::DataType;

    fn field(name: &str, dtype: DataType, shape: &[i64]) -> SignatureField {
        SignatureField { name: name.into(), dtype, shape: shape.to_vec(), allow_nan: false }
    }

    #[test]
    fn version_refs() {
        assert_eq!(VersionRef::parse("version", "3").unwrap(), VersionRef::Number(3));
        assert_eq!(VersionRef::parse("version", "champion").unwrap(), VersionRef::Production);
        assert!(matches!(VersionRef::parse("version", "staging").unwrap(), VersionRef::Alias(_)));
        let err = VersionRef::parse("version", "0").unwrap_err().to_string();
        assert!(err.contains("`version`") && err.contains("`0`"), "{err}");
        let err = VersionRef::parse("version", "latest").unwrap_err().to_string();
        assert!(err.contains("`version`") && err.contains("reserved"), "{err}");
    }

    #[test]
    fn a_pushed_signature_must_agree_with_the_artifact() {
        let artifact = Signature { inputs: vec![field("X", DataType::Float32, &[-1, 10])], outputs: vec![field("y", DataType::Float32, &[])] };
        assert_eq!(reconcile(&Signature::default(), &artifact).unwrap(), artifact);
        let mut declared = Signature { inputs: vec![field("X", DataType::Float32, &[10])], outputs: vec![] };
        declared.inputs[0].shape = vec![-1, 10];
        declared.inputs[0].allow_nan = true;
        let stored = reconcile(&declared, &artifact).unwrap();
        assert!(stored.inputs[0].allow_nan, "the push's choices are kept");
        assert_eq!(stored.outputs, artifact.outputs, "outputs come from the artifact when not given");
        let wrong_name = Signature { inputs: vec![field("features", DataType::Float32, &[-1, 10])], outputs: vec![] };
        let err = reconcile(&wrong_name, &artifact).unwrap_err().to_string();
        assert!(err.contains("signature.inputs[0].name") && err.contains("`features`") && err.contains("X"), "{err}");
        let wrong_type = Signature { inputs: vec![field("X", DataType::Int64, &[-1, 10])], outputs: vec![] };
        assert!(reconcile(&wrong_type, &artifact).unwrap_err().to_string().contains("signature.inputs[0].dtype"));
        let wrong_shape = Signature { inputs: vec![field("X", DataType::Float32, &[-1, 9])], outputs: vec![] };
        assert!(reconcile(&wrong_shape, &artifact).unwrap_err().to_string().contains("signature.inputs[0].shape"));
        let wrong_output = Signature { inputs: vec![], outputs: vec![field("z", DataType::Float32, &[])] };
        let err = reconcile(&wrong_output, &artifact).unwrap_err().to_string();
        assert!(err.contains("signature.outputs[0].name") || err.contains("signature.inputs"), "{err}");
    }
}
