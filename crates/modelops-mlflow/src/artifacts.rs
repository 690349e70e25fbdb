//! MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/`): the client
//! uploads, lists and downloads a run's and a logged model's files here
//! (the `mlflow-artifacts:/…` locations this server hands out). The bytes
//! go to the same content-addressed store as the native API's artifacts;
//! registered versions' files are read from their manifests
//! (`_manifests/<sha256>/…`), which never change.

use crate::error::MlflowError;
use crate::wire::{Caller, Fields};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use modelops_registry::Registry;
use serde_json::{json, Value};

pub(crate) const ARTIFACTS_PREFIX: &str = "/api/2.0/mlflow-artifacts";

pub(crate) fn routes() -> Router<Registry> {
    Router::new()
        .route("/artifacts", get(list))
        // Uploads stream to the store: no body limit but the store's.
        .route("/artifacts/{*path}", get(download).put(upload).delete(delete).layer(DefaultBodyLimit::disable()))
        .route("/mpu/create/{*path}", post(multipart_unsupported))
        .route("/mpu/complete/{*path}", post(multipart_unsupported))
        .route("/mpu/abort/{*path}", post(multipart_unsupported))
}

/// What the client asks before choosing how to transfer files: plain
/// proxied uploads and downloads.
pub(crate) async fn server_info() -> Json<Value> {
    Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "artifacts_presigned_only": false,
    }))
}

fn missing(path: &str) -> impl FnOnce(modelops_core::Error) -> MlflowError + '_ {
    move |e| match e {
        modelops_core::Error::NotFound { .. } => MlflowError::not_found(format!("No such artifact: '{path}'")),
        other => other.into(),
    }
}

async fn upload(State(registry): State<Registry>, Caller(caller): Caller, Path(path): Path<String>, body: Body) -> Result<Json<Value>, MlflowError> {
    registry.put_artifact_file(&caller, &path, body.into_data_stream()).await?;
    Ok(Json(json!({})))
}

/// A directory's entries (`{}` for a file or a missing path: the client
/// reads "no entries" as "this is a file" and downloads it).
async fn list(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Result<Json<Value>, MlflowError> {
    let dir = fields.str("path")?.unwrap_or_default();
    let entries = registry.list_artifacts(&caller, &dir).await?;
    if entries.is_empty() {
        return Ok(Json(json!({})));
    }
    let files: Vec<Value> = entries
        .iter()
        .map(|e| match e.size {
            Some(size) => json!({"path": e.name, "is_dir": false, "file_size": size}),
            None => json!({"path": e.name, "is_dir": true}),
        })
        .collect();
    Ok(Json(json!({ "files": files })))
}

/// The content type MLflow's server gives a file, by its extension.
fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        None if name == "MLmodel" => "text/plain",
        Some("txt" | "log" | "yaml" | "yml" | "md" | "py" | "cfg" | "ini" | "toml") => "text/plain",
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        Some("html" | "htm") => "text/plain",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("gif") => "image/gif",
        _ => "application/octet-stream",
    }
}

async fn download(State(registry): State<Registry>, Caller(caller): Caller, Path(path): Path<String>) -> Result<Response, MlflowError> {
    let (file, download) = registry.read_artifact_file(&caller, &path).await.map_err(missing(&path))?;
    let mut response = Body::from_stream(download.stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&file.path)));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
    // Never rendered by a browser from this origin (HTML is sent as text).
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let name = file.path.rsplit('/').next().unwrap_or(&file.path);
    if let Ok(value) = HeaderValue::from_str(&modelops_artifacts::content_disposition(name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", file.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}

async fn delete(State(registry): State<Registry>, Caller(caller): Caller, Path(path): Path<String>) -> Result<Json<Value>, MlflowError> {
    registry.delete_artifact_files(&caller, &path).await.map_err(missing(&path))?;
    Ok(Json(json!({})))
}

/// The client falls back to a single upload on this answer (it asks only
/// when `server-info` enables multipart, which this server does not).
async fn multipart_unsupported() -> MlflowError {
    MlflowError::new("NOT_IMPLEMENTED", "Multipart upload is not supported by this server; upload the file in one request")
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("2/models/m-1/artifacts/MLmodel"), "text/plain");
        assert_eq!(content_type("a/model.pkl"), "application/octet-stream");
        assert_eq!(content_type("a/input_example.json"), "application/json");
        assert_eq!(content_type("a/report.HTML"), "text/plain");
    }
}
