//! Values in and out: [`Bindings`] turn JSON into CEL values as the schema
//! declares them; [`Value`] is what an evaluation gives back, free of the
//! `cel` crate's types.

use crate::schema::{Schema, Type};
use crate::ExprError;
use cel::common::value::{CowVal, Val};
use chrono::{DateTime, FixedOffset};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    Timestamp(DateTime<FixedOffset>),
    Duration(chrono::Duration),
    List(Vec<Value>),
    Map(BTreeMap<MapKey, Value>),
}

/// A map key: CEL allows strings, integers and bools.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum MapKey {
    Bool(bool),
    Int(i64),
    Uint(u64),
    String(String),
}

impl Value {
    /// The CEL name of the value's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Timestamp(_) => "timestamp",
            Value::Duration(_) => "duration",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// The value as JSON: timestamps as RFC 3339, durations as seconds
    /// (`"90s"`, CEL's form), bytes as a list of numbers, a non-finite
    /// double as `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Uint(u) => J::from(*u),
            Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.clone()),
            Value::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
            Value::Timestamp(t) => J::String(t.to_rfc3339()),
            Value::Duration(d) => J::String(format_duration(d)),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => J::Object(
                map.iter()
                    .map(|(k, v)| {
                        let key = match k {
                            MapKey::Bool(b) => b.to_string(),
                            MapKey::Int(i) => i.to_string(),
                            MapKey::Uint(u) => u.to_string(),
                            MapKey::String(s) => s.clone(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }

    pub(crate) fn from_cel(value: cel::Value) -> Result<Value, ExprError> {
        Ok(match value {
            cel::Value::Null => Value::Null,
            cel::Value::Bool(b) => Value::Bool(b),
            cel::Value::Int(i) => Value::Int(i),
            cel::Value::UInt(u) => Value::Uint(u),
            cel::Value::Float(d) => Value::Double(d),
            cel::Value::String(s) => Value::String(Arc::unwrap_or_clone(s)),
            cel::Value::Bytes(b) => Value::Bytes(Arc::unwrap_or_clone(b)),
            cel::Value::Timestamp(t) => Value::Timestamp(t),
            cel::Value::Duration(d) => Value::Duration(d),
            cel::Value::List(items) => Value::List(Arc::unwrap_or_clone(items).into_iter().map(Value::from_cel).collect::<Result<_, _>>()?),
            cel::Value::Map(map) => {
                let mut out = BTreeMap::new();
                for (k, v) in Arc::unwrap_or_clone(map.map) {
                    let key = match k {
                        cel::objects::Key::Bool(b) => MapKey::Bool(b),
                        cel::objects::Key::Int(i) => MapKey::Int(i),
                        cel::objects::Key::Uint(u) => MapKey::Uint(u),
                        cel::objects::Key::String(s) => MapKey::String(Arc::unwrap_or_clone(s)),
                    };
                    out.insert(key, Value::from_cel(v)?);
                }
                Value::Map(out)
            }
            other => {
                return Err(ExprError::Evaluation {
                    message: format!("the result is a `{}` value, which has no modelops form", cel_type_name(&other)),
                })
            }
        })
    }
}

fn format_duration(d: &chrono::Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{}s", d.num_seconds())
    } else {
        let secs = d.num_seconds() as f64 + f64::from(nanos) / 1e9;
        format!("{secs}s")
    }
}

/// The CEL name of a `cel` value's type, as messages show it (`double`, not
/// the crate's `float`).
pub(crate) fn cel_type_name(value: &cel::Value) -> String {
    match value {
        cel::Value::Float(_) => "double".into(),
        cel::Value::Timestamp(_) => "timestamp".into(),
        cel::Value::Duration(_) => "duration".into(),
        cel::Value::Struct(s) => s.name().to_string(),
        other => other.type_of().to_string(),
    }
}

/// The values of an expression's variables, converted from JSON as the
/// schema declares them: an RFC 3339 string becomes a timestamp where the
/// schema says `Timestamp`; any JSON number is accepted for a `Double` (so
/// `1` binds as `1.0`), only integers for an `Int`. Fields an object's JSON
/// has beyond the declared ones are ignored; a missing field, a `null` or a
/// value of another type is an error naming the path.
#[derive(Debug, Clone)]
pub struct Bindings {
    schema: Schema,
    values: BTreeMap<String, Box<dyn Val>>,
}

impl Bindings {
    /// No variable bound yet.
    pub fn new(schema: &Schema) -> Self {
        Self { schema: schema.clone(), values: BTreeMap::new() }
    }

    /// Binds every variable of `schema` from the member of the same name of
    /// the JSON object `object` (e.g. a context struct serialised with
    /// `serde_json::to_value`).
    pub fn from_object(schema: &Schema, object: &serde_json::Value) -> Result<Self, ExprError> {
        let serde_json::Value::Object(members) = object else {
            return Err(ExprError::Binding {
                path: String::new(),
                problem: format!("expected an object of variables, found {}", json_kind(object)),
            });
        };
        let mut bindings = Self::new(schema);
        for (name, t) in schema.iter() {
            let value = members
                .get(name)
                .ok_or_else(|| ExprError::Binding { path: name.to_string(), problem: "the variable is missing".into() })?;
            bindings.values.insert(name.to_string(), to_val(name, t, value)?);
        }
        Ok(bindings)
    }

    /// Binds one declared variable.
    pub fn bind(&mut self, name: &str, value: &serde_json::Value) -> Result<&mut Self, ExprError> {
        let t = self.schema.get(name).ok_or_else(|| ExprError::UndeclaredVariable {
            name: name.to_string(),
            declared: self.schema.names(),
            at: None,
        })?;
        let val = to_val(name, t, value)?;
        self.values.insert(name.to_string(), val);
        Ok(self)
    }

    pub fn is_bound(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The schema's prototype, bound: what compile-time checks evaluate on.
    pub(crate) fn prototype(schema: &Schema) -> Result<Self, ExprError> {
        Self::from_object(schema, &schema.prototype())
    }
}

impl cel::context::VariableResolver for Bindings {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        self.values.get(variable).map(|v| CowVal::Borrowed(v.as_ref()))
    }
}

fn to_val(path: &str, t: &Type, json: &serde_json::Value) -> Result<Box<dyn Val>, ExprError> {
    let value = to_cel(path, t, json)?;
    Box::<dyn Val>::try_from(value).map_err(|e| ExprError::Binding { path: path.to_string(), problem: crate::describe(&e) })
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a bool",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Converts `json` to the CEL value of type `t`. Recursion follows the
/// schema, whose depth the program declares, not the data's.
fn to_cel(path: &str, t: &Type, json: &serde_json::Value) -> Result<cel::Value, ExprError> {
    use serde_json::Value as J;
    let mismatch = || ExprError::Binding { path: path.to_string(), problem: format!("expected {}, found {}", article(t), json_kind(json)) };
    Ok(match (t, json) {
        (Type::Bool, J::Bool(b)) => cel::Value::Bool(*b),
        (Type::Int, J::Number(n)) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => {
                return Err(ExprError::Binding {
                    path: path.to_string(),
                    problem: format!("`{n}` is not an integer in the range of an int"),
                })
            }
        },
        (Type::Double, J::Number(n)) => match n.as_f64() {
            Some(d) => cel::Value::Float(d),
            None => return Err(mismatch()),
        },
        (Type::String, J::String(s)) => cel::Value::String(Arc::new(s.clone())),
        (Type::Timestamp, J::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(at) => cel::Value::Timestamp(at),
            Err(_) => return Err(ExprError::Binding { path: path.to_string(), problem: format!("{} is not an RFC 3339 time", quote(s)) }),
        },
        (Type::List(item), J::Array(items)) => cel::Value::List(Arc::new(
            items.iter().enumerate().map(|(i, v)| to_cel(&format!("{path}[{i}]"), item, v)).collect::<Result<_, _>>()?,
        )),
        (Type::Map(value), J::Object(members)) => {
            let mut map = HashMap::with_capacity(members.len());
            for (k, v) in members {
                map.insert(k.clone(), to_cel(&format!("{path}[{}]", quote_key(k)), value, v)?);
            }
            cel::Value::from(map)
        }
        (Type::Object(fields), J::Object(members)) => {
            let mut map = HashMap::with_capacity(fields.len());
            for (name, field_type) in fields {
                let field_path = format!("{path}.{name}");
                let v = members
                    .get(name)
                    .ok_or_else(|| ExprError::Binding { path: field_path.clone(), problem: "the field is missing".into() })?;
                map.insert(name.clone(), to_cel(&field_path, field_type, v)?);
            }
            cel::Value::from(map)
        }
        _ => return Err(mismatch()),
    })
}

fn article(t: &Type) -> String {
    match t {
        Type::Int => "an int".into(),
        Type::Object(_) => "an object".into(),
        other => format!("a {other}"),
    }
}

/// A value quoted for a message: backticks, at most 80 characters.
pub(crate) fn quote(s: &str) -> String {
    let shown: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    let more = if s.chars().count() > 80 { "…" } else { "" };
    format!("`{shown}{more}`")
}

fn quote_key(k: &str) -> String {
    let shown: String = k.chars().take(80).flat_map(char::escape_debug).collect();
    format!("'{shown}'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new()
            .var("x", Type::Double)
            .var("n", Type::Int)
            .var("at", Type::Timestamp)
            .var("people", Type::list(Type::object([("name", Type::String), ("scores", Type::map(Type::Double))])))
    }

    #[test]
    fn json_converts_as_the_schema_declares() {
        let mut b = Bindings::new(&schema());
        b.bind("x", &json!(1)).unwrap();
        b.bind("n", &json!(7)).unwrap();
        b.bind("at", &json!("2026-05-01T12:00:00+02:00")).unwrap();
        b.bind("people", &json!([{"name": "ana", "scores": {"auc": 1}, "extra": true}])).unwrap();
        assert!(b.is_bound("people"));
        let dbg = format!("{:?}", b.values["x"]);
        assert!(dbg.contains("1.0"), "an integer binds as a double where a double is declared: {dbg}");
    }

    #[test]
    fn mismatches_name_the_path() {
        let mut b = Bindings::new(&schema());
        let cases = [
            ("n", json!(1.5), "`n`: `1.5` is not an integer in the range of an int"),
            ("n", json!("1"), "`n`: expected an int, found a string"),
            ("x", json!(null), "`x`: expected a double, found null"),
            ("at", json!("yesterday"), "`at`: `yesterday` is not an RFC 3339 time"),
            ("people", json!([{"name": "a", "scores": {"auc": "high"}}]), "`people[0].scores['auc']`: expected a double, found a string"),
            ("people", json!([{"scores": {}}]), "`people[0].name`: the field is missing"),
        ];
        for (name, value, want) in cases {
            assert_eq!(b.bind(name, &value).unwrap_err().to_string(), want);
        }
        assert_eq!(b.bind("nope", &json!(1)).unwrap_err().to_string(), "`nope` is not declared (variables: `x`, `n`, `at`, `people`)");
        let err = Bindings::from_object(&schema(), &json!({"x": 1})).unwrap_err();
        assert_eq!(err.to_string(), "`n`: the variable is missing");
    }

    #[test]
    fn results_convert_to_json() {
        let v = Value::Map(BTreeMap::from([
            (MapKey::String("a".into()), Value::List(vec![Value::Int(1), Value::Double(0.5), Value::Double(f64::NAN)])),
            (MapKey::Int(2), Value::Duration(chrono::Duration::seconds(90))),
        ]));
        assert_eq!(v.to_json(), json!({"2": "90s", "a": [1, 0.5, null]}));
        assert_eq!(v.type_name(), "map");
    }
}
