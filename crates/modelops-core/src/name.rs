//! Validated names. A value of these types is known to be acceptable, so
//! storage and handlers never re-check them.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_NAME_LEN: usize = 128;
pub const MAX_TAG_KEY_LEN: usize = 250;
pub const MAX_TAG_VALUE_LEN: usize = 5000;

/// The rules below as JSON Schema patterns (ECMA-262), for API documents.
/// They state what `parse` accepts so that clients and fuzzers can generate
/// valid values; `parse` stays the authority.
pub mod pattern {
    /// [`ModelName`](super::ModelName): no `/`, no control characters, no
    /// leading or trailing whitespace (1–128 characters).
    pub const MODEL_NAME: &str =
        r"^[^\s/\u0000-\u001f\u007f-\u009f](?:[^/\u0000-\u001f\u007f-\u009f]*[^\s/\u0000-\u001f\u007f-\u009f])?$";
    /// [`AliasName`](super::AliasName): a letter, then letters, digits, `_`,
    /// `-`; not `latest` nor `v<digits>` (1–128 characters).
    pub const ALIAS: &str = r"^(?![Ll][Aa][Tt][Ee][Ss][Tt]$|[Vv][0-9]+$)[A-Za-z][A-Za-z0-9_-]*$";
    /// [`TagKey`](super::TagKey): no `=`, no control characters, no leading
    /// or trailing whitespace (1–250 characters).
    pub const TAG_KEY: &str =
        r"^[^\s=\u0000-\u001f\u007f-\u009f](?:[^=\u0000-\u001f\u007f-\u009f]*[^\s=\u0000-\u001f\u007f-\u009f])?$";
}

/// Shows a value for an error message: quoted, control characters escaped,
/// cut to a readable length.
pub fn quote(value: &str) -> String {
    let mut shown: String = value.chars().take(80).flat_map(char::escape_debug).collect();
    if value.chars().count() > 80 {
        shown.push('…');
    }
    format!("`{shown}`")
}

fn check_name(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("{} is longer than {max} characters", quote(value))));
    }
    if value.trim() != value {
        return Err(Error::invalid(field, format!("{} has leading or trailing whitespace", quote(value))));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, format!("{} contains a control character", quote(value))));
    }
    Ok(())
}

/// A model's unique name: 1–128 characters, no `/`, no control characters,
/// no leading or trailing whitespace. `/` is refused because names are path
/// segments in every API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelName(String);

impl ModelName {
    pub fn parse(value: impl Into<String>) -> Result<Self> {
        Self::parse_field("name", value)
    }

    /// Like [`ModelName::parse`], naming `field` in the error.
    pub fn parse_field(field: &str, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_name(field, &value, MAX_NAME_LEN)?;
        if value.contains('/') {
            return Err(Error::invalid(field, format!("{} must not contain `/`", quote(&value))));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An alias such as `champion`: letters, digits, `_` and `-`, starting with a
/// letter, at most 128 characters. `latest` and `v<digits>` are refused
/// because MLflow gives them a meaning of their own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AliasName(String);

impl AliasName {
    pub fn parse(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_name("alias", &value, MAX_NAME_LEN)?;
        let mut chars = value.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if !starts_with_letter || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(Error::invalid(
                "alias",
                format!("{} must start with a letter and contain only letters, digits, `_` and `-`", quote(&value)),
            ));
        }
        let lower = value.to_ascii_lowercase();
        let is_version_like = lower.len() > 1 && lower.starts_with('v') && lower[1..].chars().all(|c| c.is_ascii_digit());
        if lower == "latest" || is_version_like {
            return Err(Error::invalid("alias", format!("{} is reserved", quote(&value))));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tag key: 1–250 characters, no control characters, no `=` (listings
/// filter on `tag=key=value`, so a key with `=` could never be filtered on).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TagKey(String);

impl TagKey {
    pub fn parse(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_name("tag key", &value, MAX_TAG_KEY_LEN)?;
        if value.contains('=') {
            return Err(Error::invalid("tag key", format!("{} must not contain `=`", quote(&value))));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a tag value, reported as `field`: at most 5000 characters, no
/// control characters but tab and line breaks (PostgreSQL text cannot hold
/// NUL at all, and the others make listings and logs unreadable).
pub fn check_tag_value(field: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_TAG_VALUE_LEN {
        return Err(Error::invalid(field, format!("value is longer than {MAX_TAG_VALUE_LEN} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(Error::invalid(field, format!("{} contains a control character", quote(value))));
    }
    Ok(())
}

/// Checks a filter value from a query string, reported as `field`: a NUL
/// can match nothing stored (every stored text refuses it) and PostgreSQL
/// refuses it as a parameter, so it is the client's mistake, said as such.
pub fn check_filter(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(field, format!("{} contains a NUL character, which no stored value holds", quote(value))));
    }
    Ok(())
}

macro_rules! string_newtype_impls {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                Self::parse(value)
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
string_newtype_impls!(ModelName, AliasName, TagKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_refuse_what_breaks_paths_and_logs() {
        assert!(ModelName::parse("credit-risk v2.1").is_ok());
        for bad in ["", "a/b", " lead", "trail ", "bell\u{7}", &"x".repeat(129)] {
            let err = ModelName::parse(bad).unwrap_err();
            assert_eq!(err.field(), Some("name"), "{bad:?}");
        }
        let err = ModelName::parse("a/b").unwrap_err().to_string();
        assert!(err.contains("`a/b`"), "{err}");
    }

    #[test]
    fn aliases_follow_mlflow_rules() {
        assert!(AliasName::parse("champion").is_ok());
        assert!(AliasName::parse("challenger_2").is_ok());
        for bad in ["latest", "v3", "V12", "1st", "has space", ""] {
            assert!(AliasName::parse(bad).is_err(), "{bad}");
        }
        assert!(AliasName::parse("v").is_ok());
        assert!(AliasName::parse("vintage").is_ok());
    }

    #[test]
    fn tag_keys_refuse_the_filter_separator() {
        assert!(TagKey::parse("domain").is_ok());
        let err = TagKey::parse("a=b").unwrap_err().to_string();
        assert!(err.contains("`a=b`") && err.contains("`=`"), "{err}");
    }
}
