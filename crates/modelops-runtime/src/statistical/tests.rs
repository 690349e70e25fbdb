use super::*;
use crate::explain::ReasonCode;
use crate::{check_inputs, load, RuntimeConfig};
use modelops_core::model::ModelKind;
use serde_json::json;

const LOGISTIC: &[u8] = include_bytes!("../../examples/artifacts/credit-logistic.json");
const SCORECARD: &[u8] = include_bytes!("../../examples/artifacts/credit-scorecard.json");

fn t(name: &str, data: TensorData) -> Tensor {
    Tensor::new(name, vec![data.len()], data)
}

fn run(model: &StatisticalModel, inputs: Vec<Tensor>, explain: bool) -> Result<Prediction, RuntimeError> {
    let (inputs, rows) = check_inputs(model.signature(), inputs)?;
    futures::executor::block_on(model.predict(PredictRequest { inputs, rows, explain, parameters: serde_json::Map::new() }))
}

fn floats(p: &Prediction, name: &str) -> Vec<f64> {
    match &p.outputs.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no output {name}")).data {
        TensorData::Float64(v) => v.clone(),
        other => panic!("{other:?}"),
    }
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{a:?} != {b:?}");
    }
}

fn load_err(spec: serde_json::Value) -> String {
    StatisticalModel::load(spec.to_string().as_bytes()).unwrap_err().to_string()
}

#[test]
fn linear_regression_sums_the_intercept_and_the_contributions() {
    let spec = br#"{"type": "linear_regression", "intercept": 10.0, "coefficients": {"rooms": 25.5, "age": -0.5}}"#;
    let model = StatisticalModel::load(spec).unwrap();
    let names: Vec<&str> = model.signature().inputs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["rooms", "age"], "the order written, not sorted");
    assert_eq!(model.signature().outputs[0].name, "prediction");
    // Integers widen to doubles.
    let p = run(&model, vec![t("age", TensorData::Int64(vec![20, 0])), t("rooms", TensorData::Float64(vec![2.0, 1.0]))], true).unwrap();
    close(&floats(&p, "prediction"), &[10.0 + 51.0 - 10.0, 35.5]);
    let explanations = p.explanations.unwrap();
    let Explanation::Contributions { scale, base_value, contributions } = &explanations[0] else { panic!() };
    assert_eq!(*scale, ContributionScale::Value);
    assert_eq!(*base_value, 10.0);
    assert_eq!(
        contributions,
        &vec![Contribution { feature: "rooms".into(), value: 51.0 }, Contribution { feature: "age".into(), value: -10.0 }]
    );
}

#[test]
fn logistic_regression_matches_a_hand_computation() {
    let model = StatisticalModel::load(LOGISTIC).unwrap();
    let outputs: Vec<(&str, DataType)> = model.signature().outputs.iter().map(|f| (f.name.as_str(), f.dtype)).collect();
    assert_eq!(outputs, [("probability", DataType::Float64), ("label", DataType::Int64)]);
    let inputs = || {
        vec![
            t("debt_ratio", TensorData::Float64(vec![0.5, 1.0, 0.0])),
            t("late_payments", TensorData::Int64(vec![2, 3, 0])),
            t("years_employed", TensorData::Float64(vec![10.0, 0.0, 8000.0])),
        ]
    };
    let p = run(&model, inputs(), true).unwrap();
    // z = -2 + 3·0.5 + 0.5·2 - 0.1·10 = -0.5 → 1/(1+e^0.5); z = 2.5; z = -802 (no overflow).
    close(&floats(&p, "probability"), &[0.3775406687981454, 0.9241418199787566, 0.0]);
    assert_eq!(p.outputs[1].data, TensorData::Int64(vec![0, 1, 0]));
    let explanations = p.explanations.unwrap();
    let Explanation::Contributions { scale, base_value, contributions } = &explanations[0] else { panic!() };
    assert_eq!((*scale, *base_value), (ContributionScale::LogOdds, -2.0));
    let values: Vec<f64> = contributions.iter().map(|c| c.value).collect();
    close(&values, &[1.5, 1.0, -1.0]);

    let mut spec: serde_json::Value = serde_json::from_slice(LOGISTIC).unwrap();
    spec["threshold"] = json!(0.3);
    let model = StatisticalModel::load(spec.to_string().as_bytes()).unwrap();
    assert_eq!(run(&model, inputs(), false).unwrap().outputs[1].data, TensorData::Int64(vec![1, 1, 0]));
}

#[test]
fn regressions_refuse_non_finite_inputs_by_name() {
    let model = StatisticalModel::load(LOGISTIC).unwrap();
    let err = run(
        &model,
        vec![
            t("debt_ratio", TensorData::Float64(vec![0.5, f64::INFINITY])),
            t("late_payments", TensorData::Int64(vec![2, 3])),
            t("years_employed", TensorData::Float64(vec![1.0, 1.0])),
        ],
        false,
    )
    .unwrap_err();
    assert_eq!(err, RuntimeError::input("inputs.debt_ratio", "row 1 is `inf`, not a finite number"));
    let err = run(
        &model,
        vec![
            t("debt_ratio", TensorData::Float64(vec![f64::NAN])),
            t("late_payments", TensorData::Int64(vec![2])),
            t("years_employed", TensorData::Float64(vec![1.0])),
        ],
        false,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("inputs.debt_ratio: row 0 holds NaN"), "{err}");
}

fn scorecard_inputs() -> Vec<Tensor> {
    vec![
        t("age", TensorData::Float64(vec![30.0, f64::NAN, 50.0, 45.0])),
        t("housing", TensorData::String(vec!["rent".into(), "own".into(), "boat".into(), "own".into()])),
        t("utilisation", TensorData::Float64(vec![0.9, 0.1, 0.3, 0.0])),
    ]
}

#[test]
fn scorecard_scores_bins_and_scales_to_a_probability() {
    let model = StatisticalModel::load(SCORECARD).unwrap();
    let inputs: Vec<(&str, DataType, bool)> = model.signature().inputs.iter().map(|f| (f.name.as_str(), f.dtype, f.allow_nan)).collect();
    assert_eq!(inputs, [("age", DataType::Float64, true), ("housing", DataType::String, false), ("utilisation", DataType::Float64, false)]);
    let p = run(&model, scorecard_inputs(), false).unwrap();
    // 400 + 25 + 5 + 0; + 5 (missing) + 30 + 50; + 40 + 0 (other) + 20 (0.3 opens the middle bin); + 40 + 30 + 50.
    assert_eq!(floats(&p, "score"), [430.0, 485.0, 460.0, 520.0]);
    // odds = 50 · 2^((score - 600) / 20) good:bad; probability of bad = 1 / (1 + odds).
    close(&floats(&p, "probability"), &[0.8786521668918923, 0.5183850282233571, 0.7191011235955056, 0.24242424242424243]);

    let mut spec: serde_json::Value = serde_json::from_slice(SCORECARD).unwrap();
    spec["score_to_probability"]["probability_of"] = json!("good");
    let good = StatisticalModel::load(spec.to_string().as_bytes()).unwrap();
    close(
        &floats(&run(&good, scorecard_inputs(), false).unwrap(), "probability"),
        &[1.0 - 0.8786521668918923, 1.0 - 0.5183850282233571, 1.0 - 0.7191011235955056, 1.0 - 0.24242424242424243],
    );
    spec.as_object_mut().unwrap().remove("score_to_probability");
    let plain = StatisticalModel::load(spec.to_string().as_bytes()).unwrap();
    assert_eq!(plain.signature().outputs.len(), 1);
}

#[test]
fn reason_codes_are_ordered_by_points_lost() {
    let model = StatisticalModel::load(SCORECARD).unwrap();
    let p = run(&model, scorecard_inputs(), true).unwrap();
    let explanations = p.explanations.unwrap();
    let reasons = |row: usize| -> Vec<(String, String, f64)> {
        let Explanation::Scorecard { reasons, .. } = &explanations[row] else { panic!() };
        reasons.iter().map(|r| (r.feature.clone(), r.code.clone(), r.points_lost)).collect()
    };
    let r = |f: &str, c: &str, lost: f64| (f.to_string(), c.to_string(), lost);
    // A bin without a code takes the feature's (`AGE`).
    assert_eq!(reasons(0), [r("utilisation", "UTIL_VERY_HIGH", 50.0), r("housing", "HOUSING_RENT", 25.0), r("age", "AGE", 15.0)]);
    assert_eq!(reasons(1), [r("age", "AGE_MISSING", 35.0)]);
    // A tie keeps feature order.
    assert_eq!(reasons(2), [r("housing", "HOUSING_OTHER", 30.0), r("utilisation", "UTIL_HIGH", 30.0)]);
    assert_eq!(reasons(3), []);
    let Explanation::Scorecard { score, points, reasons } = &explanations[0] else { panic!() };
    assert_eq!(*score, 430.0);
    let points: Vec<(&str, f64)> = points.iter().map(|c| (c.feature.as_str(), c.value)).collect();
    assert_eq!(points, [("age", 25.0), ("housing", 5.0), ("utilisation", 0.0)]);
    assert_eq!(reasons[1], ReasonCode { feature: "housing".into(), code: "HOUSING_RENT".into(), points: 5.0, points_lost: 25.0 });
    let wire = serde_json::to_value(&explanations[1]).unwrap();
    assert_eq!(wire["method"], "scorecard");
    assert_eq!(wire["reasons"][0], json!({"feature": "age", "code": "AGE_MISSING", "points": 5.0, "points_lost": 35.0}));
}

#[test]
fn values_outside_every_bin_name_the_feature_row_and_value() {
    let spec = json!({"type": "scorecard", "features": [
        {"name": "age", "bins": [{"min": 18, "max": 30, "points": 1}, {"min": 30, "max": 100, "points": 2}]},
        {"name": "housing", "bins": [{"values": ["rent"], "points": 0}, {"values": ["own"], "points": 3}]}
    ]});
    let model = StatisticalModel::load(spec.to_string().as_bytes()).unwrap();
    let run_with = |age: Vec<f64>, housing: Vec<&str>| {
        run(
            &model,
            vec![t("age", TensorData::Float64(age)), t("housing", TensorData::String(housing.into_iter().map(String::from).collect()))],
            false,
        )
    };
    assert_eq!(floats(&run_with(vec![18.0, 29.99, 30.0], vec!["rent", "own", "own"]).unwrap(), "score"), [1.0, 4.0, 5.0]);
    assert_eq!(
        run_with(vec![20.0, 100.0], vec!["rent", "own"]).unwrap_err(),
        RuntimeError::input("inputs.age", "row 1: `100` falls in no bin (the bins cover 18 <= x < 100)")
    );
    assert_eq!(
        run_with(vec![20.0, 17.5], vec!["rent", "own"]).unwrap_err(),
        RuntimeError::input("inputs.age", "row 1: `17.5` falls in no bin (the bins cover 18 <= x < 100)")
    );
    assert_eq!(
        run_with(vec![20.0], vec!["boat"]).unwrap_err(),
        RuntimeError::input("inputs.housing", "row 0: `boat` is in no bin (the bins list `own`, `rent`)")
    );
    // No missing_points: the signature refuses NaN, and "" is an ordinary value.
    assert!(run_with(vec![f64::NAN], vec!["own"]).unwrap_err().to_string().starts_with("inputs.age: row 0 holds NaN"));
    assert!(run_with(vec![20.0], vec![""]).unwrap_err().to_string().contains("`` is in no bin"));
}

#[test]
fn an_empty_string_is_missing_when_the_feature_scores_it() {
    let spec = json!({"type": "scorecard", "base_points": 1, "features": [
        {"name": "housing", "bins": [{"values": ["rent"], "points": 0}, {"values": ["own"], "points": 3}], "missing_points": 1}
    ]});
    let model = StatisticalModel::load(spec.to_string().as_bytes()).unwrap();
    let p = run(&model, vec![t("housing", TensorData::String(vec!["".into(), "own".into()]))], false).unwrap();
    assert_eq!(floats(&p, "score"), [2.0, 4.0]);
}

#[test]
fn load_errors_name_the_member() {
    let bins = |bins: serde_json::Value| json!({"type": "scorecard", "features": [{"name": "age", "bins": bins}]});
    let cases = [
        (
            bins(json!([{"max": 25, "points": 1}, {"min": 30, "points": 2}])),
            "features[0].bins[1].min: `30` leaves a gap after bins[0], which ends at `25`",
        ),
        (
            bins(json!([{"max": 25, "points": 1}, {"min": 20, "points": 2}])),
            "features[0].bins[1].min: `20` overlaps bins[0], which ends at `25`",
        ),
        (
            bins(json!([{"max": 25, "points": 1}, {"max": 30, "points": 2}, {"min": 30, "points": 3}])),
            "features[0].bins[1].min: missing: only the first bin may be open below",
        ),
        (
            bins(json!([{"min": 25, "points": 1}, {"min": 30, "points": 2}])),
            "features[0].bins[0].max: missing: only the last bin may be open above",
        ),
        (bins(json!([{"min": 5, "max": 5, "points": 1}])), "features[0].bins[0]: `min` 5 is not below `max` 5"),
        (
            bins(json!([{"values": ["a", "b"], "points": 1}, {"values": ["b"], "points": 2}])),
            "features[0].bins[1].values[0]: `b` is in bins[0] too",
        ),
        (bins(json!([{"values": ["a"], "points": 1}, {"max": 3, "points": 2}])), "features[0].bins[1]: a feature's bins are either ranges"),
        (
            bins(json!([{"other": true, "points": 1}, {"other": true, "points": 2}])),
            "features[0].bins[1].other: bins[0] is the `other` bin already",
        ),
        (bins(json!([{"values": ["a"], "points": 1}, {"points": 2}])), "features[0].bins[1]: a bin needs `values`"),
        (bins(json!([{"max": 3, "points": 1, "weight": 2}])), "features[0].bins[0].weight: unknown field `weight`"),
        (bins(json!([])), "features[0].bins: a feature needs at least one bin"),
        (json!({"type": "scorecard", "features": []}), "features: a scorecard needs at least one feature"),
        (
            json!({"type": "scorecard", "features": [{"name": "a", "bins": [{"points": 1}]}, {"name": "a", "bins": [{"points": 1}]}]}),
            "features[1].name: `a` is given twice",
        ),
        (
            json!({"type": "scorecard", "features": [{"name": "a", "bins": [{"points": 1}]}], "score_to_probability": {"pdo": 0, "base_score": 600, "base_odds": 50}}),
            "score_to_probability.pdo: must not be 0",
        ),
        (
            json!({"type": "scorecard", "features": [{"name": "a", "bins": [{"points": 1}]}], "score_to_probability": {"pdo": 20, "base_score": 600, "base_odds": -1}}),
            "score_to_probability.base_odds: `-1` is not positive odds",
        ),
        (
            json!({"type": "scorecard", "intercept": 1, "features": []}),
            "intercept: does not apply to a scorecard; it belongs to a regression",
        ),
        (
            json!({"type": "linear_regression", "coefficients": {"x": 1}, "threshold": 0.5}),
            "threshold: does not apply to a linear_regression",
        ),
        (json!({"type": "linear_regression", "coefficients": {"x": 1}, "features": []}), "features: does not apply to a linear_regression"),
        (json!({"type": "logistic_regression", "coefficients": {}}), "coefficients: a regression needs at least one input"),
        (json!({"type": "logistic_regression"}), "coefficients: missing"),
        (json!({"type": "logistic_regression", "coefficients": {"x": 1}, "threshold": 1.5}), "threshold: `1.5` is not a probability"),
        (json!({"type": "logistic_regression", "coefficients": {"x": "1"}}), "coefficients.x: invalid type: string \"1\", expected f64"),
        (json!({"type": "ridge", "coefficients": {"x": 1}}), "type: unknown variant `ridge`"),
        (json!({"type": "linear_regression", "kind": "rules", "coefficients": {"x": 1}}), "kind: `rules` is not `statistical`"),
    ];
    for (spec, want) in cases {
        let got = load_err(spec);
        assert!(got.starts_with(&format!("the artifact cannot be loaded: {want}")), "{got}\nwant: {want}");
    }
    // YAML can say infinity; a spec cannot.
    let err = StatisticalModel::load(b"type: linear_regression\ncoefficients: {x: .inf}\n").unwrap_err();
    assert_eq!(err.to_string(), "the artifact cannot be loaded: coefficients.x: `inf` is not a finite number");
}

#[test]
fn yaml_specs_load_too() {
    let model = StatisticalModel::load(b"type: linear_regression\nintercept: 1\ncoefficients:\n  b: 2\n  a: 3\n").unwrap();
    let names: Vec<&str> = model.signature().inputs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
    let p = run(&model, vec![t("a", TensorData::Float64(vec![1.0])), t("b", TensorData::Float64(vec![1.0]))], false).unwrap();
    assert_eq!(floats(&p, "prediction"), [6.0]);
}

#[test]
fn the_crate_loads_statistical_models_by_kind() {
    let model = load(ModelKind::Statistical, SCORECARD, &RuntimeConfig::default()).unwrap();
    assert_eq!(model.platform(), "modelops_statistical");
    assert!(model.is_compute());
    let err = load(ModelKind::Statistical, b"{\"type\": \"scorecard\"}", &RuntimeConfig::default()).err().unwrap();
    assert!(matches!(err, RuntimeError::Load(_)), "{err}");
}
