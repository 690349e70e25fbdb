//! Small, valid ONNX models built in code, for tests and benchmarks of the
//! crates above (the registry refuses an `onnx` artifact that does not
//! load, so their fixtures must be real models).

use prost::Message;
use tract_onnx::pb;

/// `y = 2 · x` over a float input `x` of shape [N, width]: one `Mul` node.
/// `doc` goes into the model's doc string, so distinct docs give distinct
/// artifacts (content-addressed) of the same behaviour; `pad_to` pads the
/// doc string until the file has at least that many bytes.
pub fn doubling_onnx(width: usize, doc: &str, pad_to: usize) -> Vec<u8> {
    let tensor_type = |dims: Vec<pb::tensor_shape_proto::dimension::Value>| pb::TypeProto {
        denotation: String::new(),
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: pb::tensor_proto::DataType::Float as i32,
            shape: Some(pb::TensorShapeProto {
                dim: dims.into_iter().map(|v| pb::tensor_shape_proto::Dimension { denotation: String::new(), value: Some(v) }).collect(),
            }),
        })),
    };
    use pb::tensor_shape_proto::dimension::Value as Dim;
    let row = || vec![Dim::DimParam("N".into()), Dim::DimValue(i64::try_from(width).unwrap_or(i64::MAX))];
    let value = |name: &str| pb::ValueInfoProto { name: name.into(), r#type: Some(tensor_type(row())), doc_string: String::new() };
    let two = pb::TensorProto { dims: vec![], data_type: pb::tensor_proto::DataType::Float as i32, float_data: vec![2.0], name: "two".into(), ..Default::default() };
    let node = pb::NodeProto {
        input: vec!["x".into(), "two".into()],
        output: vec!["y".into()],
        name: "double".into(),
        op_type: "Mul".into(),
        ..Default::default()
    };
    let mut model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 17 }],
        producer_name: "modelops".into(),
        doc_string: doc.to_string(),
        graph: Some(pb::GraphProto {
            node: vec![node],
            name: "doubling".into(),
            initializer: vec![two],
            input: vec![value("x")],
            output: vec![value("y")],
            ..Default::default()
        }),
        ..Default::default()
    };
    let size = model.encoded_len();
    if size < pad_to {
        model.doc_string.push_str(&" ".repeat(pad_to - size));
    }
    model.encode_to_vec()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_sample_loads_and_doubles() {
        let bytes = super::doubling_onnx(3, "v1", 4096);
        assert!(bytes.len() >= 4096);
        let model = crate::load(modelops_core::model::ModelKind::Onnx, &bytes, &crate::RuntimeConfig::default()).unwrap();
        let sig = model.signature();
        assert_eq!(sig.inputs[0].name, "x");
        assert_eq!(sig.inputs[0].shape, vec![3]);
        let input = crate::Tensor::new("x", vec![1, 3], crate::TensorData::Float32(vec![1.0, 2.0, 3.0]));
        let (inputs, rows) = crate::check_inputs(sig, vec![input]).unwrap();
        let out = model.predict(crate::PredictRequest { inputs, rows, explain: false, parameters: Default::default() }).await.unwrap();
        assert_eq!(out.outputs[0].data, crate::TensorData::Float32(vec![2.0, 4.0, 6.0]));
    }
}
