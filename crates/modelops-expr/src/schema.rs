//! The declared context: what variables an expression may read and their
//! types. The `cel` crate has no type checker, so the schema is what lets
//! [`compile`](crate::compile) refuse a misspelt field or a comparison of a
//! number with a string before any data exists.

use std::fmt;

/// The type of a variable or of a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Bool,
    Int,
    Double,
    String,
    /// A point in time; bound from an RFC 3339 string.
    Timestamp,
    List(Box<Type>),
    /// String keys, values of the given type.
    Map(Box<Type>),
    /// Named fields, in declaration order.
    Object(Vec<(String, Type)>),
}

impl Type {
    pub fn list(item: Type) -> Type {
        Type::List(Box::new(item))
    }

    pub fn map(value: Type) -> Type {
        Type::Map(Box::new(value))
    }

    /// An object with `fields`, in the order given:
    /// `Type::object([("by", Type::String), ("at", Type::Timestamp)])`.
    pub fn object<S: Into<String>>(fields: impl IntoIterator<Item = (S, Type)>) -> Type {
        Type::Object(fields.into_iter().map(|(name, t)| (name.into(), t)).collect())
    }

    /// The type of field `name` of an object.
    pub fn field(&self, name: &str) -> Option<&Type> {
        match self {
            Type::Object(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, t)| t),
            _ => None,
        }
    }

    /// The CEL name of the type, as errors show it.
    pub fn name(&self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Double => "double",
            Type::String => "string",
            Type::Timestamp => "timestamp",
            Type::List(_) => "list",
            Type::Map(_) | Type::Object(_) => "map",
        }
    }

    /// The value compile-time checks evaluate against, as JSON: zero values,
    /// lists of one prototype element (so that the bodies of `exists`, `all`,
    /// `map` and `filter` run), empty maps, objects with every field.
    pub fn prototype(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Type::Bool => J::Bool(false),
            Type::Int => J::from(0),
            Type::Double => J::from(0.0),
            Type::String => J::String(String::new()),
            Type::Timestamp => J::String("1970-01-01T00:00:00Z".into()),
            Type::List(item) => J::Array(vec![item.prototype()]),
            Type::Map(_) => J::Object(serde_json::Map::new()),
            Type::Object(fields) => J::Object(fields.iter().map(|(n, t)| (n.clone(), t.prototype())).collect()),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::List(item) => write!(f, "list({item})"),
            Type::Map(value) => write!(f, "map(string, {value})"),
            Type::Object(_) => f.write_str("object"),
            other => f.write_str(other.name()),
        }
    }
}

/// The variables an expression may read, with their types, in declaration
/// order. Built with [`Schema::var`]:
///
/// ```
/// use modelops_expr::{Schema, Type};
/// let schema = Schema::new()
///     .var("score", Type::Double)
///     .var("applicant", Type::object([("age", Type::Int), ("country", Type::String)]));
/// assert_eq!(schema.get("score"), Some(&Type::Double));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    vars: Vec<(String, Type)>,
}

impl Schema {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `name` (replacing an earlier declaration of the same name).
    pub fn var(mut self, name: impl Into<String>, t: Type) -> Self {
        let name = name.into();
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = t,
            None => self.vars.push((name, t)),
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&Type> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Type)> {
        self.vars.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The variables' names, as an error lists them: `` `a`, `b` ``.
    pub(crate) fn names(&self) -> String {
        backticked(self.vars.iter().map(|(n, _)| n.as_str()))
    }

    /// Every variable's [`Type::prototype`], as one JSON object.
    pub fn prototype(&self) -> serde_json::Value {
        serde_json::Value::Object(self.vars.iter().map(|(n, t)| (n.clone(), t.prototype())).collect())
    }
}

/// `` `a`, `b`, `c` ``, or `none` for nothing.
pub(crate) fn backticked<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let list: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prototypes_have_one_element_lists_empty_maps_and_every_field() {
        let t = Type::object([
            ("n", Type::Int),
            ("x", Type::Double),
            ("at", Type::Timestamp),
            ("tags", Type::map(Type::String)),
            ("items", Type::list(Type::object([("ok", Type::Bool)]))),
        ]);
        assert_eq!(
            t.prototype(),
            serde_json::json!({"n": 0, "x": 0.0, "at": "1970-01-01T00:00:00Z", "tags": {}, "items": [{"ok": false}]})
        );
        assert_eq!(t.field("tags"), Some(&Type::map(Type::String)));
        assert_eq!(t.field("nope"), None);
        assert_eq!(Type::list(Type::map(Type::Double)).to_string(), "list(map(string, double))");
    }

    #[test]
    fn a_redeclared_variable_keeps_its_place_and_takes_the_new_type() {
        let s = Schema::new().var("a", Type::Int).var("b", Type::Bool).var("a", Type::String);
        assert_eq!(s.iter().map(|(n, t)| (n, t.clone())).collect::<Vec<_>>(), vec![("a", Type::String), ("b", Type::Bool)]);
        assert_eq!(s.names(), "`a`, `b`");
        assert_eq!(Schema::new().names(), "none");
    }
}
