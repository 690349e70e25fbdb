//! The inference surfaces: the Open Inference Protocol ([`oip`]) and the
//! tensor codecs they share ([`tensors`]); the native `predict` route is in
//! the native API (`routes/predict.rs`). Each handler decodes, calls one
//! `modelops_serving::Serving` use case, encodes.

pub mod oip;
pub mod records;
pub mod tensors;

use crate::identity::Identity;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};
use axum::Router;
use modelops_registry::Registry;
use modelops_serving::Serving;
use tower::ServiceBuilder;

/// What the inference routes need.
#[derive(Clone)]
pub struct InferenceState {
    pub serving: Serving,
    pub deployments: modelops_deploy::Deployments,
    pub registry: Registry,
    pub identity: Identity,
}

impl FromRef<AppState> for InferenceState {
    fn from_ref(app: &AppState) -> Self {
        Self { serving: app.serving.clone(), deployments: app.deployments.clone(), registry: app.registry.clone(), identity: app.identity.clone() }
    }
}

impl FromRef<InferenceState> for Identity {
    fn from_ref(state: &InferenceState) -> Self {
        state.identity.clone()
    }
}

/// The OIP routes, with their own body limit and concurrency limit (a
/// flood of inference requests cannot take the registry's slots).
pub fn router(state: &AppState) -> Router {
    let config = &state.config;
    Router::new()
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::live))
        .route("/v2/health/ready", get(oip::ready))
        .route("/v2/models/{model}", get(oip::model_metadata))
        .route("/v2/models/{model}/ready", get(oip::model_ready_latest))
        .route("/v2/models/{model}/infer", post(oip::model_infer))
        .route("/v2/models/{model}/versions/{version}", get(oip::version_metadata))
        .route("/v2/models/{model}/versions/{version}/ready", get(oip::version_ready))
        .route("/v2/models/{model}/versions/{version}/infer", post(oip::version_infer))
        .layer(
            ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(crate::routes::overloaded))
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(config.max_concurrent_inferences))
                .timeout(config.request_timeout),
        )
        .layer(DefaultBodyLimit::max(config.inference_body_limit))
        .with_state(InferenceState::from_ref(state))
}
