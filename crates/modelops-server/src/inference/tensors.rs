//! Tensors on the wire: the Open Inference Protocol's JSON `data` and its
//! binary tensor extension, decoded into the runtimes' [`Tensor`]s and
//! encoded back. Every refusal names the tensor.

use crate::error::ApiError;
pub use modelops_runtime::tensor_json::FlatData;
use modelops_runtime::tensor_json::{self, JsonDataError};
use modelops_serving::TensorData;
use serde_json::Value;

/// Decodes OIP JSON `data` (nested or flat, row-major) of `datatype` into
/// `count` elements (the shared codec: `modelops_runtime::tensor_json`).
/// `null` (and the strings `NaN`, `Infinity`, `-Infinity`) stand for the
/// floats JSON lacks.
pub fn from_json(field: &str, datatype: &str, data: &Value, count: usize) -> Result<TensorData, ApiError> {
    let flat = tensor_json::flatten(data).map_err(|e| json_error(field, datatype, e))?;
    if flat.len() != count {
        return Err(ApiError::invalid(field, format!("the shape holds {count} elements but `data` has {}", flat.len())));
    }
    tensor_json::decode(datatype, &flat).map_err(|e| json_error(field, datatype, e))
}

fn json_error(field: &str, datatype: &str, e: JsonDataError) -> ApiError {
    match e {
        JsonDataError::TooDeep => ApiError::invalid(field, format!("`data` nests arrays deeper than {} levels", tensor_json::MAX_DEPTH)),
        JsonDataError::Object => ApiError::invalid(field, "`data` holds an object; it must hold values or arrays of values"),
        JsonDataError::Element { index, value, expected } => ApiError::invalid(field, format!("element {index} (`{value}`) is not {expected}")),
        JsonDataError::Unsupported(_) => unsupported(field, datatype),
    }
}

fn unsupported(field: &str, datatype: &str) -> ApiError {
    ApiError::invalid(
        field,
        format!("datatype `{datatype}` is not supported; use BOOL, INT8–INT64, UINT8–UINT64, FP32, FP64 or BYTES"),
    )
}

/// Decodes `count` elements of `datatype` from the binary tensor extension's
/// little-endian, row-major bytes.
pub fn from_binary(field: &str, datatype: &str, bytes: &[u8], count: usize) -> Result<TensorData, ApiError> {
    let fixed = |size: usize| -> Result<std::slice::ChunksExact<'_, u8>, ApiError> {
        if bytes.len() != count * size {
            return Err(ApiError::invalid(
                field,
                format!("{} bytes of binary data for {count} {datatype} elements of {size} bytes each", bytes.len()),
            ));
        }
        Ok(bytes.chunks_exact(size))
    };
    let arr = |c: &[u8]| -> [u8; 8] {
        let mut a = [0u8; 8];
        a[..c.len()].copy_from_slice(c);
        a
    };
    Ok(match datatype {
        "BOOL" => TensorData::Bool(fixed(1)?.map(|c| c[0] != 0).collect()),
        "INT8" => TensorData::Int32(fixed(1)?.map(|c| i32::from(c[0] as i8)).collect()),
        "UINT8" => TensorData::Int32(fixed(1)?.map(|c| i32::from(c[0])).collect()),
        "INT16" => TensorData::Int32(fixed(2)?.map(|c| i32::from(i16::from_le_bytes([c[0], c[1]]))).collect()),
        "UINT16" => TensorData::Int32(fixed(2)?.map(|c| i32::from(u16::from_le_bytes([c[0], c[1]]))).collect()),
        "INT32" => TensorData::Int32(fixed(4)?.map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        "UINT32" => TensorData::Int64(fixed(4)?.map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()),
        "INT64" => TensorData::Int64(fixed(8)?.map(|c| i64::from_le_bytes(arr(c))).collect()),
        "UINT64" => TensorData::Int64(
            fixed(8)?
                .map(|c| {
                    let v = u64::from_le_bytes(arr(c));
                    i64::try_from(v).map_err(|_| ApiError::invalid(field, format!("{v} does not fit in a signed 64-bit integer")))
                })
                .collect::<Result<_, _>>()?,
        ),
        "FP32" => TensorData::Float32(fixed(4)?.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        "FP64" => TensorData::Float64(fixed(8)?.map(|c| f64::from_le_bytes(arr(c))).collect()),
        "BYTES" => {
            let mut out = Vec::with_capacity(count);
            let mut rest = bytes;
            while !rest.is_empty() {
                if rest.len() < 4 {
                    return Err(ApiError::invalid(field, "binary BYTES data ends inside an element's 4-byte length"));
                }
                let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let Some(element) = rest.get(4..4 + len) else {
                    return Err(ApiError::invalid(field, format!("binary BYTES element {} claims {len} bytes past the data's end", out.len())));
                };
                let text = std::str::from_utf8(element)
                    .map_err(|_| ApiError::invalid(field, format!("BYTES element {} is not UTF-8 text", out.len())))?;
                out.push(text.to_string());
                rest = &rest[4 + len..];
            }
            if out.len() != count {
                return Err(ApiError::invalid(field, format!("the shape holds {count} elements but the binary data has {}", out.len())));
            }
            TensorData::String(out)
        }
        other => return Err(unsupported(field, other)),
    })
}

/// The binary tensor extension's bytes of an output.
pub fn to_binary(data: &TensorData) -> Vec<u8> {
    match data {
        TensorData::Bool(v) => v.iter().map(|b| u8::from(*b)).collect(),
        TensorData::Int32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Int64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Float32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Float64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::String(v) => {
            let mut out = Vec::with_capacity(v.iter().map(|s| s.len() + 4).sum());
            for s in v {
                out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            out
        }
    }
}

/// The element count a shape holds, refusing negative dimensions and
/// products that overflow.
pub fn element_count(field: &str, shape: &[i64]) -> Result<(Vec<usize>, usize), ApiError> {
    let mut dims = Vec::with_capacity(shape.len());
    let mut count: usize = 1;
    for d in shape {
        let d = usize::try_from(*d).map_err(|_| ApiError::invalid(field, format!("dimension `{d}` of the shape is negative")))?;
        count = count.checked_mul(d).ok_or_else(|| ApiError::invalid(field, "the shape holds more elements than fit in memory"))?;
        dims.push(d);
    }
    if dims.is_empty() {
        return Err(ApiError::invalid(field, "the shape is empty; its first dimension is the number of rows"));
    }
    Ok((dims, count))
}


#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_data_nested_or_flat_with_missing_floats() {
        let d = from_json("inputs.x", "FP32", &json!([[1, 2.5], [null, "NaN"]]), 4).unwrap();
        let TensorData::Float32(v) = d else { panic!() };
        assert_eq!(&v[..2], &[1.0, 2.5]);
        assert!(v[2].is_nan() && v[3].is_nan());
        assert_eq!(from_json("x", "INT64", &json!([1, -2]), 2).unwrap(), TensorData::Int64(vec![1, -2]));
        assert_eq!(from_json("x", "BYTES", &json!(["a"]), 1).unwrap(), TensorData::String(vec!["a".into()]));
        let err = |dt: &str, data: Value, n: usize| from_json("inputs.x", dt, &data, n).unwrap_err().message;
        assert!(err("FP32", json!([1, 2]), 3).contains("holds 3 elements but `data` has 2"));
        assert!(err("UINT8", json!([256]), 1).contains("from 0 to 255"));
        assert!(err("INT64", json!([1.5]), 1).contains("`1.5`"));
        assert!(err("FP16", json!([1]), 1).contains("`FP16` is not supported"));
        assert!(err("FP32", json!([{"a": 1}]), 1).contains("object"));
    }

    #[test]
    fn binary_data_round_trips_and_refuses_wrong_sizes() {
        for data in [
            TensorData::Float32(vec![1.0, -2.5]),
            TensorData::Float64(vec![3.25]),
            TensorData::Int64(vec![i64::MIN, 7]),
            TensorData::Int32(vec![-1]),
            TensorData::Bool(vec![true, false]),
            TensorData::String(vec!["héllo".into(), String::new()]),
        ] {
            let dt = modelops_runtime::tensor::oip_datatype(data.dtype());
            assert_eq!(from_binary("x", dt, &to_binary(&data), data.len()).unwrap(), data, "{dt}");
        }
        assert!(from_binary("inputs.x", "FP32", &[0; 7], 2).unwrap_err().message.contains("7 bytes of binary data for 2 FP32"));
        assert!(from_binary("x", "BYTES", &[5, 0, 0, 0, b'a'], 1).unwrap_err().message.contains("past the data's end"));
        assert!(from_binary("x", "BYTES", &[1, 0, 0, 0, 0xff], 1).unwrap_err().message.contains("not UTF-8"));
        assert!(from_binary("x", "UINT64", &u64::MAX.to_le_bytes(), 1).unwrap_err().message.contains("does not fit"));
    }

    #[test]
    fn shapes_must_be_non_negative_and_non_empty() {
        assert_eq!(element_count("x", &[2, 3]).unwrap(), (vec![2, 3], 6));
        assert!(element_count("x", &[-1, 3]).unwrap_err().message.contains("negative"));
        assert!(element_count("x", &[]).unwrap_err().message.contains("empty"));
        assert!(element_count("x", &[i64::MAX, i64::MAX]).unwrap_err().message.contains("more elements"));
    }
}
