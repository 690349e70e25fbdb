//! Extractors that turn every kind of bad input into an [`ApiError`] naming
//! the field: JSON bodies (with the JSON path of the bad value), query
//! strings, path segments, and the acting principal.

use crate::error::ApiError;
use crate::identity::Identity;
use axum::extract::FromRef;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use bytes::Bytes;
use modelops_core::auth::Principal;
use modelops_core::name::{quote, AliasName, ModelName, TagKey};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A JSON request body. Requires `Content-Type: application/json`, honours
/// the JSON body limit, and reports the JSON path of a bad value.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// Fields a request type recognises as existing but unchangeable, so naming
/// them answers "cannot be changed" instead of "unknown field".
pub trait JsonRequest: DeserializeOwned {
    const IMMUTABLE: &'static [&'static str] = &[];
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: JsonRequest,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with `Content-Type: application/json`",
            )
            .with_field("content-type"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("the JSON body is larger than the limit")
            } else {
                ApiError::invalid("body", format!("cannot read the body: {}", lowercase_first(&r.body_text())))
            }
        })?;
        parse_json::<T>(&bytes).map(ApiJson)
    }
}

/// axum's rejection texts start with a capital; our messages do not.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Ok(mime) = value.parse::<mime::Mime>() else {
        return false;
    };
    mime.type_() == "application" && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
}

/// Deserializes a JSON body, naming the field at fault. Every request body
/// of this API is an object: serde would otherwise read an array as the
/// struct's fields in order (`[]` as "all defaults").
pub fn parse_json<T: JsonRequest>(bytes: &[u8]) -> Result<T, ApiError> {
    let starts_an_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    // Most bodies are fine: parse them at full speed, and only track the
    // path (for the error message) when plain parsing fails.
    if starts_an_object {
        if let Ok(value) = serde_json::from_slice::<T>(bytes) {
            return Ok(value);
        }
    }
    if !starts_an_object && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::invalid("body", "the body must be a JSON object (`{…}`)"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => value,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(json_error::<T>(&path, &inner));
        }
    };
    de.end().map_err(|e| ApiError::invalid("body", format!("malformed JSON: {e}")))?;
    Ok(value)
}

fn json_error<T: JsonRequest>(path: &str, inner: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match inner.classify() {
        // A number beyond f64 (`1e999`) is a syntax error to serde_json, but
        // the path still says which field held it.
        Category::Syntax if path != "." && inner.to_string().starts_with("number out of range") => {
            ApiError::invalid(path, format!("`{path}` holds a number out of range (JSON numbers here must be finite 64-bit floats): {inner}"))
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::invalid("body", format!("malformed JSON: {inner}")),
        Category::Data => {
            let message = inner.to_string();
            let parent = if path == "." { None } else { Some(path) };
            let join = |name: &str| match parent {
                Some(p) => format!("{p}.{name}"),
                None => name.to_string(),
            };
            if let Some(name) = backticked_after(&message, "unknown field `") {
                // The path already ends with the unknown field's name.
                let field = match parent {
                    Some(p) if p == name || p.ends_with(&format!(".{name}")) => p.to_string(),
                    _ => join(name),
                };
                if field == name && T::IMMUTABLE.contains(&name) {
                    return ApiError::invalid(name, format!("`{name}` cannot be changed after creation"));
                }
                return ApiError::invalid(field, message);
            }
            if let Some(name) = backticked_after(&message, "missing field `") {
                return ApiError::invalid(join(name), message);
            }
            ApiError::invalid(parent.unwrap_or("body"), message)
        }
    }
}

/// The name quoted right after `prefix` in a serde message.
fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// A query string, refused with the parameter named when a value is wrong
/// or a parameter is unknown.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize::<_, T>(de).map(ApiQuery).map_err(|err| {
            let path = err.path().to_string();
            let message = err.into_inner().to_string();
            let field = backticked_after(&message, "unknown field `")
                .or_else(|| backticked_after(&message, "missing field `"))
                .map(str::to_string)
                .unwrap_or_else(|| if path == "." { "query".to_string() } else { path.clone() });
            let message = if path == "." {
                message
            } else {
                // serde's message ("invalid digit found in string") does not
                // show what the client sent; the raw parameter does.
                match form_urlencoded_parse(query).find(|(k, _)| *k == path) {
                    Some((_, value)) => format!("query parameter `{path}`: {} is invalid: {message}", quote(&value)),
                    None => format!("query parameter `{path}`: {message}"),
                }
            };
            ApiError::invalid(field, message)
        })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// Every path parameter the API uses, as raw text; handlers parse the ones
/// their route has with the methods below, which name the segment at fault.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawPath {
    name: Option<String>,
    version: Option<String>,
    alias: Option<String>,
    key: Option<String>,
    user: Option<String>,
    id: Option<String>,
    sha256: Option<String>,
    monitor: Option<String>,
    run: Option<String>,
    size: Option<String>,
    seq: Option<String>,
}

/// Path parameters of a route.
#[derive(Debug, Clone)]
pub struct ApiPath(pub RawPath);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<RawPath>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| {
                // axum names the segment it could not decode: "Invalid UTF-8 in `name`".
                let text = r.body_text();
                match text.split_once("Invalid UTF-8 in `").and_then(|(_, rest)| rest.split('`').next()) {
                    Some(field) => ApiError::invalid(field, format!("the `{field}` path segment is not UTF-8 once percent-decoded")),
                    None => ApiError::invalid("path", format!("bad path: {}", lowercase_first(&text))),
                }
            })
    }
}

fn segment<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value.as_deref().ok_or_else(|| ApiError::internal(format!("the route has no path parameter `{field}`")))
}

impl RawPath {
    /// The model name for a message: the valid name, or `{name}`.
    pub fn name_for_message(&self) -> String {
        match self.name.as_deref().map(ModelName::parse) {
            Some(Ok(name)) => name.into(),
            _ => "{name}".to_string(),
        }
    }
}

impl ApiPath {
    pub fn model(&self) -> Result<ModelName, ApiError> {
        Ok(ModelName::parse(segment(&self.0.name, "name")?)?)
    }

    pub fn version(&self) -> Result<u32, ApiError> {
        parse_version(segment(&self.0.version, "version")?)
    }

    /// The `version` segment as given (a number or an alias, for inference).
    pub fn raw_version(&self) -> Result<&str, ApiError> {
        segment(&self.0.version, "version")
    }

    pub fn alias(&self) -> Result<AliasName, ApiError> {
        Ok(AliasName::parse(segment(&self.0.alias, "alias")?)?)
    }

    /// A user name as given (NUL refused; unknown names are 404s).
    pub fn user(&self) -> Result<String, ApiError> {
        let user = segment(&self.0.user, "user")?;
        modelops_core::name::check_filter("user", user)?;
        Ok(user.to_string())
    }

    /// An audit checkpoint's tree size, or `latest` (`None`).
    pub fn checkpoint_size(&self) -> Result<Option<u64>, ApiError> {
        match segment(&self.0.size, "size")? {
            "latest" => Ok(None),
            text => text
                .parse::<u64>()
                .map(Some)
                .map_err(|_| ApiError::invalid("size", format!("{} is not a tree size or `latest`", quote(&text.chars().take(40).collect::<String>())))),
        }
    }

    /// An audit event's sequence number.
    pub fn seq(&self) -> Result<i64, ApiError> {
        let text = segment(&self.0.seq, "seq")?;
        text.parse::<i64>()
            .map_err(|_| ApiError::invalid("seq", format!("{} is not an event's sequence number", quote(&text.chars().take(40).collect::<String>()))))
    }

    /// A monitor's name (checked like a new one's: an unknown name is 404).
    /// A retraining run's id.
    pub fn run_id(&self) -> Result<i64, ApiError> {
        let text = segment(&self.0.run, "run")?;
        text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::invalid("run", format!("`{text}` is not a run id (1, 2, 3…)")))
    }

    pub fn monitor(&self) -> Result<String, ApiError> {
        let name = segment(&self.0.monitor, "monitor")?;
        modelops_core::monitoring::check_short_name("monitor", name)?;
        Ok(name.to_string())
    }

    /// A content digest in the path.
    pub fn sha256(&self) -> Result<modelops_core::version::Sha256Hex, ApiError> {
        Ok(modelops_core::version::Sha256Hex::parse_field("sha256", segment(&self.0.sha256, "sha256")?)?)
    }

    /// A token's public id.
    pub fn token_id(&self) -> Result<String, ApiError> {
        let id = segment(&self.0.id, "id")?;
        let ok = id.len() == modelops_core::governance::TOKEN_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !ok {
            return Err(ApiError::invalid("id", format!("{} is not a token id (12 lowercase hex characters)", quote(id))));
        }
        Ok(id.to_string())
    }

    pub fn tag_key(&self) -> Result<TagKey, ApiError> {
        let key = segment(&self.0.key, "key")?;
        TagKey::parse(key).map_err(|e| ApiError::invalid("key", e.to_string()))
    }
}

/// Version numbers are 1, 2, 3…; anything else in the path is the client's mistake.
pub fn parse_version(value: &str) -> Result<u32, ApiError> {
    match value.parse::<u32>() {
        Ok(n) if n >= 1 && !value.starts_with('+') => Ok(n),
        _ => Err(ApiError::invalid("version", format!("{} is not a version number (1, 2, 3…)", quote(value)))),
    }
}

/// The acting principal of a request, as the configured
/// [`Authenticator`](crate::identity::Authenticator) identifies it.
#[derive(Debug, Clone)]
pub struct Actor(pub Principal);

impl<S> FromRequestParts<S> for Actor
where
    S: Send + Sync,
    Identity: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // The principal the authentication middleware found.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Actor(principal.clone()));
        }
        // A router built without the middleware (a surface mounted on its own).
        let identity = Identity::from_ref(state);
        Ok(Actor(identity.authenticator().authenticate(&parts.headers).await?))
    }
}
