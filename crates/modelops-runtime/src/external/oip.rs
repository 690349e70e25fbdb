//! The OIP V2 JSON inference request we send and the response we read.

use crate::tensor::{oip_datatype, Tensor, TensorData};
use crate::PredictRequest;
use modelops_core::version::{DataType, Signature, SignatureField};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserialize;

/// The request body: every input (shape with the batch dimension, flat
/// data), the signature's outputs by name, the request's parameters.
pub(super) fn request_body(
    request: &PredictRequest,
    signature: &Signature,
) -> serde_json::Result<Vec<u8>> {
    struct Input<'a>(&'a Tensor);
    impl Serialize for Input<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(4))?;
            map.serialize_entry("name", &self.0.name)?;
            map.serialize_entry("shape", &self.0.shape)?;
            map.serialize_entry("datatype", oip_datatype(self.0.data.dtype()))?;
            match &self.0.data {
                // serde_json writes a non-finite float as `null`.
                TensorData::Bool(v) => map.serialize_entry("data", v)?,
                TensorData::Int32(v) => map.serialize_entry("data", v)?,
                TensorData::Int64(v) => map.serialize_entry("data", v)?,
                TensorData::Float32(v) => map.serialize_entry("data", v)?,
                TensorData::Float64(v) => map.serialize_entry("data", v)?,
                TensorData::String(v) => map.serialize_entry("data", v)?,
            }
            map.end()
        }
    }
    #[derive(serde::Serialize)]
    struct Output<'a> {
        name: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Body<'a> {
        #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
        parameters: &'a serde_json::Map<String, serde_json::Value>,
        inputs: Vec<Input<'a>>,
        outputs: Vec<Output<'a>>,
    }
    serde_json::to_vec(&Body {
        parameters: &request.parameters,
        inputs: request.inputs.iter().map(Input).collect(),
        outputs: signature
            .outputs
            .iter()
            .map(|f| Output { name: &f.name })
            .collect(),
    })
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    outputs: Vec<ResponseOutput>,
}

#[derive(Deserialize)]
struct ResponseOutput {
    name: String,
    shape: Vec<u64>,
    datatype: String,
    data: serde_json::Value,
}

/// The answer's outputs the signature names, in the signature's order, as
/// tensors of the datatype the answer declares (the caller converts them
/// to the signature's). Fails with a reason naming the output.
pub(super) fn response_tensors(
    body: &[u8],
    wanted: &[SignatureField],
) -> Result<Vec<Tensor>, String> {
    let response: Response = serde_json::from_slice(body)
        .map_err(|e| format!("its answer is not an OIP inference response: {e}"))?;
    let mut by_name: Vec<Option<ResponseOutput>> = Vec::new();
    by_name.resize_with(wanted.len(), || None);
    let mut given = Vec::new();
    for output in response.outputs {
        given.push(format!("`{}`", output.name));
        if let Some(i) = wanted.iter().position(|f| f.name == output.name) {
            by_name[i] = Some(output);
        }
    }
    wanted
        .iter()
        .zip(by_name)
        .map(|(field, output)| {
            let output = output.ok_or_else(|| {
                format!(
                    "its answer has no output `{}` (it has {})",
                    field.name,
                    if given.is_empty() {
                        "none".into()
                    } else {
                        given.join(", ")
                    }
                )
            })?;
            let at = |reason: String| format!("its output `{}` {reason}", field.name);
            let shape = output
                .shape
                .iter()
                .map(|d| {
                    usize::try_from(*d).map_err(|_| at(format!("has dimension `{d}`, too large")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut flat = Vec::new();
            flatten(&output.data, &mut flat);
            let elements: usize = shape.iter().product();
            if flat.len() != elements {
                return Err(at(format!(
                    "has shape {shape:?} ({elements} elements) but {} data elements",
                    flat.len()
                )));
            }
            let data = decode(&output.datatype, &flat).map_err(at)?;
            Ok(Tensor::new(field.name.clone(), shape, data))
        })
        .collect()
}

fn flatten<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match value {
        serde_json::Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        other => out.push(other),
    }
}

#[allow(clippy::cast_possible_truncation)]
fn decode(datatype: &str, values: &[&serde_json::Value]) -> Result<TensorData, String> {
    use serde_json::Value;
    let bad = |i: usize, v: &Value| format!("holds `{v}` at element {i}, not a {datatype}");
    let ints = |lo: i64, hi: i64| -> Result<Vec<i64>, String> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_i64()
                    .filter(|x| (lo..=hi).contains(x))
                    .ok_or_else(|| bad(i, v))
            })
            .collect()
    };
    let floats = || -> Result<Vec<f64>, String> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Null => Ok(f64::NAN),
                _ => v.as_f64().ok_or_else(|| bad(i, v)),
            })
            .collect()
    };
    let narrow = |v: Vec<i64>| {
        v.into_iter()
            .map(|x| i32::try_from(x).unwrap_or_default())
            .collect()
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
                    _ => Err(bad(i, v)),
                })
                .collect::<Result<_, _>>()?,
        ),
        "INT8" => TensorData::Int32(narrow(ints(i8::MIN.into(), i8::MAX.into())?)),
        "INT16" => TensorData::Int32(narrow(ints(i16::MIN.into(), i16::MAX.into())?)),
        "INT32" => TensorData::Int32(narrow(ints(i32::MIN.into(), i32::MAX.into())?)),
        "UINT8" => TensorData::Int32(narrow(ints(0, u8::MAX.into())?)),
        "UINT16" => TensorData::Int32(narrow(ints(0, u16::MAX.into())?)),
        "INT64" => TensorData::Int64(ints(i64::MIN, i64::MAX)?),
        "UINT32" => TensorData::Int64(ints(0, u32::MAX.into())?),
        "UINT64" => TensorData::Int64(ints(0, i64::MAX)?),
        "FP16" | "FP32" => TensorData::Float32(floats()?.into_iter().map(|x| x as f32).collect()),
        "FP64" => TensorData::Float64(floats()?),
        "BYTES" => TensorData::String(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_str().map(str::to_string).ok_or_else(|| bad(i, v)))
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(format!(
                "has datatype `{other}`, which this server does not read"
            ))
        }
    })
}

/// No elements of `dtype`.
pub(super) fn empty(dtype: DataType) -> TensorData {
    match dtype {
        DataType::Bool => TensorData::Bool(vec![]),
        DataType::Int32 => TensorData::Int32(vec![]),
        DataType::Int64 => TensorData::Int64(vec![]),
        DataType::Float32 => TensorData::Float32(vec![]),
        DataType::Float64 => TensorData::Float64(vec![]),
        DataType::String | DataType::Bytes | DataType::Datetime => TensorData::String(vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, dtype: DataType) -> SignatureField {
        SignatureField {
            name: name.into(),
            dtype,
            shape: vec![],
            allow_nan: true,
        }
    }

    #[test]
    fn outputs_are_read_by_name_flattened_and_typed() {
        let body = br#"{"model_name": "m", "outputs": [
            {"name": "extra", "shape": [1], "datatype": "INT64", "data": [1]},
            {"name": "p", "shape": [2, 1], "datatype": "FP64", "data": [[0.25], [null]]},
            {"name": "label", "shape": [2], "datatype": "BYTES", "data": ["yes", "no"]}]}"#;
        let t = response_tensors(
            body,
            &[
                field("label", DataType::String),
                field("p", DataType::Float32),
            ],
        )
        .unwrap();
        assert_eq!(
            t[0].data,
            TensorData::String(vec!["yes".into(), "no".into()])
        );
        assert_eq!(t[1].shape, vec![2, 1]);
        let TensorData::Float64(p) = &t[1].data else {
            panic!("{:?}", t[1].data)
        };
        assert!(p[0] == 0.25 && p[1].is_nan());
    }

    #[test]
    fn a_wrong_answer_names_the_output() {
        let err = |body: &str| {
            response_tensors(body.as_bytes(), &[field("y", DataType::Int64)]).unwrap_err()
        };
        assert_eq!(
            err(r#"{"outputs": [{"name": "z", "shape": [1], "datatype": "INT64", "data": [1]}]}"#),
            "its answer has no output `y` (it has `z`)"
        );
        assert!(err(
            r#"{"outputs": [{"name": "y", "shape": [2], "datatype": "INT64", "data": [1]}]}"#
        )
        .contains("has shape [2] (2 elements) but 1 data"));
        assert!(err(
            r#"{"outputs": [{"name": "y", "shape": [1], "datatype": "INT8", "data": [300]}]}"#
        )
        .contains("holds `300` at element 0, not a INT8"));
        assert!(err(
            r#"{"outputs": [{"name": "y", "shape": [1], "datatype": "BF16", "data": [1]}]}"#
        )
        .contains("`BF16`"));
        assert!(err("<html>").starts_with("its answer is not an OIP inference response"));
    }
}
