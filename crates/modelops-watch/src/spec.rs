//! What a monitor may name, checked when it is created: its features
//! against the deployment's signatures (as the exported table names the
//! columns), its drift method, and its alert conditions compiled as CEL
//! against the declared context of a window result ([`schema`]).

use modelops_core::monitoring::{AlertRule, MonitorSpec};
use modelops_core::name::quote;
use modelops_core::version::Signature;
use modelops_core::{Error, Result};
use modelops_expr::{Bindings, ExprError, Expression, Schema, Type};
use std::sync::LazyLock;

/// The column names a signature's tensors give in the exported table (and
/// in the windows a monitor summarises): a tensor whose rows hold one value
/// is one column named as the tensor; `k` values give `name_0 … name_{k-1}`;
/// a variable width matches any `name_<i>`.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub inputs: Vec<ColumnPattern>,
    pub outputs: Vec<ColumnPattern>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnPattern {
    Exact(String),
    /// `name_<i>` for any index.
    Indexed(String),
}

impl ColumnPattern {
    fn matches(&self, column: &str) -> bool {
        match self {
            ColumnPattern::Exact(name) => name == column,
            ColumnPattern::Indexed(name) => column
                .strip_prefix(name.as_str())
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())),
        }
    }

    fn describe(&self) -> String {
        match self {
            ColumnPattern::Exact(name) => name.clone(),
            ColumnPattern::Indexed(name) => format!("{name}_<i>"),
        }
    }
}

impl Columns {
    pub fn of(signature: &Signature) -> Columns {
        let patterns = |fields: &[modelops_core::version::SignatureField]| {
            let mut out = Vec::new();
            for f in fields {
                if f.shape.iter().any(|&d| d < 0) {
                    out.push(ColumnPattern::Indexed(f.name.clone()));
                    continue;
                }
                let width: i64 = f.shape.iter().product();
                if width <= 1 {
                    out.push(ColumnPattern::Exact(f.name.clone()));
                } else {
                    out.extend((0..width.min(10_000)).map(|i| ColumnPattern::Exact(format!("{}_{i}", f.name))));
                }
            }
            out
        };
        Columns { inputs: patterns(&signature.inputs), outputs: patterns(&signature.outputs) }
    }

    pub fn merge(&mut self, other: Columns) {
        for p in other.inputs {
            if !self.inputs.contains(&p) {
                self.inputs.push(p);
            }
        }
        for p in other.outputs {
            if !self.outputs.contains(&p) {
                self.outputs.push(p);
            }
        }
    }

    pub fn is_input(&self, column: &str) -> bool {
        self.inputs.iter().any(|p| p.matches(column))
    }

    pub fn is_output(&self, column: &str) -> bool {
        self.outputs.iter().any(|p| p.matches(column))
    }

    fn list(patterns: &[ColumnPattern]) -> String {
        let names: Vec<String> = patterns.iter().take(20).map(ColumnPattern::describe).collect();
        let more = if patterns.len() > 20 { format!(" and {} more", patterns.len() - 20) } else { String::new() };
        format!("{}{more}", names.join(", "))
    }
}

/// Checks `spec` against the columns of the deployment's versions
/// (`deployment` names it in messages) and compiles its conditions.
pub fn check(spec: &MonitorSpec, deployment: &str, columns: &Columns) -> Result<Vec<Expression>> {
    spec.check()?;
    let known = || format!("inputs: {}; outputs: {}", Columns::list(&columns.inputs), Columns::list(&columns.outputs));
    if let Some(features) = &spec.features {
        for (i, f) in features.iter().enumerate() {
            if !columns.is_input(f) && !columns.is_output(f) {
                return Err(Error::invalid(format!("features[{i}]"), format!("{} is not a column of deployment `{deployment}`'s signature ({})", quote(f), known())));
            }
        }
    }
    if let Some(method) = &spec.drift.method {
        if modelops_monitor::drift::Method::parse(method).is_none() {
            let all: Vec<&str> = modelops_monitor::drift::Method::ALL.iter().map(|m| m.key()).collect();
            return Err(Error::invalid("drift.method", format!("{} is not a drift method ({})", quote(method), all.join(", "))));
        }
    }
    if let Some(p) = &spec.performance {
        if !columns.is_output(&p.prediction) {
            return Err(Error::invalid("performance.prediction", format!("{} is not an output column of deployment `{deployment}` ({})", quote(&p.prediction), known())));
        }
        if let Some(score) = &p.score {
            if !columns.is_output(score) {
                return Err(Error::invalid("performance.score", format!("{} is not an output column of deployment `{deployment}` ({})", quote(score), known())));
            }
        }
        if let Some(attribute) = &p.fairness_attribute {
            if !columns.is_input(attribute) {
                return Err(Error::invalid("performance.fairness_attribute", format!("{} is not an input column of deployment `{deployment}` ({})", quote(attribute), known())));
            }
        }
    }
    spec.alerts.iter().enumerate().map(|(i, rule)| compile_rule(i, rule)).collect()
}

fn compile_rule(i: usize, rule: &AlertRule) -> Result<Expression> {
    modelops_expr::compile_condition(&rule.condition, schema()).map_err(|e| Error::invalid(format!("alerts[{i}].condition"), problem(&e)))
}

/// Compiles a stored rule again (the engine, at start).
pub fn compile_stored(rule: &AlertRule) -> std::result::Result<Expression, String> {
    modelops_expr::compile_condition(&rule.condition, schema()).map_err(|e| problem(&e))
}

fn problem(e: &ExprError) -> String {
    let text = e.to_string();
    match e.position() {
        Some(p) => {
            let prefix = format!("{p}: ");
            format!("at {p}: {}", text.strip_prefix(&prefix).unwrap_or(&text))
        }
        None => text,
    }
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new()
        .var("rows", Type::Int)
        .var("version", Type::Int)
        .var(
            "drift",
            Type::object([
                ("computed", Type::Bool),
                ("share", Type::Double),
                ("dataset_drift", Type::Bool),
                ("drifted_columns", Type::Int),
                ("columns", Type::Int),
                ("scores", Type::map(Type::Double)),
                ("detected", Type::map(Type::Bool)),
            ]),
        )
        .var("performance", Type::map(Type::Double))
        .var("labeled_rows", Type::Int)
        .var("estimated", Type::map(Type::Double))
        .var("fairness", Type::map(Type::Double))
});

/// The declared context of an alert condition: `rows`, `version`, `drift`
/// (`computed`, `share`, `dataset_drift`, `drifted_columns`, `columns`,
/// `scores` and `detected` per column), `performance`, `estimated` and
/// `fairness` (metric name → value; empty until computed) and
/// `labeled_rows`.
pub fn schema() -> &'static Schema {
    &SCHEMA
}

/// Evaluates a compiled condition over a window's context (built by the
/// engine as the schema declares it).
pub fn evaluate(expression: &Expression, context: &serde_json::Value) -> std::result::Result<bool, String> {
    Bindings::from_object(schema(), context).and_then(|b| expression.evaluate_bool(&b)).map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use modelops_core::version::{DataType, SignatureField};

    fn signature() -> Signature {
        let f = |name: &str, shape: Vec<i64>| SignatureField { name: name.into(), dtype: DataType::Float64, shape, allow_nan: false };
        Signature { inputs: vec![f("income", vec![]), f("x", vec![2])], outputs: vec![f("label", vec![]), f("probabilities", vec![-1])] }
    }

    fn spec(json: serde_json::Value) -> MonitorSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn features_are_checked_against_the_exported_column_names() {
        let columns = Columns::of(&signature());
        let ok = spec(serde_json::json!({"name": "m", "window": {"rows": 100}, "features": ["income", "x_1", "label", "probabilities_1"]}));
        check(&ok, "d", &columns).unwrap();
        let bad = spec(serde_json::json!({"name": "m", "window": {"rows": 100}, "features": ["income", "age"]}));
        let err = check(&bad, "d", &columns).unwrap_err().to_string();
        assert!(err.contains("features[1]") && err.contains("`age`") && err.contains("income, x_0, x_1"), "{err}");
        let bad = spec(serde_json::json!({"name": "m", "window": {"rows": 100}, "performance": {"prediction": "income"}}));
        assert!(check(&bad, "d", &columns).unwrap_err().to_string().contains("performance.prediction"));
    }

    #[test]
    fn conditions_compile_against_the_window_context_and_evaluate() {
        let columns = Columns::of(&signature());
        let bad = spec(serde_json::json!({"name": "m", "window": {"rows": 100}, "alerts": [{"name": "a", "condition": "drift.shares > 0.5"}]}));
        let err = check(&bad, "d", &columns).unwrap_err().to_string();
        assert!(err.contains("alerts[0].condition"), "{err}");
        let good = spec(serde_json::json!({"name": "m", "window": {"rows": 100}, "alerts": [{"name": "a", "condition": "drift.share >= 0.5 || performance['accuracy'] < 0.8"}]}));
        let compiled = check(&good, "d", &columns).unwrap();
        let context = serde_json::json!({
            "rows": 100, "version": 1, "labeled_rows": 0,
            "drift": {"computed": true, "share": 0.5, "dataset_drift": true, "drifted_columns": 1, "columns": 2, "scores": {"income": 0.3}, "detected": {"income": true}},
            "performance": {}, "estimated": {}, "fairness": {}
        });
        assert_eq!(evaluate(&compiled[0], &context), Ok(true));
    }
}
