use super::*;
use crate::{check_inputs, load, RuntimeConfig};
use modelops_core::model::ModelKind;
use serde_json::json;

const CREDIT_YAML: &[u8] = include_bytes!("../../examples/artifacts/credit-rules.yaml");
const CREDIT_TABLE: &[u8] = include_bytes!("../../examples/artifacts/credit-table.json");

fn t(name: &str, data: TensorData) -> Tensor {
    Tensor::new(name, vec![data.len()], data)
}

fn strings(v: &[&str]) -> TensorData {
    TensorData::String(v.iter().map(|s| (*s).to_string()).collect())
}

fn run(model: &RulesModel, inputs: Vec<Tensor>, explain: bool) -> Result<Prediction, RuntimeError> {
    let (inputs, rows) = check_inputs(model.signature(), inputs)?;
    futures::executor::block_on(model.predict(PredictRequest { inputs, rows, explain, parameters: serde_json::Map::new() }))
}

fn output<'a>(p: &'a Prediction, name: &str) -> &'a TensorData {
    &p.outputs.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no output {name}")).data
}

fn load_err(artifact: serde_json::Value) -> String {
    RulesModel::load(artifact.to_string().as_bytes()).unwrap_err().to_string()
}

/// Rows: minor; income missing; low income; self-employed newcomer;
/// existing customer; newcomer.
fn credit_inputs() -> Vec<Tensor> {
    vec![
        t("age", TensorData::Int64(vec![16, 30, 30, 45, 50, 50])),
        t("income", TensorData::Float64(vec![50_000.0, f64::NAN, 10_000.0, 80_000.0, 100_000.0, 100_000.0])),
        t("employment", strings(&["employed", "employed", "employed", "self", "self", "employed"])),
        t("existing_customer", TensorData::Bool(vec![false, false, true, false, true, false])),
    ]
}

#[test]
fn first_match_takes_the_first_rule_that_holds_and_the_default_for_the_rest() {
    let model = RulesModel::load(CREDIT_YAML).unwrap();
    let names: Vec<&str> = model.signature().outputs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["decision", "limit", "rule"]);
    assert!(model.signature().inputs[1].allow_nan, "income allows missing values");
    let p = run(&model, credit_inputs(), false).unwrap();
    assert_eq!(output(&p, "decision"), &strings(&["decline", "refer", "refer", "refer", "approve", "approve"]));
    assert_eq!(output(&p, "rule"), &strings(&["minor", "income_unknown", "low_income", "new_self_employed", "default", "default"]));
    // new_self_employed gives no limit: the default's expression does.
    assert_eq!(output(&p, "limit"), &TensorData::Float64(vec![0.0, 0.0, 500.0, 24_000.0, 40_000.0, 30_000.0]));
    assert!(p.explanations.is_none());
}

#[test]
fn json_and_yaml_forms_are_the_same_model() {
    let yaml: serde_json::Value = serde_norway::from_slice(CREDIT_YAML).unwrap();
    let from_json = RulesModel::load(yaml.to_string().as_bytes()).unwrap();
    let from_yaml = RulesModel::load(CREDIT_YAML).unwrap();
    assert_eq!(from_json.signature(), from_yaml.signature());
    let a = run(&from_json, credit_inputs(), true).unwrap();
    let b = run(&from_yaml, credit_inputs(), true).unwrap();
    assert_eq!(a.outputs, b.outputs);
    assert_eq!(a.explanations, b.explanations);
}

#[test]
fn explanations_name_the_fired_rule_and_the_inputs_it_read() {
    let model = RulesModel::load(CREDIT_YAML).unwrap();
    let p = run(&model, credit_inputs(), true).unwrap();
    let e = p.explanations.unwrap();
    assert_eq!(e.len(), 6);
    let rules = |i: usize| match &e[i] {
        Explanation::Rules { fired, inputs } => (fired.clone(), serde_json::to_value(inputs).unwrap()),
        other => panic!("{other:?}"),
    };
    assert_eq!(rules(0), (vec!["minor".to_string()], json!({"age": 16})));
    // The rule read only `missing`.
    assert_eq!(rules(1), (vec!["income_unknown".to_string()], json!({})));
    assert_eq!(rules(2), (vec!["low_income".to_string()], json!({"income": 10000.0})));
    // The condition's inputs and the default's limit expression's.
    assert_eq!(
        rules(3),
        (vec!["new_self_employed".to_string()], json!({"employment": "self", "existing_customer": false, "income": 80000.0}))
    );
    assert_eq!(rules(4), (vec!["default".to_string()], json!({"existing_customer": true, "income": 100000.0})));
    let wire = serde_json::to_value(&e[0]).unwrap();
    assert_eq!(wire, json!({"method": "rules", "fired": ["minor"], "inputs": {"age": 16}}));
}

#[test]
fn a_decision_table_compiles_into_rules() {
    let model = RulesModel::load(CREDIT_TABLE).unwrap();
    let p = run(
        &model,
        vec![
            t("age", TensorData::Int64(vec![17, 30, 30, 64, 65, 70, 70])),
            t("income", TensorData::Float64(vec![90_000.0, 10_000.0, 50_000.0, 50_000.0, 50_000.0, 40_000.0, 40_000.0])),
            t("employment", strings(&["employed", "employed", "self", "employed", "employed", "retired", "student"])),
        ],
        true,
    )
    .unwrap();
    assert_eq!(output(&p, "rule"), &strings(&["minor", "low_income", "working_age", "working_age", "row_5", "retired", "row_5"]));
    assert_eq!(output(&p, "decision"), &strings(&["decline", "refer", "approve", "approve", "refer", "approve", "refer"]));
    assert_eq!(output(&p, "limit"), &TensorData::Float64(vec![0.0, 500.0, 15_000.0, 15_000.0, 0.0, 8_000.0, 0.0]));
    // The row's blank cells read nothing.
    let Some(Explanation::Rules { inputs, .. }) = p.explanations.as_ref().map(|e| e[1].clone()) else { panic!() };
    assert_eq!(inputs.keys().collect::<Vec<_>>(), ["income"]);
}

#[test]
fn table_cells_read_as_tests_on_their_column() {
    let cases = [
        (json!("-"), None),
        (json!(""), None),
        (json!(null), None),
        (json!("< 21"), Some("(age) < (21)")),
        (json!(">=21"), Some("(age) >= (21)")),
        (json!("!= 3"), Some("(age) != (3)")),
        (json!("[18..65)"), Some("(age) >= (18) && (age) < (65)")),
        (json!("(18 .. 65]"), Some("(age) > (18) && (age) <= (65)")),
        (json!("in [1, 2]"), Some("(age) in ([1, 2])")),
        (json!("not in [1, 2]"), Some("!((age) in ([1, 2]))")),
        (json!("'x'"), Some("(age) == ('x')")),
        (json!(42), Some("(age) == 42")),
        (json!(true), Some("(age) == true")),
    ];
    for (cell, want) in cases {
        assert_eq!(load::cell_condition("age", &cell).unwrap().as_deref(), want, "{cell}");
    }
    assert!(load::cell_condition("age", &json!("[18..)")).unwrap_err().contains("open end"));
    assert!(load::cell_condition("age", &json!([1])).unwrap_err().contains("a list is not a cell"));
}

fn collect_spec() -> serde_json::Value {
    json!({
        "inputs": [{"name": "amount", "type": "double"}, {"name": "country", "type": "string"}, {"name": "night", "type": "bool"}],
        "outputs": [
            {"name": "points", "type": "int", "aggregate": "sum"},
            {"name": "reasons", "type": "string", "aggregate": "join"},
            {"name": "worst", "type": "double", "aggregate": "max"},
            {"name": "block", "type": "bool", "aggregate": "any"},
            {"name": "first_reason", "type": "string"}
        ],
        "mode": "collect",
        "rules": [
            {"name": "large", "when": "amount > 1000.0", "then": {"points": 30, "reasons": "'large amount'", "worst": "amount / 100.0", "first_reason": "'large'"}},
            {"name": "abroad", "when": "country != 'NL'", "then": {"points": 20, "reasons": "'abroad: ' + country", "worst": 5.5, "block": "country == 'XX'", "first_reason": "'abroad'"}},
            {"name": "night", "when": "night", "then": {"points": 10, "block": false}}
        ],
        "default": {"reasons": "'none'", "worst": 0, "first_reason": "'none'"}
    })
}

#[test]
fn collect_fires_every_rule_that_holds_and_aggregates_each_output() {
    let model = RulesModel::load(collect_spec().to_string().as_bytes()).unwrap();
    let p = run(
        &model,
        vec![
            t("amount", TensorData::Float64(vec![5000.0, 10.0, 10.0, 2000.0])),
            t("country", strings(&["DE", "NL", "NL", "XX"])),
            t("night", TensorData::Bool(vec![true, false, true, false])),
        ],
        true,
    )
    .unwrap();
    assert_eq!(output(&p, "rule"), &strings(&["large,abroad,night", "default", "night", "large,abroad"]));
    assert_eq!(output(&p, "points"), &TensorData::Int64(vec![60, 0, 10, 50]));
    assert_eq!(output(&p, "reasons"), &strings(&["large amount; abroad: DE", "none", "none", "large amount; abroad: XX"]));
    assert_eq!(output(&p, "worst"), &TensorData::Float64(vec![50.0, 0.0, 0.0, 20.0]));
    assert_eq!(output(&p, "block"), &TensorData::Bool(vec![false, false, false, true]));
    assert_eq!(output(&p, "first_reason"), &strings(&["large", "none", "none", "large"]));
    let Some(Explanation::Rules { fired, .. }) = p.explanations.as_ref().map(|e| e[0].clone()) else { panic!() };
    assert_eq!(fired, ["large", "abroad", "night"]);
}

#[test]
fn an_output_no_fired_rule_gives_without_a_default_names_the_row() {
    let mut spec = collect_spec();
    spec.as_object_mut().unwrap().remove("default");
    let model = RulesModel::load(spec.to_string().as_bytes()).unwrap();
    let err = run(
        &model,
        vec![
            t("amount", TensorData::Float64(vec![5000.0, 10.0])),
            t("country", strings(&["DE", "NL"])),
            t("night", TensorData::Bool(vec![false, false])),
        ],
        false,
    )
    .unwrap_err();
    assert_eq!(err, RuntimeError::input("inputs", "row 1: no fired rule gives `reasons` and the rule set has no default for it"));
}

#[test]
fn first_match_without_a_default_refuses_rows_no_rule_takes() {
    let spec = json!({
        "inputs": [{"name": "x", "type": "int"}],
        "outputs": [{"name": "y", "type": "int"}],
        "rules": [{"name": "big", "when": "x > 10", "then": {"y": "x * 2"}}]
    });
    let model = RulesModel::load(spec.to_string().as_bytes()).unwrap();
    let p = run(&model, vec![t("x", TensorData::Int64(vec![11]))], false).unwrap();
    assert_eq!(output(&p, "y"), &TensorData::Int64(vec![22]));
    let err = run(&model, vec![t("x", TensorData::Int64(vec![11, 3]))], false).unwrap_err();
    assert_eq!(err.to_string(), "inputs: row 1: no rule fired and the rule set has no default");
}

#[test]
fn evaluation_errors_name_the_row_the_rule_and_the_input() {
    let spec = json!({
        "inputs": [{"name": "debt", "type": "int"}, {"name": "income", "type": "int"}],
        "outputs": [{"name": "ratio", "type": "int"}, {"name": "label", "type": "string"}],
        "rules": [
            {"name": "ratio_high", "when": "debt / income > 2", "then": {"ratio": "debt / income", "label": "'high'"}},
            {"name": "negative", "when": "debt < 0", "then": {"ratio": "100 / (debt + 1)", "label": "'neg'"}}
        ],
        "default": {"ratio": 0, "label": "'ok'"}
    });
    let model = RulesModel::load(spec.to_string().as_bytes()).unwrap();
    let inputs = |debt: Vec<i64>, income: Vec<i64>| vec![t("debt", TensorData::Int64(debt)), t("income", TensorData::Int64(income))];
    let err = run(&model, inputs(vec![1, 5], vec![1, 0]), false).unwrap_err();
    assert_eq!(
        err,
        RuntimeError::input("inputs", "row 1: the condition of rule `ratio_high` (`debt / income > 2`) failed: division by zero")
    );
    let err = run(&model, inputs(vec![-1], vec![1]), false).unwrap_err();
    assert_eq!(err, RuntimeError::input("inputs.debt", "row 0: `ratio` of rule `negative` (`100 / (debt + 1)`) failed: division by zero"));
}

#[test]
fn missing_values_fail_conditions_and_outputs_that_read_them() {
    let spec = json!({
        "inputs": [{"name": "income", "type": "double", "allow_missing": true}],
        "outputs": [{"name": "limit", "type": "double"}],
        "rules": [
            {"name": "negated", "when": "!(income > 100.0)", "then": {"limit": 1}},
            {"name": "big", "when": "true", "then": {"limit": "income * 2.0"}}
        ]
    });
    let model = RulesModel::load(spec.to_string().as_bytes()).unwrap();
    let p = run(&model, vec![t("income", TensorData::Float64(vec![50.0, 200.0]))], false).unwrap();
    assert_eq!(output(&p, "limit"), &TensorData::Float64(vec![1.0, 400.0]));
    // `negated` reads the missing income, so it does not hold (even negated);
    // `big` holds, but its output reads the missing income.
    let err = run(&model, vec![t("income", TensorData::Float64(vec![50.0, f64::NAN]))], false).unwrap_err();
    assert_eq!(err, RuntimeError::input("inputs.income", "row 1: missing, and `limit` of rule `big` reads it"));
    // Without allow_missing the signature refuses NaN.
    let strict = json!({
        "inputs": [{"name": "income", "type": "double"}],
        "outputs": [{"name": "limit", "type": "double"}],
        "rules": [{"name": "r", "when": "true", "then": {"limit": 1}}]
    });
    let model = RulesModel::load(strict.to_string().as_bytes()).unwrap();
    let err = run(&model, vec![t("income", TensorData::Float64(vec![f64::NAN]))], false).unwrap_err();
    assert!(err.to_string().starts_with("inputs.income: row 0 holds NaN"), "{err}");
    let err = run(&model, vec![t("income", TensorData::Float64(vec![f64::INFINITY]))], false).unwrap_err();
    assert_eq!(err.to_string(), "inputs.income: row 0 is `inf`, not a finite number");
}

#[test]
fn an_output_of_the_wrong_type_at_run_time_names_the_rule() {
    let spec = json!({
        "inputs": [{"name": "x", "type": "double"}],
        "outputs": [{"name": "y", "type": "double"}],
        "rules": [{"name": "inverse", "when": "true", "then": {"y": "1.0 / x"}}]
    });
    let model = RulesModel::load(spec.to_string().as_bytes()).unwrap();
    let err = run(&model, vec![t("x", TensorData::Float64(vec![2.0, 0.0]))], false).unwrap_err();
    assert_eq!(
        err,
        RuntimeError::input(
            "inputs.x",
            "row 1: `y` of rule `inverse` gives `inf`, which is not a finite number where the output is a double"
        )
    );
}

#[test]
fn load_errors_name_the_member() {
    let base = || {
        json!({
            "inputs": [{"name": "age", "type": "int"}, {"name": "income", "type": "double"}],
            "outputs": [{"name": "decision", "type": "string"}, {"name": "limit", "type": "double"}],
            "rules": [
                {"name": "a", "when": "age < 18", "then": {"decision": "'no'", "limit": 0}},
                {"name": "b", "when": "income < 100.0", "then": {"decision": "'refer'", "limit": 1.5}},
                {"name": "c", "when": "true", "then": {"decision": "'yes'", "limit": "income * 0.1"}}
            ]
        })
    };
    assert!(RulesModel::load(base().to_string().as_bytes()).is_ok());
    let with = |pointer: &str, value: serde_json::Value| {
        let mut spec = base();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match spec.pointer_mut(parent).unwrap() {
            serde_json::Value::Object(members) => {
                members.insert(key.to_string(), value);
            }
            serde_json::Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
            other => panic!("{other}"),
        }
        if pointer == "/inputs/0/name" && spec["inputs"][0]["name"] == "income" {
            spec["inputs"][1]["name"] = json!("income");
        }
        load_err(spec)
    };
    let cases = [
        ("/rules/2/when", json!("age <<< 3"), "rules[2].when: 1:6: "),
        ("/rules/2/when", json!("agee < 3"), "rules[2].when: 1:1: `agee` is not declared (variables: `age`, `income`)"),
        ("/rules/2/when", json!("age + 1"), "rules[2].when: the condition gives an int, not a bool"),
        ("/rules/2/when", json!(3), "rules[2].when: expected a CEL condition as text"),
        ("/rules/1/then/decision", json!("refer"), "rules[1].then.decision: 1:1: `refer` is not declared (variables: `age`, `income`) (text is quoted inside the expression: `'refer'`; in YAML, `\"'refer'\"`)"),
        ("/rules/1/then/limit", json!("'high'"), "rules[1].then.limit: `'high'` gives a string, and `limit` is a double"),
        ("/rules/1/then/limit", json!([1]), "rules[1].then.limit: a list is not a value of `limit` (double)"),
        ("/rules/1/then/decision", json!(3), "rules[1].then.decision: `3` is not a string, the type of `decision`"),
        ("/rules/1/then/limt", json!(1), "rules[1].then.limt: not a declared output (outputs: `decision`, `limit`)"),
        ("/rules/1/name", json!("a"), "rules[1].name: `a` is the name of rules[0] too"),
        ("/rules/1/name", json!("a,b"), "rules[1].name: `a,b` is not a valid rule name"),
        ("/rules/1/name", json!("default"), "rules[1].name: `default` names the rule set's default"),
        ("/rules/1/then", json!({"decision": "'x'"}), "rules[1]: rule `b` gives no `limit` and there is no `default` for it"),
        ("/inputs/0/name", json!("first-name"), "inputs[0].name: `first-name` is not a name expressions can use"),
        ("/inputs/0/name", json!("income"), "inputs[1].name: `income` is declared by inputs[0] too"),
        ("/inputs/0/allow_missing", json!(true), "inputs[0].allow_missing: only a double input can be missing"),
        ("/inputs/0/type", json!("integer"), "inputs[0].type: unknown variant `integer`"),
        ("/outputs/1/name", json!("rule"), "outputs[1].name: `rule` is the output naming the rule that fired"),
        ("/outputs/1/aggregate", json!("sum"), "outputs[1].aggregate: aggregates apply in `collect` mode"),
        ("/rules", json!([]), "rules: the rule set needs at least one rule"),
        ("/rules/0/whne", json!("x"), "rules[0].whne: unknown field `whne`, expected one of `name`, `description`, `when`, `then`"),
    ];
    for (pointer, value, want) in cases {
        let got = with(pointer, value);
        assert!(got.starts_with(&format!("the artifact cannot be loaded: {want}")), "{pointer}: {got}\nwant: {want}");
    }
    let mut both = base();
    both["table"] = json!({"conditions": ["age"], "results": [], "rows": []});
    assert!(load_err(both).contains("give `rules` or `table`, not both"));
    let mut kind = base();
    kind["kind"] = json!("onnx");
    assert!(load_err(kind).contains("kind: `onnx` is not `rules`"));
    let mut collect = base();
    collect["mode"] = json!("collect");
    *collect.pointer_mut("/outputs/0").unwrap() = json!({"name": "decision", "type": "string", "aggregate": "sum"});
    assert!(load_err(collect).contains("outputs[0].aggregate: `sum` cannot aggregate `decision`, which is a string"));
    let catch_all = RulesModel::load(
        b"inputs: [{name: x, type: int}]\noutputs: [{name: y, type: int}]\nrules:\n  - {name: r, when: true, then: {y: 1}}\n",
    );
    assert!(catch_all.is_ok(), "a YAML bool is a condition: {catch_all:?}");
    let yaml = RulesModel::load(
        b"inputs: [{name: x, type: int}]\noutputs: [{name: y, type: int}]\nrules:\n  - {name: r, when: 'x >', then: {y: 1}}\n",
    );
    assert!(yaml.unwrap_err().to_string().starts_with("the artifact cannot be loaded: rules[0].when: 1:"));
    assert!(RulesModel::load(b"{\"inputs\": [").unwrap_err().to_string().contains("EOF"));
}

#[test]
fn table_load_errors_name_the_cell() {
    let table = |rows: serde_json::Value| {
        json!({
            "inputs": [{"name": "age", "type": "int"}],
            "outputs": [{"name": "band", "type": "string"}],
            "table": {"conditions": ["age"], "results": ["band"], "rows": rows}
        })
    };
    assert!(RulesModel::load(table(json!([["< 18", "'minor'"], ["-", "'adult'"]])).to_string().as_bytes()).is_ok());
    let cases = [
        (json!([["< 18"]]), "table.rows[0]: 1 cells where the table has 2 columns (1 conditions, 1 results)"),
        (json!([["< 1 8", "'minor'"]]), "table.rows[0][0]: reads as `(age) < (1 8)`: 1:"),
        (json!([{"name": "m", "cells": ["< 18", "minor"]}]), "table.rows[0].cells[1]: 1:1: `minor` is not declared"),
        (json!([{"name": "m", "cels": []}]), "table.rows[0]: unknown field `cels`"),
        (
            json!([["< 18", "'a'"], {"name": "row_1", "cells": ["-", "'b'"]}]),
            "table.rows[1].name: `row_1` is the name of table.rows[0] too",
        ),
        (json!([["'x'", "'a'"]]), "table.rows[0][0]: reads as `(age) == ('x')`: "),
    ];
    for (rows, want) in cases {
        let got = load_err(table(rows));
        assert!(got.starts_with(&format!("the artifact cannot be loaded: {want}")), "{got}\nwant: {want}");
    }
}

#[test]
fn the_crate_loads_rules_by_kind() {
    let model = load(ModelKind::Rules, CREDIT_TABLE, &RuntimeConfig::default()).unwrap();
    assert_eq!(model.platform(), "modelops_rules");
    assert!(model.memory_bytes() > CREDIT_TABLE.len());
    let err = load(ModelKind::Rules, b"rules: 3", &RuntimeConfig::default()).err().unwrap();
    assert!(matches!(err, RuntimeError::Load(_)), "{err}");
}

#[test]
fn thousands_of_rows_evaluate_without_reparsing() {
    let model = RulesModel::load(CREDIT_YAML).unwrap();
    let rows = 5000;
    let inputs = vec![
        t("age", TensorData::Int64((0..rows).map(|i| 15 + (i % 60)).collect())),
        t("income", TensorData::Float64((0..rows).map(|i| (i * 37 % 100_000) as f64).collect())),
        t("employment", TensorData::String((0..rows).map(|i| if i % 3 == 0 { "self" } else { "employed" }.to_string()).collect())),
        t("existing_customer", TensorData::Bool((0..rows).map(|i| i % 2 == 0).collect())),
    ];
    let p = run(&model, inputs, false).unwrap();
    assert_eq!(p.outputs[0].shape, vec![rows as usize]);
}
