//! A draft of the EU AI Act Annex IV technical documentation (Art. 11),
//! points 1–9, filled from what the registry records. An item the registry
//! cannot fill is marked missing and listed at the end, so the provider sees
//! what is left to write.

use super::doc::{Block, Doc, Table, Text};
use super::model::{artifact, hyperparameter_table, lineage_facts, metric_table, people, production_version, shape_text, signature_table, validation_target};
use super::{fmt_time, AnnexIvReport};
use modelops_core::governance::{Decision, EvidenceKind};
use modelops_core::model::RiskTier;
use std::collections::BTreeSet;

/// One numbered point of Annex IV.
pub(super) struct Point {
    pub heading: &'static str,
    pub items: Vec<Item>,
}

/// One item of a point: filled from the registry, or missing.
pub(super) struct Item {
    /// `1(a)`, `4.`: where Annex IV asks for it.
    pub reference: &'static str,
    pub label: &'static str,
    /// `None`: the registry holds nothing for it.
    pub content: Option<Vec<Block>>,
    /// What the provider is to add: the whole item when missing, the rest
    /// when filled (empty when nothing is known to be left).
    pub todo: String,
}

impl Item {
    pub fn title(&self) -> String {
        format!("{} {}", self.reference, self.label)
    }

    fn filled(reference: &'static str, label: &'static str, content: Vec<Block>, todo: &str) -> Self {
        Item { reference, label, content: Some(content), todo: todo.to_owned() }
    }

    fn missing(reference: &'static str, label: &'static str, todo: impl Into<String>) -> Self {
        Item { reference, label, content: None, todo: todo.into() }
    }

    /// Filled with `content()` when `known`, else missing with `todo`.
    fn filled_if(reference: &'static str, label: &'static str, known: bool, content: impl FnOnce() -> Vec<Block>, todo: &str) -> Self {
        if known {
            Item::filled(reference, label, content(), "")
        } else {
            Item::missing(reference, label, todo)
        }
    }

    /// What is left to add when the item is filled.
    fn with_rest(mut self, rest: &str) -> Self {
        if self.content.is_some() {
            self.todo = rest.to_owned();
        }
        self
    }
}

pub(super) fn document(r: &AnnexIvReport) -> Doc {
    let m = &r.model;
    let mut d = Doc::new("EU AI Act Annex IV draft", format!("Annex IV technical documentation (draft): {}", m.name));
    d.meta("Generated", Text::code(fmt_time(&r.generated_at)));
    d.meta("Policy sha256", Text::code(&r.policy_sha256));
    d.meta(
        "Documented version",
        match &r.version {
            Some(v) => Text::plain(format!("v{} ({})", v.version.number, v.version.state)),
            None => Text::plain("none registered"),
        },
    );
    d.push(Block::Note(
        Text::strong("Draft generated from the modelops registry")
            .text(" for the technical documentation of Article 11 and Annex IV of Regulation (EU) 2024/1689. It holds only what the registry records; the provider is to complete it, review it and take responsibility for it. Items the registry could not fill are marked ")
            .then(Text::missing())
            .text(" and listed under “Missing items” at the end."),
    ));

    let points = points(r);
    let missing: Vec<Text> = points
        .iter()
        .flat_map(|p| p.items.iter())
        .filter(|i| i.content.is_none())
        .map(|i| Text::strong(i.title()).text(": ").text(&i.todo))
        .collect();
    for p in points {
        d.h2(p.heading);
        let single = p.items.len() == 1;
        for item in p.items {
            if !single {
                d.h3(item.title());
            }
            match item.content {
                Some(blocks) => {
                    for b in blocks {
                        d.push(b);
                    }
                    if !item.todo.is_empty() {
                        d.para(Text::strong("To complete:").text(" ").text(item.todo));
                    }
                }
                None => d.para(Text::missing().text(" — ").text(item.todo)),
            }
        }
    }

    d.h2("Missing items");
    if missing.is_empty() {
        d.para(Text::plain("None: every item holds registry data. Review each before relying on it."));
    } else {
        let n = missing.len();
        d.para(Text::plain(format!("{n} {} to be written by the provider:", if n == 1 { "item is" } else { "items are" })));
        d.push(Block::List(missing));
    }
    d
}

/// Annex IV's points in order, each item filled from `r` or missing.
pub(super) fn points(r: &AnnexIvReport) -> Vec<Point> {
    let m = &r.model;
    let rec = r.version.as_ref();
    let ver = rec.map(|x| &x.version);
    let card = ver.map(|v| &v.card);
    let nonblank = |s: &str| !s.trim().is_empty();
    let card_has = |f: fn(&modelops_core::version::ModelCard) -> &str| card.is_some_and(|c| nonblank(f(c)));

    // ---------------------------------------------------------------- 1
    let purpose = Item::filled_if(
        "1(a)",
        "Intended purpose",
        nonblank(&m.business_purpose) || nonblank(&m.intended_use) || card_has(|c| c.intended_use.as_str()),
        || {
            let mut facts = vec![
                ("Business purpose".to_owned(), Text::value(&m.business_purpose)),
                ("Intended use".to_owned(), Text::value(&m.intended_use)),
            ];
            if let (Some(v), Some(c)) = (ver, card) {
                facts.push((format!("Intended use (model card of v{})", v.number), Text::value(&c.intended_use)));
            }
            facts.push(("Restrictions on use".to_owned(), Text::value(&m.restrictions)));
            vec![Block::Facts(facts)]
        },
        "the intended purpose of the system",
    );
    let provider = if nonblank(&m.owner) {
        Item::filled(
            "1(a)",
            "Provider",
            vec![Block::Facts(vec![
                ("Model owner".to_owned(), Text::plain(&m.owner)),
                ("Team".to_owned(), Text::value(&m.team)),
                ("Developers".to_owned(), people(&m.developers)),
                ("Registered".to_owned(), Text::code(fmt_time(&m.created_at)).text(" by ").text(&m.created_by)),
            ])],
            "the provider's name and address",
        )
    } else {
        Item::missing("1(a)", "Provider", "the provider's name and address, and the accountable model owner")
    };
    let version = match (rec, ver) {
        (Some(rec), Some(v)) => {
            let role = if production_version(m) == Some(v.number) { "the production version" } else { "the latest version" };
            let mut facts = vec![
                ("Version".to_owned(), Text::plain(format!("v{} ({role}), {}", v.number, v.state))),
                ("Created".to_owned(), Text::code(fmt_time(&v.created_at)).text(" by ").text(&v.created_by)),
                ("Derived from".to_owned(), v.lineage.parent_version.map_or_else(|| Text::plain("no parent version recorded"), |p| Text::plain(format!("v{p}")))),
                ("Versions registered".to_owned(), m.latest_version.map_or_else(Text::dash, |n| Text::plain(format!("v1 to v{n}")))),
                ("Aliases".to_owned(), Text::codes(v.aliases.iter().cloned(), ", ")),
            ];
            if let Some(next) = &rec.next_review_at {
                facts.push(("Next periodic review".to_owned(), Text::code(fmt_time(next))));
            }
            Item::filled("1(a)", "Version and its relation to previous versions", vec![Block::Facts(facts)], "")
        }
        _ => Item::missing("1(a)", "Version and its relation to previous versions", "no version of the model is registered"),
    };
    let interaction = Item::filled_if(
        "1(b)",
        "Interaction with other hardware, software and AI systems",
        !r.dependencies.is_empty(),
        || {
            vec![
                Block::Para(Text::plain("Systems this model consumes the output of, as declared in the registry:")),
                Block::List(r.dependencies.iter().map(Text::plain).collect()),
            ]
        },
        "no dependencies are recorded; describe how the system interacts with hardware, software and other AI systems outside it, or state that it does not",
    );
    let software = match ver {
        Some(v) => Item::filled(
            "1(c)",
            "Versions of relevant software and update requirements",
            vec![Block::Facts(vec![
                ("Model kind (runtime)".to_owned(), Text::plain(m.kind.as_str())),
                ("Artifact".to_owned(), artifact(v)),
                ("Code commit".to_owned(), v.lineage.code_commit.as_deref().map_or_else(Text::dash, Text::code_value)),
            ])],
            "the versions of the serving software and any requirements for updates",
        ),
        None => Item::missing("1(c)", "Versions of relevant software and update requirements", "the software and firmware versions and update requirements"),
    };
    let general = Point {
        heading: "1. General description of the AI system",
        items: vec![
            purpose,
            provider,
            version,
            interaction,
            software,
            Item::missing("1(d)", "Forms in which the system is placed on the market or put into service", "e.g. a software package, a download or an API"),
            Item::missing("1(e)", "Hardware on which the system is intended to run", "the target hardware"),
            Item::missing("1(f)", "Photographs or illustrations of the product", "where the system is a component of a product; otherwise state that it is not"),
            Item::missing("1(g)", "User interface provided to the deployer", "a basic description of the user interface"),
            Item::filled_if(
                "1(h)",
                "Instructions for use for the deployer",
                card_has(|c| c.markdown.as_str()),
                || {
                    vec![
                        Block::Para(Text::plain(format!(
                            "The model card of v{}, as the basis of the instructions for use (Art. 13):",
                            ver.map_or(0, |v| v.number)
                        ))),
                        Block::Verbatim(card.map(|c| c.markdown.clone()).unwrap_or_default()),
                    ]
                },
                "the instructions for use (Art. 13); the version has no model card text",
            ),
        ],
    };

    // ---------------------------------------------------------------- 2
    let methods_known = nonblank(&m.description)
        || ver.is_some_and(|v| nonblank(&v.description) || v.lineage.code_commit.is_some() || v.lineage.mlflow_run_id.is_some());
    let methods = Item::filled_if(
            "2(a)",
            "Methods and steps of development",
            methods_known,
            || {
                let mut facts = vec![("Model".to_owned(), Text::value(&m.description))];
                if let Some(v) = ver {
                    facts.push((format!("Version v{}", v.number), Text::value(&v.description)));
                    facts.push(("Code commit".to_owned(), v.lineage.code_commit.as_deref().map_or_else(Text::dash, Text::code_value)));
                    facts.push(("MLflow run".to_owned(), v.lineage.mlflow_run_id.as_deref().map_or_else(Text::dash, Text::code_value)));
                }
                vec![Block::Facts(facts)]
            },
            "the methods and steps of development, including third-party pre-trained systems or tools",
    )
    .with_rest("the use of third-party pre-trained systems or tools, and how they were integrated");
    let hyper = ver.is_some_and(|v| !v.lineage.hyperparameters.is_empty());
    let design = Item::filled_if(
        "2(b)",
        "Design specifications",
        hyper || m.validation.is_some(),
        || {
            let mut blocks = vec![Block::Facts(vec![
                ("Model kind".to_owned(), Text::plain(m.kind.as_str())),
                ("Validation target".to_owned(), validation_target(m)),
            ])];
            if let Some(v) = ver.filter(|_| hyper) {
                blocks.push(Block::Table(hyperparameter_table(v)));
            }
            blocks
        },
        "the general logic and algorithms, key design choices with their rationale and assumptions, what the system optimises for, and trade-offs",
    );
    let io_known = ver.is_some_and(|v| !v.signature.inputs.is_empty() || !v.signature.outputs.is_empty());
    let io = Item::filled_if(
        "2(b)",
        "Expected inputs and outputs",
        io_known,
        || ver.map(|v| vec![Block::Table(signature_table(v))]).unwrap_or_default(),
        "the input and output signature and the expected output quality",
    );
    let data_known = ver.is_some_and(|v| v.lineage.dataset_uri.is_some() || v.lineage.dataset_sha256.is_some());
    let data = Item::filled_if(
            "2(d)",
            "Training data",
            data_known,
            || ver.map(|v| vec![Block::Facts(lineage_facts(v).into_iter().take(3).collect())]).unwrap_or_default(),
            "the training data sets (URI, digest, size) and a datasheet describing them",
    )
    .with_rest("a datasheet: provenance, scope and characteristics, how the data was obtained and selected, labelling and cleaning");

    let evidence: Vec<&modelops_core::governance::Evidence> = rec.map(|x| x.evidence.iter().collect()).unwrap_or_default();
    let metric_evidence: Vec<_> = evidence.iter().filter(|e| e.kind == EvidenceKind::Metric).collect();
    let documents: Vec<_> = evidence.iter().filter(|e| e.kind == EvidenceKind::Document).collect();
    let datasets: BTreeSet<&str> = metric_evidence.iter().map(|e| e.dataset.as_str()).filter(|s| nonblank(s)).collect();
    let testing_data = Item::filled_if(
        "2(g)",
        "Validation and testing data",
        card_has(|c| c.evaluation_data.as_str()) || !datasets.is_empty(),
        || {
            vec![Block::Facts(vec![
                ("Evaluation data (model card)".to_owned(), card.map_or_else(Text::dash, |c| Text::value(&c.evaluation_data))),
                ("Datasets of the validation metrics".to_owned(), Text::lines(datasets.iter().map(|s| (*s).to_owned()))),
            ])]
        },
        "the validation and testing data used and their main characteristics",
    );
    let card_metrics = card.is_some_and(|c| !c.metrics.is_empty());
    let training_metrics = ver.is_some_and(|v| !v.lineage.training_metrics.is_empty());
    let metrics = Item::filled_if(
        "2(g)",
        "Metrics of accuracy, robustness and discriminatory impact",
        card_metrics || training_metrics || !metric_evidence.is_empty(),
        || {
            let mut blocks = vec![Block::Facts(vec![("Validation target".to_owned(), validation_target(m))])];
            if let Some(v) = ver {
                if !metric_evidence.is_empty() {
                    let mut t = Table::new(&["Validation metric", "Value", "Dataset", "By", "At"]);
                    for e in &metric_evidence {
                        t.row(vec![
                            Text::code(&e.name),
                            e.value.map_or_else(Text::dash, |x| Text::plain(x.to_string())),
                            Text::value(&e.dataset),
                            Text::value(&e.created_by),
                            Text::code(fmt_time(&e.created_at)),
                        ]);
                    }
                    blocks.push(Block::Table(t));
                }
                if card_metrics {
                    blocks.push(Block::Table(metric_table("Model card metric", &v.card.metrics)));
                }
                if training_metrics {
                    blocks.push(Block::Table(metric_table("Training metric", &v.lineage.training_metrics)));
                }
            }
            blocks
        },
        "the metrics used to measure accuracy, robustness and potentially discriminatory impacts",
    );
    let approvals: Vec<&modelops_core::governance::Approval> = rec.map(|x| x.approvals.iter().collect()).unwrap_or_default();
    let reports = Item::filled_if(
        "2(g)",
        "Test logs and reports, dated and signed",
        !documents.is_empty(),
        || {
            let mut t = Table::new(&["Document", "File", "sha256", "Attached by", "At"]);
            for e in &documents {
                t.row(vec![
                    Text::code(&e.name),
                    e.document.as_ref().map_or_else(Text::dash, |doc| Text::value(&doc.filename)),
                    e.document.as_ref().map_or_else(Text::dash, |doc| Text::code(doc.sha256.as_str())),
                    Text::value(&e.created_by),
                    Text::code(fmt_time(&e.created_at)),
                ]);
            }
            let mut blocks = vec![Block::Table(t)];
            if !approvals.is_empty() {
                blocks.push(Block::Para(Text::plain("Signed off by:")));
                blocks.push(Block::List(approvals.iter().map(|a| sign_off(a)).collect()));
            }
            blocks
        },
        "the validation and test reports, dated and signed by the responsible persons (attach them as document evidence)",
    );
    let development = Point {
        heading: "2. Elements of the AI system and its development",
        items: vec![
            methods,
            design,
            io,
            Item::missing("2(c)", "System architecture and computational resources", "how the software components build on each other, and the compute used to develop, train, test and validate"),
            data,
            Item::missing(
                "2(e)",
                "Assessment of the human oversight measures",
                "the assessment of the oversight measures needed (Art. 14) and of the means for deployers to interpret outputs (Art. 13(3)(d)); the measures in place are under point 3",
            ),
            Item::missing("2(f)", "Pre-determined changes", "changes to the system and its performance determined in advance, and how compliance is kept through them"),
            testing_data,
            metrics,
            reports,
            Item::missing("2(h)", "Cybersecurity measures", "the cybersecurity measures put in place"),
        ],
    };

    // ---------------------------------------------------------------- 3
    let limitations = Item::filled_if(
        "3.",
        "Capabilities and limitations in performance",
        card_has(|c| c.limitations.as_str()) || nonblank(&m.restrictions),
        || {
            vec![Block::Facts(vec![
                ("Limitations (model card)".to_owned(), card.map_or_else(Text::dash, |c| Text::value(&c.limitations))),
                ("Restrictions on use".to_owned(), Text::value(&m.restrictions)),
            ])]
        },
        "the capabilities and limitations in performance, and the expected overall accuracy for the intended purpose",
    );
    let risks = Item::filled_if(
        "3.",
        "Foreseeable unintended outcomes and sources of risk",
        card_has(|c| c.ethical_considerations.as_str()),
        || vec![Block::Facts(vec![("Ethical considerations (model card)".to_owned(), card.map_or_else(Text::dash, |c| Text::value(&c.ethical_considerations)))])],
        "foreseeable unintended outcomes and risks to health, safety, fundamental rights and of discrimination",
    );
    let strict = matches!(m.risk_tier, RiskTier::High | RiskTier::Critical);
    let oversight = Item::filled(
        "3.",
        "Human oversight measures",
        {
            let mut rule = Text::plain("Separation of duties, which no policy can switch off: the author of a version never approves or rejects it");
            rule = if strict {
                rule.text(format!("; for this {} tier model, neither does any listed developer ({}).", m.risk_tier, if m.developers.is_empty() { "none listed".to_owned() } else { m.developers.join(", ") }))
            } else {
                rule.text(".")
            };
            let mut blocks = vec![Block::List(vec![
                rule,
                Text::plain("Moving a version into validation, approving it and promoting it to production each pass the policy's gate for the model's tier; a denied transition is refused and recorded."),
            ])];
            let mut t = Table::new(&["Approver", "Roles", "Decision", "At", "Conditions", "Expires"]);
            for a in &approvals {
                t.row(vec![
                    Text::value(&a.approver),
                    Text::plain(a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")),
                    Text::plain(a.decision.as_str()),
                    Text::code(fmt_time(&a.created_at)),
                    Text::value(&a.conditions),
                    a.expires_at.as_ref().map_or_else(|| Text::plain("never"), |t| Text::code(fmt_time(t))),
                ]);
            }
            if t.rows.is_empty() {
                blocks.push(Block::Para(Text::plain("No approval of the documented version is recorded yet.")));
            } else {
                blocks.push(Block::Table(t));
            }
            blocks
        },
        "the measures deployers apply in operation: who may override, disregard or stop the system's output, and how",
    );
    let inputs_known = ver.is_some_and(|v| !v.signature.inputs.is_empty());
    let inputs = Item::filled_if(
        "3.",
        "Specifications of input data",
        inputs_known,
        || {
            let mut t = Table::new(&["Input", "Type", "Shape"]);
            for f in ver.map(|v| v.signature.inputs.as_slice()).unwrap_or_default() {
                t.row(vec![Text::code(&f.name), Text::plain(f.dtype.as_str()), Text::code(shape_text(&f.shape))]);
            }
            vec![Block::Table(t)]
        },
        "the specifications of the input data",
    );
    let functioning = Point {
        heading: "3. Monitoring, functioning and control",
        items: vec![
            limitations,
            Item::missing("3.", "Accuracy for specific persons or groups", "the degrees of accuracy for the persons or groups the system is used on (disaggregated results)"),
            risks,
            oversight,
            inputs,
        ],
    };

    // ---------------------------------------------------------------- 4–9
    let appropriateness = Item::missing(
        "4.",
        "Appropriateness of the performance metrics",
        match &m.validation {
            Some(v) => format!("why {} reaching {} measures fitness for the intended purpose", v.metric, v.threshold),
            None => "why the chosen performance metrics fit this system (the model sets no validation target)".to_owned(),
        },
    );
    let risk = Item::filled(
        "5.",
        "Risk management system",
        vec![Block::Facts(vec![
            ("Risk tier".to_owned(), Text::plain(m.risk_tier.as_str())),
            ("Policy sha256".to_owned(), Text::code(&r.policy_sha256)),
            (
                "Gates".to_owned(),
                Text::code("submit")
                    .text(" (to ")
                    .and_code("in_validation")
                    .text("), ")
                    .and_code("approve")
                    .text(" (to ")
                    .and_code("approved")
                    .text(") and ")
                    .and_code("promote")
                    .text(" (to ")
                    .and_code("production")
                    .text(") are each evaluated against the policy's conditions for the tier, inside the transaction that makes the change; each decision, allowed or denied, is recorded in the audit log with the policy's sha256"),
            ),
            ("Validation target".to_owned(), validation_target(m)),
        ])],
        "the identification, estimation and evaluation of risks and the measures adopted (Art. 9(2))",
    );
    let changes = match ver {
        Some(v) => Item::filled(
            "6.",
            "Changes through the lifecycle",
            vec![
                Block::Facts(vec![
                    ("Model registered".to_owned(), Text::code(fmt_time(&m.created_at)).text(" by ").text(&m.created_by)),
                    ("Model last changed".to_owned(), Text::code(fmt_time(&m.updated_at))),
                    ("Versions registered".to_owned(), m.latest_version.map_or_else(Text::dash, |n| Text::plain(n.to_string()))),
                    (format!("v{} created", v.number), Text::code(fmt_time(&v.created_at)).text(" by ").text(&v.created_by)),
                    ("Derived from".to_owned(), v.lineage.parent_version.map_or_else(Text::dash, |p| Text::plain(format!("v{p}")))),
                ]),
                Block::Para(Text::plain("Every change is recorded in the tamper-evident audit log; the model's governance report lists each version and event.")),
            ],
            "",
        ),
        None => Item::missing("6.", "Changes through the lifecycle", "no version of the model is registered"),
    };
    let reviews: Vec<&modelops_core::governance::Review> = rec.map(|x| x.reviews.iter().collect()).unwrap_or_default();
    let next_review = rec.and_then(|x| x.next_review_at);
    let pmm = Item::filled_if(
            "9.",
            "Post-market monitoring",
            next_review.is_some() || !reviews.is_empty(),
            || {
                let mut blocks = vec![Block::Facts(vec![
                    ("Next periodic review".to_owned(), next_review.as_ref().map_or_else(Text::dash, |t| Text::code(fmt_time(t)))),
                    ("Reviews recorded".to_owned(), Text::plain(reviews.len().to_string())),
                ])];
                let mut t = Table::new(&["Reviewer", "Outcome", "Reviewed", "Next review"]);
                for rv in &reviews {
                    t.row(vec![
                        Text::value(&rv.reviewer),
                        Text::plain(rv.outcome.as_str()),
                        Text::code(fmt_time(&rv.reviewed_at)),
                        Text::code(fmt_time(&rv.next_review_at)),
                    ]);
                }
                if !t.rows.is_empty() {
                    blocks.push(Block::Table(t));
                }
                blocks
            },
            "the post-market monitoring system and plan (Art. 72(3)); no periodic review is scheduled",
    )
    .with_rest("the post-market monitoring plan of Art. 72(3): data collected, indicators and thresholds");

    vec![
        general,
        development,
        functioning,
        Point { heading: "4. Appropriateness of the performance metrics", items: vec![appropriateness] },
        Point { heading: "5. Risk management system (Art. 9)", items: vec![risk] },
        Point { heading: "6. Changes through the lifecycle", items: vec![changes] },
        Point {
            heading: "7. Standards applied",
            items: vec![Item::missing(
                "7.",
                "Harmonised standards applied",
                "the harmonised standards applied, or the solutions adopted to meet Chapter III, Section 2",
            )],
        },
        Point {
            heading: "8. EU declaration of conformity",
            items: vec![Item::missing("8.", "EU declaration of conformity", "a copy of the EU declaration of conformity (Art. 47)")],
        },
        Point { heading: "9. Post-market monitoring (Art. 72)", items: vec![pmm] },
    ]
}

fn sign_off(a: &modelops_core::governance::Approval) -> Text {
    let verb = match a.decision {
        Decision::Approve => "approved",
        Decision::Reject => "rejected",
    };
    Text::plain(format!("{} ({}) {verb} at ", a.approver, a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")))
        .and_code(fmt_time(&a.created_at))
}
