//! Keyset cursors behind the opaque page tokens, and helpers for prefix
//! ranges. Backend-neutral.

use modelops_core::page::{decode_token, encode_token, Direction, ModelOrder};
use modelops_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Position after the last model of a page. `key` is the sort key as text
/// (a name, or a time in `format_time` form).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ModelCursor {
    pub o: String,
    pub d: String,
    pub k: String,
    pub n: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct VersionCursor {
    pub d: String,
    pub v: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AuditCursor {
    pub s: i64,
}

fn mismatch(token: &str) -> Error {
    Error::invalid("page_token", format!("`{}` was issued for a different ordering", token.chars().take(80).collect::<String>()))
}

impl ModelCursor {
    pub fn decode(token: &str, order: ModelOrder, dir: Direction) -> Result<Self> {
        let c: Self = decode_token(token)?;
        if c.o != order.as_str() || c.d != dir.as_str() {
            return Err(mismatch(token));
        }
        Ok(c)
    }

    pub fn encode(order: ModelOrder, dir: Direction, key: String, name: String) -> String {
        encode_token(&Self { o: order.as_str().into(), d: dir.as_str().into(), k: key, n: name })
    }
}

impl VersionCursor {
    pub fn decode(token: &str, dir: Direction) -> Result<Self> {
        let c: Self = decode_token(token)?;
        if c.d != dir.as_str() {
            return Err(mismatch(token));
        }
        Ok(c)
    }

    pub fn encode(dir: Direction, number: u32) -> String {
        encode_token(&Self { d: dir.as_str().into(), v: number })
    }
}

/// The least string greater than every string starting with `prefix`, so
/// `prefix <= s < upper` selects exactly the strings with that prefix under
/// code-point (byte) order. `None` when no such bound exists.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_of_a_prefix() {
        assert_eq!(prefix_upper_bound("model/a").as_deref(), Some("model/b"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
    }

    #[test]
    fn a_cursor_for_another_ordering_is_refused() {
        let t = ModelCursor::encode(ModelOrder::Name, Direction::Asc, "a".into(), "a".into());
        assert!(ModelCursor::decode(&t, ModelOrder::Name, Direction::Asc).is_ok());
        let err = ModelCursor::decode(&t, ModelOrder::CreatedAt, Direction::Asc).unwrap_err();
        assert_eq!(err.field(), Some("page_token"));
    }
}
