//! The Open Inference Protocol V2 over REST (KServe / Triton / MLServer's
//! protocol), with the binary tensor data extension, so `tritonclient`
//! and other OIP clients work unchanged.
//!
//! | method | path |
//! |---|---|
//! | GET | `/v2`, `/v2/health/live`, `/v2/health/ready` (no token needed) |
//! | GET | `/v2/models/{model}[/versions/{version}]` metadata, `…/ready` |
//! | POST | `/v2/models/{model}[/versions/{version}]/infer` |
//!
//! `{version}` is a number or an alias; without one, the production
//! version (`champion`) — or, when a deployment has the name, the
//! deployment, which picks the version by its routes (sticky header,
//! weights, canary step), mirrors to its shadows and records the call;
//! `model_version` names the version that answered. Errors are `{"error": "<message>"}` with the
//! status the native API would give (400 naming the tensor, 404, 413, 504).
//!
//! Binary extension: a request whose `Inference-Header-Content-Length`
//! header is set carries that many bytes of JSON, then each input whose
//! `parameters.binary_data_size` is set, in input order. Outputs are binary
//! when the request's `parameters.binary_data_output` is true or an
//! output's `parameters.binary_data` is; the answer then sets the same
//! header. Explanations (`parameters.explain: true`) come as the extra
//! output `explanation`, one JSON document per row (BYTES).

use super::tensors::{self, FlatData};
use super::InferenceState;
use crate::error::ApiError;
use crate::extract::Actor;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelops_core::name::ModelName;
use modelops_serving::{PredictInput, Prediction, ServedVersion, Tensor, TensorData, VersionRef};
use modelops_runtime::tensor::oip_datatype;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The header giving the JSON part's length in a binary request or answer.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// An error in the protocol's form.
pub struct OipError(ApiError);

impl<E: Into<ApiError>> From<E> for OipError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for OipError {
    fn into_response(self) -> Response {
        self.0.into_oip_response()
    }
}

type OipResult<T> = Result<T, OipError>;

pub async fn server_metadata() -> Json<Value> {
    Json(json!({ "name": "modelops", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"] }))
}

pub async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

/// Ready when the database answers (models load on first use).
pub async fn ready(State(state): State<InferenceState>) -> Response {
    match state.registry.ready().await {
        Ok(()) => Json(json!({ "ready": true })).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "ready": false }))).into_response(),
    }
}

fn target(model: &str, version: Option<&str>) -> Result<(ModelName, VersionRef), ApiError> {
    let name = ModelName::parse(model).map_err(ApiError::from)?;
    let version = match version {
        Some(v) => VersionRef::parse("version", v)?,
        None => VersionRef::Production,
    };
    Ok((name, version))
}

#[derive(Serialize)]
struct MetadataTensor {
    name: String,
    datatype: &'static str,
    shape: Vec<i64>,
}

fn metadata_tensors(fields: &[modelops_core::version::SignatureField]) -> Vec<MetadataTensor> {
    fields
        .iter()
        .map(|f| MetadataTensor { name: f.name.clone(), datatype: oip_datatype(f.dtype), shape: std::iter::once(-1).chain(f.shape.iter().copied()).collect() })
        .collect()
}

async fn metadata(state: &InferenceState, actor: &Actor, model: &str, version: Option<&str>) -> OipResult<Json<Value>> {
    let deployment = version.is_none() && state.deployments.serves(model);
    let (name, version) = target(model, version)?;
    let served = if deployment {
        // A deployment of this name: the version taking most of its traffic.
        state.deployments.primary(&actor.0, name.as_str()).await?
    } else {
        state.serving.version(&actor.0, &name, &version).await?
    };
    let outputs = metadata_tensors(&served.signature.outputs);
    let mut labels = Map::new();
    for output in &served.signature.outputs {
        if let Some(l) = served.loaded.class_labels(&output.name) {
            labels.insert(output.name.clone(), json!(l));
        }
    }
    Ok(Json(json!({
        "name": name.as_str(),
        "versions": [served.version.number.to_string()],
        "platform": served.loaded.platform(),
        "inputs": metadata_tensors(&served.signature.inputs),
        "outputs": outputs,
        "parameters": { "kind": served.kind.as_str(), "state": served.version.state.as_str(), "class_labels": labels },
    })))
}

pub async fn model_metadata(State(state): State<InferenceState>, actor: Actor, Path(model): Path<String>) -> OipResult<Json<Value>> {
    metadata(&state, &actor, &model, None).await
}

pub async fn version_metadata(State(state): State<InferenceState>, actor: Actor, Path((model, version)): Path<(String, String)>) -> OipResult<Json<Value>> {
    metadata(&state, &actor, &model, Some(&version)).await
}

/// 200 when the version loads; 503 when its artifact does not.
async fn model_ready(state: &InferenceState, actor: &Actor, model: &str, version: Option<&str>) -> OipResult<Response> {
    let deployment = version.is_none() && state.deployments.serves(model);
    let (name, version) = target(model, version)?;
    if deployment {
        state.deployments.primary(&actor.0, name.as_str()).await?;
        return Ok(Json(json!({ "name": name.as_str(), "ready": true })).into_response());
    }
    match state.serving.version(&actor.0, &name, &version).await {
        Ok(_) => Ok(Json(json!({ "name": name.as_str(), "ready": true })).into_response()),
        Err(modelops_core::Error::Conflict(reason)) => {
            Ok((StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "name": name.as_str(), "ready": false, "error": reason }))).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn model_ready_latest(State(state): State<InferenceState>, actor: Actor, Path(model): Path<String>) -> OipResult<Response> {
    model_ready(&state, &actor, &model, None).await
}

pub async fn version_ready(State(state): State<InferenceState>, actor: Actor, Path((model, version)): Path<(String, String)>) -> OipResult<Response> {
    model_ready(&state, &actor, &model, Some(&version)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<RequestInput>,
    #[serde(default)]
    outputs: Option<Vec<RequestOutput>>,
}

impl crate::extract::JsonRequest for InferRequest {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

#[derive(Serialize)]
struct ResponseOutput<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    #[serde(skip_serializing_if = "Map::is_empty")]
    parameters: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<FlatData<'a>>,
}

#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    parameters: Map<String, Value>,
    outputs: Vec<ResponseOutput<'a>>,
}

fn flag(parameters: Option<&Map<String, Value>>, key: &str) -> bool {
    parameters.and_then(|p| p.get(key)).and_then(Value::as_bool).unwrap_or(false)
}

/// Splits a request body into its JSON header and binary part.
fn split_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), ApiError> {
    let Some(value) = headers.get(HEADER_LENGTH) else {
        return Ok((body, &[]));
    };
    let length = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| ApiError::invalid(HEADER_LENGTH, "is not a byte count"))?;
    if length > body.len() {
        return Err(ApiError::invalid(HEADER_LENGTH, format!("says {length} bytes of JSON but the body has {}", body.len())));
    }
    Ok(body.split_at(length))
}

fn decode_inputs(inputs: Vec<RequestInput>, mut binary: &[u8]) -> Result<Vec<Tensor>, ApiError> {
    let mut tensors = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let field = format!("inputs.{}", input.name);
        let (shape, count) = tensors::element_count(&field, &input.shape)?;
        let binary_size = input.parameters.as_ref().and_then(|p| p.get("binary_data_size"));
        let data = match (binary_size, &input.data) {
            (Some(size), _) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| ApiError::invalid(format!("inputs[{i}].parameters.binary_data_size"), "is not a byte count"))?;
                if size > binary.len() {
                    return Err(ApiError::invalid(&field, format!("binary_data_size is {size} but only {} bytes of binary data remain", binary.len())));
                }
                let (mine, rest) = binary.split_at(size);
                binary = rest;
                tensors::from_binary(&field, &input.datatype, mine, count)?
            }
            (None, Some(data)) => tensors::from_json(&field, &input.datatype, data, count)?,
            (None, None) => return Err(ApiError::invalid(&field, "has neither `data` nor `parameters.binary_data_size`")),
        };
        tensors.push(Tensor::new(input.name, shape, data));
    }
    if !binary.is_empty() {
        return Err(ApiError::invalid("body", format!("{} bytes of binary data follow the inputs that no input claims", binary.len())));
    }
    Ok(tensors)
}

async fn infer(state: &InferenceState, actor: &Actor, model: &str, version: Option<&str>, headers: &HeaderMap, body: &[u8]) -> OipResult<Response> {
    let deployment = version.is_none() && state.deployments.serves(model);
    let (name, version) = target(model, version)?;
    let (header, binary) = split_body(headers, body)?;
    let request: InferRequest = crate::extract::parse_json(header)?;
    let explain = flag(request.parameters.as_ref(), "explain");
    let all_binary = flag(request.parameters.as_ref(), "binary_data_output");
    let inputs = decode_inputs(request.inputs, binary)?;
    let parameters = request.parameters.clone().unwrap_or_default();
    let input = PredictInput { inputs, explain, parameters };
    if deployment {
        // A deployment's endpoint: it picks the version; the answer names it.
        let routed = state.deployments.route(&actor.0, name.as_str(), |h| headers.get(h).and_then(|v| v.to_str().ok())).await?;
        let request_id = headers.get(crate::REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let prediction = state.deployments.predict(&routed, input, request_id).await?;
        let explanations = explanation_tensor(&prediction)?;
        return respond(name.as_str(), routed.served(), &prediction, explanations.as_ref(), request.id.as_deref(), request.outputs.as_deref(), all_binary);
    }
    let (served, prediction) = state.serving.predict(&actor.0, &name, &version, input).await?;
    let explanations = explanation_tensor(&prediction)?;
    respond(served.model.as_str(), &served, &prediction, explanations.as_ref(), request.id.as_deref(), request.outputs.as_deref(), all_binary)
}

/// Explanations as one JSON document per row, a BYTES output.
fn explanation_tensor(prediction: &Prediction) -> Result<Option<Tensor>, ApiError> {
    let Some(explanations) = &prediction.explanations else { return Ok(None) };
    let rows = explanations
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(format!("cannot serialise an explanation: {e}")))?;
    Ok(Some(Tensor::new("explanation", vec![rows.len()], TensorData::String(rows))))
}

fn respond(
    model_name: &str,
    served: &ServedVersion,
    prediction: &Prediction,
    explanations: Option<&Tensor>,
    id: Option<&str>,
    requested: Option<&[RequestOutput]>,
    all_binary: bool,
) -> OipResult<Response> {
    let available: Vec<&Tensor> = prediction.outputs.iter().chain(explanations).collect();
    // (tensor, binary?) in the order asked for, or every output.
    let chosen: Vec<(&Tensor, bool)> = match requested {
        Some(requested) if !requested.is_empty() => requested
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let tensor = available.iter().find(|t| t.name == r.name).ok_or_else(|| {
                    let names: Vec<&str> = available.iter().map(|t| t.name.as_str()).collect();
                    ApiError::invalid(format!("outputs[{i}].name"), format!("`{}` is not an output of the model, which gives {}", r.name, names.join(", ")))
                })?;
                Ok((*tensor, all_binary || flag(r.parameters.as_ref(), "binary_data")))
            })
            .collect::<Result<_, ApiError>>()?,
        _ => available.iter().map(|t| (*t, all_binary)).collect(),
    };
    let mut binary = Vec::new();
    let mut outputs = Vec::with_capacity(chosen.len());
    for (tensor, as_binary) in chosen {
        let mut parameters = Map::new();
        if let Some(labels) = served.loaded.class_labels(&tensor.name) {
            parameters.insert("class_labels".into(), Value::String(serde_json::to_string(&labels).unwrap_or_default()));
        }
        let data = if as_binary {
            let bytes = tensors::to_binary(&tensor.data);
            parameters.insert("binary_data_size".into(), json!(bytes.len()));
            binary.extend_from_slice(&bytes);
            None
        } else {
            Some(FlatData(&tensor.data))
        };
        outputs.push(ResponseOutput { name: &tensor.name, datatype: oip_datatype(tensor.data.dtype()), shape: &tensor.shape, parameters, data });
    }
    let mut parameters = Map::new();
    if let Some(usage) = &prediction.usage {
        parameters.insert("prompt_tokens".into(), json!(usage.prompt_tokens));
        parameters.insert("completion_tokens".into(), json!(usage.completion_tokens));
        parameters.insert("cost".into(), json!(usage.cost));
        parameters.insert("upstream_latency_ms".into(), json!(usage.upstream_latency_ms));
    }
    let answer = InferResponse { model_name, model_version: served.version.number.to_string(), id, parameters, outputs };
    let mut body = serde_json::to_vec(&answer).map_err(|e| ApiError::internal(format!("cannot serialise the answer: {e}")))?;
    if binary.is_empty() {
        return Ok(([(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response());
    }
    let header_length = body.len();
    body.extend_from_slice(&binary);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(HEADER_LENGTH, HeaderValue::from(header_length));
    Ok(response)
}

type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

/// The body, or 413 past the inference body limit.
fn body_bytes(body: Body) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("the inference request is larger than the server's limit (`--max-inference-body`)")
        } else {
            ApiError::invalid("body", format!("cannot read the body: {}", r.body_text()))
        }
    })
}

pub async fn model_infer(State(state): State<InferenceState>, actor: Actor, Path(model): Path<String>, headers: HeaderMap, body: Body) -> OipResult<Response> {
    infer(&state, &actor, &model, None, &headers, &body_bytes(body)?).await
}

pub async fn version_infer(
    State(state): State<InferenceState>,
    actor: Actor,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> OipResult<Response> {
    infer(&state, &actor, &model, Some(&version), &headers, &body_bytes(body)?).await
}
