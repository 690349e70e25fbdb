//! Rewriting the `ModelProto` before tract sees it.
//!
//! Classifier exports end in `ZipMap`, whose output is a sequence of maps:
//! tract has no such type (its protobuf does not even decode the type), and
//! a serving API answers with tensors anyway. So the ZipMap becomes an
//! `Identity` of its `[rows, classes]` probability tensor, the graph output
//! is declared a float tensor, and the ZipMap's class labels are kept to
//! name the columns. The same pass refuses, by name, every operator we
//! cannot run, before tract would fail later with a less helpful message.

use crate::RuntimeError;
use std::collections::HashSet;
use tract_onnx::model::OnnxOpRegister;
use tract_onnx::pb::type_proto::{Tensor as TensorType, Value};
use tract_onnx::pb::{tensor_shape_proto, GraphProto, ModelProto, TensorShapeProto, TypeProto};

/// What the rewrite learnt about the graph.
#[derive(Debug, Default)]
pub struct Rewritten {
    /// The ZipMap's labels, in column order, as text.
    pub class_labels: Option<Vec<String>>,
    /// Graph outputs that were ZipMaps and are now `[rows, classes]` floats.
    pub zipmap_outputs: HashSet<String>,
}

const FLOAT: i32 = 1;

fn domain(d: &str) -> &str {
    if d.is_empty() { "ai.onnx" } else { d }
}

/// Every operator in `graph` and its subgraphs must be registered.
fn check_ops(graph: &GraphProto, register: &OnnxOpRegister) -> Result<(), RuntimeError> {
    for node in &graph.node {
        if !register.0.contains_key(&node.op_type) && node.op_type != "ZipMap" {
            return Err(RuntimeError::Load(format!(
                "operator `{}` (domain `{}`) is not supported",
                node.op_type,
                domain(&node.domain)
            )));
        }
        for attr in &node.attribute {
            if let Some(g) = &attr.g {
                check_ops(g, register)?;
            }
            for g in &attr.graphs {
                check_ops(g, register)?;
            }
        }
    }
    Ok(())
}

pub fn rewrite(model: &mut ModelProto, register: &OnnxOpRegister) -> Result<Rewritten, RuntimeError> {
    let graph = model.graph.as_mut().ok_or_else(|| RuntimeError::Load("the ONNX model has no graph".into()))?;
    check_ops(graph, register)?;
    let mut out = Rewritten::default();
    let mut classes = None;
    for node in &mut graph.node {
        if node.op_type != "ZipMap" {
            continue;
        }
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
        let labels: Vec<String> = match (attr("classlabels_int64s"), attr("classlabels_strings")) {
            (Some(a), _) if !a.ints.is_empty() => a.ints.iter().map(ToString::to_string).collect(),
            (_, Some(a)) if !a.strings.is_empty() => a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect(),
            _ => return Err(RuntimeError::Load("operator `ZipMap` has no class labels".into())),
        };
        if let Some(output) = node.output.first() {
            out.zipmap_outputs.insert(output.clone());
        }
        classes = Some(labels);
        node.op_type = "Identity".into();
        node.domain = String::new();
        node.attribute.clear();
    }
    for output in &mut graph.output {
        let is_tensor = matches!(output.r#type.as_ref().and_then(|t| t.value.as_ref()), Some(Value::TensorType(_)));
        if out.zipmap_outputs.contains(&output.name) {
            let n = classes.as_ref().map_or(0, Vec::len);
            let dims = vec![
                tensor_shape_proto::Dimension { value: Some(tensor_shape_proto::dimension::Value::DimParam("N".into())), ..Default::default() },
                tensor_shape_proto::Dimension { value: Some(tensor_shape_proto::dimension::Value::DimValue(n as i64)), ..Default::default() },
            ];
            output.r#type = Some(TypeProto {
                value: Some(Value::TensorType(TensorType { elem_type: FLOAT, shape: Some(TensorShapeProto { dim: dims }) })),
                ..Default::default()
            });
        } else if !is_tensor {
            return Err(RuntimeError::Load(format!(
                "graph output `{}` is not a tensor (a sequence or a map); only ZipMap outputs are turned into tensors",
                output.name
            )));
        }
    }
    for input in &graph.input {
        let is_tensor = matches!(input.r#type.as_ref().and_then(|t| t.value.as_ref()), Some(Value::TensorType(_)));
        if !is_tensor && !graph.initializer.iter().any(|i| i.name == input.name) {
            return Err(RuntimeError::Load(format!("graph input `{}` is not a tensor (a sequence or a map)", input.name)));
        }
    }
    out.class_labels = classes;
    Ok(out)
}
