//! The ONNX runtime against onnxruntime: every fixture the script in
//! `tests/fixtures/onnx` exports is loaded through `load(ModelKind::Onnx)`
//! and every output compared with onnxruntime's on every test row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelops_core::model::ModelKind;
use modelops_core::version::DataType;
use modelops_runtime::{check_inputs, load, Explanation, LoadedModel, PredictRequest, RuntimeConfig, RuntimeError, Tensor, TensorData};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The fixtures, generated once per script version: the directory's stamp
/// holds the sha256 of the script that made it.
/// The fixtures: `make_fixtures.py` (models, onnxruntime's outputs), then
/// `shap_fixtures.py` (the node covers into the ONNX files, shap's values),
/// made once into `target/onnx-fixtures` and remade when a script changes.
pub(crate) fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace();
        let scripts = ["make_fixtures.py", "shap_fixtures.py"].map(|s| root.join("tests/fixtures/onnx").join(s));
        let mut hasher = Sha256::new();
        for script in &scripts {
            hasher.update(std::fs::read(script).unwrap());
        }
        let digest = hex::encode(hasher.finalize());
        let dir = root.join("target/onnx-fixtures");
        let stamp = |d: &Path| std::fs::read_to_string(d.join("stamp")).unwrap_or_default();
        if stamp(&dir) == digest {
            return dir;
        }
        let python = root.join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: run scripts/test once to create the Python environment", python.display());
        let tmp = root.join(format!("target/onnx-fixtures.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for script in &scripts {
            let status = std::process::Command::new(&python).arg(script).arg(&tmp).status().unwrap();
            assert!(status.success(), "{} failed", script.display());
        }
        std::fs::write(tmp.join("stamp"), &digest).unwrap();
        if stamp(&dir) != digest {
            let _ = std::fs::remove_dir_all(&dir);
            if std::fs::rename(&tmp, &dir).is_err() {
                // Another test process won the race; its copy is as good.
                assert_eq!(stamp(&dir), digest);
            }
        }
        let _ = std::fs::remove_dir_all(&tmp);
        dir
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn names() -> Vec<String> {
    let manifest = read_json(&fixtures().join("manifest.json"));
    manifest["fixtures"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

fn load_fixture(name: &str) -> Arc<dyn LoadedModel> {
    let bytes = std::fs::read(fixtures().join(format!("{name}.onnx"))).unwrap();
    load(ModelKind::Onnx, &bytes, &RuntimeConfig::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rows_of(inputs: &Value) -> Vec<Vec<f32>> {
    inputs["X"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().map_or(f32::NAN, |x| x as f32)).collect())
        .collect()
}

fn predict(model: &dyn LoadedModel, rows: &[Vec<f32>], explain: bool) -> Result<modelops_runtime::Prediction, RuntimeError> {
    let width = rows[0].len();
    let data: Vec<f32> = rows.iter().flatten().copied().collect();
    let (inputs, n) = check_inputs(model.signature(), vec![Tensor::new("X", vec![rows.len(), width], TensorData::Float32(data))])?;
    futures::executor::block_on(model.predict(PredictRequest { inputs, rows: n, explain, parameters: Default::default() }))
}

/// Compares every output with onnxruntime's for `rows` (a slice of the
/// expected rows starting at `first`); returns the largest error, absolute
/// for values up to 1 and relative above (large regression targets).
fn compare(name: &str, outputs: &[Tensor], expected: &Value, first: usize, count: usize) -> f64 {
    let mut worst = 0f64;
    for (key, want) in expected.as_object().unwrap() {
        if key == "__classes__" {
            continue;
        }
        let got = outputs.iter().find(|t| &t.name == key).unwrap_or_else(|| panic!("{name}: no output `{key}`"));
        assert_eq!(got.shape[0], count, "{name}.{key}: rows");
        let want: Vec<&Value> = want.as_array().unwrap()[first..first + count].iter().collect();
        fn flatten<'v>(v: &'v Value, into: &mut Vec<&'v Value>) {
            match v.as_array() {
                Some(items) => items.iter().for_each(|item| flatten(item, into)),
                None => into.push(v),
            }
        }
        let mut flat: Vec<&Value> = Vec::new();
        want.iter().for_each(|v| flatten(v, &mut flat));
        assert_eq!(got.data.len(), flat.len(), "{name}.{key}: element count");
        for (i, w) in flat.iter().enumerate() {
            match (&got.data, w) {
                (TensorData::String(g), Value::String(w)) => assert_eq!(&g[i], w, "{name}.{key}[{i}]"),
                (TensorData::Int64(g), w) => assert_eq!(g[i], w.as_i64().unwrap(), "{name}.{key}[{}] (label)", first + i),
                (data, Value::Number(n)) if n.is_i64() => panic!("{name}.{key}: onnxruntime gives integers, we give {:?}", data.dtype()),
                (data, w) => {
                    let g = data.f64_at(i).unwrap();
                    let w = w.as_f64().unwrap();
                    let err = (g - w).abs() / w.abs().max(1.0);
                    assert!(err <= 1e-5, "{name}.{key}[{i}]: {g} vs onnxruntime {w}");
                    worst = worst.max(err);
                }
            }
        }
    }
    worst
}

#[test]
fn every_fixture_matches_onnxruntime_batched_and_row_by_row() {
    let mut report = Vec::new();
    for name in names() {
        let model = load_fixture(&name);
        let dir = fixtures();
        let rows = rows_of(&read_json(&dir.join(format!("{name}.inputs.json"))));
        let expected = read_json(&dir.join(format!("{name}.expected.json")));
        let batch = predict(model.as_ref(), &rows, false).unwrap();
        let mut worst = compare(&name, &batch.outputs, &expected, 0, rows.len());
        for r in [0, 1, 17, 199] {
            let one = predict(model.as_ref(), &rows[r..=r], false).unwrap();
            worst = worst.max(compare(&name, &one.outputs, &expected, r, 1));
        }
        let nan_inputs = dir.join(format!("{name}.nan.inputs.json"));
        if nan_inputs.exists() {
            let rows = rows_of(&read_json(&nan_inputs));
            let got = predict(model.as_ref(), &rows, false).unwrap();
            worst = worst.max(compare(&name, &got.outputs, &read_json(&dir.join(format!("{name}.nan.expected.json"))), 0, rows.len()));
        }
        report.push(format!("{name}: max error {worst:.2e} (absolute, relative above 1)"));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn signatures_are_what_the_graphs_declare() {
    for name in names() {
        let model = load_fixture(&name);
        let sig = model.signature();
        let trees = name.starts_with("rf_") || name.starts_with("gb_") || name.starts_with("xgb_") || name.starts_with("lgbm_");
        assert_eq!(sig.inputs.len(), 1, "{name}");
        assert_eq!((sig.inputs[0].name.as_str(), sig.inputs[0].dtype, sig.inputs[0].shape.as_slice()), ("X", DataType::Float32, &[10][..]), "{name}");
        assert_eq!(sig.inputs[0].allow_nan, trees, "{name}: NaN is allowed exactly for tree ensembles");
        let expected = read_json(&fixtures().join(format!("{name}.expected.json")));
        let mut want: Vec<&String> = expected.as_object().unwrap().keys().filter(|k| *k != "__classes__").collect();
        let mut got: Vec<&String> = sig.outputs.iter().map(|o| &o.name).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{name}: output names");
        if let Some(classes) = expected.get("__classes__") {
            let probabilities = sig.outputs.iter().find(|o| o.name.contains("prob")).unwrap();
            let n = classes.as_array().unwrap().len();
            assert_eq!((probabilities.dtype, probabilities.shape.as_slice()), (DataType::Float32, &[n as i64][..]), "{name}");
            let label = sig.outputs.iter().find(|o| o.name.contains("label")).unwrap();
            assert!(label.shape.is_empty(), "{name}: a label per row");
            let label_name = &label.name;
            let string_labels = expected[label_name.as_str()][0].is_string();
            let want_dtype = if string_labels { DataType::String } else { DataType::Int64 };
            assert_eq!(label.dtype, want_dtype, "{name}");
        }
    }
}

#[test]
fn binary_gradient_boosting_labels_are_not_inverted() {
    for name in ["gb_binary", "xgb_binary", "lgbm_binary"] {
        let model = load_fixture(name);
        let rows = rows_of(&read_json(&fixtures().join(format!("{name}.inputs.json"))));
        let out = predict(model.as_ref(), &rows, false).unwrap().outputs;
        let TensorData::Int64(labels) = &out[0].data else { panic!("{name}: int labels") };
        let TensorData::Float32(p) = &out[1].data else { panic!("{name}: float probabilities") };
        assert!(labels.contains(&0) && labels.contains(&1), "{name}: both classes occur");
        for (r, &label) in labels.iter().enumerate() {
            assert_eq!(label, i64::from(p[2 * r + 1] > p[2 * r]), "{name} row {r}: the label is the likelier class");
        }
    }
}

#[test]
fn string_class_labels_come_back_as_strings() {
    let bytes = std::fs::read(fixtures().join("logreg_strings.onnx")).unwrap();
    let model = modelops_runtime::onnx::OnnxModel::load(&bytes).unwrap();
    assert_eq!(model.class_labels().unwrap(), ["high", "low", "mid"]);
}

fn load_error(bytes: &[u8]) -> String {
    match load(ModelKind::Onnx, bytes, &RuntimeConfig::default()) {
        Err(RuntimeError::Load(message)) => message,
        Err(other) => panic!("expected a load error, got {other}"),
        Ok(_) => panic!("expected a load error"),
    }
}

#[test]
fn corrupt_artifacts_and_unknown_operators_are_load_errors() {
    let good = std::fs::read(fixtures().join("rf_classifier.onnx")).unwrap();
    let truncated = load_error(&good[..good.len() / 2]);
    assert!(truncated.contains("not a valid ONNX model"), "{truncated}");
    let garbage = load_error(b"this is not a model at all");
    assert!(!garbage.is_empty());
    let unsupported = load_error(&std::fs::read(fixtures().join("unsupported_op.onnx")).unwrap());
    assert_eq!(unsupported, "operator `FeatureVectorizer` (domain `ai.onnx.ml`) is not supported");
}

#[test]
fn explanations_need_a_tree_ensemble_reading_the_inputs() {
    let rows = rows_of(&read_json(&fixtures().join("rf_classifier.inputs.json")));
    let unsupported = |name: &str| match predict(load_fixture(name).as_ref(), &rows[..2], true) {
        Err(RuntimeError::Unsupported(reason)) => reason,
        other => panic!("{name}: expected Unsupported, got {other:?}"),
    };
    assert!(unsupported("mlp").contains("need a tree ensemble"));
    assert!(unsupported("scaler_logreg").contains("need a tree ensemble"));
    // Placeholder covers (what skl2onnx and onnxmltools write) are refused
    // rather than explained wrongly; the model still predicts.
    let placeholder = with_hitrates("rf_classifier", |n| vec![1.0; n]);
    let model = modelops_runtime::load(ModelKind::Onnx, &placeholder, &Default::default()).unwrap();
    assert!(predict(model.as_ref(), &rows[..2], false).is_ok());
    match predict(model.as_ref(), &rows[..2], true) {
        Err(RuntimeError::Unsupported(reason)) => assert!(reason.contains("nodes_hitrates"), "{reason}"),
        other => panic!("placeholder covers: expected Unsupported, got {other:?}"),
    }

    for (name, outputs) in [("rf_classifier", 1), ("gb_binary", 1), ("gb_multiclass", 3), ("rf_regressor", 1), ("lgbm_binary", 1)] {
        let got = predict(load_fixture(name).as_ref(), &rows[..3], true).unwrap();
        let explanations = got.explanations.unwrap();
        assert_eq!(explanations.len(), 3, "{name}");
        let Explanation::TreeShap { outputs: shap } = &explanations[0] else { panic!("{name}: TreeShap") };
        assert_eq!(shap.len(), outputs, "{name}");
        assert_eq!(shap[0].values.len(), 10, "{name}");
        assert_eq!(shap[0].values[3].feature, "feature_3");
    }
}


/// A fixture's ONNX bytes with its tree ensemble's `nodes_hitrates` replaced.
fn with_hitrates(name: &str, covers: impl Fn(usize) -> Vec<f32>) -> Vec<u8> {
    use prost::Message;
    let bytes = std::fs::read(fixtures().join(format!("{name}.onnx"))).unwrap();
    let mut model = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let node = graph.node.iter_mut().find(|n| n.op_type.starts_with("TreeEnsemble")).unwrap();
    let n = node.attribute.iter().find(|a| a.name == "nodes_treeids").unwrap().ints.len();
    let attr = node.attribute.iter_mut().find(|a| a.name == "nodes_hitrates").unwrap();
    attr.floats = covers(n);
    model.encode_to_vec()
}

#[test]
fn big_batches_split_over_threads_give_the_same_answers() {
    for name in ["rf_classifier", "xgb_multiclass", "lgbm_regressor"] {
        let model = load_fixture(name);
        let rows = rows_of(&read_json(&fixtures().join(format!("{name}.inputs.json"))));
        // 1,000 rows (over the parallel threshold, not a multiple of the chunk).
        let big: Vec<Vec<f32>> = rows.iter().cycle().take(1003).cloned().collect();
        let batched = predict(model.as_ref(), &big, false).unwrap().outputs;
        let alone = predict(model.as_ref(), &rows, false).unwrap().outputs;
        for (b, a) in batched.iter().zip(&alone) {
            let width = a.row_width().max(1);
            for i in 0..big.len() * width {
                let j = (i / width % rows.len()) * width + i % width;
                assert_eq!(b.data.json_at(i), a.data.json_at(j), "{name}.{} element {i}", b.name);
            }
        }
    }
}

fn tabular_names() -> Vec<String> {
    let manifest = read_json(&fixtures().join("manifest.json"));
    manifest["tabular"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// A tabular fixture's columns, rows `first..first + count`, as the
/// tensors its signature asks for (`[count, 1]` each).
fn tabular_inputs(model: &dyn LoadedModel, columns: &Value, first: usize, count: usize) -> Vec<Tensor> {
    model
        .signature()
        .inputs
        .iter()
        .map(|field| {
            let cells: Vec<&Value> = columns[&field.name].as_array().unwrap()[first..first + count].iter().map(|cell| &cell[0]).collect();
            let data = match field.dtype {
                DataType::Float32 => TensorData::Float32(cells.iter().map(|v| v.as_f64().unwrap() as f32).collect()),
                DataType::Int64 => TensorData::Int64(cells.iter().map(|v| v.as_i64().unwrap()).collect()),
                DataType::String => TensorData::String(cells.iter().map(|v| v.as_str().unwrap().to_string()).collect()),
                other => panic!("{}: unexpected input type {other:?}", field.name),
            };
            Tensor::new(field.name.clone(), vec![count, 1], data)
        })
        .collect()
}

fn predict_tensors(model: &dyn LoadedModel, inputs: Vec<Tensor>) -> Result<modelops_runtime::Prediction, RuntimeError> {
    let (inputs, rows) = check_inputs(model.signature(), inputs)?;
    futures::executor::block_on(model.predict(PredictRequest { inputs, rows, explain: false, parameters: Default::default() }))
}

/// Pipelines over a table of mixed columns — string and integer categories
/// one-hot or ordinal encoded (`OneHotEncoder`, `LabelEncoder` in the
/// graph), numbers scaled or passed through — answer as onnxruntime does on
/// every row, including rows whose categories training never saw.
#[test]
fn tabular_pipelines_with_category_encoders_match_onnxruntime() {
    let names = tabular_names();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in names {
        let model = load_fixture(&name);
        let sig = model.signature();
        let inputs: Vec<(&str, DataType, &[i64])> = sig.inputs.iter().map(|f| (f.name.as_str(), f.dtype, f.shape.as_slice())).collect();
        assert_eq!(
            inputs,
            [
                ("income", DataType::Float32, &[1][..]),
                ("age", DataType::Float32, &[1][..]),
                ("region", DataType::String, &[1][..]),
                ("channel", DataType::String, &[1][..]),
                ("grade", DataType::Int64, &[1][..]),
            ],
            "{name}"
        );
        let columns = read_json(&fixtures().join(format!("{name}.inputs.json")));
        let expected = read_json(&fixtures().join(format!("{name}.expected.json")));
        let n = columns["region"].as_array().unwrap().len();
        let unseen = columns["region"].as_array().unwrap().iter().filter(|c| c[0] == "atlantis").count();
        assert!(unseen > 5, "{name}: the test rows include unseen categories ({unseen})");
        let batch = predict_tensors(model.as_ref(), tabular_inputs(model.as_ref(), &columns, 0, n)).unwrap();
        let mut worst = compare(&name, &batch.outputs, &expected, 0, n);
        for r in [0, 3, 77, n - 1] {
            let one = predict_tensors(model.as_ref(), tabular_inputs(model.as_ref(), &columns, r, 1)).unwrap();
            worst = worst.max(compare(&name, &one.outputs, &expected, r, 1));
        }
        println!("{name}: max error {worst:.2e}");
    }
}

/// An export that refuses unknown categories (`OneHotEncoder` with
/// `zeros = 0`, what `handle_unknown="error"` means) answers a category it
/// does not know as the request's mistake, naming the input and the value.
#[test]
fn an_unknown_category_the_export_refuses_names_the_input() {
    use prost::Message;
    let bytes = std::fs::read(fixtures().join("tabular_onehot_logreg.onnx")).unwrap();
    let mut proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let encoder = graph.node.iter_mut().find(|n| n.op_type == "OneHotEncoder" && n.input[0] == "region").unwrap();
    encoder.attribute.iter_mut().find(|a| a.name == "zeros").unwrap().i = 0;
    let model = load(ModelKind::Onnx, &proto.encode_to_vec(), &RuntimeConfig::default()).unwrap();
    let columns = read_json(&fixtures().join("tabular_onehot_logreg.inputs.json"));
    let known = (0..200).find(|&r| columns["region"][r][0] != "atlantis").unwrap();
    assert!(predict_tensors(model.as_ref(), tabular_inputs(model.as_ref(), &columns, known, 1)).is_ok());
    let unseen = (0..200).find(|&r| columns["region"][r][0] == "atlantis").unwrap();
    match predict_tensors(model.as_ref(), tabular_inputs(model.as_ref(), &columns, unseen, 1)) {
        Err(RuntimeError::Input { field, reason }) => {
            assert_eq!(field, "inputs.region");
            assert!(reason.contains("`atlantis`") && reason.contains("east, north, south, west"), "{reason}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
}

/// Malformed encoders are refused when the model loads, naming the
/// operator and the attribute.
#[test]
fn malformed_category_encoders_are_load_errors() {
    use prost::Message;
    let broken = |name: &str, op: &str, edit: &dyn Fn(&mut tract_onnx::pb::NodeProto)| {
        let bytes = std::fs::read(fixtures().join(format!("{name}.onnx"))).unwrap();
        let mut proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
        let node = proto.graph.as_mut().unwrap().node.iter_mut().find(|n| n.op_type == op).unwrap();
        edit(node);
        load_error(&proto.encode_to_vec())
    };
    let no_categories = broken("tabular_onehot_logreg", "OneHotEncoder", &|n| n.attribute.retain(|a| !a.name.starts_with("cats_")));
    assert!(no_categories.contains("OneHotEncoder") && no_categories.contains("cats_strings"), "{no_categories}");
    let short = broken("tabular_ordinal_gb", "LabelEncoder", &|n| {
        n.attribute.iter_mut().find(|a| a.name == "values_int64s").unwrap().ints.pop();
    });
    assert!(short.contains("LabelEncoder") && short.contains("3 values for 4 keys"), "{short}");
    let opset1 = broken("tabular_ordinal_gb", "LabelEncoder", &|n| {
        let keys = n.attribute.iter_mut().find(|a| a.name == "keys_strings").unwrap();
        keys.name = "classes_strings".into();
    });
    assert!(opset1.contains("classes_strings") && opset1.contains("opset 1"), "{opset1}");
    // An input of a type the encoder cannot read is refused at load, not at every call.
    let wrong_type = broken("tabular_onehot_logreg", "OneHotEncoder", &|n| {
        let cats = n.attribute.iter_mut().find(|a| a.name == "cats_strings").unwrap();
        cats.name = "cats_int64s".into();
        cats.ints = vec![1, 2, 3, 4];
        cats.strings.clear();
        cats.r#type = 7; // INTS
    });
    assert!(wrong_type.contains("OneHotEncoder") && wrong_type.contains("integer categories") && wrong_type.contains("String"), "{wrong_type}");
}

/// One-node graphs for the encoders' corners (float and double keys, NaN
/// keys before and after `ai.onnx.ml` opset 4, repeated keys and
/// categories, float inputs to an integer one-hot): the same answers as
/// onnxruntime, row by row.
#[test]
fn category_encoder_corners_match_onnxruntime() {
    let manifest = read_json(&fixtures().join("manifest.json"));
    let names: Vec<&str> = manifest["encoders"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(names.len(), 6, "{names:?}");
    for name in names {
        let model = load_fixture(name);
        let field = &model.signature().inputs[0];
        let cells: Vec<Value> = read_json(&fixtures().join(format!("{name}.inputs.json")))["X"].as_array().unwrap().iter().map(|c| c[0].clone()).collect();
        let n = cells.len();
        let data = match field.dtype {
            DataType::Float32 => TensorData::Float32(cells.iter().map(|v| v.as_f64().map_or(f32::NAN, |x| x as f32)).collect()),
            DataType::Float64 => TensorData::Float64(cells.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect()),
            DataType::Int64 => TensorData::Int64(cells.iter().map(|v| v.as_i64().unwrap()).collect()),
            DataType::String => TensorData::String(cells.iter().map(|v| v.as_str().unwrap().to_string()).collect()),
            other => panic!("{name}: unexpected input type {other:?}"),
        };
        let mut signature = model.signature().clone();
        signature.inputs[0].allow_nan = true;
        let (inputs, rows) = check_inputs(&signature, vec![Tensor::new("X", vec![n, 1], data)]).unwrap();
        let got = futures::executor::block_on(model.predict(PredictRequest { inputs, rows, explain: false, parameters: Default::default() })).unwrap();
        compare(name, &got.outputs, &read_json(&fixtures().join(format!("{name}.expected.json"))), 0, n);
    }
}

/// The unknown category of an integer column, which skl2onnx casts before
/// its encoder (`grade` → `gradecast`), is reported against the input the
/// client sent, `inputs.grade`.
#[test]
fn an_unknown_category_behind_a_cast_names_the_graph_input() {
    use prost::Message;
    let bytes = std::fs::read(fixtures().join("tabular_onehot_logreg.onnx")).unwrap();
    let mut proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let encoder = graph.node.iter_mut().find(|n| n.op_type == "OneHotEncoder" && n.attribute.iter().any(|a| a.name == "cats_int64s")).unwrap();
    assert_ne!(encoder.input[0], "grade", "the export puts a Cast before the integer encoder");
    encoder.attribute.iter_mut().find(|a| a.name == "zeros").unwrap().i = 0;
    let model = load(ModelKind::Onnx, &proto.encode_to_vec(), &RuntimeConfig::default()).unwrap();
    let columns = read_json(&fixtures().join("tabular_onehot_logreg.inputs.json"));
    let unseen = (0..200).find(|&r| columns["grade"][r][0] == 9 && columns["region"][r][0] != "atlantis").unwrap();
    match predict_tensors(model.as_ref(), tabular_inputs(model.as_ref(), &columns, unseen, 1)) {
        Err(RuntimeError::Input { field, reason }) => {
            assert_eq!(field, "inputs.grade");
            assert!(reason.contains("`9`") && reason.contains("1, 2, 3, 4"), "{reason}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
}

/// Malformed support vector machines and feature extractors are refused
/// when the model loads, naming the attribute, rather than reading out of
/// bounds (or asking for gigabytes) at every call.
#[test]
fn malformed_svms_and_feature_extractors_are_load_errors() {
    use prost::Message;
    let edited = |name: &str, edit: &dyn Fn(&mut tract_onnx::pb::GraphProto)| {
        let bytes = std::fs::read(fixtures().join(format!("{name}.onnx"))).unwrap();
        let mut proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
        edit(proto.graph.as_mut().unwrap());
        load_error(&proto.encode_to_vec())
    };
    fn svm(g: &mut tract_onnx::pb::GraphProto) -> &mut tract_onnx::pb::NodeProto {
        g.node.iter_mut().find(|n| n.op_type == "SVMClassifier").unwrap()
    }
    // Counts whose sum wraps around in 64 bits.
    let wrapping = edited("svc_multiclass", &|g| {
        let node = svm(g);
        node.attribute.iter_mut().find(|a| a.name == "vectors_per_class").unwrap().ints = vec![i64::MAX, i64::MAX, 3];
    });
    assert!(wrapping.contains("vectors_per_class"), "{wrapping}");
    // A liblinear-mode classifier with more classes than onnxruntime allows.
    let many = edited("svc_binary", &|g| {
        let node = svm(g);
        node.attribute.retain(|a| a.name != "vectors_per_class" && a.name != "support_vectors");
        node.attribute.iter_mut().find(|a| a.name == "classlabels_ints").unwrap().ints = (0..70_000).collect();
        node.attribute.iter_mut().find(|a| a.name == "coefficients").unwrap().floats = vec![0.5; 70_000];
    });
    assert!(many.contains("70000 classes"), "{many}");
    // One-vs-rest scores pick columns with constant indices: one past the end.
    let outside = edited("svc_multiclass", &|g| {
        let index = g.initializer.iter_mut().find(|t| t.name == "Cind_2").unwrap();
        index.int64_data = vec![7];
        index.raw_data.clear();
    });
    assert!(outside.contains("ArrayFeatureExtractor") && outside.contains("index 7 is outside the 3 columns"), "{outside}");
}
