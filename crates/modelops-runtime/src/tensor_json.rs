//! Tensor data in the Open Inference Protocol's JSON form, both ways: the
//! server's inference API reads requests with it and writes answers, the
//! external runtime writes requests and reads answers. Errors are
//! structured so each side words them for its own reader.

use crate::tensor::TensorData;
use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::Value;

/// Nested arrays deeper than this are refused (the recursion is bounded).
pub const MAX_DEPTH: usize = 32;

/// Why JSON `data` could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonDataError {
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An object where values or arrays of values belong.
    Object,
    /// Element `index` (the JSON text `value`) is not `expected` ("a
    /// number", "an integer from 0 to 255", …).
    Element { index: usize, value: String, expected: String },
    /// A datatype this side does not read.
    Unsupported(String),
}

/// The elements of `data`, nested or flat, in row-major order.
pub fn flatten(data: &Value) -> Result<Vec<&Value>, JsonDataError> {
    fn walk<'a>(value: &'a Value, out: &mut Vec<&'a Value>, depth: usize) -> Result<(), JsonDataError> {
        match value {
            Value::Array(items) => {
                if depth >= MAX_DEPTH {
                    return Err(JsonDataError::TooDeep);
                }
                items.iter().try_for_each(|item| walk(item, out, depth + 1))
            }
            Value::Object(_) => Err(JsonDataError::Object),
            scalar => {
                out.push(scalar);
                Ok(())
            }
        }
    }
    let mut out = Vec::new();
    walk(data, &mut out, 0)?;
    Ok(out)
}

fn int_range(datatype: &str) -> (i64, i64) {
    match datatype {
        "INT8" => (i64::from(i8::MIN), i64::from(i8::MAX)),
        "INT16" => (i64::from(i16::MIN), i64::from(i16::MAX)),
        "INT32" => (i64::from(i32::MIN), i64::from(i32::MAX)),
        "UINT8" => (0, i64::from(u8::MAX)),
        "UINT16" => (0, i64::from(u16::MAX)),
        "UINT32" => (0, i64::from(u32::MAX)),
        "UINT64" => (0, i64::MAX),
        _ => (i64::MIN, i64::MAX),
    }
}

/// Reads flattened elements as `datatype`: BOOL (`true`/`false`, or 0/1),
/// INT8–INT32 and UINT8/UINT16 as 32-bit, INT64, UINT32 and UINT64 as
/// 64-bit integers (in range), FP32 and FP64 (`null`, `"NaN"`,
/// `"Infinity"`, `"-Infinity"` for the floats JSON lacks), BYTES as text.
#[allow(clippy::cast_possible_truncation)]
pub fn decode(datatype: &str, values: &[&Value]) -> Result<TensorData, JsonDataError> {
    let bad = |index: usize, v: &Value, expected: &str| JsonDataError::Element { index, value: v.to_string(), expected: expected.to_string() };
    let float = |i: usize, v: &Value| -> Result<f64, JsonDataError> {
        match v {
            Value::Number(n) => n.as_f64().ok_or_else(|| bad(i, v, "a number")),
            Value::Null => Ok(f64::NAN),
            Value::String(s) if s == "NaN" => Ok(f64::NAN),
            Value::String(s) if s == "Infinity" || s == "inf" => Ok(f64::INFINITY),
            Value::String(s) if s == "-Infinity" || s == "-inf" => Ok(f64::NEG_INFINITY),
            _ => Err(bad(i, v, "a number")),
        }
    };
    let ints = || -> Result<Vec<i64>, JsonDataError> {
        let (lo, hi) = int_range(datatype);
        let expected = format!("an integer from {lo} to {hi}");
        values.iter().enumerate().map(|(i, v)| v.as_i64().filter(|x| (lo..=hi).contains(x)).ok_or_else(|| bad(i, v, &expected))).collect()
    };
    Ok(match datatype {
        "BOOL" => TensorData::Bool(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Bool(b) => Ok(*b),
                    Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
                    Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
                    _ => Err(bad(i, v, "true or false")),
                })
                .collect::<Result<_, _>>()?,
        ),
        "FP32" => TensorData::Float32(values.iter().enumerate().map(|(i, v)| float(i, v).map(|x| x as f32)).collect::<Result<_, _>>()?),
        "FP64" => TensorData::Float64(values.iter().enumerate().map(|(i, v)| float(i, v)).collect::<Result<_, _>>()?),
        // In range by construction: the narrowing cannot truncate.
        "INT8" | "INT16" | "INT32" | "UINT8" | "UINT16" => TensorData::Int32(ints()?.into_iter().map(|x| x as i32).collect()),
        "INT64" | "UINT32" | "UINT64" => TensorData::Int64(ints()?),
        "BYTES" => TensorData::String(
            values.iter().enumerate().map(|(i, v)| v.as_str().map(str::to_string).ok_or_else(|| bad(i, v, "a string"))).collect::<Result<_, _>>()?,
        ),
        other => return Err(JsonDataError::Unsupported(other.to_string())),
    })
}

/// Serialises a tensor's elements as a flat JSON array without building a
/// `Value` per element (NaN and infinities as `null`).
pub struct FlatData<'a>(pub &'a TensorData);

impl Serialize for FlatData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn all<S: Serializer, T: Serialize>(serializer: S, items: &[T]) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(Some(items.len()))?;
            for item in items {
                seq.serialize_element(item)?;
            }
            seq.end()
        }
        match self.0 {
            TensorData::Bool(v) => all(serializer, v),
            TensorData::Int32(v) => all(serializer, v),
            TensorData::Int64(v) => all(serializer, v),
            TensorData::Float32(v) => all(serializer, v),
            TensorData::Float64(v) => all(serializer, v),
            TensorData::String(v) => all(serializer, v),
        }
    }
}
