//! Reading the spec artifacts of the rules and statistical runtimes: JSON or
//! YAML, told apart by content (a document whose first non-blank character
//! is `{` is JSON, anything else YAML), deserialised with the path of the
//! offending member in every error (`rules[2].then: invalid type …`).

use crate::RuntimeError;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::marker::PhantomData;

/// Parses `artifact` as JSON or YAML into `T`; an error is a
/// [`RuntimeError::Load`] naming the member (and the line where known).
pub(crate) fn parse<T: DeserializeOwned>(artifact: &[u8], what: &str) -> Result<T, RuntimeError> {
    let text = std::str::from_utf8(artifact)
        .map_err(|e| RuntimeError::Load(format!("the {what} is not UTF-8 text (byte {})", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(RuntimeError::Load(format!("the {what} is empty")));
    }
    let result = if text.trim_start().starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| (e.path().to_string(), e.into_inner().to_string())).and_then(|v| {
            de.end().map_err(|e| (String::new(), e.to_string()))?;
            Ok(v)
        })
    } else {
        serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(text))
            .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
    };
    result.map_err(|(path, problem)| {
        if path.is_empty() || path == "." {
            RuntimeError::Load(format!("the {what} is malformed: {problem}"))
        } else {
            RuntimeError::Load(format!("{path}: {problem}"))
        }
    })
}

/// A JSON/YAML object kept in document order (the workspace's serde_json
/// sorts its maps), refusing repeated keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Ordered<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!("`{key}` is given twice")));
                    }
                    let value = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(OrderedMap(entries))
            }
        }
        deserializer.deserialize_map(Ordered(PhantomData))
    }
}

/// `value` in backticks for a message, cut at 80 characters.
pub(crate) fn quote(value: &str) -> String {
    // Control characters escaped, quotes kept: CEL sources read as written.
    let shown: String = value.chars().take(80).map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect();
    let more = if value.chars().count() > 80 { "…" } else { "" };
    format!("`{shown}{more}`")
}

/// A number for a message: integers without a fraction.
pub(crate) fn number(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        items: Vec<Item>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        #[allow(dead_code)]
        weights: OrderedMap<f64>,
    }

    #[test]
    fn json_and_yaml_errors_name_the_member() {
        let json = parse::<Doc>(br#"{"items": [{"weights": {"b": 1, "a": 2}}, {"weights": {"x": "one"}}]}"#, "spec").unwrap_err();
        assert!(json.to_string().contains("items[1].weights.x: invalid type: string \"one\""), "{json}");
        let yaml = parse::<Doc>(b"items:\n  - weights: {b: 1}\n  - wieghts: {}\n", "spec").unwrap_err();
        assert!(yaml.to_string().contains("items[1]: unknown field `wieghts`"), "{yaml}");
        let twice = parse::<Doc>(br#"{"items": [{"weights": {"a": 1, "a": 2}}]}"#, "spec").unwrap_err();
        assert!(twice.to_string().contains("`a` is given twice"), "{twice}");
        assert!(parse::<Doc>(b"  ", "spec").unwrap_err().to_string().contains("the spec is empty"));
        assert!(parse::<Doc>(b"{\"items\": []} x", "spec").unwrap_err().to_string().contains("trailing characters"));
    }

    #[test]
    fn maps_keep_document_order() {
        let doc = parse::<Doc>(b"items:\n  - weights: {b: 1, a: 2.5}\n", "spec").unwrap();
        let keys: Vec<&str> = doc.items[0].weights.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a"]);
    }
}
