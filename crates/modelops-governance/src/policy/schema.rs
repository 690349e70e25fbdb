//! The schema of [`GateContext`](crate::context::GateContext): what a
//! policy's conditions may read, with the types `modelops-expr` checks them
//! against. It mirrors the context field by field; a test serialises both
//! and compares, so a field added to the context without being added here
//! (or the reverse) fails the build's tests.

use modelops_expr::{Schema, Type};

/// The schema every policy condition is compiled against.
pub fn context_schema() -> Schema {
    let s = || Type::String;
    let strings = || Type::list(Type::String);
    let card = Type::object([
        ("markdown", s()),
        ("intended_use", s()),
        ("limitations", s()),
        ("ethical_considerations", s()),
        ("evaluation_data", s()),
        ("metrics", Type::map(Type::Double)),
    ]);
    let lineage = Type::object([
        ("dataset_uri", s()),
        ("dataset_sha256", s()),
        ("dataset_rows", Type::Int),
        ("code_commit", s()),
        ("training_metrics", Type::map(Type::Double)),
        ("parent_version", Type::Int),
        ("mlflow_run_id", s()),
    ]);
    let version = Type::object([
        ("model", s()),
        ("number", Type::Int),
        ("state", s()),
        ("author", s()),
        ("created_at", Type::Timestamp),
        ("description", s()),
        ("tags", Type::map(Type::String)),
        ("aliases", strings()),
        ("card", card),
        ("lineage", lineage),
        ("signature", Type::object([("inputs", strings()), ("outputs", strings())])),
    ]);
    let model = Type::object([
        ("name", s()),
        ("kind", s()),
        ("tier", s()),
        ("owner", s()),
        ("team", s()),
        ("developers", strings()),
        ("business_purpose", s()),
        ("intended_use", s()),
        ("restrictions", s()),
        ("tags", Type::map(Type::String)),
        ("validation_metric", s()),
        ("validation_threshold", Type::Double),
        ("production_version", Type::Int),
        ("review_overdue", Type::Bool),
    ]);
    let approval = Type::object([
        ("by", s()),
        ("roles", strings()),
        ("comment", s()),
        ("conditions", s()),
        ("at", Type::Timestamp),
        ("expires", Type::Bool),
    ]);
    let metric = Type::object([("name", s()), ("value", Type::Double), ("dataset", s()), ("by", s()), ("at", Type::Timestamp)]);
    let document = Type::object([("name", s()), ("filename", s()), ("sha256", s()), ("by", s()), ("at", Type::Timestamp)]);
    Schema::new()
        .var("version", version)
        .var("model", model)
        .var("approvals", Type::list(approval))
        .var("evidence", Type::object([("metrics", Type::list(metric)), ("documents", Type::list(document))]))
        .var("actor", Type::object([("name", s()), ("roles", strings()), ("team", s())]))
        .var("now", Type::Timestamp)
        .var("transition", Type::object([("name", s()), ("to", s())]))
}
