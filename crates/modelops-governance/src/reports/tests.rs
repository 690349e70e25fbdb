//! The reports as a reader sees them: a high-tier credit model with two
//! versions, approvals, evidence, a denied and an allowed gate decision and a
//! sealed audit chain, rendered in each format.

use super::*;
use chrono::TimeZone;
use modelops_core::audit::PendingEvent;
use modelops_core::auth::Role;
use modelops_core::governance::{policy_hash, Decision, DocumentRef, EvidenceKind, ReviewOutcome};
use modelops_core::model::{ModelState, ValidationTarget};
use modelops_core::version::{ArtifactRef, DataType, Lineage, ModelCard, Sha256Hex, Signature, SignatureField, VersionState};
use serde_json::Value;
use std::collections::BTreeMap;

fn at(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).single().unwrap()
}

fn sha(seed: &str) -> Sha256Hex {
    policy_hash(seed)
}

fn name() -> ModelName {
    ModelName::parse("credit-pd").unwrap()
}

fn policy() -> String {
    policy_hash("[tiers.high]\napprovals = 2\n").to_string()
}

fn old_policy() -> String {
    policy_hash("[tiers.high]\napprovals = 1\n").to_string()
}

fn model() -> Model {
    Model {
        name: name(),
        kind: ModelKind::Onnx,
        description: "<script>alert(1)</script>".into(),
        owner: "alice".into(),
        team: "credit-risk".into(),
        business_purpose: "Probability of default for retail loan origination".into(),
        intended_use: "Score consumer loan applications\nbefore underwriting".into(),
        restrictions: "Not for small-business loans | not for pricing".into(),
        risk_tier: RiskTier::High,
        tags: [("a|b".to_owned(), "c|d".to_owned()), ("domain".to_owned(), "retail credit".to_owned())].into(),
        dependencies: vec![ModelName::parse("bureau-score").unwrap()],
        developers: vec!["bob".into(), "carol".into()],
        validation: Some(ValidationTarget { metric: "auc".into(), threshold: 0.75 }),
        aliases: [("champion".to_owned(), 2)].into(),
        state: ModelState::Active,
        latest_version: Some(2),
        created_at: at(2026, 1, 10, 9),
        created_by: "alice".into(),
        updated_at: at(2026, 5, 3, 10),
    }
}

fn version(number: u32, state: VersionState) -> ModelVersion {
    ModelVersion {
        model: name(),
        number,
        state,
        artifact: ArtifactRef { sha256: sha(&format!("artifact {number}")), size: 48_213 + u64::from(number), filename: format!("pd-v{number}.onnx") },
        lineage: Lineage {
            dataset_uri: Some("s3://risk-data/loans/2026q1.parquet".into()),
            dataset_sha256: Some(sha("dataset 2026q1")),
            dataset_rows: Some(1_250_000),
            code_commit: Some("9f2c1e7".into()),
            hyperparameters: [("max_depth".to_owned(), Value::from(6)), ("eta".to_owned(), Value::from(0.1))].into(),
            training_metrics: [("auc".to_owned(), 0.83)].into(),
            parent_version: (number > 1).then_some(number - 1),
            mlflow_run_id: Some("a1b2c3d4".into()),
            retrain: None,
        },
        signature: Signature {
            inputs: vec![
                SignatureField { name: "income".into(), dtype: DataType::Float64, shape: vec![], allow_nan: false },
                SignatureField { name: "debt_ratio".into(), dtype: DataType::Float64, shape: vec![], allow_nan: false },
            ],
            outputs: vec![SignatureField { name: "pd".into(), dtype: DataType::Float32, shape: vec![-1], allow_nan: false }],
        },
        card: ModelCard {
            markdown: "# Credit PD\n\nGradient-boosted trees over bureau data.\n<b>raw html</b>".into(),
            intended_use: "Retail loan origination in the EU".into(),
            limitations: "Not calibrated for applicants with thin credit files".into(),
            ethical_considerations: "Proxy discrimination through postcode".into(),
            evaluation_data: "Holdout 2026Q1, 250k loans".into(),
            metrics: [("auc".to_owned(), 0.81), ("ks".to_owned(), 0.42)].into(),
        },
        description: format!("v{number}: monotone constraints on debt ratio"),
        tags: BTreeMap::new(),
        aliases: if number == 2 { vec!["champion".into()] } else { vec![] },
        created_at: at(2026, 2, u32::min(number * 10, 28), 9),
        created_by: "bob".into(),
        updated_at: at(2026, 5, 3, 10),
    }
}

fn approval(approver: &str, role: Role, conditions: &str, expires: Option<DateTime<Utc>>) -> Approval {
    Approval {
        model: name(),
        version: 2,
        approver: approver.into(),
        roles: [role].into(),
        decision: Decision::Approve,
        comment: "Back-testing satisfactory".into(),
        conditions: conditions.into(),
        expires_at: expires,
        created_at: at(2026, 4, 20, 14),
    }
}

fn v2_record() -> VersionRecord {
    VersionRecord {
        version: version(2, VersionState::Production),
        approvals: vec![
            approval("victor", Role::Validator, "re-validate after Q1 2027", Some(at(2027, 4, 1, 0))),
            approval("olga", Role::Approver, "", None),
        ],
        evidence: vec![
            Evidence {
                model: name(),
                version: 2,
                kind: EvidenceKind::Metric,
                name: "auc".into(),
                value: Some(0.81),
                dataset: "holdout-2026q1".into(),
                document: None,
                created_at: at(2026, 4, 18, 11),
                created_by: "victor".into(),
            },
            Evidence {
                model: name(),
                version: 2,
                kind: EvidenceKind::Document,
                name: "validation_report".into(),
                value: None,
                dataset: String::new(),
                document: Some(DocumentRef { sha256: sha("validation report v2"), size: 91_004, filename: "validation-v2.pdf".into() }),
                created_at: at(2026, 4, 19, 16),
                created_by: "victor".into(),
            },
        ],
        reviews: vec![Review {
            model: name(),
            version: 2,
            reviewer: "victor".into(),
            outcome: ReviewOutcome::Satisfactory,
            comment: "Stable".into(),
            reviewed_at: at(2026, 6, 1, 9),
            next_review_at: at(2027, 6, 1, 9),
        }],
        next_review_at: Some(at(2027, 6, 1, 9)),
    }
}

/// A real chain: the model's events with another model's event between them.
fn audit_chain() -> (Vec<AuditEvent>, ChainHead) {
    let steps = [
        ("alice", "model.create", "model/credit-pd", at(2026, 1, 10, 9)),
        ("bob", "version.create", "model/credit-pd/version/1", at(2026, 2, 10, 9)),
        ("erin", "model.create", "model/churn", at(2026, 2, 11, 9)),
        ("bob", "version.create", "model/credit-pd/version/2", at(2026, 2, 20, 9)),
        ("bob", "gate.denied", "model/credit-pd/version/2", at(2026, 5, 1, 10)),
        ("dave", "version.promote", "model/credit-pd/version/2", at(2026, 5, 3, 10)),
    ];
    let mut head: Option<ChainHead> = None;
    let mut events = Vec::new();
    for (actor, action, subject, time) in steps {
        let pending = PendingEvent { actor: actor.into(), action: action.into(), subject: subject.into(), before: None, after: None };
        let event = pending.seal(head.as_ref(), time).unwrap();
        head = Some(event.head());
        events.push(event);
    }
    let head = head.unwrap();
    let mine = events.into_iter().filter(|e| e.subject.starts_with("model/credit-pd")).collect();
    (mine, head)
}

fn model_report() -> ModelReport {
    let (audit, head) = audit_chain();
    ModelReport {
        generated_at: at(2026, 7, 1, 9),
        policy_sha256: policy(),
        model: model(),
        versions: vec![
            VersionRecord { version: version(1, VersionState::Retired), approvals: vec![], evidence: vec![], reviews: vec![], next_review_at: None },
            v2_record(),
        ],
        gate_decisions: vec![
            GateDecisionRecord {
                at: at(2026, 5, 1, 10),
                actor: "bob".into(),
                version: 2,
                transition: "promote".into(),
                allowed: false,
                policy_sha256: old_policy(),
                failed: vec![
                    ("two_approvals".into(), "production needs 2 approvals in force; 1 found".into()),
                    ("validation_report".into(), "no `validation_report` document | attached".into()),
                ],
                audit_sequence: 5,
            },
            GateDecisionRecord {
                at: at(2026, 5, 3, 10),
                actor: "dave".into(),
                version: 2,
                transition: "promote".into(),
                allowed: true,
                policy_sha256: policy(),
                failed: vec![],
                audit_sequence: 6,
            },
        ],
        audit,
        chain_head: Some(head),
    }
}

fn annex_report() -> AnnexIvReport {
    AnnexIvReport {
        generated_at: at(2026, 7, 1, 9),
        policy_sha256: policy(),
        model: model(),
        version: Some(v2_record()),
        dependencies: vec!["bureau-score (v3, production)".into()],
    }
}

fn row(name: &str, tier: RiskTier, state: ModelState, status: &str) -> InventoryRow {
    InventoryRow {
        name: ModelName::parse(name).unwrap(),
        kind: ModelKind::Onnx,
        purpose: format!("{name} purpose"),
        intended_use: "internal".into(),
        restrictions: String::new(),
        owner: "alice".into(),
        team: "risk".into(),
        developers: vec!["bob".into()],
        validators: vec![],
        tier,
        state,
        status: status.into(),
        production_version: None,
        last_validation: None,
        next_validation: None,
        open_exceptions: vec![],
    }
}

fn inventory() -> InventoryReport {
    let credit = InventoryRow {
        purpose: "Probability of default | retail".into(),
        restrictions: "Not for pricing\nNot for SMEs".into(),
        developers: vec!["bob".into(), "carol".into()],
        validators: vec!["victor".into(), "olga".into()],
        production_version: Some(2),
        last_validation: Some(at(2026, 4, 20, 14)),
        next_validation: Some(at(2027, 6, 1, 9)),
        open_exceptions: vec!["approval conditions: re-validate after Q1 2027".into(), "review overdue since 2026-06-01T09:00:00Z".into()],
        ..row("credit-pd", RiskTier::High, ModelState::Active, "in production (v2)")
    };
    InventoryReport {
        generated_at: at(2026, 7, 1, 9),
        policy_sha256: policy(),
        rows: vec![
            credit,
            row("fraud-rules", RiskTier::Critical, ModelState::Active, "in validation (v4)"),
            InventoryRow { production_version: Some(7), ..row("churn", RiskTier::Low, ModelState::Active, "in production (v7)") },
            row("old-scorecard", RiskTier::High, ModelState::Retired, "retired"),
        ],
    }
}

/// Every row of every Markdown table has as many cell separators as its
/// header: no value split a cell or ended a row.
fn assert_tables_well_formed(md: &str) {
    let pipes = |line: &str| {
        let mut n = 0;
        let mut backslashes = 0;
        for c in line.chars() {
            if c == '|' && backslashes % 2 == 0 {
                n += 1;
            }
            backslashes = if c == '\\' { backslashes + 1 } else { 0 };
        }
        n
    };
    let mut expected: Option<usize> = None;
    let mut tables = 0;
    for line in md.lines() {
        if line.starts_with('|') {
            match expected {
                None => {
                    expected = Some(pipes(line));
                    tables += 1;
                }
                Some(n) => assert_eq!(pipes(line), n, "a table row with a different shape: {line}"),
            }
        } else {
            expected = None;
        }
    }
    assert!(tables > 0, "no tables at all");
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

// ------------------------------------------------------------ format

#[test]
fn formats_parse_with_their_aliases_and_name_the_field_on_error() {
    assert_eq!(ReportFormat::parse_field("format", "md").unwrap(), ReportFormat::Markdown);
    assert_eq!(ReportFormat::parse_field("format", "markdown").unwrap(), ReportFormat::Markdown);
    assert_eq!(ReportFormat::parse_field("format", "html").unwrap(), ReportFormat::Html);
    assert_eq!(ReportFormat::parse_field("format", "json").unwrap(), ReportFormat::Json);
    let err = ReportFormat::parse_field("format", "pdf").unwrap_err();
    assert_eq!(err.field(), Some("format"));
    assert_eq!(err.to_string(), "invalid `format`: `pdf` is not one of `md`, `markdown`, `html`, `json`");
    let exts: Vec<_> = ReportFormat::ALL.iter().map(|f| (f.as_str(), f.extension())).collect();
    assert_eq!(exts, [("markdown", "md"), ("html", "html"), ("json", "json")]);
}

// ------------------------------------------------------------ inventory

#[test]
fn inventory_markdown_has_the_header_the_counts_and_one_row_per_model() {
    let md = render_inventory(&inventory(), ReportFormat::Markdown);
    assert!(md.starts_with("# Model inventory\n"), "{md}");
    assert!(md.contains("- **Generated:** `2026-07-01T09:00:00Z`\n"), "{md}");
    assert!(md.contains(&format!("- **Policy sha256:** `{}`\n", policy())), "{md}");
    assert!(md.contains("4 models in the inventory; 1 with open exceptions to policy."), "{md}");
    // Per tier, most material first, zeros shown.
    assert!(md.contains("| Tier | Models |\n|---|---|\n| critical | 1 |\n| high | 2 |\n| medium | 0 |\n| low | 1 |\n"), "{md}");
    // Per status, the version numbers folded away.
    assert!(md.contains("| Status | Models |\n|---|---|\n| in production | 2 |\n| in validation | 1 |\n| retired | 1 |\n"), "{md}");
    for heading in ["Model", "Purpose", "Intended use", "Restrictions", "Owner", "Developers", "Validators", "Tier", "Status", "Last validation", "Next validation", "Open exceptions"] {
        assert!(md.contains(&format!("| {heading} |")), "column {heading}");
    }
    let credit = md.lines().find(|l| l.starts_with("| `credit-pd` |")).unwrap();
    assert_eq!(
        credit,
        "| `credit-pd` | onnx | high | active | in production (v2) | Probability of default \\| retail | internal | Not for pricing<br>Not for SMEs | alice | risk | bob<br>carol | victor<br>olga | `2026-04-20T14:00:00Z` | `2027-06-01T09:00:00Z` | approval conditions: re-validate after Q1 2027<br>review overdue since 2026-06-01T09:00:00Z |"
    );
    assert!(md.contains("| `old-scorecard` | onnx | high | retired | retired |"), "{md}");
    assert!(md.contains("- `credit-pd`: review overdue since 2026-06-01T09:00:00Z\n"), "{md}");
    assert_tables_well_formed(&md);
}

#[test]
fn inventory_html_and_json() {
    let r = inventory();
    let html = render_inventory(&r, ReportFormat::Html);
    assert!(html.contains("<td>Probability of default | retail</td>"), "{html}");
    assert!(html.contains("<td>Not for pricing\nNot for SMEs</td>"), "line breaks kept by pre-wrap");
    assert!(html.contains("<td>bob<br>carol</td>"));

    let json = json_of(&render_inventory(&r, ReportFormat::Json));
    assert_eq!(json["policy_sha256"], policy());
    assert_eq!(json["generated_at"], "2026-07-01T09:00:00Z");
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["name"], "credit-pd");
    assert_eq!(rows[0]["tier"], "high");
    assert_eq!(rows[0]["production_version"], 2);
    assert_eq!(rows[0]["validators"], serde_json::json!(["victor", "olga"]));
    assert_eq!(rows[3]["state"], "retired");
}

#[test]
fn an_empty_inventory_says_so() {
    let r = InventoryReport { generated_at: at(2026, 7, 1, 9), policy_sha256: policy(), rows: vec![] };
    let md = render_inventory(&r, ReportFormat::Markdown);
    assert!(md.contains("No models in the inventory."));
    assert!(md.contains("No open exceptions to policy."));
}

#[test]
fn statuses_fold_only_version_numbers() {
    use super::inventory::status_category;
    assert_eq!(status_category("in production (v3)"), "in production");
    assert_eq!(status_category("approved (v2), not in production"), "approved, not in production");
    assert_eq!(status_category("no versions"), "no versions");
    assert_eq!(status_category("odd (vx)"), "odd (vx)");
}

// ------------------------------------------------------------ model report

#[test]
fn model_markdown_reads_as_a_governance_record() {
    let r = model_report();
    let md = render_model(&r, ReportFormat::Markdown);
    for heading in [
        "# Governance report: credit-pd\n",
        "\n## Model\n",
        "\n### Tags\n",
        "\n## Versions\n",
        "\n### Version 1\n",
        "\n### Version 2\n",
        "\n#### Lineage\n",
        "\n#### Signature\n",
        "\n#### Model card\n",
        "\n#### Approvals\n",
        "\n#### Evidence\n",
        "\n#### Reviews\n",
        "\n## Gate decisions\n",
        "\n## Audit trail\n",
        "\n## How to verify\n",
    ] {
        assert!(md.contains(heading), "missing {heading:?}");
    }
    // Inventory fields and the validation target.
    assert!(md.contains("- **Validation target:** `auc` must reach 0.75\n"), "{md}");
    assert!(md.contains("- **Developers:** bob, carol\n"));
    assert!(md.contains("- **Intended use:** Score consumer loan applications<br>before underwriting\n"));
    // Approvals with their conditions and expiry.
    assert!(md.contains("| victor | validator | approve | `2026-04-20T14:00:00Z` | Back-testing satisfactory | re-validate after Q1 2027 | `2027-04-01T00:00:00Z` |"), "{md}");
    assert!(md.contains("| olga | approver | approve | `2026-04-20T14:00:00Z` | Back-testing satisfactory | – | never |"), "{md}");
    // Evidence: the metric and the document with its full digest.
    assert!(md.contains("| `auc` | 0.81 | holdout-2026q1 | victor | `2026-04-18T11:00:00Z` |"), "{md}");
    let doc_sha = sha("validation report v2").to_string();
    assert!(md.contains(&format!("| `validation_report` | validation-v2.pdf | 91004 | `{doc_sha}` | victor | `2026-04-19T16:00:00Z` |")), "{md}");
    // Lineage and the artifact, hashes in full.
    assert!(md.contains(&format!("- **Dataset sha256:** `{}`\n", sha("dataset 2026q1"))));
    assert!(md.contains(&format!("- **Artifact:** pd-v2.onnx (48215 bytes), sha256 `{}`\n", sha("artifact 2"))));
    assert!(md.contains("| `max_depth` | `6` |"));
    assert!(md.contains("| output | `pd` | float32 | `[?]` |"));
    // Review and next review.
    assert!(md.contains("| victor | satisfactory | `2026-06-01T09:00:00Z` | Stable | `2027-06-01T09:00:00Z` |"));
    assert!(md.contains("No approvals or rejections recorded."), "version 1 has none");
    assert_tables_well_formed(&md);
}

#[test]
fn denied_gate_decisions_show_every_failing_condition_and_the_policy() {
    let md = render_model(&model_report(), ReportFormat::Markdown);
    let denied = md.lines().find(|l| l.contains("**denied**")).unwrap();
    assert_eq!(
        denied,
        format!(
            "| `2026-05-01T10:00:00Z` | bob | v2 | `promote` | **denied** | `two_approvals`: production needs 2 approvals in force; 1 found<br>`validation_report`: no \\`validation\\_report\\` document \\| attached | `{}` | 5 |",
            old_policy()
        )
    );
    let allowed = md.lines().find(|l| l.contains("| allowed |")).unwrap();
    assert_eq!(allowed, format!("| `2026-05-03T10:00:00Z` | dave | v2 | `promote` | allowed | – | `{}` | 6 |", policy()));
    assert!(md.contains("2 decisions, 1 denied."));

    let html = render_model(&model_report(), ReportFormat::Html);
    assert!(html.contains("<strong>denied</strong>"));
    assert!(html.contains("<code>two_approvals</code>: production needs 2 approvals in force; 1 found<br><code>validation_report</code>: no `validation_report` document | attached"), "{html}");
    assert!(html.contains(&format!("<code>{}</code>", old_policy())));
}

#[test]
fn the_audit_excerpt_prints_hashes_in_full_and_says_how_to_verify() {
    let r = model_report();
    let head = r.chain_head.clone().unwrap();
    let md = render_model(&r, ReportFormat::Markdown);
    assert_eq!(r.audit.len(), 5, "the other model's event is not in the excerpt");
    for e in &r.audit {
        let line = md.lines().find(|l| l.starts_with(&format!("| {} | ", e.sequence))).unwrap();
        assert_eq!(
            line,
            format!(
                "| {} | `{}` | {} | `{}` | `{}` | `{}` | `{}` |",
                e.sequence,
                modelops_core::clock::format_time(&e.time),
                e.actor,
                e.action,
                e.subject,
                e.hash,
                e.prev_hash
            )
        );
    }
    assert!(md.contains(&format!("- The hashes of this excerpt chain into the head `{}/{}` (sequence/hash)", head.sequence, head.hash)), "{md}");
    assert_eq!(head.sequence, 6);
    assert!(md.contains("- Each event's hash is `sha256(prev_hash ‖ canonical JSON of the event)`"), "{md}");
    assert!(md.contains("`modelops audit verify` (online; auditors and admins)"));
    assert!(md.contains("`modelops audit verify --database-url <url>` (offline"));
}

#[test]
fn model_html_is_self_contained_and_escapes_every_value() {
    let html = render_model(&model_report(), ReportFormat::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(!html.to_lowercase().contains("<script"), "no script, not even the model's description");
    assert!(html.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
    assert!(!html.contains("<b>raw html</b>"), "card Markdown is shown, not interpreted");
    assert!(html.contains("&lt;b&gt;raw html&lt;/b&gt;"));
    for fetch in [" src=", "<link", "<img", "<iframe", "url("] {
        assert!(!html.contains(fetch), "{fetch}");
    }
    assert!(html.contains("<tr><td><code>a|b</code></td><td>c|d</td></tr>"), "the tag");
    assert!(html.contains("<section id=\"how-to-verify\"><h2>How to verify</h2>"));
    assert!(html.contains("<a href=\"#gate-decisions\">Gate decisions</a>"));
    assert!(html.contains(&format!("<code>{}</code>", sha("artifact 2"))));
}

#[test]
fn model_markdown_escapes_markup_and_table_breakers() {
    let md = render_model(&model_report(), ReportFormat::Markdown);
    assert!(!md.contains("<script>"));
    assert!(md.contains("- **Description:** &lt;script>alert(1)&lt;/script>\n"), "{md}");
    assert!(md.contains("| `a\\|b` | c\\|d |\n"), "{md}");
    assert!(md.contains("- **Restrictions on use:** Not for small-business loans \\| not for pricing\n"));
    // The card's own Markdown is quoted: its heading cannot become one of the report's.
    assert!(md.contains("> # Credit PD\n>\n> Gradient-boosted trees over bureau data.\n> &lt;b>raw html&lt;/b>\n"), "{md}");
    assert!(!md.contains("\n# Credit PD"));
}

#[test]
fn model_json_parses_back_with_the_report_keys() {
    let r = model_report();
    let json = json_of(&render_model(&r, ReportFormat::Json));
    for key in ["generated_at", "policy_sha256", "model", "versions", "gate_decisions", "audit", "chain_head"] {
        assert!(json.get(key).is_some(), "{key}");
    }
    assert_eq!(json["model"]["name"], "credit-pd");
    assert_eq!(json["model"]["description"], "<script>alert(1)</script>");
    assert_eq!(json["versions"][1]["version"]["number"], 2);
    assert_eq!(json["versions"][1]["approvals"][0]["conditions"], "re-validate after Q1 2027");
    assert_eq!(json["gate_decisions"][0]["allowed"], false);
    assert_eq!(json["gate_decisions"][0]["failed"][0], serde_json::json!(["two_approvals", "production needs 2 approvals in force; 1 found"]));
    assert_eq!(json["audit"].as_array().unwrap().len(), 5);
    assert_eq!(json["audit"][4]["hash"], r.audit[4].hash);
    assert_eq!(json["chain_head"]["sequence"], 6);
}

#[test]
fn a_model_with_nothing_yet_still_renders() {
    let mut m = model();
    m.latest_version = None;
    m.aliases.clear();
    m.tags.clear();
    let r = ModelReport {
        generated_at: at(2026, 7, 1, 9),
        policy_sha256: policy(),
        model: m,
        versions: vec![],
        gate_decisions: vec![],
        audit: vec![],
        chain_head: None,
    };
    let md = render_model(&r, ReportFormat::Markdown);
    assert!(md.contains("No versions registered."));
    assert!(md.contains("No gate decisions recorded."));
    assert!(md.contains("No audit events for this model."));
    assert!(md.contains("The chain head was not recorded with this report"));
    assert!(!md.contains("### Tags"));
    assert!(render_model(&r, ReportFormat::Html).contains("No versions registered."));
}

// ------------------------------------------------------------ Annex IV

const EXPECTED_MISSING: [&str; 12] = [
    "1(d) Forms in which the system is placed on the market or put into service",
    "1(e) Hardware on which the system is intended to run",
    "1(f) Photographs or illustrations of the product",
    "1(g) User interface provided to the deployer",
    "2(c) System architecture and computational resources",
    "2(e) Assessment of the human oversight measures",
    "2(f) Pre-determined changes",
    "2(h) Cybersecurity measures",
    "3. Accuracy for specific persons or groups",
    "4. Appropriateness of the performance metrics",
    "7. Harmonised standards applied",
    "8. EU declaration of conformity",
];

#[test]
fn annex_iv_lists_exactly_what_the_registry_could_not_fill() {
    let r = annex_report();
    assert_eq!(annex_iv_missing(&r), EXPECTED_MISSING);

    let md = render_annex_iv(&r, ReportFormat::Markdown);
    assert!(md.starts_with("# Annex IV technical documentation (draft): credit-pd\n"), "{md}");
    assert!(md.contains("> **Draft generated from the modelops registry**"), "{md}");
    assert!(md.contains("the provider is to complete it, review it and take responsibility for it"));
    for point in [
        "## 1. General description of the AI system",
        "## 2. Elements of the AI system and its development",
        "## 3. Monitoring, functioning and control",
        "## 4. Appropriateness of the performance metrics",
        "## 5. Risk management system (Art. 9)",
        "## 6. Changes through the lifecycle",
        "## 7. Standards applied",
        "## 8. EU declaration of conformity",
        "## 9. Post-market monitoring (Art. 72)",
        "## Missing items",
    ] {
        assert!(md.contains(&format!("\n{point}\n")), "{point}");
    }
    let list = md.split("\n## Missing items\n").nth(1).unwrap();
    assert!(list.contains("12 items are to be written by the provider:"));
    let listed: Vec<&str> = list.lines().filter(|l| l.starts_with("- **")).collect();
    assert_eq!(listed.len(), EXPECTED_MISSING.len());
    for (line, item) in listed.iter().zip(EXPECTED_MISSING) {
        assert!(line.starts_with(&format!("- **{item}**: ")), "{line}");
    }
    for filled in ["Intended purpose", "Provider", "Interaction with other", "Training data", "Expected inputs", "Test logs", "Human oversight measures", "Post-market"] {
        assert!(!list.contains(filled), "{filled} is filled, not missing");
    }
    // A missing item is marked where it stands, with what to add.
    assert!(md.contains("### 2(h) Cybersecurity measures\n\n**Missing** — the cybersecurity measures put in place\n"), "{md}");
    assert!(md.contains("**Missing** — why auc reaching 0.75 measures fitness for the intended purpose"), "{md}");
}

#[test]
fn annex_iv_fills_the_points_from_the_registry() {
    let md = render_annex_iv(&annex_report(), ReportFormat::Markdown);
    assert!(md.contains("- **Documented version:** v2 (production)\n"));
    assert!(md.contains("- **Business purpose:** Probability of default for retail loan origination\n"));
    assert!(md.contains("- **Model owner:** alice\n"));
    assert!(md.contains("- **Version:** v2 (the production version), production\n"), "{md}");
    assert!(md.contains("- **Derived from:** v1\n"));
    assert!(md.contains("- bureau-score (v3, production)\n"));
    assert!(md.contains("- **Dataset:** `s3://risk-data/loans/2026q1.parquet`\n"));
    assert!(md.contains(&format!("- **Dataset sha256:** `{}`\n", sha("dataset 2026q1"))));
    assert!(md.contains("- **Dataset rows:** 1250000\n"));
    assert!(md.contains("- **Code commit:** `9f2c1e7`\n"));
    assert!(md.contains("| `eta` | `0.1` |"));
    assert!(md.contains("| input | `debt_ratio` | float64 | `scalar` |"));
    assert!(md.contains("| `auc` | 0.81 | holdout-2026q1 | victor | `2026-04-18T11:00:00Z` |"));
    assert!(md.contains("| `ks` | 0.42 |"), "card metrics");
    assert!(md.contains("- **Evaluation data (model card):** Holdout 2026Q1, 250k loans\n"));
    assert!(md.contains(&format!("| `validation_report` | validation-v2.pdf | `{}` | victor | `2026-04-19T16:00:00Z` |", sha("validation report v2"))));
    assert!(md.contains("- victor (validator) approved at `2026-04-20T14:00:00Z`\n"));
    assert!(md.contains("- **Limitations (model card):** Not calibrated for applicants with thin credit files\n"));
    assert!(md.contains("for this high tier model, neither does any listed developer (bob, carol)."));
    assert!(md.contains(&format!("- **Policy sha256:** `{}`\n", policy())));
    assert!(md.contains("- **Next periodic review:** `2027-06-01T09:00:00Z`\n"));
    assert!(md.contains("**To complete:** a datasheet: provenance"));
    assert_tables_well_formed(&md);

    let html = render_annex_iv(&annex_report(), ReportFormat::Html);
    assert!(html.contains("<strong class=\"missing\">Missing</strong> — a copy of the EU declaration of conformity (Art. 47)"));
    assert!(!html.to_lowercase().contains("<script"));
    assert!(html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"));
}

#[test]
fn annex_iv_without_a_version_marks_the_version_items_missing() {
    let mut m = model();
    m.intended_use.clear();
    m.business_purpose.clear();
    m.latest_version = None;
    m.validation = None;
    let r = AnnexIvReport { generated_at: at(2026, 7, 1, 9), policy_sha256: policy(), model: m, version: None, dependencies: vec![] };
    let missing = annex_iv_missing(&r);
    for item in [
        "1(a) Intended purpose",
        "1(a) Version and its relation to previous versions",
        "1(b) Interaction with other hardware, software and AI systems",
        "1(h) Instructions for use for the deployer",
        "2(b) Expected inputs and outputs",
        "2(d) Training data",
        "2(g) Test logs and reports, dated and signed",
        "6. Changes through the lifecycle",
        "9. Post-market monitoring",
    ] {
        assert!(missing.iter().any(|m| m == item), "{item} should be missing: {missing:?}");
    }
    assert!(!missing.iter().any(|m| m.starts_with("5.")), "the tier and the policy are always known");
    let md = render_annex_iv(&r, ReportFormat::Markdown);
    assert!(md.contains("- **Documented version:** none registered\n"));
    assert!(md.contains(&format!("{} items are to be written by the provider:", missing.len())));
}

#[test]
fn annex_iv_json_carries_the_missing_items() {
    let r = annex_report();
    let json = json_of(&render_annex_iv(&r, ReportFormat::Json));
    for key in ["generated_at", "policy_sha256", "model", "version", "dependencies", "missing"] {
        assert!(json.get(key).is_some(), "{key}");
    }
    assert_eq!(json["missing"], serde_json::json!(EXPECTED_MISSING));
    assert_eq!(json["version"]["version"]["number"], 2);
    assert_eq!(json["dependencies"][0], "bureau-score (v3, production)");
}

#[test]
fn a_retrained_version_says_which_run_and_window_produced_it() {
    let mut r = model_report();
    let window = modelops_core::retrain::TriggerWindow {
        deployment: ModelName::parse("loans-live").unwrap(),
        monitor: "drift".into(),
        start: at(2026, 6, 1, 0),
        end: at(2026, 6, 2, 0),
        version: 1,
    };
    r.versions[1].version.lineage.retrain =
        Some(modelops_core::retrain::RetrainLineage { job_run: 7, trigger: modelops_core::retrain::RunTrigger::Alert, alert: Some(12), window: Some(window) });
    let md = render_model(&r, ReportFormat::Markdown);
    let line = md.lines().find(|l| l.contains("Retrained by")).unwrap_or_else(|| panic!("{md}"));
    assert!(line.contains("run 7 (trigger: alert), alert 12, window of `loans-live` (drift, version 1) 2026-06-01T00:00:00Z → 2026-06-02T00:00:00Z"), "{line}");
    // Versions not retrained say nothing about it.
    assert_eq!(render_model(&model_report(), ReportFormat::Markdown).matches("Retrained by").count(), 0);
}
