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
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use modelops_registry::multipart::UploadedPart;
use modelops_registry::Registry;
use serde_json::{json, Value};

pub(crate) const ARTIFACTS_PREFIX: &str = "/api/2.0/mlflow-artifacts";

pub(crate) fn routes() -> Router<Registry> {
    Router::new()
        .route("/artifacts", get(list))
        // Uploads stream to the store: no body limit but the store's.
        .route("/artifacts/{*path}", get(download).put(upload).delete(delete).layer(DefaultBodyLimit::disable()))
        .route("/mpu/create/{*dir}", post(create_multipart))
        .route("/mpu/complete/{*dir}", post(complete_multipart))
        .route("/mpu/abort/{*dir}", post(abort_multipart))
        .route(&format!("{PART_ROUTE}/{{upload_id}}/{{part_number}}"), put(upload_part).layer(DefaultBodyLimit::disable()))
}

/// Where the client sends a multipart upload's parts, without its
/// credentials (the upload id is theirs): served without authentication.
const PART_ROUTE: &str = "/mpu/part";

/// Whether a request is a multipart upload's part (`PUT
/// …/mpu/part/<upload_id>/<n>`, nothing else), which the server's
/// authentication lets through: the handler checks the upload id.
pub fn is_upload_part(method: &axum::http::Method, path: &str) -> bool {
    let Some(rest) = path.strip_prefix(ARTIFACTS_PREFIX).and_then(|r| r.strip_prefix(PART_ROUTE)).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    method == axum::http::Method::PUT && rest.split('/').count() == 2 && rest.split('/').all(|s| !s.is_empty())
}

/// What the client asks before choosing how to transfer files: files from
/// `MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE` (500 MiB) up are uploaded in
/// parallel parts; downloads are proxied (a presigned download would cost
/// every file, however small, one more request).
pub(crate) async fn server_info() -> Json<Value> {
    Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "multipart_uploads_enabled": true,
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

/// The file a `mpu/*` call names: the directory in its URL and the base
/// name of its `path` field (MLflow 3.17 sends the client's local path,
/// 3.18 only the file name).
fn upload_path(dir: &str, fields: &Fields) -> Result<String, MlflowError> {
    let local = fields.required("path")?;
    let name = local.rsplit(['/', '\\']).next().unwrap_or(&local);
    Ok(format!("{}/{name}", dir.trim_end_matches('/')))
}

/// The URL the client reaches this server at, from the request: a proxy in
/// front sets `X-Forwarded-Proto`, `X-Forwarded-Host` and, when it serves
/// modelops under a path (`https://host/mlflow`), `X-Forwarded-Prefix`.
fn base_url(uri: &axum::http::Uri, headers: &HeaderMap) -> Result<String, MlflowError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.split(',').next().unwrap_or(v).trim().to_string());
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .filter(|h| !h.is_empty() && !h.contains(['/', '\\', ' ', '@', '?', '#']))
        .ok_or_else(|| MlflowError::invalid("the request names no host (Host header), which the part URLs are made of"))?;
    let scheme = header("x-forwarded-proto").filter(|p| p == "https").unwrap_or_else(|| "http".into());
    let prefix = header("x-forwarded-prefix")
        .filter(|p| p.starts_with('/') && !p.contains(['?', '#', ' ', '\\']) && !p.split('/').any(|s| s == ".."))
        .map(|p| p.trim_end_matches('/').to_string())
        .unwrap_or_default();
    Ok(format!("{scheme}://{host}{prefix}"))
}

async fn create_multipart(
    State(registry): State<Registry>,
    Caller(caller): Caller,
    Path(dir): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    fields: Fields,
) -> Result<Json<Value>, MlflowError> {
    let path = upload_path(&dir, &fields)?;
    let num_parts = fields.i64("num_parts")?.unwrap_or(1);
    let num_parts = u64::try_from(num_parts).map_err(|_| MlflowError::invalid(format!("Invalid value {num_parts} for parameter 'num_parts' supplied")))?;
    let upload_id = registry.create_multipart_upload(&caller, &path, num_parts).await?;
    let base = base_url(&uri, &headers)?;
    let credentials: Vec<Value> = (1..=num_parts)
        .map(|n| json!({"url": format!("{base}{ARTIFACTS_PREFIX}{PART_ROUTE}/{upload_id}/{n}"), "part_number": n, "headers": {}}))
        .collect();
    Ok(Json(json!({"upload_id": upload_id, "credentials": credentials})))
}

async fn upload_part(State(registry): State<Registry>, Path((upload_id, part_number)): Path<(String, String)>, body: Body) -> Result<Response, MlflowError> {
    let part_number: u64 = part_number.parse().map_err(|_| MlflowError::invalid(format!("Invalid value {part_number} for parameter 'part_number' supplied")))?;
    let etag = registry.put_upload_part(&upload_id, part_number, body.into_data_stream()).await?;
    let mut response = Json(json!({})).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

async fn complete_multipart(State(registry): State<Registry>, Caller(caller): Caller, Path(dir): Path<String>, fields: Fields) -> Result<Json<Value>, MlflowError> {
    let path = upload_path(&dir, &fields)?;
    let upload_id = fields.required("upload_id")?;
    let parts = fields
        .objects("parts")?
        .iter()
        .map(|part| {
            let part_number = part.i64("part_number")?.unwrap_or(0);
            Ok(UploadedPart { part_number: u64::try_from(part_number).unwrap_or(0), etag: part.str("etag")?.unwrap_or_default() })
        })
        .collect::<Result<Vec<_>, MlflowError>>()?;
    registry.complete_multipart_upload(&caller, &path, &upload_id, &parts).await?;
    Ok(Json(json!({})))
}

async fn abort_multipart(State(registry): State<Registry>, Caller(caller): Caller, Path(dir): Path<String>, fields: Fields) -> Result<Json<Value>, MlflowError> {
    let path = upload_path(&dir, &fields)?;
    registry.abort_multipart_upload(&caller, &path, &fields.required("upload_id")?).await?;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn part_urls_follow_the_proxy_in_front() {
        use axum::http::{HeaderMap, HeaderValue, Uri};
        let uri: Uri = "/api/2.0/mlflow-artifacts/mpu/create/1/r/artifacts".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:5000"));
        assert_eq!(super::base_url(&uri, &headers).unwrap(), "http://127.0.0.1:5000");
        headers.insert("x-forwarded-host", HeaderValue::from_static("mlflow.bank.example"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert("x-forwarded-prefix", HeaderValue::from_static("/mlflow/"));
        assert_eq!(super::base_url(&uri, &headers).unwrap(), "https://mlflow.bank.example/mlflow");
        headers.insert("x-forwarded-prefix", HeaderValue::from_static("/../x"));
        assert_eq!(super::base_url(&uri, &headers).unwrap(), "https://mlflow.bank.example");
        assert!(super::base_url(&uri, &HeaderMap::new()).is_err());
        let mut forged = HeaderMap::new();
        forged.insert("host", HeaderValue::from_static("evil\\.bank.example"));
        assert!(super::base_url(&uri, &forged).is_err(), "a backslash reads as a slash to some URL parsers");
        use axum::http::Method;
        assert!(super::is_upload_part(&Method::PUT, "/api/2.0/mlflow-artifacts/mpu/part/abc/1"));
        assert!(!super::is_upload_part(&Method::GET, "/api/2.0/mlflow-artifacts/mpu/part/abc/1"));
        assert!(!super::is_upload_part(&Method::PUT, "/api/2.0/mlflow-artifacts/mpu/part/abc/1/x"));
        assert!(!super::is_upload_part(&Method::PUT, "/api/2.0/mlflow-artifacts/mpu/part/abc/"));
        assert!(!super::is_upload_part(&Method::PUT, "/api/2.0/mlflow-artifacts/mpu/partial/abc/1"));
        assert!(!super::is_upload_part(&Method::PUT, "/api/2.0/mlflow-artifacts/artifacts/mpu/part/abc/1"));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("2/models/m-1/artifacts/MLmodel"), "text/plain");
        assert_eq!(content_type("a/model.pkl"), "application/octet-stream");
        assert_eq!(content_type("a/input_example.json"), "application/json");
        assert_eq!(content_type("a/report.HTML"), "text/plain");
    }
}
