//! TreeSHAP end to end against the `shap` package, independent of the ONNX
//! loader: builds `ShapTree`s straight from the ONNX file's tree-ensemble
//! attributes (covers from `nodes_hitrates`, which
//! `tests/fixtures/onnx/shap_fixtures.py` writes from the original model)
//! and compares `tree_shap` summed over the trees with `<name>.shap.json`
//! (`shap.TreeExplainer(model).shap_values`), value by value, on every test
//! row.
//!
//! The fixtures are those of `make_fixtures.py` with `shap_fixtures.py` run
//! over them, in `$MODELOPS_SHAP_FIXTURES`, else `target/onnx-fixtures`
//! when the `.shap.json` files are there; without either the test says so
//! and passes (the Python environment is what makes them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelops_runtime::onnx::tree_shap::{tree_shap, ShapTree, SplitMode, LEAF};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use tract_onnx::pb::{AttributeProto, NodeProto};
use tract_onnx::prelude::Framework;


fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn ints(node: &NodeProto, name: &str) -> Vec<i64> {
    attr(node, name).map(|a| a.ints.clone()).unwrap_or_default()
}

fn floats(node: &NodeProto, name: &str) -> Vec<f32> {
    let Some(a) = attr(node, name) else { return vec![] };
    if !a.floats.is_empty() {
        return a.floats.clone();
    }
    match &a.t {
        Some(t) if !t.float_data.is_empty() => t.float_data.clone(),
        Some(t) => t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        None => vec![],
    }
}

fn mode(s: &[u8]) -> Option<SplitMode> {
    Some(match s {
        b"BRANCH_LEQ" => SplitMode::Leq,
        b"BRANCH_LT" => SplitMode::Lt,
        b"BRANCH_GTE" => SplitMode::Gte,
        b"BRANCH_GT" => SplitMode::Gt,
        b"BRANCH_EQ" => SplitMode::Eq,
        b"BRANCH_NEQ" => SplitMode::Neq,
        _ => return None, // LEAF
    })
}

/// The trees of a TreeEnsembleClassifier / TreeEnsembleRegressor (opset
/// 1–3), each renumbered from its root, with `n_outputs` = the distinct
/// class/target ids.
fn shap_trees(node: &NodeProto) -> Vec<ShapTree> {
    let tree_ids = ints(node, "nodes_treeids");
    let node_ids = ints(node, "nodes_nodeids");
    let features = ints(node, "nodes_featureids");
    let modes = &attr(node, "nodes_modes").unwrap().strings;
    let mut thresholds = floats(node, "nodes_values");
    if thresholds.is_empty() {
        thresholds = floats(node, "nodes_values_as_tensor");
    }
    let (yes, no) = (ints(node, "nodes_truenodeids"), ints(node, "nodes_falsenodeids"));
    let missing = ints(node, "nodes_missing_value_tracks_true");
    let hitrates = floats(node, "nodes_hitrates");
    assert_eq!(hitrates.len(), tree_ids.len(), "nodes_hitrates: run shap_fixtures.py over the fixtures");
    let prefix = if attr(node, "class_ids").is_some() { "class" } else { "target" };
    let (leaf_trees, leaf_nodes) = (ints(node, &format!("{prefix}_treeids")), ints(node, &format!("{prefix}_nodeids")));
    let (targets, weights) = (ints(node, &format!("{prefix}_ids")), floats(node, &format!("{prefix}_weights")));
    let distinct: std::collections::BTreeSet<i64> = targets.iter().copied().collect();
    let n_outputs = distinct.len();

    let mut by_tree: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, t) in tree_ids.iter().enumerate() {
        by_tree.entry(*t).or_default().push(i);
    }
    let mut out = Vec::new();
    for (t, idx) in &by_tree {
        let children: std::collections::HashSet<i64> =
            idx.iter().filter(|&&i| mode(&modes[i]).is_some()).flat_map(|&i| [yes[i], no[i]]).collect();
        let root = *idx.iter().find(|&&i| !children.contains(&node_ids[i])).unwrap();
        let order: Vec<usize> = std::iter::once(root).chain(idx.iter().copied().filter(|&i| i != root)).collect();
        let local: BTreeMap<i64, u32> = order.iter().enumerate().map(|(k, &i)| (node_ids[i], k as u32)).collect();
        let mut tree = ShapTree { n_outputs, value: vec![0.0; order.len() * n_outputs], ..ShapTree::default() };
        for &i in &order {
            let m = mode(&modes[i]);
            tree.yes.push(if m.is_some() { local[&yes[i]] } else { LEAF });
            tree.no.push(if m.is_some() { local[&no[i]] } else { LEAF });
            tree.missing_yes.push(missing.get(i).copied().unwrap_or(0) != 0);
            tree.feature.push(features[i] as u32);
            tree.threshold.push(f64::from(thresholds[i]));
            tree.mode.push(m.unwrap_or(SplitMode::Leq));
            tree.cover.push(f64::from(hitrates[i]));
        }
        for k in 0..targets.len() {
            if leaf_trees[k] == *t {
                let target = distinct.iter().position(|d| *d == targets[k]).unwrap();
                tree.value[local[&leaf_nodes[k]] as usize * n_outputs + target] += f64::from(weights[k]);
            }
        }
        tree.validate().unwrap_or_else(|e| panic!("tree {t}: {e}"));
        out.push(tree);
    }
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Max |ours − shap| over every value and expected value of the fixture.
fn max_difference(dir: &Path, name: &str) -> f64 {
    let proto = tract_onnx::onnx().proto_model_for_path(dir.join(format!("{name}.onnx"))).unwrap();
    let graph = proto.graph.as_ref().unwrap();
    let node = graph.node.iter().find(|n| n.op_type.starts_with("TreeEnsemble")).unwrap();
    let trees = shap_trees(node);
    let reference = read_json(&dir.join(format!("{name}.shap.json")));
    let rows: Vec<Vec<f32>> = read_json(&dir.join(format!("{name}.inputs.json")))["X"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().map_or(f32::NAN, |x| x as f32)).collect())
        .collect();
    let n_out = trees[0].n_outputs;
    let expected: Vec<f64> = reference["expected_value"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let base: Vec<f64> = reference["onnx_base_values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(expected.len(), n_out, "{name}: outputs");
    let width = rows[0].len();
    let mut worst = 0f64;
    let mut phi = vec![0.0; n_out * (width + 1)];
    for (r, row) in rows.iter().enumerate() {
        phi.iter_mut().for_each(|v| *v = 0.0);
        for tree in &trees {
            tree_shap(tree, row, &mut phi);
        }
        for o in 0..n_out {
            let want = &reference["values"][o][r];
            for f in 0..width {
                worst = worst.max((phi[o * (width + 1) + f] - want[f].as_f64().unwrap()).abs());
            }
            worst = worst.max((phi[o * (width + 1) + width] + base[o] - expected[o]).abs());
        }
    }
    worst
}

#[test]
fn tree_shap_matches_the_shap_package() {
    let dir = crate::onnx::fixtures();
    // The bound is shap's own precision and the ONNX file's: leaf weights
    // and thresholds are f32 in ONNX (f64 in scikit-learn and LightGBM,
    // whose trees shap explains in f64: we agree to ~1e-8 on scores of
    // order 1, ~1e-6 on the regressors' hundreds), and XGBoost's TreeSHAP,
    // which shap calls, accumulates in f32.
    let mut failures = Vec::new();
    for (name, tolerance) in [
        ("rf_classifier", 1e-6),
        ("rf_regressor", 1e-5),
        ("gb_binary", 1e-6),
        ("gb_multiclass", 1e-6),
        ("xgb_binary", 1e-5),
        ("xgb_multiclass", 1e-5),
        ("xgb_regressor", 1e-3),
        ("lgbm_binary", 1e-6),
        ("lgbm_multiclass", 1e-6),
        ("lgbm_regressor", 1e-5),
    ] {
        let d = max_difference(dir, name);
        eprintln!("{name}: max |tree_shap − shap| = {d:.3e}");
        if d > tolerance {
            failures.push(format!("{name}: max |tree_shap − shap| = {d:.3e} > {tolerance:e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
