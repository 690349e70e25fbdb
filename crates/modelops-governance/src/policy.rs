//! Policies as code: per risk tier, the conditions of each gate and the
//! review cadence, in TOML or YAML, every condition compiled against the
//! [`GateContext`] schema when the file loads. [`Policy::evaluate`] runs a
//! gate's conditions over a context and answers a [`GateDecision`] that
//! records each condition's outcome and the policy's sha256.
//!
//! A condition that fails, or that cannot be evaluated (a missing metric, a
//! context that does not bind), denies: a gate never allows on an error.

mod schema;
mod yaml_lines;

pub use schema::context_schema;

use crate::context::GateContext;
use modelops_core::error::{Denial, DenialReason};
use modelops_core::governance::{policy_hash, GateTarget};
use modelops_core::model::RiskTier;
use modelops_core::version::Sha256Hex;
use modelops_expr::{Bindings, ExprError, Expression, Schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;
use yaml_lines::Seg;

/// The longest review cadence accepted: a hundred years.
const MAX_CADENCE_DAYS: i64 = 36_500;

/// The context schema, built once.
static SCHEMA: LazyLock<Schema> = LazyLock::new(context_schema);

/// How a policy file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyFormat {
    Toml,
    Yaml,
}

impl PolicyFormat {
    pub const ALL: &'static [PolicyFormat] = &[PolicyFormat::Toml, PolicyFormat::Yaml];

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyFormat::Toml => "toml",
            PolicyFormat::Yaml => "yaml",
        }
    }

    /// Parses `toml` or `yaml`, naming `field` and the accepted values on error.
    pub fn parse_field(field: &str, value: &str) -> modelops_core::Result<Self> {
        match value {
            "toml" => Ok(PolicyFormat::Toml),
            "yaml" => Ok(PolicyFormat::Yaml),
            other => {
                Err(modelops_core::Error::invalid(field, format!("{} is not one of `toml`, `yaml`", modelops_core::name::quote(other))))
            }
        }
    }

    /// The format a file name's extension says: `.toml`, `.yaml` or `.yml`
    /// (any case).
    pub fn from_extension(file_name: &str) -> Option<Self> {
        let (_, extension) = file_name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "toml" => Some(PolicyFormat::Toml),
            "yaml" | "yml" => Some(PolicyFormat::Yaml),
            _ => None,
        }
    }
}

impl fmt::Display for PolicyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a policy file was refused: `origin:line: problem`, `origin` being the
/// name the caller gave the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub origin: String,
    /// 1-based, where known.
    pub line: Option<usize>,
    pub problem: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.origin, self.problem),
            None => write!(f, "{}: {}", self.origin, self.problem),
        }
    }
}

impl std::error::Error for PolicyError {}

impl From<PolicyError> for modelops_core::Error {
    fn from(e: PolicyError) -> Self {
        modelops_core::Error::invalid("policy", e.to_string())
    }
}

/// A loaded policy: its text, and every gate's conditions compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    source: String,
    format: PolicyFormat,
    sha256: Sha256Hex,
    cadence_days: BTreeMap<RiskTier, i64>,
    gates: BTreeMap<(RiskTier, GateTarget), Vec<Condition>>,
}

#[derive(Debug, Clone)]
struct Condition {
    name: String,
    when: String,
    message: String,
    check: Check,
}

#[derive(Debug, Clone)]
enum Check {
    Compiled(Expression),
    /// A condition that always fails with this reason: what the defaults
    /// fall back to if they ever failed to load.
    Unavailable(String),
}

/// The outcome of a gate: allowed when every condition passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDecision {
    pub allowed: bool,
    pub policy_sha256: Sha256Hex,
    pub tier: RiskTier,
    pub target: GateTarget,
    /// Every condition of the gate, in the policy's order.
    pub conditions: Vec<ConditionOutcome>,
}

/// One condition's outcome. `message` is the policy's message, or, when
/// the condition could not be evaluated, `could not be evaluated: <error>`
/// (and `passed` is false).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionOutcome {
    pub name: String,
    pub passed: bool,
    pub message: String,
}

impl GateDecision {
    pub fn failures(&self) -> impl Iterator<Item = &ConditionOutcome> {
        self.conditions.iter().filter(|c| !c.passed)
    }

    /// The refusal to answer when the gate is closed: one reason per failed
    /// condition, named by the condition. `None` when allowed.
    pub fn denial(&self) -> Option<Denial> {
        if self.allowed {
            return None;
        }
        Some(Denial::new(self.failures().map(|c| DenialReason { condition: c.name.clone(), message: c.message.clone() }).collect()))
    }
}

/// What `policy show` prints: every tier's cadence and gates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySummary {
    pub sha256: Sha256Hex,
    pub format: PolicyFormat,
    pub review_cadence_days: BTreeMap<RiskTier, i64>,
    /// Every tier and every gate, an empty list where a gate has no
    /// conditions.
    pub tiers: BTreeMap<RiskTier, BTreeMap<GateTarget, Vec<ConditionSummary>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionSummary {
    pub name: String,
    pub when: String,
    pub message: String,
}

fn default_cadence(tier: RiskTier) -> i64 {
    match tier {
        RiskTier::Low => 730,
        RiskTier::Medium | RiskTier::High => 365,
        RiskTier::Critical => 180,
    }
}

impl Policy {
    /// The shipped policy, a commented file to copy.
    pub const DEFAULT_SOURCE: &'static str = include_str!("default-policy.toml");

    /// Parses and checks a policy file; `origin` names it in errors.
    pub fn parse(source: &str, format: PolicyFormat, origin: &str) -> Result<Policy, PolicyError> {
        let fail = |line: Option<usize>, problem: String| PolicyError { origin: origin.to_string(), line, problem };
        let drafts = match format {
            PolicyFormat::Toml => {
                let raw: RawPolicy<TomlSpans> = toml::from_str(source)
                    .map_err(|e| fail(e.span().map(|s| line_at(source, s.start)), e.message().trim_end().to_string()))?;
                Drafts::from_raw(raw, &Lines { source, format })
            }
            PolicyFormat::Yaml => {
                let raw: RawPolicy<NoSpans> = serde_norway::from_str(source).map_err(|e| {
                    let text = e.to_string();
                    let problem = text.rfind(" at line ").map_or(text.as_str(), |i| &text[..i]).to_string();
                    fail(e.location().map(|l| l.line()), problem)
                })?;
                Drafts::from_raw(raw, &Lines { source, format })
            }
        }
        .map_err(|(line, problem)| fail(line, problem))?;

        let mut compiled: HashMap<String, Expression> = HashMap::new();
        let mut gates = BTreeMap::new();
        for draft in drafts.conditions {
            let expression = match compiled.get(&draft.when) {
                Some(e) => e.clone(),
                None => {
                    let e = modelops_expr::compile_condition(&draft.when, &SCHEMA).map_err(|e| {
                        fail(
                            draft.line,
                            format!(
                                "condition `{}` (tier `{}`, gate `{}`): `when`{}",
                                draft.name,
                                draft.tier,
                                draft.target,
                                expression_problem(&e)
                            ),
                        )
                    })?;
                    compiled.insert(draft.when.clone(), e.clone());
                    e
                }
            };
            gates.entry((draft.tier, draft.target)).or_insert_with(Vec::new).push(Condition {
                name: draft.name,
                when: draft.when,
                message: draft.message,
                check: Check::Compiled(expression),
            });
        }
        Ok(Policy { source: source.to_string(), format, sha256: policy_hash(source), cadence_days: drafts.cadence_days, gates })
    }

    /// The shipped policy ([`Policy::DEFAULT_SOURCE`]). A test proves it
    /// parses; were it ever not to, every gate of this fallback denies,
    /// saying so, rather than letting versions through unchecked.
    pub fn defaults() -> Policy {
        match Policy::parse(Self::DEFAULT_SOURCE, PolicyFormat::Toml, "default-policy.toml") {
            Ok(policy) => policy,
            Err(e) => {
                let reason = format!("the built-in policy could not be loaded: {e}");
                let mut gates = BTreeMap::new();
                for &tier in RiskTier::ALL {
                    for &target in GateTarget::ALL {
                        gates.insert(
                            (tier, target),
                            vec![Condition {
                                name: "policy_unavailable".into(),
                                when: String::new(),
                                message: reason.clone(),
                                check: Check::Unavailable(reason.clone()),
                            }],
                        );
                    }
                }
                Policy {
                    source: Self::DEFAULT_SOURCE.to_string(),
                    format: PolicyFormat::Toml,
                    sha256: policy_hash(Self::DEFAULT_SOURCE),
                    cadence_days: RiskTier::ALL.iter().map(|&t| (t, default_cadence(t))).collect(),
                    gates,
                }
            }
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn format(&self) -> PolicyFormat {
        self.format
    }

    /// The sha256 of the source text, which every decision records.
    pub fn sha256(&self) -> Sha256Hex {
        self.sha256.clone()
    }

    /// How long a production version of `tier` goes between periodic reviews.
    pub fn review_cadence(&self, tier: RiskTier) -> chrono::Duration {
        let days = self.cadence_days.get(&tier).copied().unwrap_or_else(|| default_cadence(tier));
        chrono::Duration::try_days(days.clamp(1, MAX_CADENCE_DAYS)).unwrap_or_else(|| chrono::Duration::days(1))
    }

    /// Runs every condition of `tier`'s `target` gate over `ctx`.
    pub fn evaluate(&self, tier: RiskTier, target: GateTarget, ctx: &GateContext) -> GateDecision {
        let conditions = self.gates.get(&(tier, target)).map(Vec::as_slice).unwrap_or_default();
        // Bound once for all the gate's conditions. A context that does not
        // bind (a NaN threshold serialises as `null`) fails every condition.
        let bindings = serde_json::to_value(ctx)
            .map_err(|e| e.to_string())
            .and_then(|json| Bindings::from_object(&SCHEMA, &json).map_err(|e| e.to_string()))
            .map_err(|e| format!("the gate context does not bind: {e}"));
        let outcomes: Vec<ConditionOutcome> = conditions
            .iter()
            .map(|c| {
                let result = match (&c.check, &bindings) {
                    (Check::Unavailable(reason), _) => Err(reason.clone()),
                    (Check::Compiled(_), Err(e)) => Err(e.clone()),
                    (Check::Compiled(expression), Ok(bindings)) => expression.evaluate_bool(bindings).map_err(|e| e.to_string()),
                };
                match result {
                    Ok(passed) => ConditionOutcome { name: c.name.clone(), passed, message: c.message.clone() },
                    Err(e) => ConditionOutcome { name: c.name.clone(), passed: false, message: format!("could not be evaluated: {e}") },
                }
            })
            .collect();
        GateDecision { allowed: outcomes.iter().all(|o| o.passed), policy_sha256: self.sha256(), tier, target, conditions: outcomes }
    }

    pub fn summary(&self) -> PolicySummary {
        let tiers = RiskTier::ALL
            .iter()
            .map(|&tier| {
                let gates = GateTarget::ALL
                    .iter()
                    .map(|&target| {
                        let conditions = self.gates.get(&(tier, target)).map(Vec::as_slice).unwrap_or_default();
                        let listed = conditions
                            .iter()
                            .map(|c| ConditionSummary { name: c.name.clone(), when: c.when.clone(), message: c.message.clone() })
                            .collect();
                        (target, listed)
                    })
                    .collect();
                (tier, gates)
            })
            .collect();
        PolicySummary {
            sha256: self.sha256(),
            format: self.format,
            review_cadence_days: RiskTier::ALL
                .iter()
                .map(|&t| (t, self.cadence_days.get(&t).copied().unwrap_or_else(|| default_cadence(t))))
                .collect(),
            tiers,
        }
    }
}

/// An expression error as it follows `` `when` `` in a policy message:
/// ` at 1:9: …` when positioned, `: …` otherwise.
fn expression_problem(e: &ExprError) -> String {
    let text = e.to_string();
    match e.position() {
        Some(p) => {
            let prefix = format!("{p}: ");
            format!(" at {p}: {}", text.strip_prefix(&prefix).unwrap_or(&text))
        }
        None => format!(": {text}"),
    }
}

/// The 1-based line of byte `offset`.
fn line_at(source: &str, offset: usize) -> usize {
    source.as_bytes().iter().take(offset).filter(|&&b| b == b'\n').count() + 1
}

// ------------------------------------------------------------ the file's shape

/// How a value is wrapped while deserialising: TOML keeps its span, YAML
/// (whose deserialiser gives none) the bare value.
trait Spans {
    type Of<T: DeserializeOwned>: DeserializeOwned;
    fn split<T: DeserializeOwned>(value: Self::Of<T>) -> (T, Option<Range<usize>>);
}

struct TomlSpans;

impl Spans for TomlSpans {
    type Of<T: DeserializeOwned> = toml::Spanned<T>;
    fn split<T: DeserializeOwned>(value: toml::Spanned<T>) -> (T, Option<Range<usize>>) {
        let span = value.span();
        (value.into_inner(), Some(span))
    }
}

struct NoSpans;

impl Spans for NoSpans {
    type Of<T: DeserializeOwned> = T;
    fn split<T: DeserializeOwned>(value: T) -> (T, Option<Range<usize>>) {
        (value, None)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "", expecting = "a policy: `review_cadence_days` and `tiers`")]
struct RawPolicy<S: Spans> {
    #[serde(default)]
    review_cadence_days: Option<S::Of<RawCadence<S>>>,
    #[serde(default)]
    tiers: Option<RawTiers<S>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "", expecting = "days per tier: `low`, `medium`, `high`, `critical`")]
struct RawCadence<S: Spans> {
    low: Option<S::Of<i64>>,
    medium: Option<S::Of<i64>>,
    high: Option<S::Of<i64>>,
    critical: Option<S::Of<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "", expecting = "gates per tier: `low`, `medium`, `high`, `critical`")]
struct RawTiers<S: Spans> {
    low: Option<RawTier<S>>,
    medium: Option<RawTier<S>>,
    high: Option<RawTier<S>>,
    critical: Option<RawTier<S>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "", expecting = "conditions per gate: `in_validation`, `approved`, `production`")]
struct RawTier<S: Spans> {
    in_validation: Option<Vec<RawCondition<S>>>,
    approved: Option<Vec<RawCondition<S>>>,
    production: Option<Vec<RawCondition<S>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "", expecting = "a condition: `name`, `when` and `message`")]
struct RawCondition<S: Spans> {
    name: S::Of<String>,
    when: S::Of<String>,
    message: S::Of<String>,
}

/// Finds lines: from spans in TOML, from paths in YAML.
struct Lines<'s> {
    source: &'s str,
    format: PolicyFormat,
}

impl Lines<'_> {
    fn line(&self, span: Option<Range<usize>>, path: &[Seg]) -> Option<usize> {
        match self.format {
            PolicyFormat::Toml => span.map(|s| line_at(self.source, s.start)),
            PolicyFormat::Yaml => yaml_lines::line_of(self.source, path),
        }
    }
}

/// A condition as written, checked for shape but not compiled yet.
struct Draft {
    tier: RiskTier,
    target: GateTarget,
    name: String,
    when: String,
    message: String,
    /// The line of `when`.
    line: Option<usize>,
}

struct Drafts {
    cadence_days: BTreeMap<RiskTier, i64>,
    conditions: Vec<Draft>,
}

type DraftError = (Option<usize>, String);

impl Drafts {
    fn from_raw<S: Spans>(raw: RawPolicy<S>, lines: &Lines) -> Result<Drafts, DraftError> {
        let cadence_days = match raw.review_cadence_days {
            None => RiskTier::ALL.iter().map(|&t| (t, default_cadence(t))).collect(),
            Some(table) => {
                let (table, table_span) = S::split(table);
                let mut days = BTreeMap::new();
                for (tier, value) in [
                    (RiskTier::Low, table.low),
                    (RiskTier::Medium, table.medium),
                    (RiskTier::High, table.high),
                    (RiskTier::Critical, table.critical),
                ] {
                    let Some(value) = value else {
                        return Err((
                            lines.line(table_span.clone(), &[Seg::Key("review_cadence_days")]),
                            format!("`review_cadence_days` has no `{tier}`: give every tier a cadence (or leave the whole table out for the defaults)"),
                        ));
                    };
                    let (value, span) = S::split(value);
                    if !(1..=MAX_CADENCE_DAYS).contains(&value) {
                        return Err((
                            lines.line(span, &[Seg::Key("review_cadence_days"), Seg::Key(tier.as_str())]),
                            format!("`review_cadence_days.{tier}` must be between 1 and {MAX_CADENCE_DAYS} days, not `{value}`"),
                        ));
                    }
                    days.insert(tier, value);
                }
                days
            }
        };

        let mut conditions = Vec::new();
        let tiers = raw
            .tiers
            .map(|t| [(RiskTier::Low, t.low), (RiskTier::Medium, t.medium), (RiskTier::High, t.high), (RiskTier::Critical, t.critical)]);
        for (tier, raw_tier) in tiers.into_iter().flatten() {
            let Some(raw_tier) = raw_tier else { continue };
            let gates = [
                (GateTarget::InValidation, raw_tier.in_validation),
                (GateTarget::Approved, raw_tier.approved),
                (GateTarget::Production, raw_tier.production),
            ];
            for (target, raw_conditions) in gates {
                let mut seen = BTreeSet::new();
                for (i, c) in raw_conditions.into_iter().flatten().enumerate() {
                    let path = |key| [Seg::Key("tiers"), Seg::Key(tier.as_str()), Seg::Key(target.as_str()), Seg::Index(i), Seg::Key(key)];
                    let (name, name_span) = S::split(c.name);
                    let (when, when_span) = S::split(c.when);
                    let (message, message_span) = S::split(c.message);
                    let gate = format!("the `{target}` gate of tier `{tier}`");
                    if name.trim().is_empty() {
                        return Err((lines.line(name_span, &path("name")), format!("condition {} of {gate} has an empty name", i + 1)));
                    }
                    if name.chars().any(char::is_control) {
                        return Err((
                            lines.line(name_span, &path("name")),
                            format!("the name of condition {} of {gate} has control characters", i + 1),
                        ));
                    }
                    if !seen.insert(name.clone()) {
                        return Err((lines.line(name_span, &path("name")), format!("{gate} has two conditions named `{name}`")));
                    }
                    if message.trim().is_empty() {
                        return Err((
                            lines.line(message_span, &path("message")),
                            format!("condition `{name}` of {gate} has an empty message (say what is needed)"),
                        ));
                    }
                    let line = lines.line(when_span, &path("when"));
                    conditions.push(Draft { tier, target, name, when, message, line });
                }
            }
        }
        Ok(Drafts { cadence_days, conditions })
    }
}

#[cfg(test)]
mod tests;
