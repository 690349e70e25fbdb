//! Decoding MLflow's requests and encoding its objects.
//!
//! MLflow's client sends GET fields as query parameters (repeated keys for
//! lists) and every other method's as a JSON body, DELETE included; it
//! sends int64s as numbers or strings and doubles as numbers or the strings
//! `NaN`, `Infinity`, `-Infinity`. It parses answers with protobuf's JSON
//! rules: every id and version number must be a JSON string (a number
//! crashes the client), int64s may be numbers.

use crate::error::MlflowError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::Method;
use modelops_core::auth::Principal;
use modelops_core::tracking::{DatasetInput, Experiment, LoggedModel, Metric, MetricValue, Run, RunInfo};
use serde_json::{json, Map, Value};

/// The caller, as the server's authentication middleware identified it.
pub(crate) struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = MlflowError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, MlflowError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| MlflowError::new("UNAUTHENTICATED", "this endpoint needs a token: set MLFLOW_TRACKING_TOKEN"))
    }
}

/// A request's fields, from its query (GET) or its JSON body (the others).
#[derive(Debug, Default)]
pub(crate) struct Fields {
    values: Map<String, Value>,
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = MlflowError;

    async fn from_request(request: Request, state: &S) -> Result<Self, MlflowError> {
        if request.method() == Method::GET {
            let mut values = Map::new();
            for (key, value) in url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()) {
                match values.get_mut(key.as_ref()) {
                    Some(Value::Array(list)) => list.push(Value::String(value.into_owned())),
                    Some(first) => {
                        let first = first.take();
                        values.insert(key.into_owned(), Value::Array(vec![first, Value::String(value.into_owned())]));
                    }
                    None => {
                        values.insert(key.into_owned(), Value::String(value.into_owned()));
                    }
                }
            }
            return Ok(Self { values });
        }
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| MlflowError::new("BAD_REQUEST", format!("cannot read the request body: {}", e.body_text())))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(values)) => Ok(Self { values }),
            Ok(_) => Err(MlflowError::new("BAD_REQUEST", "the request body must be a JSON object")),
            Err(e) => Err(MlflowError::new("BAD_REQUEST", format!("the request body is not valid JSON: {e}"))),
        }
    }
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 100 {
        format!("{}…", text.chars().take(100).collect::<String>())
    } else {
        text
    }
}

impl Fields {
    fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// A string field; a number is read as its text (GET sends all as text).
    pub fn str(&self, key: &str) -> Result<Option<String>, MlflowError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Array(list)) if list.len() == 1 => Ok(list[0].as_str().map(str::to_string)),
            Some(other) => Err(MlflowError::invalid(format!("Invalid value {} for parameter '{key}' supplied.", describe(other)))),
        }
    }

    pub fn required(&self, key: &str) -> Result<String, MlflowError> {
        self.str(key)?.filter(|s| !s.is_empty()).ok_or_else(|| MlflowError::missing(key))
    }

    /// The first of several names a field goes by (`run_id`, `run_uuid`).
    pub fn required_any(&self, keys: &[&str]) -> Result<String, MlflowError> {
        for key in keys {
            if let Some(value) = self.str(key)?.filter(|s| !s.is_empty()) {
                return Ok(value);
            }
        }
        Err(MlflowError::missing(keys.first().copied().unwrap_or_default()))
    }

    /// An int64, sent as a number or a string.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, MlflowError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => parse_i64(value).map(Some).ok_or_else(|| {
                MlflowError::invalid(format!("Invalid value {} for parameter '{key}' supplied: not an integer.", describe(value)))
            }),
        }
    }

    /// A boolean, sent as JSON `true`/`false` or their text (GET).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, MlflowError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(MlflowError::invalid(format!("Invalid value {} for parameter '{key}' supplied: not a boolean.", describe(other)))),
        }
    }

    /// A double, sent as a number or as `NaN`, `Infinity`, `-Infinity`.
    pub fn f64(&self, key: &str) -> Result<Option<f64>, MlflowError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => parse_f64(value).map(Some).ok_or_else(|| {
                MlflowError::invalid(format!("Invalid value {} for parameter '{key}' supplied: not a number.", describe(value)))
            }),
        }
    }

    /// A repeated string field.
    pub fn list(&self, key: &str) -> Result<Vec<String>, MlflowError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(MlflowError::invalid(format!("Invalid value {} in parameter '{key}'.", describe(other)))),
                })
                .collect(),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(other) => Err(MlflowError::invalid(format!("Invalid value {} for parameter '{key}' supplied.", describe(other)))),
        }
    }

    /// A repeated object field.
    pub fn objects(&self, key: &str) -> Result<Vec<Fields>, MlflowError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(values) => Ok(Fields { values: values.clone() }),
                    other => Err(MlflowError::invalid(format!("Invalid value {} in parameter '{key}': not an object.", describe(other)))),
                })
                .collect(),
            Some(other) => Err(MlflowError::invalid(format!("Invalid value {} for parameter '{key}' supplied.", describe(other)))),
        }
    }

    /// An object field.
    pub fn object(&self, key: &str) -> Result<Option<Fields>, MlflowError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(values)) => Ok(Some(Fields { values: values.clone() })),
            Some(other) => Err(MlflowError::invalid(format!("Invalid value {} for parameter '{key}' supplied.", describe(other)))),
        }
    }

    /// `[{key, value}]` pairs (tags, params).
    pub fn key_values(&self, key: &str) -> Result<Vec<(String, String)>, MlflowError> {
        self.objects(key)?
            .iter()
            .map(|item| {
                let k = item.str("key")?.ok_or_else(|| MlflowError::missing(&format!("{key}.key")))?;
                let v = item.str("value")?.unwrap_or_default();
                Ok((k, v))
            })
            .collect()
    }
}

fn parse_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

/// A double as the client reads it: a number, or the strings for NaN and
/// the infinities (JSON has no such numbers).
pub(crate) fn double(value: f64) -> Value {
    if value.is_nan() {
        json!("NaN")
    } else if value == f64::INFINITY {
        json!("Infinity")
    } else if value == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(value)
    }
}

pub(crate) fn key_values(pairs: &[(String, String)]) -> Value {
    Value::Array(pairs.iter().map(|(k, v)| json!({"key": k, "value": v})).collect())
}

pub(crate) fn experiment(e: &Experiment) -> Value {
    json!({
        "experiment_id": e.id.to_string(),
        "name": e.name,
        "artifact_location": e.artifact_location(),
        "lifecycle_stage": e.lifecycle_stage.as_str(),
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "tags": key_values(&e.tags),
    })
}

pub(crate) fn run_info(info: &RunInfo) -> Value {
    let mut value = json!({
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id.to_string(),
        "user_id": info.user_id,
        "status": info.status.as_str(),
        "start_time": info.start_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": info.lifecycle_stage.as_str(),
    });
    if let (Some(end), Some(object)) = (info.end_time, value.as_object_mut()) {
        object.insert("end_time".into(), json!(end));
    }
    value
}

pub(crate) fn metric(key: &str, value: &MetricValue) -> Value {
    json!({"key": key, "value": double(value.value), "timestamp": value.timestamp, "step": value.step})
}

pub(crate) fn run(r: &Run) -> Value {
    json!({
        "info": run_info(&r.info),
        "data": {
            "metrics": r.metrics.iter().map(|m: &Metric| metric(&m.key, &m.value)).collect::<Vec<_>>(),
            "params": key_values(&r.params),
            "tags": key_values(&r.tags),
        },
        "inputs": {
            "dataset_inputs": r.dataset_inputs.iter().map(dataset_input).collect::<Vec<_>>(),
            "model_inputs": r.model_inputs.iter().map(|id| json!({"model_id": id})).collect::<Vec<_>>(),
        },
        "outputs": {
            "model_outputs": r.model_outputs.iter().map(|(id, step)| json!({"model_id": id, "step": step})).collect::<Vec<_>>(),
        },
    })
}

fn dataset_input(d: &DatasetInput) -> Value {
    let mut dataset = json!({"name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source});
    if let Some(schema) = &d.schema {
        dataset["schema"] = json!(schema);
    }
    if let Some(profile) = &d.profile {
        dataset["profile"] = json!(profile);
    }
    json!({"tags": key_values(&d.tags), "dataset": dataset})
}

pub(crate) fn logged_model(m: &LoggedModel) -> Value {
    let mut info = json!({
        "model_id": m.model_id,
        "experiment_id": m.experiment_id.to_string(),
        "name": m.name,
        "creation_timestamp_ms": m.creation_time,
        "last_updated_timestamp_ms": m.last_update_time,
        "artifact_uri": m.artifact_uri,
        "status": m.status.as_str(),
        "model_type": m.model_type,
        "tags": key_values(&m.tags),
    });
    if let (Some(run), Some(object)) = (&m.source_run_id, info.as_object_mut()) {
        object.insert("source_run_id".into(), json!(run));
    }
    json!({"info": info, "data": {"params": key_values(&m.params), "metrics": []}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_arrive_as_numbers_or_strings() {
        assert_eq!(parse_i64(&json!(5)), Some(5));
        assert_eq!(parse_i64(&json!("1795744727721")), Some(1_795_744_727_721));
        assert_eq!(parse_i64(&json!(1.7e12)), Some(1_700_000_000_000));
        assert_eq!(parse_i64(&json!("x")), None);
        assert!(parse_f64(&json!("NaN")).is_some_and(f64::is_nan));
        assert_eq!(parse_f64(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(&json!(0.25)), Some(0.25));
        assert_eq!(parse_f64(&json!(true)), None);
        assert_eq!(double(f64::NAN), json!("NaN"));
        assert_eq!(double(f64::INFINITY), json!("Infinity"));
        assert_eq!(double(1.5), json!(1.5));
    }
}
