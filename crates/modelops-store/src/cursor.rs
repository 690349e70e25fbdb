//! Keyset cursors behind the opaque page tokens, and the query-building
//! pieces both backends share (prefix ranges, tag filters, paging).
//! Backend-neutral: generic over the sqlx database.

use chrono::{DateTime, Utc};
use modelops_core::model::Model;
use modelops_core::name::{quote, MAX_NAME_LEN};
use modelops_core::page::{decode_token, encode_token, Direction, ModelOrder, Page};
use modelops_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;

/// Position after the last model of a page. `k` is the sort key as text
/// (empty for name order, a time in `format_time` form otherwise), `n` the
/// model name that breaks ties.
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

/// The error for a token that decodes but is not one this server issued
/// for this listing. The token is quoted with a bounded prefix only.
fn foreign(token: &str, why: &str) -> Error {
    Error::invalid("page_token", format!("{} {why}", quote(token)))
}

impl ModelCursor {
    pub fn decode(token: &str, order: ModelOrder, dir: Direction) -> Result<Self> {
        let c: Self = decode_token(token)?;
        if c.o != order.as_str() || c.d != dir.as_str() {
            return Err(foreign(token, "was issued for a different ordering"));
        }
        // Names are bound as parameters: one a client forged (with a NUL,
        // which PostgreSQL refuses) must be refused here as a bad token. Not
        // the full name rules: a name stored under older rules is a valid
        // position to continue from.
        if c.n.contains('\0') || c.n.chars().count() > MAX_NAME_LEN {
            return Err(foreign(token, "is not a page token this server issued"));
        }
        Ok(c)
    }

    /// The token for the page after `last`.
    pub fn after(order: ModelOrder, dir: Direction, last: &Model) -> String {
        let k = match order {
            ModelOrder::Name => String::new(),
            ModelOrder::CreatedAt => modelops_core::clock::format_time(&last.created_at),
            ModelOrder::UpdatedAt => modelops_core::clock::format_time(&last.updated_at),
        };
        encode_token(&Self { o: order.as_str().into(), d: dir.as_str().into(), k, n: last.name.to_string() })
    }

    /// The time sort key, `None` for name order.
    pub fn time_key(&self, token: &str) -> Result<Option<DateTime<Utc>>> {
        if self.o == ModelOrder::Name.as_str() {
            return Ok(None);
        }
        DateTime::parse_from_rfc3339(&self.k)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| foreign(token, "is not a page token this server issued"))
    }
}

impl VersionCursor {
    pub fn decode(token: &str, dir: Direction) -> Result<Self> {
        let c: Self = decode_token(token)?;
        if c.d != dir.as_str() {
            return Err(foreign(token, "was issued for a different ordering"));
        }
        Ok(c)
    }

    pub fn encode(dir: Direction, number: u32) -> String {
        encode_token(&Self { d: dir.as_str().into(), v: number })
    }
}

impl AuditCursor {
    pub fn decode(token: &str) -> Result<Self> {
        decode_token(token)
    }

    pub fn encode(sequence: i64) -> String {
        encode_token(&Self { s: sequence })
    }
}

/// Splits `size + 1` fetched rows into a page and the token for the next one.
pub(crate) fn paginate<T>(mut items: Vec<T>, size: u32, token: impl Fn(&T) -> String) -> Page<T> {
    let next_page_token = if items.len() > size as usize {
        items.truncate(size as usize);
        items.last().map(token)
    } else {
        None
    };
    Page { items, next_page_token }
}

/// Adds a `key` or `key=value` tag filter on `table`, joined by `column`.
pub(crate) fn push_tag_filter<'a, DB: sqlx::Database>(
    qb: &mut QueryBuilder<'a, DB>,
    table: &str,
    column: &str,
    outer: &str,
    tag: &(String, Option<String>),
) where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(format!(" AND EXISTS (SELECT 1 FROM {table} t WHERE t.{column} = {outer} AND t.key = "));
    qb.push_bind(tag.0.clone());
    if let Some(value) = &tag.1 {
        qb.push(" AND t.value = ");
        qb.push_bind(value.clone());
    }
    qb.push(")");
}

/// Adds `column` starts with `prefix`, as an index-friendly range.
pub(crate) fn push_prefix_filter<'a, DB: sqlx::Database>(qb: &mut QueryBuilder<'a, DB>, column: &str, prefix: &str)
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(format!(" AND {column} >= "));
    qb.push_bind(prefix.to_string());
    if let Some(upper) = prefix_upper_bound(prefix) {
        qb.push(format!(" AND {column} < "));
        qb.push_bind(upper);
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

    fn cursor_token(o: &str, n: &str, k: &str) -> String {
        encode_token(&ModelCursor { o: o.into(), d: "asc".into(), k: k.into(), n: n.into() })
    }

    #[test]
    fn a_cursor_for_another_ordering_is_refused() {
        let t = cursor_token("name", "a", "");
        assert!(ModelCursor::decode(&t, ModelOrder::Name, Direction::Asc).is_ok());
        let err = ModelCursor::decode(&t, ModelOrder::CreatedAt, Direction::Asc).unwrap_err();
        assert_eq!(err.field(), Some("page_token"));
    }

    #[test]
    fn forged_cursor_contents_are_a_bad_token() {
        let nul = cursor_token("name", "a\0b", "");
        assert_eq!(ModelCursor::decode(&nul, ModelOrder::Name, Direction::Asc).unwrap_err().field(), Some("page_token"));
        let bad_time = cursor_token("created_at", "a", "yesterday");
        let c = ModelCursor::decode(&bad_time, ModelOrder::CreatedAt, Direction::Asc).unwrap();
        assert_eq!(c.time_key(&bad_time).unwrap_err().field(), Some("page_token"));
    }

    #[test]
    fn errors_quote_only_a_bounded_prefix_of_the_token() {
        let long = cursor_token("created_at", &"m".repeat(100), &"9".repeat(20_000));
        let c = ModelCursor::decode(&long, ModelOrder::CreatedAt, Direction::Asc).unwrap();
        let message = c.time_key(&long).unwrap_err().to_string();
        assert!(long.len() > 20_000 && message.len() < 300, "{} bytes: {message}", message.len());
    }
}
