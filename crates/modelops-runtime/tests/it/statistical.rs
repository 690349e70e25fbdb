//! The statistical runtime through the crate's public API, on the example
//! artifacts that docs/models.md shows.

use modelops_core::model::ModelKind;
use modelops_runtime::{check_inputs, load, PredictRequest, RuntimeConfig, Tensor, TensorData};
use serde_json::json;

const LOGISTIC: &str = include_str!("../../examples/artifacts/credit-logistic.json");
const SCORECARD: &str = include_str!("../../examples/artifacts/credit-scorecard.json");
const DOCS: &str = include_str!("../../../../docs/models.md");

#[tokio::test]
async fn a_scorecard_gives_score_probability_and_reason_codes() {
    let model = load(ModelKind::Statistical, SCORECARD.as_bytes(), &RuntimeConfig::default()).unwrap();
    let (inputs, rows) = check_inputs(
        model.signature(),
        vec![
            Tensor::new("age", vec![1], TensorData::Int64(vec![22])),
            Tensor::new("housing", vec![1], TensorData::String(vec!["own".into()])),
            Tensor::new("utilisation", vec![1], TensorData::Float64(vec![0.5])),
        ],
    )
    .unwrap();
    let p = model.predict(PredictRequest { inputs, rows, explain: true, parameters: Default::default() }).await.unwrap();
    assert_eq!(p.outputs[0].name, "score");
    assert_eq!(p.outputs[0].data, TensorData::Float64(vec![460.0]));
    assert_eq!(p.outputs[1].name, "probability");
    let explanation = serde_json::to_value(&p.explanations.unwrap()[0]).unwrap();
    assert_eq!(
        explanation,
        json!({
            "method": "scorecard",
            "score": 460.0,
            "points": [{"feature": "age", "value": 10.0}, {"feature": "housing", "value": 30.0}, {"feature": "utilisation", "value": 20.0}],
            "reasons": [
                {"feature": "age", "code": "AGE_YOUNG", "points": 10.0, "points_lost": 30.0},
                {"feature": "utilisation", "code": "UTIL_HIGH", "points": 20.0, "points_lost": 30.0}
            ]
        })
    );
}

#[tokio::test]
async fn a_logistic_regression_explains_in_log_odds() {
    let model = load(ModelKind::Statistical, LOGISTIC.as_bytes(), &RuntimeConfig::default()).unwrap();
    let (inputs, rows) = check_inputs(
        model.signature(),
        vec![
            Tensor::new("debt_ratio", vec![1], TensorData::Float64(vec![0.0])),
            Tensor::new("late_payments", vec![1], TensorData::Int64(vec![0])),
            Tensor::new("years_employed", vec![1], TensorData::Float64(vec![0.0])),
        ],
    )
    .unwrap();
    let p = model.predict(PredictRequest { inputs, rows, explain: true, parameters: Default::default() }).await.unwrap();
    let TensorData::Float64(probability) = &p.outputs[0].data else { panic!() };
    assert!((probability[0] - 1.0 / (1.0 + 2f64.exp())).abs() < 1e-15);
    let explanation = serde_json::to_value(&p.explanations.unwrap()[0]).unwrap();
    assert_eq!(explanation["scale"], "log_odds");
    assert_eq!(explanation["base_value"], -2.0);
}

/// The artifacts in the docs' section: its `json` and `yaml` blocks that
/// declare `"type"`.
fn documented_artifacts() -> Vec<&'static str> {
    let start = DOCS.find("\n## statistical\n").unwrap();
    let section = &DOCS[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("```")
        .skip(1)
        .step_by(2)
        .filter_map(|block| block.strip_prefix("json\n").or_else(|| block.strip_prefix("yaml\n")))
        .filter(|block| block.contains("\"type\""))
        .collect()
}

#[test]
fn the_docs_show_the_example_artifacts_as_they_are_and_they_load() {
    for example in [LOGISTIC, SCORECARD] {
        assert!(DOCS.contains(example.trim_end()), "docs/models.md is out of date with:\n{example}");
    }
    let documented = documented_artifacts();
    assert!(documented.len() >= 2, "{documented:?}");
    for artifact in documented {
        if let Err(e) = load(ModelKind::Statistical, artifact.as_bytes(), &RuntimeConfig::default()) {
            panic!("a documented artifact does not load: {e}\n{artifact}");
        }
    }
}
