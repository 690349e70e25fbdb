//! The OIP V2 JSON inference request we send and the response we read.

use crate::tensor::{oip_datatype, Tensor};
use crate::tensor_json::{self, FlatData, JsonDataError};
use crate::PredictRequest;
use modelops_core::version::{Signature, SignatureField};
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
            // Non-finite floats are written as `null`.
            map.serialize_entry("data", &FlatData(&self.0.data))?;
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
            let flat = tensor_json::flatten(&output.data).map_err(|e| at(describe(&output.datatype, e)))?;
            let elements: usize = shape.iter().product();
            if flat.len() != elements {
                return Err(at(format!(
                    "has shape {shape:?} ({elements} elements) but {} data elements",
                    flat.len()
                )));
            }
            // Half floats arrive as JSON numbers: read them as FP32.
            let datatype = if output.datatype == "FP16" { "FP32" } else { output.datatype.as_str() };
            let data = tensor_json::decode(datatype, &flat).map_err(|e| at(describe(&output.datatype, e)))?;
            Ok(Tensor::new(field.name.clone(), shape, data))
        })
        .collect()
}

/// An answer's data error, worded about the upstream's output.
fn describe(datatype: &str, e: JsonDataError) -> String {
    match e {
        JsonDataError::Element { index, value, .. } => format!("holds `{value}` at element {index}, not a {datatype}"),
        JsonDataError::Unsupported(other) => format!("has datatype `{other}`, which this server does not read"),
        JsonDataError::Object => "holds an object where values belong".into(),
        JsonDataError::TooDeep => format!("nests arrays deeper than {} levels", tensor_json::MAX_DEPTH),
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorData;
    use modelops_core::version::DataType;

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
