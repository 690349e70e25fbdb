//! Explanations of ONNX models: TreeSHAP over the graph's tree ensemble.
//!
//! SHAP values are only meaningful about the model's inputs, so the
//! ensemble must read the input columns themselves (through a `Cast` at
//! most); a scaler or encoder in between would make them values about
//! derived features. What can be explained is decided once at load; the
//! reason something cannot is kept and returned when an explanation is
//! asked for, so a model without explanations still serves predictions.

use super::ml::attrs::Attrs;
use super::ml::tree::{Aggregate, Labels, TreeOp};
use super::tree_shap::{tree_shap, ShapTree};
use crate::explain::{Contribution, Explanation, ShapOutput};
use crate::{RuntimeError, Tensor, TensorData};
use tract_onnx::pb::{GraphProto, NodeProto};

pub enum Explainer {
    /// Why this graph cannot be explained.
    Unsupported(String),
    Trees(Trees),
}

pub struct Trees {
    trees: Vec<ShapTree>,
    /// The ensemble's outputs: class labels, or `value`.
    outputs: Vec<String>,
    /// Added to each output's expected value (the ensemble's base values).
    base: Vec<f64>,
    /// 1/trees for an averaging ensemble, else 1.
    scale: f64,
    /// Which of the model's inputs the trees read.
    input: usize,
    n_features: usize,
}

/// The labels of the graph's classifier operator, when there is one.
pub fn classifier_labels(graph: &GraphProto) -> Option<Vec<String>> {
    graph.node.iter().find_map(|n| Labels::from_node(&Attrs(n)).ok().flatten().map(|l| l.names()))
}

impl Explainer {
    pub fn from_graph(graph: &GraphProto) -> Explainer {
        match Self::trees(graph) {
            Ok(t) => Explainer::Trees(t),
            Err(reason) => Explainer::Unsupported(reason),
        }
    }

    fn trees(graph: &GraphProto) -> Result<Trees, String> {
        let tree_nodes: Vec<&NodeProto> = graph.node.iter().filter(|n| n.op_type.starts_with("TreeEnsemble")).collect();
        let node = match tree_nodes.as_slice() {
            [] => {
                let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
                return Err(format!(
                    "explanations of ONNX models need a tree ensemble; this graph has none (operators: {})",
                    ops.join(", ")
                ));
            }
            [one] => *one,
            _ => return Err("explanations of ONNX models need a single tree ensemble; this graph has several".into()),
        };
        let inputs: Vec<&str> = super::graph_inputs(graph).map(|i| i.name.as_str()).collect();
        let mut name = node.input.first().ok_or("the tree ensemble has no input")?.as_str();
        let input = loop {
            if let Some(i) = inputs.iter().position(|n| *n == name) {
                break i;
            }
            let producer = graph.node.iter().find(|n| n.output.iter().any(|o| o == name)).ok_or_else(|| {
                format!("the tree ensemble reads `{name}`, which is not an input of the model")
            })?;
            match producer.op_type.as_str() {
                "Cast" | "Identity" => {
                    name = producer.input.first().ok_or("a Cast without input")?.as_str();
                }
                other => {
                    return Err(format!(
                        "the tree ensemble reads the output of `{other}`, not the model's input columns, so SHAP values would not be about the inputs"
                    ))
                }
            }
        };
        let op = match node.op_type.as_str() {
            "TreeEnsembleClassifier" => TreeOp::classifier(node),
            "TreeEnsembleRegressor" => TreeOp::regressor(node),
            _ => TreeOp::ensemble_v5(node),
        }
        .map_err(|e| format!("{e:#}"))?;
        let e = &op.ensemble;
        if matches!(e.aggregate, Aggregate::Min | Aggregate::Max) {
            return Err("TreeSHAP explains additive ensembles; this one aggregates its trees by MIN or MAX".into());
        }
        #[allow(clippy::cast_precision_loss)]
        let scale = if e.aggregate == Aggregate::Average { 1.0 / e.n_trees().max(1) as f64 } else { 1.0 };
        let bases = &e.base_values;
        let base_at = |k: usize| bases.get(k).copied().map_or(0.0, f64::from);
        let (trees, outputs, base) = match op.labels() {
            Some(labels) if op.single_score() => {
                let names = labels.names();
                // onnxruntime adds base_values[0] to the single score when
                // one is given, and base_values[1] when two are.
                let b = if bases.len() == 2 { base_at(1) } else { base_at(0) };
                (e.shap_trees(1, |_| 0)?, vec![names.get(1).cloned().unwrap_or_else(|| "1".into())], vec![b])
            }
            Some(labels) => {
                let n = labels.len();
                (e.shap_trees(n, |t| t as usize)?, labels.names(), (0..n).map(base_at).collect())
            }
            None => {
                let n = e.n_targets;
                let names = if n == 1 { vec!["value".to_string()] } else { (0..n).map(|k| format!("target_{k}")).collect() };
                let base = if n == 1 { vec![if bases.len() == 1 { base_at(0) } else { 0.0 }] } else { (0..n).map(base_at).collect() };
                (e.shap_trees(n, |t| t as usize)?, names, base)
            }
        };
        // Exporters (skl2onnx, onnxmltools) write 1.0 for every node's
        // hit rate, or nothing: TreeSHAP on such covers gives wrong values
        // without any error, so a tree whose covers do not add up is not
        // explained.
        for (i, tree) in trees.iter().enumerate() {
            tree.validate().map_err(|e| {
                format!(
                    "TreeSHAP needs each node's training cover in the tree ensemble's `nodes_hitrates`, and tree {i}'s are not usable ({e}); \
                     exporters write placeholders: set them from the trained model (see docs/serving.md)"
                )
            })?;
        }
        Ok(Trees { trees, outputs, base, scale, input, n_features: e.n_features })
    }

    /// One explanation per row of the checked inputs.
    pub fn explain(&self, inputs: &[Tensor], rows: usize) -> Result<Vec<Explanation>, RuntimeError> {
        match self {
            Explainer::Unsupported(reason) => Err(RuntimeError::Unsupported(reason.clone())),
            Explainer::Trees(t) => t.explain(inputs, rows),
        }
    }
}

impl Trees {
    #[allow(clippy::cast_possible_truncation)]
    fn explain(&self, inputs: &[Tensor], rows: usize) -> Result<Vec<Explanation>, RuntimeError> {
        let input = inputs.get(self.input).ok_or_else(|| RuntimeError::Internal("the explained input is missing".into()))?;
        let x: Vec<f32> = match &input.data {
            TensorData::Float32(v) => v.clone(),
            TensorData::Float64(v) => v.iter().map(|&x| x as f32).collect(),
            other => (0..other.len()).map(|i| other.f64_at(i).unwrap_or(f64::NAN) as f32).collect(),
        };
        let width = input.row_width();
        if width < self.n_features {
            return Err(RuntimeError::Internal(format!("rows have {width} features, the trees read {}", self.n_features)));
        }
        let n_out = self.outputs.len();
        let stride = width + 1;
        let mut phi = vec![0f64; n_out * stride];
        let mut explanations = Vec::with_capacity(rows);
        for r in 0..rows {
            phi.iter_mut().for_each(|v| *v = 0.0);
            let row = &x[r * width..(r + 1) * width];
            for tree in &self.trees {
                tree_shap(tree, row, &mut phi);
            }
            let outputs = (0..n_out)
                .map(|k| {
                    let p = &phi[k * stride..(k + 1) * stride];
                    ShapOutput {
                        output: self.outputs[k].clone(),
                        base_value: p[width] * self.scale + self.base[k],
                        values: p[..width]
                            .iter()
                            .enumerate()
                            .map(|(j, v)| Contribution { feature: format!("feature_{j}"), value: v * self.scale })
                            .collect(),
                    }
                })
                .collect();
            explanations.push(Explanation::TreeShap { outputs });
        }
        Ok(explanations)
    }
}
