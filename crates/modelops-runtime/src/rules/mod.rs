//! Rule-based models: an ordered rule set or a decision table of CEL
//! expressions (through modelops-expr, the governance policies' language),
//! from a JSON or YAML artifact (told apart by content).
//!
//! ```yaml
//! kind: rules                      # optional
//! inputs:                          # the features, in signature order
//!   - {name: age, type: int}       # int | double | string | bool
//!   - {name: income, type: double, allow_missing: true}
//! outputs:
//!   - {name: decision, type: string}
//!   - {name: limit, type: double}
//! mode: first_match                # or collect
//! rules:
//!   - name: minor
//!     when: age < 18
//!     then: {decision: "'decline'", limit: 0}
//!   - name: low_income
//!     when: income < 20000.0
//!     then: {decision: "'refer'", limit: income * 0.1}
//! default: {decision: "'approve'", limit: income * 0.3}
//! ```
//!
//! Compiled at load: inputs become the CEL variables (names must be
//! identifiers); `when` must compile as a condition; an output value is a
//! CEL expression written as text (so text is quoted inside it: `'refer'`)
//! or a JSON number or bool literal, checked against the output's type (on
//! the prototype inputs where the expression evaluates there). An error
//! names the member: `rules[2].when: 1:5: …`.
//!
//! The signature: the declared inputs (shape `[]`; `allow_missing` double
//! inputs allow NaN), the declared outputs, then `rule` (string): the rule
//! that fired, `default` when none did and the default answered; in collect
//! mode every fired rule, comma-separated (names cannot hold commas).
//!
//! Modes:
//! - `first_match`: the first rule (in order) whose condition holds gives
//!   the outputs; an output it does not give comes from `default`. Load
//!   refuses a rule that leaves an output to a default that does not give
//!   it. A row where no rule fires and there is no `default` is an input
//!   error naming the row.
//! - `collect`: every rule whose condition holds fires; each output
//!   combines the values of the fired rules that give it by its
//!   `aggregate`: `first` (the default), `sum`, `min`, `max` (numbers),
//!   `join` (text, `; `-separated, in rule order), `any`, `all` (bools).
//!   An output no fired rule gives takes the default's value, else 0 for a
//!   `sum`, false for an `any`, true for an `all`, and otherwise the row is
//!   an input error.
//!
//! Missing values: a double input with `allow_missing: true` may be NaN. The
//! variable `missing` (a list of strings) then names the row's missing
//! inputs, and a condition that reads a missing input does not hold — test
//! for it with `'income' in missing`. An output expression that reads a
//! missing input is an input error naming the row.
//!
//! A decision table (`table:` instead of `rules:`) compiles into the same
//! rules, one per row: `conditions` are CEL expressions (usually an input's
//! name), `results` output names; a row is a list of cells (named `row_1`,
//! `row_2`, …) or `{name, cells}`. A condition cell is a test on its
//! column: `-` (any), `< 21` (any comparison operator first), `[21..65)`
//! (brackets include the end, parentheses exclude it), `in ['a', 'b']`,
//! `not in [...]`, or a value the column equals (`'rent'`, `42`, `true`);
//! result cells are values as above, `-` leaving the output to the default.
//!
//! Evaluation: per row, the inputs are bound once and the compiled
//! expressions evaluated in order (no re-parsing). An evaluation error (a
//! division by zero, an output of the wrong type) is an input error naming
//! the row and the rule, attributed to the input when the expression reads
//! exactly one. The explanation lists the fired rules and the values of the
//! inputs their conditions and the used outputs read.

mod load;
#[cfg(test)]
mod tests;

pub use load::MAX_RULES;

use crate::explain::Explanation;
use crate::tensor::{oip_datatype, Tensor, TensorData};
use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError};
use async_trait::async_trait;
use modelops_core::version::{DataType, Signature};
use modelops_expr::{Bindings, Expression, Schema, Type, Value};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The output naming the rule(s) that fired.
pub const RULE_OUTPUT: &str = "rule";
/// The variable listing a row's missing inputs.
const MISSING_VAR: &str = "missing";
const DEFAULT_NAME: &str = "default";
/// The separator of `join` aggregates.
const JOIN_SEPARATOR: &str = "; ";

/// The type of an input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ValueType {
    Int,
    Double,
    String,
    Bool,
}

impl ValueType {
    fn cel_type(self) -> Type {
        match self {
            ValueType::Int => Type::Int,
            ValueType::Double => Type::Double,
            ValueType::String => Type::String,
            ValueType::Bool => Type::Bool,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            ValueType::Int => DataType::Int64,
            ValueType::Double => DataType::Float64,
            ValueType::String => DataType::String,
            ValueType::Bool => DataType::Bool,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ValueType::Int => "int",
            ValueType::Double => "double",
            ValueType::String => "string",
            ValueType::Bool => "bool",
        }
    }

    fn with_article(self) -> String {
        match self {
            ValueType::Int => "an int".into(),
            other => format!("a {}", other.name()),
        }
    }

    fn empty_column(self, rows: usize) -> TensorData {
        match self {
            ValueType::Int => TensorData::Int64(Vec::with_capacity(rows)),
            ValueType::Double => TensorData::Float64(Vec::with_capacity(rows)),
            ValueType::String => TensorData::String(Vec::with_capacity(rows)),
            ValueType::Bool => TensorData::Bool(Vec::with_capacity(rows)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    FirstMatch,
    Collect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Aggregate {
    First,
    Sum,
    Min,
    Max,
    Join,
    Any,
    All,
}

impl Aggregate {
    fn name(self) -> &'static str {
        match self {
            Aggregate::First => "first",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Join => "join",
            Aggregate::Any => "any",
            Aggregate::All => "all",
        }
    }
}

#[derive(Debug, Clone)]
struct Input {
    name: String,
    ty: ValueType,
    allow_missing: bool,
}

#[derive(Debug, Clone)]
struct Output {
    name: String,
    ty: ValueType,
    aggregate: Aggregate,
}

/// A compiled expression and the inputs (by index) it reads.
#[derive(Debug, Clone)]
struct Condition {
    expr: Expression,
    reads: Vec<usize>,
}

/// An output's value in a rule or the default.
#[derive(Debug, Clone)]
enum Given {
    Literal(Scalar),
    Expr(Condition),
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    /// Where in the artifact: `rules[2]`, `table.rows[4]`.
    path: String,
    /// All must hold (a table row has one per non-blank cell).
    when: Vec<Condition>,
    /// By output index.
    then: Vec<Option<Given>>,
}

/// One output value.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Int(i64),
    Double(f64),
    String(String),
    Bool(bool),
}

impl Scalar {
    /// An evaluation's result as a value of `ty`: ints widen to doubles;
    /// the error says what was given instead.
    fn from_value(value: Value, ty: ValueType) -> Result<Scalar, String> {
        #[allow(clippy::cast_precision_loss)]
        let scalar = match (value, ty) {
            (Value::Int(i), ValueType::Int) => Scalar::Int(i),
            (Value::Uint(u), ValueType::Int) => Scalar::Int(i64::try_from(u).map_err(|_| format!("`{u}`, beyond the range of an int"))?),
            (Value::Int(i), ValueType::Double) => Scalar::Double(i as f64),
            (Value::Uint(u), ValueType::Double) => Scalar::Double(u as f64),
            (Value::Double(d), ValueType::Double) if d.is_finite() => Scalar::Double(d),
            (Value::Double(d), ValueType::Double) => return Err(format!("`{d}`, which is not a finite number")),
            (Value::String(s), ValueType::String) => Scalar::String(s),
            (Value::Bool(b), ValueType::Bool) => Scalar::Bool(b),
            (Value::Double(_), ValueType::Int) => return Err("a double (convert with `int(…)`)".into()),
            (other, _) => {
                let name = other.type_name();
                let article = if matches!(name.chars().next(), Some('a' | 'e' | 'i' | 'o' | 'u')) { "an" } else { "a" };
                return Err(format!("{article} {name}"));
            }
        };
        Ok(scalar)
    }

    fn push(self, column: &mut TensorData) {
        match (self, column) {
            (Scalar::Int(x), TensorData::Int64(v)) => v.push(x),
            (Scalar::Double(x), TensorData::Float64(v)) => v.push(x),
            (Scalar::String(x), TensorData::String(v)) => v.push(x),
            (Scalar::Bool(x), TensorData::Bool(v)) => v.push(x),
            // Values are converted to the output's type before they get here.
            _ => {}
        }
    }
}

/// A loaded rule set.
#[derive(Debug)]
pub struct RulesModel {
    signature: Signature,
    schema: Schema,
    has_missing: bool,
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    mode: Mode,
    rules: Vec<Rule>,
    default: Option<Vec<Option<Given>>>,
    memory: usize,
}

/// One row's inputs, bound.
struct Row {
    index: usize,
    bindings: Bindings,
    missing: Vec<bool>,
}

/// What one row gave.
struct Outcome {
    values: Vec<Scalar>,
    fired: Vec<String>,
    /// Inputs read by the conditions that held and the outputs used.
    read: Vec<usize>,
}

impl RulesModel {
    fn bind_row(&self, inputs: &[Tensor], index: usize) -> Result<Row, RuntimeError> {
        let mut bindings = Bindings::new(&self.schema);
        let mut missing = vec![false; self.inputs.len()];
        let mut missing_names = Vec::new();
        for (i, (input, tensor)) in self.inputs.iter().zip(inputs).enumerate() {
            let field = || format!("inputs.{}", input.name);
            let json = match (&tensor.data, input.ty) {
                (TensorData::Int64(v), ValueType::Int) => serde_json::Value::from(v[index]),
                (TensorData::Float64(v), ValueType::Double) => {
                    let x = v[index];
                    if x.is_nan() {
                        if !input.allow_missing {
                            return Err(RuntimeError::input(
                                field(),
                                format!("row {index} is NaN (missing) and the input does not allow missing values"),
                            ));
                        }
                        missing[i] = true;
                        missing_names.push(serde_json::Value::String(input.name.clone()));
                        // Never read: conditions reading it do not hold and outputs reading it fail.
                        serde_json::Value::from(0.0)
                    } else {
                        match serde_json::Number::from_f64(x) {
                            Some(n) => serde_json::Value::Number(n),
                            None => return Err(RuntimeError::input(field(), format!("row {index} is `{x}`, not a finite number"))),
                        }
                    }
                }
                (TensorData::String(v), ValueType::String) => serde_json::Value::String(v[index].clone()),
                (TensorData::Bool(v), ValueType::Bool) => serde_json::Value::Bool(v[index]),
                (data, ty) => {
                    return Err(RuntimeError::input(
                        field(),
                        format!("datatype {} where the signature says {}", oip_datatype(data.dtype()), oip_datatype(ty.data_type())),
                    ))
                }
            };
            bindings.bind(&input.name, &json).map_err(|e| RuntimeError::input(field(), format!("row {index}: {e}")))?;
        }
        if self.has_missing {
            bindings
                .bind(MISSING_VAR, &serde_json::Value::Array(missing_names))
                .map_err(|e| RuntimeError::Internal(format!("binding `missing`: {e}")))?;
        }
        Ok(Row { index, bindings, missing })
    }

    /// An evaluation error on a row, attributed to the input when the
    /// expression reads exactly one.
    fn row_error(&self, row: &Row, reads: &[usize], reason: String) -> RuntimeError {
        let field = match reads {
            [i] => format!("inputs.{}", self.inputs[*i].name),
            _ => "inputs".to_string(),
        };
        RuntimeError::input(field, format!("row {}: {reason}", row.index))
    }

    fn holds(&self, rule: &Rule, row: &Row) -> Result<bool, RuntimeError> {
        for condition in &rule.when {
            if condition.reads.iter().any(|&i| row.missing[i]) {
                return Ok(false);
            }
            match condition.expr.evaluate_bool(&row.bindings) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    return Err(self.row_error(
                        row,
                        &condition.reads,
                        format!("the condition of rule `{}` (`{}`) failed: {e}", rule.name, condition.expr.source()),
                    ))
                }
            }
        }
        Ok(true)
    }

    /// Output `j`'s value as `given` by `who` (a rule's name or `default`).
    fn value(&self, given: &Given, who: &str, j: usize, row: &Row, read: &mut Vec<usize>) -> Result<Scalar, RuntimeError> {
        let output = &self.outputs[j];
        let condition = match given {
            Given::Literal(scalar) => return Ok(scalar.clone()),
            Given::Expr(condition) => condition,
        };
        if let Some(&i) = condition.reads.iter().find(|&&i| row.missing[i]) {
            return Err(RuntimeError::input(
                format!("inputs.{}", self.inputs[i].name),
                format!("row {}: missing, and `{}` of {} reads it", row.index, output.name, describe(who)),
            ));
        }
        read.extend_from_slice(&condition.reads);
        let value = condition.expr.evaluate(&row.bindings).map_err(|e| {
            self.row_error(
                row,
                &condition.reads,
                format!("`{}` of {} (`{}`) failed: {e}", output.name, describe(who), condition.expr.source()),
            )
        })?;
        Scalar::from_value(value, output.ty).map_err(|problem| {
            self.row_error(
                row,
                &condition.reads,
                format!("`{}` of {} gives {problem} where the output is {}", output.name, describe(who), output.ty.with_article()),
            )
        })
    }

    fn evaluate(&self, row: &Row) -> Result<Outcome, RuntimeError> {
        let mut read = Vec::new();
        match self.mode {
            Mode::FirstMatch => {
                let mut fired = None;
                for rule in &self.rules {
                    if self.holds(rule, row)? {
                        fired = Some(rule);
                        break;
                    }
                }
                let mut values = Vec::with_capacity(self.outputs.len());
                if let Some(rule) = fired {
                    read.extend(rule.when.iter().flat_map(|c| c.reads.iter().copied()));
                    for j in 0..self.outputs.len() {
                        let value = match (&rule.then[j], &self.default) {
                            (Some(given), _) => self.value(given, &rule.name, j, row, &mut read)?,
                            (None, Some(default)) => match &default[j] {
                                Some(given) => self.value(given, DEFAULT_NAME, j, row, &mut read)?,
                                None => return Err(RuntimeError::Internal(format!("rule `{}` leaves an output to no one", rule.name))),
                            },
                            (None, None) => return Err(RuntimeError::Internal(format!("rule `{}` leaves an output to no one", rule.name))),
                        };
                        values.push(value);
                    }
                    Ok(Outcome { values, fired: vec![rule.name.clone()], read })
                } else {
                    let Some(default) = &self.default else {
                        return Err(RuntimeError::input(
                            "inputs",
                            format!("row {}: no rule fired and the rule set has no default", row.index),
                        ));
                    };
                    for (j, given) in default.iter().enumerate() {
                        match given {
                            Some(given) => values.push(self.value(given, DEFAULT_NAME, j, row, &mut read)?),
                            None => {
                                return Err(RuntimeError::input(
                                    "inputs",
                                    format!("row {}: no rule fired and the default gives no `{}`", row.index, self.outputs[j].name),
                                ))
                            }
                        }
                    }
                    Ok(Outcome { values, fired: vec![DEFAULT_NAME.into()], read })
                }
            }
            Mode::Collect => {
                let mut fired: Vec<&Rule> = Vec::new();
                for rule in &self.rules {
                    if self.holds(rule, row)? {
                        read.extend(rule.when.iter().flat_map(|c| c.reads.iter().copied()));
                        fired.push(rule);
                    }
                }
                let mut values = Vec::with_capacity(self.outputs.len());
                let mut default_used = false;
                for (j, output) in self.outputs.iter().enumerate() {
                    let mut given = Vec::new();
                    for rule in &fired {
                        if let Some(g) = &rule.then[j] {
                            given.push(self.value(g, &rule.name, j, row, &mut read)?);
                            if output.aggregate == Aggregate::First {
                                break;
                            }
                        }
                    }
                    let value = if given.is_empty() {
                        match self.default.as_ref().and_then(|d| d[j].as_ref()) {
                            Some(g) => {
                                default_used = true;
                                self.value(g, DEFAULT_NAME, j, row, &mut read)?
                            }
                            None => match (output.aggregate, output.ty) {
                                (Aggregate::Sum, ValueType::Int) => Scalar::Int(0),
                                (Aggregate::Sum, _) => Scalar::Double(0.0),
                                (Aggregate::Any, _) => Scalar::Bool(false),
                                (Aggregate::All, _) => Scalar::Bool(true),
                                _ => {
                                    return Err(RuntimeError::input(
                                        "inputs",
                                        format!(
                                            "row {}: no fired rule gives `{}` and the rule set has no default for it",
                                            row.index, output.name
                                        ),
                                    ))
                                }
                            },
                        }
                    } else {
                        aggregate(output, given).map_err(|reason| RuntimeError::input("inputs", format!("row {}: {reason}", row.index)))?
                    };
                    values.push(value);
                }
                let mut fired: Vec<String> = fired.iter().map(|r| r.name.clone()).collect();
                if fired.is_empty() && default_used {
                    fired.push(DEFAULT_NAME.into());
                }
                Ok(Outcome { values, fired, read })
            }
        }
    }
}

fn describe(who: &str) -> String {
    if who == DEFAULT_NAME {
        "the default".into()
    } else {
        format!("rule `{who}`")
    }
}

/// Combines the fired rules' values (at least one) of `output`.
fn aggregate(output: &Output, values: Vec<Scalar>) -> Result<Scalar, String> {
    let mut values = values.into_iter();
    let Some(first) = values.next() else {
        return Err(format!("no value for `{}`", output.name));
    };
    values.try_fold(first, |acc, x| {
        Ok(match (output.aggregate, acc, x) {
            (Aggregate::First, acc, _) => acc,
            (Aggregate::Sum, Scalar::Int(a), Scalar::Int(b)) => {
                Scalar::Int(a.checked_add(b).ok_or_else(|| format!("the sum of `{}` overflows an int", output.name))?)
            }
            (Aggregate::Sum, Scalar::Double(a), Scalar::Double(b)) => Scalar::Double(a + b),
            (Aggregate::Min, Scalar::Int(a), Scalar::Int(b)) => Scalar::Int(a.min(b)),
            (Aggregate::Min, Scalar::Double(a), Scalar::Double(b)) => Scalar::Double(a.min(b)),
            (Aggregate::Max, Scalar::Int(a), Scalar::Int(b)) => Scalar::Int(a.max(b)),
            (Aggregate::Max, Scalar::Double(a), Scalar::Double(b)) => Scalar::Double(a.max(b)),
            (Aggregate::Join, Scalar::String(a), Scalar::String(b)) => Scalar::String(a + JOIN_SEPARATOR + &b),
            (Aggregate::Any, Scalar::Bool(a), Scalar::Bool(b)) => Scalar::Bool(a || b),
            (Aggregate::All, Scalar::Bool(a), Scalar::Bool(b)) => Scalar::Bool(a && b),
            (aggregate, _, _) => return Err(format!("`{}` cannot aggregate the values of `{}`", aggregate.name(), output.name)),
        })
    })
}

#[async_trait]
impl LoadedModel for RulesModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn platform(&self) -> &'static str {
        "modelops_rules"
    }

    fn memory_bytes(&self) -> usize {
        self.memory
    }

    async fn predict(&self, request: PredictRequest) -> Result<Prediction, RuntimeError> {
        let inputs = &request.inputs;
        if inputs.len() != self.inputs.len() {
            return Err(RuntimeError::Internal(format!(
                "{} input tensors for {} inputs: the batch was not checked",
                inputs.len(),
                self.inputs.len()
            )));
        }
        for (input, tensor) in self.inputs.iter().zip(inputs) {
            if tensor.data.len() != request.rows {
                return Err(RuntimeError::input(
                    format!("inputs.{}", input.name),
                    format!("{} values for {} rows: each row takes one value", tensor.data.len(), request.rows),
                ));
            }
        }
        let rows = request.rows;
        let mut columns: Vec<TensorData> = self.outputs.iter().map(|o| o.ty.empty_column(rows)).collect();
        let mut rule_column = Vec::with_capacity(rows);
        let mut explanations = request.explain.then(|| Vec::with_capacity(rows));
        for index in 0..rows {
            let row = self.bind_row(inputs, index)?;
            let outcome = self.evaluate(&row)?;
            for (value, column) in outcome.values.into_iter().zip(&mut columns) {
                value.push(column);
            }
            if let Some(explanations) = &mut explanations {
                let mut read = outcome.read;
                read.sort_unstable();
                read.dedup();
                let inputs: BTreeMap<String, serde_json::Value> =
                    read.into_iter().map(|i| (self.inputs[i].name.clone(), inputs[i].data.json_at(index))).collect();
                explanations.push(Explanation::Rules { fired: outcome.fired.clone(), inputs });
            }
            rule_column.push(outcome.fired.join(","));
        }
        let mut outputs: Vec<Tensor> =
            self.outputs.iter().zip(columns).map(|(output, data)| Tensor::new(output.name.clone(), vec![rows], data)).collect();
        outputs.push(Tensor::new(RULE_OUTPUT, vec![rows], TensorData::String(rule_column)));
        Ok(Prediction { outputs, explanations, usage: None })
    }
}
