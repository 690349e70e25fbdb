//! The rules runtime through the crate's public API, on the example
//! artifacts that docs/models.md shows.

use modelops_core::model::ModelKind;
use modelops_runtime::{check_inputs, load, Explanation, PredictRequest, RuntimeConfig, RuntimeError, Tensor, TensorData};
use serde_json::json;

const RULES: &str = include_str!("../../examples/artifacts/credit-rules.yaml");
const TABLE: &str = include_str!("../../examples/artifacts/credit-table.json");
const DOCS: &str = include_str!("../../../../docs/models.md");

fn strings(v: &[&str]) -> TensorData {
    TensorData::String(v.iter().map(|s| (*s).to_string()).collect())
}

#[tokio::test]
async fn a_rule_set_answers_with_the_rule_that_fired() {
    let model = load(ModelKind::Rules, RULES.as_bytes(), &RuntimeConfig::default()).unwrap();
    // Sent in another order and as INT32: check_inputs orders and widens.
    let (inputs, rows) = check_inputs(
        model.signature(),
        vec![
            Tensor::new("employment", vec![2], strings(&["employed", "self"])),
            Tensor::new("existing_customer", vec![2], TensorData::Bool(vec![true, false])),
            Tensor::new("income", vec![2, 1], TensorData::Float64(vec![60_000.0, 45_000.0])),
            Tensor::new("age", vec![2], TensorData::Int32(vec![40, 33])),
        ],
    )
    .unwrap();
    let p = model.predict(PredictRequest { inputs, rows, explain: true, parameters: Default::default() }).await.unwrap();
    let by_name = |name: &str| p.outputs.iter().find(|t| t.name == name).map(|t| t.data.clone()).unwrap();
    assert_eq!(by_name("decision"), strings(&["approve", "refer"]));
    assert_eq!(by_name("limit"), TensorData::Float64(vec![24_000.0, 13_500.0]));
    assert_eq!(by_name("rule"), strings(&["default", "new_self_employed"]));
    let explanations = p.explanations.unwrap();
    assert_eq!(
        serde_json::to_value(&explanations[1]).unwrap(),
        json!({"method": "rules", "fired": ["new_self_employed"], "inputs": {"employment": "self", "existing_customer": false, "income": 45000.0}})
    );
    assert!(matches!(explanations[0], Explanation::Rules { .. }));
}

#[tokio::test]
async fn a_decision_table_refuses_a_bad_row_by_feature() {
    let model = load(ModelKind::Rules, TABLE.as_bytes(), &RuntimeConfig::default()).unwrap();
    let err = check_inputs(
        model.signature(),
        vec![
            Tensor::new("age", vec![1], TensorData::Int64(vec![30])),
            Tensor::new("income", vec![1], strings(&["lots"])),
            Tensor::new("employment", vec![1], strings(&["self"])),
        ],
    )
    .unwrap_err();
    assert!(matches!(&err, RuntimeError::Input { field, .. } if field == "inputs.income"), "{err}");
}

/// The artifacts in the docs' section: its `json` and `yaml` blocks that
/// declare `inputs`.
fn documented_artifacts() -> Vec<&'static str> {
    let start = DOCS.find("\n## rules\n").unwrap();
    let section = &DOCS[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("```")
        .skip(1)
        .step_by(2)
        .filter_map(|block| block.strip_prefix("json\n").or_else(|| block.strip_prefix("yaml\n")))
        .filter(|block| block.contains("inputs") && !block.contains("\"method\""))
        .collect()
}

#[test]
fn the_docs_show_the_example_artifacts_as_they_are_and_they_load() {
    for example in [RULES, TABLE] {
        assert!(DOCS.contains(example.trim_end()), "docs/models.md is out of date with:\n{example}");
    }
    let documented = documented_artifacts();
    assert!(documented.len() >= 3, "{documented:?}");
    for artifact in documented {
        if let Err(e) = load(ModelKind::Rules, artifact.as_bytes(), &RuntimeConfig::default()) {
            panic!("a documented artifact does not load: {e}\n{artifact}");
        }
    }
}
