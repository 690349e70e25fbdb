use super::*;
use crate::context::*;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

const EXAMPLE_YAML: &str = include_str!("../../examples/policy.yaml");

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
}

fn approval(by: &str, roles: &[&str]) -> ApprovalFacts {
    ApprovalFacts {
        by: by.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        comment: "looks good".into(),
        conditions: String::new(),
        at: at(2),
        expires: false,
    }
}

/// A context every default gate of every tier lets through: authored by
/// `dev1`, a developer with `dev2`; approved by validators `val1` and `val2`
/// and by risk officer `risk`; the validation metric above its threshold; a
/// validation report; a complete card; no review overdue.
fn passing() -> GateContext {
    GateContext {
        version: VersionFacts {
            model: "credit".into(),
            number: 3,
            state: "in_validation".into(),
            author: "dev1".into(),
            created_at: at(1),
            description: "retrained on 2026q1".into(),
            tags: [("team".to_string(), "risk".to_string())].into(),
            aliases: vec!["candidate".into()],
            card: CardFacts {
                markdown: "# credit".into(),
                intended_use: "retail credit decisions".into(),
                limitations: "not for business loans".into(),
                ethical_considerations: String::new(),
                evaluation_data: "holdout 2026q1".into(),
                metrics: [("auc".to_string(), 0.86)].into(),
            },
            lineage: LineageFacts {
                dataset_uri: "s3://data/credit".into(),
                dataset_sha256: String::new(),
                dataset_rows: -1,
                code_commit: "abc123".into(),
                training_metrics: Default::default(),
                parent_version: 2,
                mlflow_run_id: String::new(),
            },
            signature: SignatureFacts { inputs: vec!["income".into()], outputs: vec!["score".into()] },
        },
        model: ModelFacts {
            name: "credit".into(),
            kind: "onnx".into(),
            tier: "critical".into(),
            owner: "owner".into(),
            team: "risk".into(),
            developers: vec!["dev1".into(), "dev2".into()],
            business_purpose: "lending".into(),
            intended_use: "retail credit".into(),
            restrictions: String::new(),
            tags: Default::default(),
            validation_metric: "auc".into(),
            validation_threshold: 0.8,
            production_version: 2,
            review_overdue: false,
        },
        approvals: vec![approval("val1", &["validator"]), approval("val2", &["validator"]), approval("risk", &["approver"])],
        evidence: EvidenceFacts {
            metrics: vec![MetricFacts { name: "auc".into(), value: 0.85, dataset: "holdout".into(), by: "val1".into(), at: at(2) }],
            documents: vec![DocumentFacts {
                name: "validation_report".into(),
                filename: "report.pdf".into(),
                sha256: "00".repeat(32),
                by: "val1".into(),
                at: at(2),
            }],
        },
        actor: ActorFacts { name: "val1".into(), roles: vec!["validator".into()], team: String::new() },
        now: at(3),
        transition: TransitionFacts { name: "approve".into(), to: "approved".into() },
    }
}

/// The names of the failed conditions.
fn failed(decision: &GateDecision) -> Vec<&str> {
    decision.failures().map(|c| c.name.as_str()).collect()
}

fn defaults() -> Policy {
    Policy::parse(Policy::DEFAULT_SOURCE, PolicyFormat::Toml, "default-policy.toml").unwrap()
}

// ------------------------------------------------------------ the context schema

/// Object keys, recursively, with lists followed into their first element.
fn shape(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(members) => {
            for (k, v) in members {
                out.push(format!("{path}.{k}"));
                shape(v, &format!("{path}.{k}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(first) = items.first() {
                shape(first, &format!("{path}[]"), out);
            }
        }
        other => out.push(format!(
            "{path}: {}",
            if other.is_number() {
                "number"
            } else if other.is_string() {
                "string"
            } else {
                "bool"
            }
        )),
    }
}

#[test]
fn the_schema_is_the_gate_context_field_by_field() {
    let real = serde_json::to_value(passing()).unwrap();
    let prototype = context_schema().prototype();
    let (mut real_shape, mut prototype_shape) = (Vec::new(), Vec::new());
    shape(&real, "", &mut real_shape);
    shape(&prototype, "", &mut prototype_shape);
    // Maps (tags, metrics) are empty in the prototype: compare the rest.
    let maps = [".version.tags.", ".version.card.metrics.", ".version.lineage.training_metrics.", ".model.tags."];
    real_shape.retain(|p| !maps.iter().any(|m| p.starts_with(m)));
    real_shape.sort();
    prototype_shape.sort();
    assert_eq!(real_shape, prototype_shape);
    // The prototype is a valid context, and a real context binds.
    let _: GateContext = serde_json::from_value(prototype).unwrap();
    Bindings::from_object(&context_schema(), &real).unwrap();
}

// ------------------------------------------------------------ the defaults

#[test]
fn the_defaults_parse_and_their_summary_lists_every_tier() {
    let policy = defaults();
    assert_eq!(Policy::defaults().sha256(), policy.sha256());
    assert_eq!(policy.sha256(), policy_hash(Policy::DEFAULT_SOURCE));
    assert_eq!(policy.format(), PolicyFormat::Toml);
    assert_eq!(policy.source(), Policy::DEFAULT_SOURCE);
    let summary = policy.summary();
    assert_eq!(summary.tiers.keys().copied().collect::<Vec<_>>(), RiskTier::ALL);
    let names = |tier, target| summary.tiers[&tier][&target].iter().map(|c| c.name.as_str()).collect::<Vec<_>>();
    let high = ["two_independent_validators", "complete_card", "validation_metric", "validation_report"];
    for tier in RiskTier::ALL.iter().copied() {
        assert!(names(tier, GateTarget::InValidation).is_empty(), "{tier}");
        assert_eq!(names(tier, GateTarget::Production), names(tier, GateTarget::Approved), "{tier}");
    }
    assert_eq!(names(RiskTier::Low, GateTarget::Approved), ["card_intended_use"]);
    assert_eq!(names(RiskTier::Medium, GateTarget::Approved), ["card_intended_use", "independent_validator"]);
    assert_eq!(names(RiskTier::High, GateTarget::Approved), high);
    let critical = [&high[..], &["risk_officer_approval", "no_overdue_review"]].concat();
    assert_eq!(names(RiskTier::Critical, GateTarget::Approved), critical);
    assert_eq!(summary.review_cadence_days.values().copied().collect::<Vec<_>>(), [730, 365, 365, 180]);
    assert_eq!(policy.review_cadence(RiskTier::Critical), chrono::Duration::days(180));

    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["format"], "toml");
    assert_eq!(json["review_cadence_days"], json!({"low": 730, "medium": 365, "high": 365, "critical": 180}));
    assert_eq!(json["tiers"]["medium"]["approved"][1]["name"], "independent_validator");
    assert_eq!(json["tiers"]["low"]["in_validation"], json!([]));
    let back: PolicySummary = serde_json::from_value(json).unwrap();
    assert_eq!(back, summary);
}

#[test]
fn policies_and_decisions_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<Policy>();
    shared::<GateDecision>();
    let policy = std::sync::Arc::new(defaults());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let policy = std::sync::Arc::clone(&policy);
            std::thread::spawn(move || policy.evaluate(RiskTier::Critical, GateTarget::Production, &passing()).allowed)
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

#[test]
fn every_tier_lets_the_author_submit() {
    let policy = defaults();
    let mut blank = passing();
    blank.approvals.clear();
    blank.version.card = CardFacts {
        markdown: String::new(),
        intended_use: String::new(),
        limitations: String::new(),
        ethical_considerations: String::new(),
        evaluation_data: String::new(),
        metrics: Default::default(),
    };
    for tier in RiskTier::ALL.iter().copied() {
        let decision = policy.evaluate(tier, GateTarget::InValidation, &blank);
        assert!(decision.allowed && decision.conditions.is_empty(), "{tier}");
        assert_eq!(decision.denial(), None);
    }
}

#[test]
fn a_passing_context_passes_every_gate() {
    let policy = defaults();
    for tier in RiskTier::ALL.iter().copied() {
        for target in GateTarget::ALL.iter().copied() {
            let decision = policy.evaluate(tier, target, &passing());
            assert!(decision.allowed, "{tier} {target}: {decision:?}");
            assert_eq!((decision.tier, decision.target), (tier, target));
            assert_eq!(decision.policy_sha256, policy.sha256());
            // A passed condition carries its message too.
            assert!(decision.conditions.iter().all(|c| c.passed && !c.message.is_empty()));
        }
    }
}

#[test]
fn low_needs_the_intended_use() {
    let policy = defaults();
    let mut ctx = passing();
    ctx.version.card.intended_use = " \n\t ".into();
    ctx.approvals.clear();
    for target in [GateTarget::Approved, GateTarget::Production] {
        let decision = policy.evaluate(RiskTier::Low, target, &ctx);
        assert_eq!(failed(&decision), ["card_intended_use"]);
        assert_eq!(decision.conditions[0].message, "the model card must state the intended use");
    }
    ctx.version.card.intended_use = "scoring".into();
    assert!(policy.evaluate(RiskTier::Low, GateTarget::Approved, &ctx).allowed);
}

#[test]
fn medium_needs_a_validator_who_is_not_the_author() {
    let policy = defaults();
    let mut ctx = passing();
    // The author, even with the validator role, does not count.
    ctx.approvals = vec![approval("dev1", &["validator", "developer"]), approval("risk", &["approver"])];
    let decision = policy.evaluate(RiskTier::Medium, GateTarget::Approved, &ctx);
    assert_eq!(failed(&decision), ["independent_validator"]);
    let denial = decision.denial().unwrap();
    assert_eq!(denial.reasons()[0].condition, "independent_validator");
    assert_eq!(denial.reasons()[0].message, "one validator who is not the author must approve");

    // A developer who is not the author counts at medium.
    ctx.approvals.push(approval("dev2", &["validator"]));
    assert!(policy.evaluate(RiskTier::Medium, GateTarget::Approved, &ctx).allowed);
}

#[test]
fn high_needs_two_distinct_independent_validators() {
    let policy = defaults();
    let mut ctx = passing();
    // One independent validator and a developer: the developer does not count.
    ctx.approvals = vec![approval("val1", &["validator"]), approval("dev2", &["validator"])];
    assert_eq!(failed(&policy.evaluate(RiskTier::High, GateTarget::Approved, &ctx)), ["two_independent_validators"]);
    // Nor does the author.
    ctx.approvals = vec![approval("val1", &["validator"]), approval("dev1", &["validator"])];
    assert_eq!(failed(&policy.evaluate(RiskTier::High, GateTarget::Approved, &ctx)), ["two_independent_validators"]);
    // Two approvals by the same person count once.
    ctx.approvals = vec![approval("val1", &["validator"]), approval("val1", &["validator"])];
    assert_eq!(failed(&policy.evaluate(RiskTier::High, GateTarget::Approved, &ctx)), ["two_independent_validators"]);
    // Someone without the validator role does not count.
    ctx.approvals = vec![approval("val1", &["validator"]), approval("risk", &["approver"])];
    assert_eq!(failed(&policy.evaluate(RiskTier::High, GateTarget::Approved, &ctx)), ["two_independent_validators"]);
    ctx.approvals = vec![approval("val1", &["validator"]), approval("val2", &["validator"])];
    assert!(policy.evaluate(RiskTier::High, GateTarget::Approved, &ctx).allowed);
}

#[test]
fn high_needs_the_card_the_metric_and_the_report() {
    let policy = defaults();
    let check = |change: fn(&mut GateContext), want: &[&str]| {
        let mut ctx = passing();
        change(&mut ctx);
        for target in [GateTarget::Approved, GateTarget::Production] {
            assert_eq!(failed(&policy.evaluate(RiskTier::High, target, &ctx)), want);
        }
    };
    check(|c| c.version.card.limitations = "  ".into(), &["complete_card"]);
    check(|c| c.version.card.evaluation_data.clear(), &["complete_card"]);
    // Below the threshold; at the threshold passes.
    check(|c| c.evidence.metrics[0].value = 0.79, &["validation_metric"]);
    check(|c| c.evidence.metrics[0].value = 0.8, &[]);
    // Another metric than the model's does not count.
    check(|c| c.evidence.metrics[0].name = "accuracy".into(), &["validation_metric"]);
    // A model without a validation metric cannot pass.
    check(|c| c.model.validation_metric.clear(), &["validation_metric"]);
    check(|c| c.evidence.documents[0].name = "model_card".into(), &["validation_report"]);
    check(|c| c.evidence.documents.clear(), &["validation_report"]);
}

#[test]
fn critical_needs_a_risk_officer_and_no_overdue_review() {
    let policy = defaults();
    let mut ctx = passing();
    ctx.approvals.retain(|a| a.by != "risk");
    assert_eq!(failed(&policy.evaluate(RiskTier::Critical, GateTarget::Approved, &ctx)), ["risk_officer_approval"]);
    // The author as approver does not count.
    ctx.approvals.push(approval("dev1", &["approver"]));
    assert_eq!(failed(&policy.evaluate(RiskTier::Critical, GateTarget::Approved, &ctx)), ["risk_officer_approval"]);

    let mut overdue = passing();
    overdue.model.review_overdue = true;
    for target in [GateTarget::Approved, GateTarget::Production] {
        let decision = policy.evaluate(RiskTier::Critical, target, &overdue);
        assert_eq!(failed(&decision), ["no_overdue_review"]);
        assert!(decision.denial().unwrap().to_string().contains("overdue"));
    }
    // High does not look at reviews.
    assert!(policy.evaluate(RiskTier::High, GateTarget::Production, &overdue).allowed);
}

#[test]
fn an_expired_approval_blocks_promotion() {
    // The registry leaves expired approvals out of the context: val2's has
    // expired by the time of promotion.
    let policy = defaults();
    let mut ctx = passing();
    ctx.transition = TransitionFacts { name: "promote".into(), to: "production".into() };
    ctx.approvals.retain(|a| a.by != "val2");
    assert_eq!(failed(&policy.evaluate(RiskTier::High, GateTarget::Production, &ctx)), ["two_independent_validators"]);
    ctx.approvals.clear();
    assert_eq!(failed(&policy.evaluate(RiskTier::Medium, GateTarget::Production, &ctx)), ["independent_validator"]);
}

#[test]
fn every_failure_is_listed_in_the_denial() {
    let policy = defaults();
    let mut ctx = passing();
    ctx.approvals.clear();
    ctx.evidence.documents.clear();
    ctx.model.review_overdue = true;
    let decision = policy.evaluate(RiskTier::Critical, GateTarget::Approved, &ctx);
    let want = ["two_independent_validators", "validation_report", "risk_officer_approval", "no_overdue_review"];
    assert_eq!(failed(&decision), want);
    let denial = decision.denial().unwrap();
    assert_eq!(denial.reasons().iter().map(|r| r.condition.as_str()).collect::<Vec<_>>(), want);
    // The decision round-trips as recorded.
    let json = serde_json::to_value(&decision).unwrap();
    assert_eq!(json["tier"], "critical");
    assert_eq!(json["target"], "approved");
    assert_eq!(serde_json::from_value::<GateDecision>(json).unwrap(), decision);
}

// ------------------------------------------------------------ evaluation errors

#[test]
fn a_condition_that_cannot_be_evaluated_denies() {
    let source = r#"
[[tiers.low.approved]]
name = "auc"
when = "version.card.metrics['auc'] > 0.5"
message = "the card must report an auc above 0.5"
"#;
    let policy = Policy::parse(source, PolicyFormat::Toml, "p.toml").unwrap();
    let mut ctx = passing();
    assert!(policy.evaluate(RiskTier::Low, GateTarget::Approved, &ctx).allowed);
    ctx.version.card.metrics.clear();
    let decision = policy.evaluate(RiskTier::Low, GateTarget::Approved, &ctx);
    assert!(!decision.allowed);
    assert_eq!(
        decision.conditions,
        [ConditionOutcome { name: "auc".into(), passed: false, message: "could not be evaluated: no such key `auc`".into() }]
    );
    ctx.version.card.metrics.insert("auc".into(), 0.4);
    let decision = policy.evaluate(RiskTier::Low, GateTarget::Approved, &ctx);
    assert_eq!(decision.conditions[0].message, "the card must report an auc above 0.5");
}

#[test]
fn a_context_that_does_not_bind_denies() {
    let policy = defaults();
    let mut ctx = passing();
    // NaN serialises as null, which no double binds to.
    ctx.model.validation_threshold = f64::NAN;
    let decision = policy.evaluate(RiskTier::Low, GateTarget::Approved, &ctx);
    assert!(!decision.allowed);
    assert!(decision.conditions[0]
        .message
        .starts_with("could not be evaluated: the gate context does not bind: `model.validation_threshold`"));
}

// ------------------------------------------------------------ refusing files

fn toml_err(source: &str) -> String {
    Policy::parse(source, PolicyFormat::Toml, "policy.toml").unwrap_err().to_string()
}

fn yaml_err(source: &str) -> String {
    Policy::parse(source, PolicyFormat::Yaml, "policy.yaml").unwrap_err().to_string()
}

#[test]
fn a_condition_with_a_type_error_refuses_the_policy_at_its_line() {
    let source = r#"# a policy
[[tiers.medium.approved]]
name = "fine"
when = "version.number > 0"
message = "m"

[[tiers.medium.approved]]
name = "typed"
when = "version.number > 'x'"
message = "m"
"#;
    assert_eq!(
        toml_err(source),
        "policy.toml:9: condition `typed` (tier `medium`, gate `approved`): `when` at 1:16: `>` cannot compare an int with a string"
    );
    let misspelt = source.replace("version.number > 'x'", "version.crad.intended_use != ''");
    let err = toml_err(&misspelt);
    assert!(err.starts_with("policy.toml:9: condition `typed` (tier `medium`, gate `approved`): `when` at 1:8: `crad` is not a field of `version` (fields: `model`, `number`,"), "{err}");
    let not_bool = source.replace("version.number > 'x'", "version.number");
    assert_eq!(
        toml_err(&not_bool),
        "policy.toml:9: condition `typed` (tier `medium`, gate `approved`): `when`: the condition gives an int, not a bool"
    );
    let syntax = source.replace("version.number > 'x'", "version.number >");
    assert!(toml_err(&syntax).starts_with("policy.toml:9: condition `typed` (tier `medium`, gate `approved`): `when` at 1:"));

    let yaml = "\
tiers:
  medium:
    approved:
      - name: fine
        when: version.number > 0
        message: m
      - name: typed
        message: m
        when: >-
          version.number > 0 &&
          version.crad == ''
";
    let err = yaml_err(yaml);
    assert!(
        err.starts_with(
            "policy.yaml:9: condition `typed` (tier `medium`, gate `approved`): `when` at 1:30: `crad` is not a field of `version`"
        ),
        "{err}"
    );
}

#[test]
fn the_shape_of_the_file_is_checked() {
    let condition = "name = \"c\"\nwhen = \"true\"\nmessage = \"m\"\n";
    let cases = [
        ("[tier.low]\n".to_string(), "policy.toml:1: unknown field `tier`, expected `review_cadence_days` or `tiers`"),
        (format!("[[tiers.extreme.approved]]\n{condition}"), "policy.toml:1: unknown field `extreme`, expected one of `low`, `medium`, `high`, `critical`"),
        (format!("[[tiers.low.aproved]]\n{condition}"), "policy.toml:1: unknown field `aproved`, expected one of `in_validation`, `approved`, `production`"),
        (format!("[[tiers.low.approved]]\n{condition}msg = \"x\"\n"), "policy.toml:5: unknown field `msg`, expected one of `name`, `when`, `message`"),
        ("[[tiers.low.approved]]\nname = \"c\"\nmessage = \"m\"\n".to_string(), "policy.toml:1: missing field `when`"),
        (
            format!("[[tiers.low.approved]]\n{condition}\n[[tiers.low.approved]]\n{condition}"),
            "policy.toml:7: the `approved` gate of tier `low` has two conditions named `c`",
        ),
        (
            "[[tiers.low.approved]]\nname = \" \"\nwhen = \"true\"\nmessage = \"m\"\n".to_string(),
            "policy.toml:2: condition 1 of the `approved` gate of tier `low` has an empty name",
        ),
        (
            "[[tiers.low.approved]]\nname = \"c\"\nwhen = \"true\"\nmessage = \"\"\n".to_string(),
            "policy.toml:4: condition `c` of the `approved` gate of tier `low` has an empty message (say what is needed)",
        ),
        (
            "[review_cadence_days]\nlow = 730\nmedium = 0\nhigh = 1\ncritical = 1\n".to_string(),
            "policy.toml:3: `review_cadence_days.medium` must be between 1 and 36500 days, not `0`",
        ),
        (
            "[review_cadence_days]\nlow = 730\nmedium = 365\nhigh = 365\ncritical = -1\n".to_string(),
            "policy.toml:5: `review_cadence_days.critical` must be between 1 and 36500 days, not `-1`",
        ),
        (
            "[review_cadence_days]\nlow = 730\nmedium = 365\nhigh = 365\n".to_string(),
            "policy.toml:1: `review_cadence_days` has no `critical`: give every tier a cadence (or leave the whole table out for the defaults)",
        ),
        ("tiers = 3\n".to_string(), "policy.toml:1: invalid type: integer `3`, expected gates per tier: `low`, `medium`, `high`, `critical`"),
        ("[[tiers.low.approved]\n".to_string(), "policy.toml:1: invalid table header\nexpected `.`, `]]`"),
    ];
    for (source, want) in cases {
        assert_eq!(toml_err(&source), want, "{source}");
    }
    let err = yaml_err("tiers:\n  low:\n    aproved: []\n");
    assert!(err.starts_with("policy.yaml:3: tiers.low: unknown field `aproved`"), "{err}");
    let err = yaml_err("tiers:\n  low:\n    approved:\n      - name: c\n        when: 'true'\n        message: m\n      - name: c\n        when: 'true'\n        message: m\n");
    assert_eq!(err, "policy.yaml:7: the `approved` gate of tier `low` has two conditions named `c`");
    let err = yaml_err("review_cadence_days:\n  low: 1\n  medium: 1\n  high: 100000\n  critical: 1\n");
    assert_eq!(err, "policy.yaml:4: `review_cadence_days.high` must be between 1 and 36500 days, not `100000`");
    let err = yaml_err("review_cadence_days:\n  low: 1\n medium: 2\n");
    assert_eq!(err, "policy.yaml:3: did not find expected key");
    let err = yaml_err("tiers: [1]\n");
    assert_eq!(err, "policy.yaml:1: tiers: invalid type: sequence, expected gates per tier: `low`, `medium`, `high`, `critical`");
    let err = yaml_err("tiers:\n  low:\n    approved:\n      - name: c\n        when: 'true'\n");
    assert_eq!(err, "policy.yaml:4: tiers.low.approved[0]: missing field `message`");
}

#[test]
fn a_missing_gate_or_cadence_table_takes_the_defaults() {
    let policy = Policy::parse("# nothing\n", PolicyFormat::Toml, "empty.toml").unwrap();
    assert_eq!(policy.review_cadence(RiskTier::Low), chrono::Duration::days(730));
    assert_eq!(policy.review_cadence(RiskTier::Medium), chrono::Duration::days(365));
    let mut ctx = passing();
    ctx.approvals.clear();
    for tier in RiskTier::ALL.iter().copied() {
        assert!(policy.evaluate(tier, GateTarget::Production, &ctx).allowed);
    }
    let yaml =
        Policy::parse("review_cadence_days:\n  low: 10\n  medium: 20\n  high: 30\n  critical: 40\n", PolicyFormat::Yaml, "p.yaml").unwrap();
    assert_eq!(yaml.review_cadence(RiskTier::Critical), chrono::Duration::days(40));
}

#[test]
fn policy_errors_convert_to_invalid_input_on_the_policy_field() {
    let err = PolicyError { origin: "p.yaml".into(), line: None, problem: "bad".into() };
    assert_eq!(err.to_string(), "p.yaml: bad");
    let core: modelops_core::Error = err.into();
    assert_eq!(core.kind(), modelops_core::ErrorKind::InvalidInput);
    assert_eq!(core.field(), Some("policy"));
    assert_eq!(core.to_string(), "invalid `policy`: p.yaml: bad");
}

#[test]
fn formats_parse_from_names_and_extensions() {
    assert_eq!(PolicyFormat::parse_field("format", "yaml").unwrap(), PolicyFormat::Yaml);
    let err = PolicyFormat::parse_field("format", "json").unwrap_err();
    assert_eq!(err.to_string(), "invalid `format`: `json` is not one of `toml`, `yaml`");
    assert_eq!(PolicyFormat::from_extension("policy.toml"), Some(PolicyFormat::Toml));
    assert_eq!(PolicyFormat::from_extension("/etc/modelops/Policy.YML"), Some(PolicyFormat::Yaml));
    assert_eq!(PolicyFormat::from_extension("policy.yaml"), Some(PolicyFormat::Yaml));
    assert_eq!(PolicyFormat::from_extension("policy"), None);
    assert_eq!(PolicyFormat::from_extension("policy.json"), None);
    assert_eq!(PolicyFormat::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>(), ["toml", "yaml"]);
}

// ------------------------------------------------------------ TOML and YAML agree

/// Contexts that pass and fail each default condition.
fn variants() -> Vec<GateContext> {
    let changes: [fn(&mut GateContext); 10] = [
        |_| {},
        |c| c.approvals.clear(),
        |c| c.approvals.retain(|a| a.by != "val2"),
        |c| c.approvals.retain(|a| a.by != "risk"),
        |c| c.approvals = vec![approval("dev2", &["validator"]), approval("val1", &["validator"])],
        |c| c.version.card.intended_use.clear(),
        |c| c.version.card.limitations.clear(),
        |c| c.evidence.metrics[0].value = 0.1,
        |c| c.evidence.documents.clear(),
        |c| c.model.review_overdue = true,
    ];
    changes
        .iter()
        .map(|change| {
            let mut ctx = passing();
            change(&mut ctx);
            ctx
        })
        .collect()
}

fn same_decisions(a: &Policy, b: &Policy) {
    for ctx in variants() {
        for tier in RiskTier::ALL.iter().copied() {
            for target in GateTarget::ALL.iter().copied() {
                let (x, y) = (a.evaluate(tier, target, &ctx), b.evaluate(tier, target, &ctx));
                assert_eq!((x.allowed, &x.conditions), (y.allowed, &y.conditions), "{tier} {target}");
            }
        }
    }
}

#[test]
fn the_yaml_example_is_the_toml_default() {
    let yaml = Policy::parse(EXAMPLE_YAML, PolicyFormat::Yaml, "policy.yaml").unwrap();
    let toml = defaults();
    assert_eq!(yaml.format(), PolicyFormat::Yaml);
    assert_ne!(yaml.sha256(), toml.sha256());
    let (a, b) = (yaml.summary(), toml.summary());
    assert_eq!(a.review_cadence_days, b.review_cadence_days);
    // The same conditions, up to how the long ones are folded onto lines.
    let flat = |s: &PolicySummary| {
        let mut s = s.tiers.clone();
        for c in s.values_mut().flat_map(|g| g.values_mut()).flatten() {
            c.when = c.when.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        s
    };
    assert_eq!(flat(&a), flat(&b));
    same_decisions(&yaml, &toml);
}

#[test]
fn toml_and_yaml_forms_of_a_policy_decide_alike() {
    let toml = r#"
[review_cadence_days]
low = 100
medium = 90
high = 60
critical = 30

[[tiers.high.production]]
name = "recent_approval"
when = "approvals.exists(a, now - a.at < duration('720h'))"
message = "an approval from the last 30 days"

[[tiers.high.production]]
name = "two_approvals"
when = "size(approvals) >= 2"
message = "two approvals"
"#;
    let yaml = "
review_cadence_days: {low: 100, medium: 90, high: 60, critical: 30}
tiers:
  high:
    production:
      - name: recent_approval
        when: approvals.exists(a, now - a.at < duration('720h'))
        message: an approval from the last 30 days
      - {name: two_approvals, when: 'size(approvals) >= 2', message: two approvals}
";
    let (t, y) = (Policy::parse(toml, PolicyFormat::Toml, "p.toml").unwrap(), Policy::parse(yaml, PolicyFormat::Yaml, "p.yaml").unwrap());
    same_decisions(&t, &y);
    assert_eq!(t.review_cadence(RiskTier::High), y.review_cadence(RiskTier::High));
    let mut old = passing();
    for a in &mut old.approvals {
        a.at = at(1) - chrono::Duration::days(60);
    }
    assert_eq!(failed(&t.evaluate(RiskTier::High, GateTarget::Production, &old)), ["recent_approval"]);
    assert_eq!(failed(&y.evaluate(RiskTier::High, GateTarget::Production, &old)), ["recent_approval"]);
}
