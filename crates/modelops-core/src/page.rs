//! Paging and list queries. Page tokens are opaque to clients: base64 of a
//! small JSON cursor that only the store interprets.

use crate::error::{Error, Result};
use crate::name::check_filter;
use crate::model::{string_enum, ModelKind, ModelState, RiskTier};
use crate::version::VersionState;
use base64::Engine as _;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more items follow; pass it back as `page_token`.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u32,
    pub token: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { size: DEFAULT_PAGE_SIZE, token: None }
    }
}

impl PageRequest {
    /// An empty token means the first page: clients that always send the
    /// parameter (`page_token=`) start that way.
    pub fn new(size: Option<u32>, token: Option<String>) -> Result<Self> {
        let size = size.unwrap_or(DEFAULT_PAGE_SIZE);
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(Error::invalid("page_size", format!("`{size}` must be between 1 and {MAX_PAGE_SIZE}")));
        }
        Ok(Self { size, token: token.filter(|t| !t.is_empty()) })
    }
}

/// Encodes a store's cursor into an opaque token.
pub fn encode_token<C: Serialize>(cursor: &C) -> String {
    let json = serde_json::to_vec(cursor).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a token made by [`encode_token`]; a token from elsewhere is a client error.
pub fn decode_token<C: DeserializeOwned>(token: &str) -> Result<C> {
    let bad = || Error::invalid("page_token", format!("{} is not a page token this server issued", crate::name::quote(token)));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

string_enum!(
    /// Sort key of a model listing; ties are broken by name.
    ModelOrder { Name => "name", CreatedAt => "created_at", UpdatedAt => "updated_at" }
);

string_enum!(
    Direction { Asc => "asc", Desc => "desc" }
);

/// Filters for listing and searching models; all present filters must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelQuery {
    pub kind: Option<ModelKind>,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub risk_tier: Option<RiskTier>,
    /// `key` (tag present) or `key=value`.
    pub tag: Option<(String, Option<String>)>,
    pub name_prefix: Option<String>,
    pub state: Option<ModelState>,
    /// Case-insensitive substring over name, description and business purpose.
    pub text: Option<String>,
    pub order_by: Option<ModelOrder>,
    pub direction: Option<Direction>,
    pub page: PageRequest,
}

impl ModelQuery {
    /// Refuses filter values no stored model can match and the database
    /// would refuse, naming the query parameter.
    pub fn validate(&self) -> Result<()> {
        let texts = [("owner", &self.owner), ("team", &self.team), ("name_prefix", &self.name_prefix), ("q", &self.text)];
        for (field, value) in texts {
            if let Some(v) = value {
                check_filter(field, v)?;
            }
        }
        check_tag_filter(self.tag.as_ref())
    }
}

fn check_tag_filter(tag: Option<&(String, Option<String>)>) -> Result<()> {
    if let Some((key, value)) = tag {
        check_filter("tag", key)?;
        if let Some(v) = value {
            check_filter("tag", v)?;
        }
    }
    Ok(())
}

/// Filters for listing a model's versions, newest first unless told otherwise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionQuery {
    pub state: Option<VersionState>,
    pub tag: Option<(String, Option<String>)>,
    pub direction: Option<Direction>,
    pub page: PageRequest,
}

impl VersionQuery {
    pub fn validate(&self) -> Result<()> {
        check_tag_filter(self.tag.as_ref())
    }
}

/// Parses `key` or `key=value` for a tag filter.
pub fn parse_tag_filter(value: &str) -> Result<(String, Option<String>)> {
    let (key, val) = match value.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (value, None),
    };
    if key.is_empty() {
        return Err(Error::invalid("tag", format!("{} must be `key` or `key=value`", crate::name::quote(value))));
    }
    Ok((key.to_string(), val))
}
