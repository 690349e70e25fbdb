//! The handlers, one module per resource. Each is documented with
//! `#[utoipa::path]` and registered with `routes!`, which adds the route and
//! its documentation together.

use crate::wire::ErrorBody;
use modelops_core::name::{pattern, MAX_NAME_LEN, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN};
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{OpenApi, RefOr};
use crate::error::ApiError;
use crate::{ApiState, ServerConfig};
use axum::error_handling::HandleErrorLayer;
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod access;
mod aliases;
mod artifacts;
mod audit;
pub(crate) mod deployments;
mod governance;
mod health;
mod identity;
pub(crate) mod metrics;
mod models;
mod monitoring;
mod policy;
mod predict;
mod retrain;
mod tags;
mod versions;

pub(crate) const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// Every route of the native API. Long requests (artifact uploads and
/// downloads, the audit-chain verification) and the JSON routes are limited
/// apart: a long request may take minutes and has slots of its own, so slow
/// transfers never hold the slots JSON requests need, and vice versa.
pub(crate) fn routes(router: OpenApiRouter<ApiState>, config: &ServerConfig) -> OpenApiRouter<ApiState> {
    let json = OpenApiRouter::new()
        .routes(routes!(models::list_models, models::create_model))
        .routes(routes!(models::get_model, models::update_model, models::delete_model))
        .routes(routes!(models::retire_model))
        .routes(routes!(versions::list_versions, versions::create_version))
        .routes(routes!(versions::get_version, versions::update_version, versions::delete_version))
        .routes(routes!(versions::retire_version))
        .routes(routes!(aliases::get_alias, aliases::set_alias, aliases::delete_alias))
        .routes(routes!(tags::set_model_tag, tags::delete_model_tag))
        .routes(routes!(tags::set_version_tag, tags::delete_version_tag))
        .routes(routes!(governance::submit))
        .routes(routes!(governance::approve))
        .routes(routes!(governance::reject))
        .routes(routes!(governance::promote))
        .routes(routes!(governance::gate))
        .routes(routes!(governance::governance))
        .routes(routes!(governance::add_evidence))
        .routes(routes!(governance::record_review))
        .routes(routes!(governance::reviews_due))
        .routes(routes!(identity::whoami))
        .routes(routes!(identity::list_users, identity::create_user))
        .routes(routes!(identity::get_user, identity::update_user))
        .routes(routes!(identity::erase_user))
        .routes(routes!(identity::list_tokens, identity::create_token))
        .routes(routes!(identity::revoke_token))
        .routes(routes!(policy::get_policy, policy::load_policy))
        .routes(routes!(audit::list_events))
        .routes(routes!(audit::public_key))
        .routes(routes!(audit::list_checkpoints, audit::sign_checkpoint))
        .routes(routes!(audit::get_checkpoint))
        .routes(routes!(audit::inclusion_proof))
        .routes(routes!(audit::consistency_proof))
        .routes(routes!(audit::compact_range))
        .routes(routes!(artifacts::collect_garbage))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::openapi_document));
    // Inference has its own body limit (set on the route) and answers 5xx
    // of its own (502/504 from upstreams); it shares the JSON slots.
    let json = json.routes(routes!(predict::predict)).routes(routes!(predict::metrics));
    // Prometheus' scrape: any valid token (see routes/metrics.rs).
    let json = json.routes(routes!(metrics::metrics));
    let json = json
        .routes(routes!(deployments::list_deployments, deployments::create_deployment))
        .routes(routes!(deployments::get_deployment, deployments::update_deployment, deployments::retire_deployment))
        .routes(routes!(deployments::rollback_deployment))
        .routes(routes!(deployments::predict_deployment))
        .routes(routes!(monitoring::list_monitors, monitoring::create_monitor))
        .routes(routes!(monitoring::get_monitor, monitoring::delete_monitor))
        .routes(routes!(monitoring::monitor_results))
        .routes(routes!(monitoring::record_labels))
        .routes(routes!(monitoring::list_alerts))
        .routes(routes!(monitoring::list_retrain_requests))
        .routes(routes!(retrain::get_job, retrain::put_job, retrain::delete_job))
        .routes(routes!(retrain::list_jobs))
        .routes(routes!(retrain::retrain))
        .routes(routes!(retrain::list_runs))
        .routes(routes!(retrain::get_run))
        .routes(routes!(retrain::run_log))
        .routes(routes!(retrain::cancel_run));
    // Verifying millions of events, or reporting on a model with a long
    // history, may take longer than a JSON request may.
    let transfers = OpenApiRouter::new()
        .routes(routes!(policy::inventory_report))
        .routes(routes!(policy::model_report))
        .routes(routes!(policy::annex_iv_report))
        .routes(routes!(artifacts::upload_artifact))
        .routes(routes!(versions::download_artifact))
        .routes(routes!(governance::download_evidence))
        .routes(routes!(audit::verify_chain))
        .routes(routes!(deployments::list_predictions))
        .routes(routes!(retrain::run_window));
    // A reference profile keeps up to 10,000 values per numeric column:
    // megabytes of JSON for a wide model, past the JSON limit.
    let transfers = transfers.merge(
        OpenApiRouter::new()
            .routes(routes!(monitoring::get_reference, monitoring::set_reference))
            .layer(axum::extract::DefaultBodyLimit::max(monitoring::REFERENCE_BODY_LIMIT)),
    );
    let json = json.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(overloaded))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(config.max_concurrent_requests))
            .timeout(config.request_timeout),
    );
    let transfers = transfers.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(overloaded))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(config.max_concurrent_transfers)),
    );
    router.merge(json).merge(transfers)
}

/// The answer when a limit refused a request: shed (all slots busy) or too slow.
pub(crate) async fn overloaded(error: tower::BoxError) -> axum::response::Response {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::unavailable("the request took longer than the server's time limit; retry later").into_response()
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::unavailable("the server is handling as many requests as it allows; retry later").into_response()
    } else {
        ApiError::internal(format!("middleware failed: {error}")).into_response()
    }
}

/// States the rules of the path segments (`name`, `version`, `alias`,
/// `key`) in every operation's parameter schema, and of a new model's name, so a client or fuzzer
/// reading the document generates values the server accepts. Done once here
/// rather than in each of the 20-odd `#[utoipa::path]` attributes, with the
/// patterns core keeps beside the parsers.
pub(crate) fn describe_path_parameters(doc: &mut OpenApi) {
    const QUERY_FILTERS: [&str; 8] = ["owner", "team", "name_prefix", "q", "tag", "subject", "actor", "action"];
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.parameter_in == ParameterIn::Query {
                    // Filters: no NUL (no stored value holds one); file names as text.
                    let rule = match parameter.name.as_str() {
                        "filename" => pattern::TEXT,
                        name if QUERY_FILTERS.contains(&name) => r"^[^\u0000]*$",
                        _ => continue,
                    };
                    if let Some(RefOr::T(schema)) = parameter.schema.as_mut() {
                        set_pattern_on(schema, rule);
                    }
                    continue;
                }
                if parameter.parameter_in != ParameterIn::Path {
                    continue;
                }
                let schema = match parameter.name.as_str() {
                    "name" => text(pattern::MODEL_NAME, MAX_NAME_LEN),
                    "alias" => text(pattern::ALIAS, MAX_NAME_LEN),
                    "key" => text(pattern::TAG_KEY, MAX_TAG_KEY_LEN),
                    "sha256" => text("^[0-9a-f]{64}$", 64),
                    "id" => text("^[0-9a-f]{12}$", 12),
                    "user" => text(pattern::IDENTIFYING_TEXT, 128),
                    "version" => ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                        .minimum(Some(1))
                        .maximum(Some(u32::MAX))
                        .build(),
                    _ => continue,
                };
                parameter.schema = Some(RefOr::T(Schema::Object(schema)));
            }
        }
    }
    let create_model = doc.components.as_mut().and_then(|c| c.schemas.get_mut("CreateModelRequest"));
    if let Some(RefOr::T(Schema::Object(object))) = create_model {
        let mut name = text(pattern::MODEL_NAME, MAX_NAME_LEN);
        if let Some(RefOr::T(Schema::Object(documented))) = object.properties.get("name") {
            name.description.clone_from(&documented.description);
        }
        object.properties.insert("name".to_string(), RefOr::T(Schema::Object(name)));
    }
    // Text fields: the characters check_text and its kin refuse. utoipa takes
    // patterns only as literals, so they are set here from core's constants.
    let text_rules: &[(&str, &[&str], &str)] = &[
        ("CreateModelRequest", &["description", "business_purpose", "intended_use", "restrictions"], pattern::TEXT),
        ("CreateModelRequest", &["owner", "team"], pattern::IDENTIFYING_TEXT),
        ("UpdateModelRequest", &["description", "business_purpose", "intended_use", "restrictions"], pattern::TEXT),
        ("UpdateModelRequest", &["owner", "team"], pattern::IDENTIFYING_TEXT),
        ("ModelCardWire", &["markdown", "intended_use", "limitations", "ethical_considerations", "evaluation_data"], pattern::TEXT),
        ("LineageWire", &["dataset_uri", "code_commit", "mlflow_run_id"], pattern::TEXT),
        ("SignatureFieldWire", &["name"], pattern::TEXT),
        ("ArtifactInput", &["filename"], pattern::FILENAME),
        ("CreateVersionRequest", &["description"], pattern::TEXT),
        ("UpdateVersionRequest", &["description"], pattern::TEXT),
        ("SetTagRequest", &["value"], pattern::TEXT),
        ("DecisionRequest", &["comment", "conditions"], pattern::TEXT),
        ("ReviewRequest", &["comment"], pattern::TEXT),
        ("LoadPolicyRequest", &["origin"], pattern::TEXT),
        ("CreateUserRequest", &["name", "team"], pattern::IDENTIFYING_TEXT),
        ("UpdateUserRequest", &["team"], pattern::IDENTIFYING_TEXT),
        ("CreateTokenRequest", &["name", "user"], pattern::IDENTIFYING_TEXT),
        ("ValidationTargetWire", &["metric"], "^[A-Za-z0-9_.-]{1,64}$"),
    ];
    // Dependencies are model names.
    for request in ["CreateModelRequest", "UpdateModelRequest"] {
        let Some(RefOr::T(Schema::Object(object))) = doc.components.as_mut().and_then(|c| c.schemas.get_mut(request)) else { continue };
        if let Some(RefOr::T(Schema::Array(array))) = object.properties.get_mut("dependencies") {
            array.items = ArrayItems::RefOrSchema(Box::new(RefOr::T(Schema::Object(text(pattern::MODEL_NAME, MAX_NAME_LEN)))));
        }
    }
    for (schema, fields, rule) in text_rules {
        let Some(RefOr::T(Schema::Object(object))) = doc.components.as_mut().and_then(|c| c.schemas.get_mut(*schema)) else { continue };
        for field in *fields {
            set_pattern(object.properties.get_mut(*field), rule);
        }
    }
    if let Some(RefOr::T(Schema::Object(lineage))) = doc.components.as_mut().and_then(|c| c.schemas.get_mut("LineageWire")) {
        set_pattern(lineage.properties.get_mut("dataset_sha256"), "^[0-9a-f]{64}$");
    }
    if let Some(RefOr::T(Schema::Object(field))) = doc.components.as_mut().and_then(|c| c.schemas.get_mut("SignatureFieldWire")) {
        // Dimensions are positive, or -1 for variable (0 is refused too).
        if let Some(RefOr::T(Schema::Array(shape))) = field.properties.get_mut("shape") {
            let dimension = ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))).minimum(Some(-1)).build();
            shape.items = ArrayItems::RefOrSchema(Box::new(RefOr::T(Schema::Object(dimension))));
        }
    }
    // Tag maps: their keys follow the tag-key rules.
    for request in ["CreateModelRequest", "CreateVersionRequest"] {
        let schema = doc.components.as_mut().and_then(|c| c.schemas.get_mut(request));
        if let Some(RefOr::T(Schema::Object(object))) = schema {
            if let Some(RefOr::T(Schema::Object(tags))) = object.properties.get_mut("tags") {
                tags.property_names = Some(Box::new(Schema::Object(text(pattern::TAG_KEY, MAX_TAG_KEY_LEN))));
                let value = ObjectBuilder::new().schema_type(Type::String).max_length(Some(MAX_TAG_VALUE_LEN)).pattern(Some(pattern::TEXT)).build();
                tags.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(Schema::Object(value)))));
            }
        }
    }
}

/// Sets `rule` on a string property, or on the string inside an optional one.
fn set_pattern(property: Option<&mut RefOr<Schema>>, rule: &str) {
    if let Some(RefOr::T(schema)) = property {
        set_pattern_on(schema, rule);
    }
}

fn set_pattern_on(schema: &mut Schema, rule: &str) {
    match schema {
        Schema::Object(object) => object.pattern = Some(rule.to_string()),
        // `Option<String>` is documented as oneOf/anyOf [string, null] in some utoipa versions.
        Schema::OneOf(one) => one.items.iter_mut().for_each(|s| if let RefOr::T(s) = s { set_pattern_on(s, rule) }),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(|s| if let RefOr::T(s) = s { set_pattern_on(s, rule) }),
        _ => {}
    }
}

fn text(pattern: &str, max: usize) -> Object {
    ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(max)).pattern(Some(pattern)).build()
}

/// Errors any read can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum ReadErrors {
    /// A path segment or query parameter is invalid; `field` names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token, or a wrong, expired or revoked one.
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The caller may not read this.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The model, version or alias does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A dependency (database, artifact store) is unavailable; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
    /// A failure on the server's side; the body says nothing more.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// Errors any mutation can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum WriteErrors {
    /// Malformed JSON, an unknown field, a wrong type or an invalid value; `field` names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token, or a wrong, expired or revoked one.
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The caller's roles do not allow this action, separation of duties
    /// forbids it, or a gate denied it: `reasons` lists every failing condition.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The model, version or alias does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The name exists already, or the target is retired.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body is larger than the limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// A dependency (database, artifact store) is unavailable; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
    /// A failure on the server's side; the body says nothing more.
    #[response(status = 500)]
    Internal(ErrorBody),
}
