//! The external (OIP proxy) runtime against the fake OIP server.

use crate::fake_oip::{FakeOip, Reply};
use modelops_runtime::external::{ExternalConfig, ExternalCredential, ExternalModel};
use modelops_runtime::upstream::Secret;
use modelops_runtime::{LoadedModel, PredictRequest, RuntimeError, Tensor, TensorData};
use serde_json::json;

fn artifact(url: &str, extra: &str) -> String {
    format!(
        r#"{{"url": "{url}", "model": "summer", "version": "3",
            "inputs": [{{"name": "x", "dtype": "float32", "shape": [2]}}],
            "outputs": [{{"name": "sum", "dtype": "float32", "shape": []}}, {{"name": "label", "dtype": "string", "shape": []}}]{extra}}}"#
    )
}

fn config() -> ExternalConfig {
    ExternalConfig {
        retry_backoff_ms: 1,
        ..ExternalConfig::default()
    }
}

fn request(rows: &[[f32; 2]]) -> PredictRequest {
    PredictRequest {
        inputs: vec![Tensor::new(
            "x",
            vec![rows.len(), 2],
            TensorData::Float32(rows.iter().flatten().copied().collect()),
        )],
        rows: rows.len(),
        explain: false,
        parameters: serde_json::Map::new(),
    }
}

#[tokio::test]
async fn a_batch_goes_as_one_oip_request_and_comes_back_typed() {
    let server = FakeOip::start(None).await;
    let model = ExternalModel::load(artifact(&server.url, "").as_bytes(), &config()).unwrap();
    assert_eq!(model.platform(), "modelops_external");
    assert_eq!(
        model.upstream(),
        format!("{}/v2/models/summer/versions/3", server.url)
    );
    let mut req = request(&[[1.0, 2.0], [5.5, 6.0]]);
    req.parameters.insert("priority".into(), json!(1));
    let prediction = model.predict(req).await.unwrap();

    let (path, body) = &server.requests()[0];
    assert_eq!(path, "/v2/models/summer/versions/3/infer");
    assert_eq!(
        body,
        &json!({
            "parameters": {"priority": 1},
            "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1.0, 2.0, 5.5, 6.0]}],
            "outputs": [{"name": "sum"}, {"name": "label"}],
        })
    );
    // FP64 [rows, 1] from the upstream becomes the signature's float32 [rows].
    assert_eq!(
        prediction.outputs[0],
        Tensor::new("sum", vec![2], TensorData::Float32(vec![3.0, 11.5]))
    );
    assert_eq!(
        prediction.outputs[1],
        Tensor::new(
            "label",
            vec![2],
            TensorData::String(vec!["small".into(), "big".into()])
        )
    );
    assert_eq!(
        prediction.outputs.len(),
        2,
        "outputs the signature does not name are dropped"
    );
}

#[tokio::test]
async fn an_upstream_error_carries_its_message() {
    let server = FakeOip::start(None).await;
    server.script([Reply::Error(
        400,
        "unexpected inference input 'x' for model 'summer'",
    )]);
    let model = ExternalModel::load(artifact(&server.url, "").as_bytes(), &config()).unwrap();
    let err = model.predict(request(&[[1.0, 2.0]])).await.unwrap_err();
    assert_eq!(
        err,
        RuntimeError::Upstream {
            upstream: format!("{}/v2/models/summer/versions/3", server.url),
            reason: "answered 400 Bad Request: unexpected inference input 'x' for model 'summer'"
                .into(),
        }
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn an_unavailable_upstream_is_retried_once() {
    let server = FakeOip::start(None).await;
    server.script([Reply::Error(503, "model not ready")]);
    let model = ExternalModel::load(artifact(&server.url, "").as_bytes(), &config()).unwrap();
    assert!(model.predict(request(&[[1.0, 2.0]])).await.is_ok());
    server.script([
        Reply::Error(503, "model not ready"),
        Reply::Error(503, "model not ready"),
    ]);
    let err = model.predict(request(&[[1.0, 2.0]])).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("answered 503 Service Unavailable: model not ready (2 attempts)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_slow_upstream_times_out() {
    let server = FakeOip::start(None).await;
    server.script([Reply::Hang]);
    let model = ExternalModel::load(
        artifact(&server.url, r#", "timeout_ms": 150"#).as_bytes(),
        &config(),
    )
    .unwrap();
    let err = model.predict(request(&[[1.0, 2.0]])).await.unwrap_err();
    assert_eq!(
        err,
        RuntimeError::UpstreamTimeout {
            upstream: format!("{}/v2/models/summer/versions/3", server.url),
            timeout_ms: 150
        }
    );
}

#[tokio::test]
async fn an_answer_that_breaks_the_signature_is_refused_naming_the_output() {
    let server = FakeOip::start(None).await;
    server.script([Reply::WithoutLabel]);
    let model = ExternalModel::load(artifact(&server.url, "").as_bytes(), &config()).unwrap();
    let err = model.predict(request(&[[1.0, 2.0]])).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("its answer has no output `label` (it has `unasked`, `sum`)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = FakeOip::start(None).await;
    let model = ExternalModel::load(artifact(&server.url, "").as_bytes(), &config()).unwrap();
    server.script([Reply::Redirect("http://169.254.169.254/latest/meta-data/")]);
    let err = model.predict(request(&[[1.0, 2.0]])).await.unwrap_err();
    assert!(
        err.to_string().contains("answered 307 Temporary Redirect"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn credentials_come_from_the_configuration() {
    let server = FakeOip::start(Some("Bearer tok-123")).await;
    let mut config = config();
    config.credentials.insert(
        "triton".into(),
        ExternalCredential {
            header: "authorization".into(),
            scheme: Some("Bearer".into()),
            value_env: "TRITON_TOKEN".into(),
            value: None,
        },
    );
    let config = config
        .resolve(|name| (name == "TRITON_TOKEN").then(|| "tok-123".to_string()))
        .unwrap();
    assert!(!format!("{config:?}").contains("tok-123"));
    let with = ExternalModel::load(
        artifact(&server.url, r#", "credentials": "triton""#).as_bytes(),
        &config,
    )
    .unwrap();
    assert!(with.predict(request(&[[1.0, 2.0]])).await.is_ok());
    let without = ExternalModel::load(artifact(&server.url, "").as_bytes(), &config).unwrap();
    assert!(without
        .predict(request(&[[1.0, 2.0]]))
        .await
        .unwrap_err()
        .to_string()
        .contains("answered 401 Unauthorized: unauthorized"));
    let err = ExternalModel::load(
        artifact(&server.url, r#", "credentials": "seldon""#).as_bytes(),
        &config,
    )
    .err()
    .unwrap();
    assert_eq!(err.to_string(), "the artifact cannot be loaded: credentials: `seldon` is not configured on this server (configured: `triton`)");
}

#[tokio::test]
async fn an_empty_batch_makes_no_call() {
    let server = FakeOip::start(None).await;
    let model = ExternalModel::load(artifact(&server.url, "").as_bytes(), &config()).unwrap();
    let prediction = model.predict(request(&[])).await.unwrap();
    assert_eq!(
        prediction.outputs[0],
        Tensor::new("sum", vec![0], TensorData::Float32(vec![]))
    );
    assert!(server.requests().is_empty());
}

#[test]
fn the_allow_list_bounds_where_models_may_point() {
    let config = ExternalConfig {
        allowed_url_prefixes: vec!["http://models.internal:8000/serving/".into()],
        ..config()
    }
    .resolve(|_| None)
    .unwrap();
    let load = |url: &str| {
        ExternalModel::load(artifact(url, "").as_bytes(), &config)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert!(load("http://models.internal:8000/serving").is_ok());
    assert!(load("http://models.internal:8000/serving/team-a").is_ok());
    for refused in [
        "http://models.internal:8000/servings",
        "http://models.internal:8001/serving",
        "https://models.internal:8000/serving",
        "http://169.254.169.254/serving",
    ] {
        let err = load(refused).unwrap_err();
        assert!(err.contains("is not under a prefix this server allows (allowed: `http://models.internal:8000/serving/`)"), "{refused}: {err}");
    }
}

#[test]
fn loading_names_what_is_wrong() {
    let config = config();
    let err = |text: &str| {
        ExternalModel::load(text.as_bytes(), &config)
            .err()
            .unwrap()
            .to_string()
    };
    assert!(err(&artifact("http://user:pw@host", ""))
        .contains("url: `http://host/`: carries a user or password"));
    assert!(err(&artifact("http://host", r#", "colour": 1"#)).contains("unknown field `colour`"));
    assert!(
        err(r#"{"url": "http://h", "model": "m", "inputs": [], "outputs": []}"#)
            .contains("inputs: is empty: the signature is part of the artifact")
    );
    assert!(err(r#"{"url": "http://h", "model": "m", "outputs": []}"#)
        .contains("missing field `inputs`"));
    let mut with_secret = config.clone();
    with_secret.credentials.insert(
        "t".into(),
        ExternalCredential {
            header: "x-api-key".into(),
            scheme: None,
            value_env: "V".into(),
            value: Some(Secret::new("s3cr3t")),
        },
    );
    assert!(!format!("{with_secret:?}").contains("s3cr3t"));
    let err = ExternalConfig {
        default_timeout_ms: 0,
        ..ExternalConfig::default()
    }
    .resolve(|_| None)
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `external.default_timeout_ms`: `0` must be at least 1"
    );
    let mut missing = ExternalConfig::default();
    missing.credentials.insert(
        "t".into(),
        ExternalCredential {
            header: "x-api-key".into(),
            scheme: None,
            value_env: "NOPE".into(),
            value: None,
        },
    );
    assert_eq!(
        missing.resolve(|_| None).unwrap_err().to_string(),
        "invalid `external.credentials.t.value_env`: the environment variable `NOPE` is not set or empty"
    );
}
