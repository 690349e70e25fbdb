//! The rule-set artifact as written ([`RawRuleSet`]) and its compilation
//! into [`RulesModel`]: every condition and output expression compiled
//! against the declared inputs, every reference to an output checked, a
//! decision table turned into the same rules.

use super::{
    Aggregate, Condition, Given, Input, Mode, Output, Rule, RulesModel, Scalar, ValueType, DEFAULT_NAME, MISSING_VAR, RULE_OUTPUT,
};
use crate::spec::{self, quote, OrderedMap};
use crate::RuntimeError;
use modelops_core::version::{Signature, SignatureField};
use modelops_expr::{Bindings, ExprError, Expression, Schema, Type, Value};
use serde::Deserialize;
use serde_json::Value as J;
use std::collections::HashMap;

/// The most rules (or table rows) a rule set may have.
pub const MAX_RULES: usize = 10_000;
/// The longest rule or output name.
const MAX_NAME: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleSet {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    inputs: Vec<RawInput>,
    outputs: Vec<RawOutput>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    rules: Option<Vec<RawRule>>,
    #[serde(default)]
    table: Option<RawTable>,
    #[serde(default)]
    default: Option<OrderedMap<J>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    name: String,
    #[serde(rename = "type")]
    ty: ValueType,
    #[serde(default)]
    allow_missing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    name: String,
    #[serde(rename = "type")]
    ty: ValueType,
    #[serde(default)]
    aggregate: Option<Aggregate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(deserialize_with = "condition_text")]
    when: String,
    #[serde(default)]
    then: Option<OrderedMap<J>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    conditions: Vec<String>,
    results: Vec<String>,
    rows: Vec<J>,
}

/// A condition as text; a bare bool (YAML's `when: true`) is its CEL text.
fn condition_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Bool(bool),
        Text(String),
    }
    match Text::deserialize(deserializer) {
        Ok(Text::Bool(b)) => Ok(b.to_string()),
        Ok(Text::Text(t)) => Ok(t),
        Err(_) => Err(serde::de::Error::custom("expected a CEL condition as text")),
    }
}

/// What compilation carries along: the schema, its prototype bindings (for
/// the type check of output expressions) and a cache of compiled sources
/// (a table repeats its cells).
struct Compiler<'a> {
    schema: Schema,
    prototype: Bindings,
    inputs: &'a [Input],
    outputs: &'a [Output],
    cache: HashMap<(String, bool), Expression>,
}

fn load_error(path: &str, problem: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Load(format!("{path}: {problem}"))
}

impl RulesModel {
    /// Parses and compiles a rule set (JSON or YAML). Every error names the
    /// member at fault (`rules[2].when: 1:5: …`).
    pub fn load(artifact: &[u8]) -> Result<Self, RuntimeError> {
        let raw: RawRuleSet = spec::parse(artifact, "rule set")?;
        if let Some(kind) = &raw.kind {
            if kind != "rules" {
                return Err(load_error("kind", format!("{} is not `rules`", quote(kind))));
            }
        }
        let inputs = check_inputs(&raw.inputs)?;
        let outputs = check_outputs(&raw.outputs, raw.mode)?;
        let mut schema = Schema::new();
        for input in &inputs {
            schema = schema.var(input.name.clone(), input.ty.cel_type());
        }
        let has_missing = inputs.iter().any(|i| i.allow_missing);
        if has_missing {
            schema = schema.var(MISSING_VAR, Type::list(Type::String));
        }
        let prototype = Bindings::from_object(&schema, &schema.prototype())
            .map_err(|e| RuntimeError::Internal(format!("the prototype of the rule set's inputs does not bind: {e}")))?;
        let mut compiler = Compiler { schema, prototype, inputs: &inputs, outputs: &outputs, cache: HashMap::new() };

        let default = match &raw.default {
            Some(map) => Some(compiler.givens("default", map)?),
            None => None,
        };
        let rules = match (&raw.rules, &raw.table) {
            (Some(_), Some(_)) => return Err(RuntimeError::Load("give `rules` or `table`, not both".into())),
            (None, None) => return Err(RuntimeError::Load("the rule set has no rules: give `rules` or `table`".into())),
            (Some(rules), None) => compiler.rules(rules)?,
            (None, Some(table)) => compiler.table(table)?,
        };
        if rules.is_empty() {
            let at = if raw.rules.is_some() { "rules" } else { "table.rows" };
            return Err(load_error(at, "the rule set needs at least one rule"));
        }
        if rules.len() > MAX_RULES {
            return Err(load_error(
                if raw.rules.is_some() { "rules" } else { "table.rows" },
                format!("{} rules; at most {MAX_RULES} are allowed", rules.len()),
            ));
        }
        check_names(&rules)?;
        if raw.mode == Mode::FirstMatch {
            // The fired rule's value, else the default's: one of them must give each output.
            for rule in &rules {
                for (j, output) in outputs.iter().enumerate() {
                    let by_default = default.as_ref().is_some_and(|d: &Vec<Option<Given>>| d[j].is_some());
                    if rule.then[j].is_none() && !by_default {
                        return Err(load_error(
                            &rule.path,
                            format!("rule `{}` gives no `{}` and there is no `default` for it", rule.name, output.name),
                        ));
                    }
                }
            }
        }

        let signature = Signature {
            inputs: inputs
                .iter()
                .map(|i| SignatureField { name: i.name.clone(), dtype: i.ty.data_type(), shape: vec![], allow_nan: i.allow_missing })
                .collect(),
            outputs: outputs
                .iter()
                .map(|o| SignatureField { name: o.name.clone(), dtype: o.ty.data_type(), shape: vec![], allow_nan: false })
                .chain(std::iter::once(SignatureField {
                    name: RULE_OUTPUT.into(),
                    dtype: modelops_core::version::DataType::String,
                    shape: vec![],
                    allow_nan: false,
                }))
                .collect(),
        };
        let memory = artifact.len() * 8 + rules.len() * 512 + 4096;
        Ok(RulesModel { signature, schema: compiler.schema, has_missing, inputs, outputs, mode: raw.mode, rules, default, memory })
    }
}

/// CEL's reserved words, which cannot name a variable.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name)
}

fn check_inputs(raw: &[RawInput]) -> Result<Vec<Input>, RuntimeError> {
    if raw.is_empty() {
        return Err(load_error("inputs", "the rule set declares no inputs"));
    }
    let mut inputs: Vec<Input> = Vec::with_capacity(raw.len());
    let missing_used = raw.iter().any(|i| i.allow_missing);
    for (i, input) in raw.iter().enumerate() {
        let path = format!("inputs[{i}]");
        if !is_identifier(&input.name) {
            return Err(load_error(
                &format!("{path}.name"),
                format!(
                    "{} is not a name expressions can use: letters, digits and `_`, not starting with a digit, not a CEL keyword",
                    quote(&input.name)
                ),
            ));
        }
        if let Some(first) = inputs.iter().position(|x| x.name == input.name) {
            return Err(load_error(&format!("{path}.name"), format!("`{}` is declared by inputs[{first}] too", input.name)));
        }
        if missing_used && input.name == MISSING_VAR {
            return Err(load_error(
                &format!("{path}.name"),
                "`missing` names the list of missing inputs when an input allows missing values; rename this input",
            ));
        }
        if input.allow_missing && input.ty != ValueType::Double {
            return Err(load_error(
                &format!("{path}.allow_missing"),
                format!("only a double input can be missing (NaN marks a missing value); `{}` is {}", input.name, input.ty.with_article()),
            ));
        }
        inputs.push(Input { name: input.name.clone(), ty: input.ty, allow_missing: input.allow_missing });
    }
    Ok(inputs)
}

fn check_outputs(raw: &[RawOutput], mode: Mode) -> Result<Vec<Output>, RuntimeError> {
    let mut outputs: Vec<Output> = Vec::with_capacity(raw.len());
    for (i, output) in raw.iter().enumerate() {
        let path = format!("outputs[{i}]");
        if output.name.is_empty() || output.name.chars().any(char::is_control) || output.name.chars().count() > MAX_NAME {
            return Err(load_error(&format!("{path}.name"), format!("{} is not a valid output name", quote(&output.name))));
        }
        if output.name == RULE_OUTPUT {
            return Err(load_error(&format!("{path}.name"), "`rule` is the output naming the rule that fired; choose another name"));
        }
        if let Some(first) = outputs.iter().position(|x| x.name == output.name) {
            return Err(load_error(&format!("{path}.name"), format!("`{}` is declared by outputs[{first}] too", output.name)));
        }
        let aggregate = output.aggregate.unwrap_or(Aggregate::First);
        if mode == Mode::FirstMatch && aggregate != Aggregate::First {
            return Err(load_error(
                &format!("{path}.aggregate"),
                "aggregates apply in `collect` mode; in `first_match` the fired rule gives the value",
            ));
        }
        let fits = match aggregate {
            Aggregate::First => true,
            Aggregate::Sum | Aggregate::Min | Aggregate::Max => matches!(output.ty, ValueType::Int | ValueType::Double),
            Aggregate::Join => output.ty == ValueType::String,
            Aggregate::Any | Aggregate::All => output.ty == ValueType::Bool,
        };
        if !fits {
            return Err(load_error(
                &format!("{path}.aggregate"),
                format!("`{}` cannot aggregate `{}`, which is {}", aggregate.name(), output.name, output.ty.with_article()),
            ));
        }
        outputs.push(Output { name: output.name.clone(), ty: output.ty, aggregate });
    }
    if outputs.is_empty() {
        return Err(load_error("outputs", "the rule set declares no outputs"));
    }
    Ok(outputs)
}

fn check_names(rules: &[Rule]) -> Result<(), RuntimeError> {
    let mut seen: HashMap<&str, &str> = HashMap::with_capacity(rules.len());
    for rule in rules {
        let name = &rule.name;
        let at = format!("{}.name", rule.path);
        if name.is_empty() || name.chars().any(|c| c.is_control() || c == ',') || name.chars().count() > MAX_NAME {
            return Err(load_error(&at, format!("{} is not a valid rule name: 1 to {MAX_NAME} characters, no commas", quote(name))));
        }
        if name == DEFAULT_NAME {
            return Err(load_error(&at, "`default` names the rule set's default; choose another name"));
        }
        if let Some(first) = seen.insert(name, &rule.path) {
            return Err(load_error(&at, format!("`{name}` is the name of {first} too")));
        }
    }
    Ok(())
}

impl Compiler<'_> {
    fn compile(&mut self, source: &str, condition: bool) -> Result<Expression, ExprError> {
        let key = (source.to_string(), condition);
        if let Some(e) = self.cache.get(&key) {
            return Ok(e.clone());
        }
        let e =
            if condition { modelops_expr::compile_condition(source, &self.schema) } else { modelops_expr::compile(source, &self.schema) }?;
        self.cache.insert(key, e.clone());
        Ok(e)
    }

    /// The declared inputs an expression reads, by index.
    fn reads(&self, e: &Expression) -> Vec<usize> {
        e.variables().filter_map(|v| self.inputs.iter().position(|i| i.name == v)).collect()
    }

    fn condition(&mut self, source: &str) -> Result<Condition, ExprError> {
        let expr = self.compile(source, true)?;
        let reads = self.reads(&expr);
        Ok(Condition { expr, reads })
    }

    fn rules(&mut self, raw: &[RawRule]) -> Result<Vec<Rule>, RuntimeError> {
        let mut rules = Vec::with_capacity(raw.len());
        for (i, rule) in raw.iter().enumerate() {
            let path = format!("rules[{i}]");
            let when = self.condition(&rule.when).map_err(|e| load_error(&format!("{path}.when"), e))?;
            let then = match &rule.then {
                Some(map) => self.givens(&format!("{path}.then"), map)?,
                None => vec![None; self.outputs.len()],
            };
            rules.push(Rule { name: rule.name.clone(), path, when: vec![when], then });
        }
        Ok(rules)
    }

    /// The outputs a `then` (or the `default`) gives, by output index.
    fn givens(&mut self, path: &str, map: &OrderedMap<J>) -> Result<Vec<Option<Given>>, RuntimeError> {
        let mut givens = vec![None; self.outputs.len()];
        for (name, value) in &map.0 {
            let at = format!("{path}.{name}");
            let Some(j) = self.outputs.iter().position(|o| o.name == *name) else {
                let declared: Vec<String> = self.outputs.iter().map(|o| format!("`{}`", o.name)).collect();
                return Err(load_error(&at, format!("not a declared output (outputs: {})", declared.join(", "))));
            };
            if value.is_null() {
                return Err(load_error(&at, "null is not a value: leave the output out instead"));
            }
            givens[j] = Some(self.given(&at, j, value)?);
        }
        Ok(givens)
    }

    /// One output's value: a number or bool is a literal, a string a CEL
    /// expression, type-checked on the prototype where it evaluates there.
    fn given(&mut self, at: &str, j: usize, value: &J) -> Result<Given, RuntimeError> {
        let output = &self.outputs[j];
        let ty = output.ty;
        match value {
            J::String(source) => {
                let expr = self.compile(source, false).map_err(|e| {
                    let hint = match &e {
                        ExprError::UndeclaredVariable { name, .. } if ty == ValueType::String => {
                            format!(" (text is quoted inside the expression: `'{name}'`; in YAML, `\"'{name}'\"`)")
                        }
                        _ => String::new(),
                    };
                    load_error(at, format!("{e}{hint}"))
                })?;
                // A non-finite double on the prototype's zeros (`1.0 / x`) says nothing about real rows.
                let value = expr.evaluate(&self.prototype).ok().filter(|v| !matches!(v, Value::Double(d) if !d.is_finite()));
                if let Some(v) = value {
                    if let Err(problem) = Scalar::from_value(v, ty) {
                        return Err(load_error(
                            at,
                            format!("{} gives {problem}, and `{}` is {}", quote(source), output.name, ty.with_article()),
                        ));
                    }
                }
                let reads = self.reads(&expr);
                Ok(Given::Expr(Condition { expr, reads }))
            }
            J::Number(n) => {
                let scalar = match ty {
                    ValueType::Int => n.as_i64().map(Scalar::Int),
                    ValueType::Double => n.as_f64().filter(|x| x.is_finite()).map(Scalar::Double),
                    ValueType::String | ValueType::Bool => None,
                };
                scalar.map(Given::Literal).ok_or_else(|| {
                    let hint = if ty == ValueType::String { format!(" (text is a quoted expression: \"'{n}'\")") } else { String::new() };
                    load_error(at, format!("`{n}` is not {}, the type of `{}`{hint}", ty.with_article(), output.name))
                })
            }
            J::Bool(b) if ty == ValueType::Bool => Ok(Given::Literal(Scalar::Bool(*b))),
            other => Err(load_error(
                at,
                format!(
                    "{} is not a value of `{}` ({}): give a CEL expression as text, or a number or bool",
                    kind(other),
                    output.name,
                    ty.name()
                ),
            )),
        }
    }

    fn table(&mut self, raw: &RawTable) -> Result<Vec<Rule>, RuntimeError> {
        for (c, column) in raw.conditions.iter().enumerate() {
            self.compile(column, false).map_err(|e| load_error(&format!("table.conditions[{c}]"), e))?;
        }
        let mut results = Vec::with_capacity(raw.results.len());
        for (r, name) in raw.results.iter().enumerate() {
            let at = format!("table.results[{r}]");
            let Some(j) = self.outputs.iter().position(|o| o.name == *name) else {
                return Err(load_error(&at, format!("{} is not a declared output", quote(name))));
            };
            if results.contains(&j) {
                return Err(load_error(&at, format!("`{name}` is listed twice")));
            }
            results.push(j);
        }
        if raw.conditions.is_empty() {
            return Err(load_error("table.conditions", "a decision table needs at least one condition column"));
        }
        let width = raw.conditions.len() + results.len();
        let mut rules = Vec::with_capacity(raw.rows.len());
        for (r, row) in raw.rows.iter().enumerate() {
            let path = format!("table.rows[{r}]");
            let (name, cells, cells_at) = match row {
                J::Array(cells) => (format!("row_{}", r + 1), cells, path.clone()),
                J::Object(members) => {
                    if let Some(key) = members.keys().find(|k| !matches!(k.as_str(), "name" | "cells")) {
                        return Err(load_error(&path, format!("unknown field `{key}`, expected `name` or `cells`")));
                    }
                    let name = match members.get("name") {
                        Some(J::String(name)) => name.clone(),
                        Some(other) => return Err(load_error(&format!("{path}.name"), format!("expected text, found {}", kind(other)))),
                        None => format!("row_{}", r + 1),
                    };
                    match members.get("cells") {
                        Some(J::Array(cells)) => (name, cells, format!("{path}.cells")),
                        _ => return Err(load_error(&format!("{path}.cells"), "expected the row's cells as a list")),
                    }
                }
                other => return Err(load_error(&path, format!("expected a list of cells or {{name, cells}}, found {}", kind(other)))),
            };
            if cells.len() != width {
                return Err(load_error(
                    &cells_at,
                    format!(
                        "{} cells where the table has {width} columns ({} conditions, {} results)",
                        cells.len(),
                        raw.conditions.len(),
                        results.len()
                    ),
                ));
            }
            let mut when = Vec::new();
            for (c, column) in raw.conditions.iter().enumerate() {
                let at = format!("{cells_at}[{c}]");
                if let Some(source) = cell_condition(column, &cells[c]).map_err(|p| load_error(&at, p))? {
                    let condition = self.condition(&source).map_err(|e| load_error(&at, format!("reads as `{source}`: {e}")))?;
                    when.push(condition);
                }
            }
            let mut then = vec![None; self.outputs.len()];
            for (k, &j) in results.iter().enumerate() {
                let cell = &cells[raw.conditions.len() + k];
                let at = format!("{cells_at}[{}]", raw.conditions.len() + k);
                let blank = cell.is_null() || cell.as_str().is_some_and(|s| matches!(s.trim(), "" | "-"));
                if !blank {
                    then[j] = Some(self.given(&at, j, cell)?);
                }
            }
            rules.push(Rule { name, path, when, then });
        }
        Ok(rules)
    }
}

/// A table cell as a condition on its column, or `None` for "any value".
/// The grammar (after trimming): `-` or nothing: any; `< x`, `<= x`,
/// `> x`, `>= x`, `== x`, `!= x`: a comparison; `[a..b]`, `[a..b)`,
/// `(a..b]`, `(a..b)`: a range, brackets inclusive, parentheses exclusive;
/// `in [..]`, `not in [..]`: membership; anything else a value the column
/// must equal (`'rent'`, `42`, `true`). A number or bool cell is a value.
pub(super) fn cell_condition(column: &str, cell: &J) -> Result<Option<String>, String> {
    let text = match cell {
        J::Null => return Ok(None),
        J::Bool(b) => return Ok(Some(format!("({column}) == {b}"))),
        J::Number(n) => return Ok(Some(format!("({column}) == {n}"))),
        J::String(s) => s.trim(),
        other => {
            return Err(format!(
                "{} is not a cell: write a test as text (`< 21`, `[21..65)`, `in ['a', 'b']`, `'rent'`), a number, a bool or `-`",
                kind(other)
            ))
        }
    };
    if text.is_empty() || text == "-" {
        return Ok(None);
    }
    for op in ["<=", ">=", "==", "!=", "<", ">"] {
        if let Some(rest) = text.strip_prefix(op) {
            return Ok(Some(format!("({column}) {op} ({})", rest.trim())));
        }
    }
    if let Some(rest) = text.strip_prefix("not in ") {
        return Ok(Some(format!("!(({column}) in ({}))", rest.trim())));
    }
    if let Some(rest) = text.strip_prefix("in ") {
        return Ok(Some(format!("({column}) in ({})", rest.trim())));
    }
    let open = text.chars().next();
    let close = text.chars().next_back();
    if let (Some(open @ ('[' | '(')), Some(close @ (']' | ')'))) = (open, close) {
        let inner = &text[1..text.len() - 1];
        if let Some((low, high)) = inner.split_once("..") {
            let (low, high) = (low.trim(), high.trim());
            if low.is_empty() || high.is_empty() {
                return Err(format!("{} has an open end: write `>= {low}{high}` or `< {low}{high}` instead", quote(text)));
            }
            let low_op = if open == '[' { ">=" } else { ">" };
            let high_op = if close == ']' { "<=" } else { "<" };
            return Ok(Some(format!("({column}) {low_op} ({low}) && ({column}) {high_op} ({high})")));
        }
    }
    Ok(Some(format!("({column}) == ({text})")))
}

fn kind(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "a bool",
        J::Number(_) => "a number",
        J::String(_) => "text",
        J::Array(_) => "a list",
        J::Object(_) => "an object",
    }
}
