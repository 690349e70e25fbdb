//! A model version: an immutable snapshot of an artifact, its lineage and
//! signature. Only the description, tags, model card and lifecycle state
//! change after creation, and each change is audited.

use crate::error::{Error, Result};
use crate::model::{check_tags, check_text, string_enum, MAX_SHORT_TEXT_LEN, MAX_TEXT_LEN};
use crate::name::{quote, ModelName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

string_enum!(
    /// Lifecycle of a version (DESIGN §3). Governance adds the transitions;
    /// the foundation creates versions as `draft` and retires them.
    VersionState {
        Draft => "draft",
        InValidation => "in_validation",
        Approved => "approved",
        Production => "production",
        Retired => "retired",
        Rejected => "rejected",
    }
);

string_enum!(
    /// Element type of a signature field.
    DataType {
        Bool => "bool",
        Int32 => "int32",
        Int64 => "int64",
        Float32 => "float32",
        Float64 => "float64",
        String => "string",
        Bytes => "bytes",
        Datetime => "datetime",
    }
);

/// A lowercase hex sha256 digest, 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse_field(field: &str, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(Error::invalid(field, format!("{} is not a lowercase hex sha256 digest (64 characters)", quote(&value))));
        }
        Ok(Self(value))
    }

    pub fn from_digest(digest: &[u8; 32]) -> Self {
        Self(hex::encode(digest))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse_field("sha256", value)
    }
}

impl From<Sha256Hex> for String {
    fn from(value: Sha256Hex) -> String {
        value.0
    }
}

impl std::fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The artifact a version points at: content-addressed, so the digest is the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub sha256: Sha256Hex,
    pub size: u64,
    /// The file name the client gave, for downloads. Not part of the address.
    pub filename: String,
}

/// Where a version came from. Immutable once the version exists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    pub dataset_uri: Option<String>,
    pub dataset_sha256: Option<Sha256Hex>,
    pub dataset_rows: Option<u64>,
    pub code_commit: Option<String>,
    pub hyperparameters: BTreeMap<String, serde_json::Value>,
    pub training_metrics: BTreeMap<String, f64>,
    /// Another version of the same model this one was derived from.
    pub parent_version: Option<u32>,
    pub mlflow_run_id: Option<String>,
    /// The retraining run that registered this version, and the window
    /// that triggered it: set by the registry from the run's token, never
    /// by the client. Absent from the stored form otherwise, so versions
    /// stored before it existed read and hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain: Option<crate::retrain::RetrainLineage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureField {
    pub name: String,
    pub dtype: DataType,
    /// Dimensions beyond the batch axis; `-1` for variable. Empty for scalars.
    #[serde(default)]
    pub shape: Vec<i64>,
    /// Whether NaN (a missing value) may be sent in this field; refused by
    /// default. Left out of the stored form when false, so versions stored
    /// before the field existed read and hash as they did.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_nan: bool,
}

/// Input and output features of a version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub inputs: Vec<SignatureField>,
    pub outputs: Vec<SignatureField>,
}

/// Loads an artifact the way its model kind is served, when a version is
/// registered: an artifact that cannot serve is refused before anything is
/// stored. Implemented by the serving layer (which owns the runtimes), so
/// the registry builds without any runtime.
pub trait ArtifactInspector: Send + Sync {
    /// The signature to store for a version whose push declared `declared`
    /// (empty: take the artifact's own), or the reason the artifact cannot
    /// be served as `kind`, or the field where `declared` disagrees with it.
    fn inspect(&self, kind: crate::model::ModelKind, artifact: &[u8], declared: &Signature) -> Result<Signature>;
}

/// A model card (Mitchell et al.): Markdown plus the structured fields that
/// governance gates and reports read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub markdown: String,
    pub intended_use: String,
    pub limitations: String,
    pub ethical_considerations: String,
    pub evaluation_data: String,
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub model: ModelName,
    pub number: u32,
    pub state: VersionState,
    pub artifact: ArtifactRef,
    pub lineage: Lineage,
    pub signature: Signature,
    pub card: ModelCard,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    /// Aliases pointing at this version, sorted.
    pub aliases: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

impl ModelVersion {
    /// A retired version keeps its record but takes no more changes.
    pub fn ensure_active(&self) -> Result<()> {
        match self.state {
            VersionState::Retired => Err(Error::Conflict(format!("version `{}/{}` is retired", self.model, self.number))),
            _ => Ok(()),
        }
    }

    /// The card is what validators review: once a version is submitted for
    /// validation it no longer changes (an approval is given for the card
    /// the validator saw); push a new version to change it.
    pub fn ensure_card_editable(&self) -> Result<()> {
        match self.state {
            VersionState::Draft => Ok(()),
            state => Err(Error::Conflict(format!(
                "version `{}/{}` is `{state}`: its model card is frozen once submitted for validation; push a new version to change it",
                self.model, self.number
            ))),
        }
    }

    /// The version as retiring leaves it: retired, with no aliases.
    pub fn retired(&self, at: DateTime<Utc>) -> ModelVersion {
        ModelVersion { state: VersionState::Retired, aliases: Vec::new(), updated_at: at, ..self.clone() }
    }
}

/// The uploaded artifact a new version is to point at; its size is taken
/// from the artifact store, never from the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSpec {
    pub sha256: Sha256Hex,
    pub filename: String,
}

/// What a client supplies to create a version. The number is assigned inside
/// the creating transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewVersion {
    pub artifact: ArtifactSpec,
    pub lineage: Lineage,
    pub signature: Signature,
    pub card: ModelCard,
    pub description: String,
    pub tags: BTreeMap<String, String>,
}

impl NewVersion {
    /// Tag keys as [`crate::name::TagKey`] keeps them.
    pub fn normalized(mut self) -> Result<Self> {
        self.tags = crate::model::normalize_tag_keys(self.tags)?;
        Ok(self)
    }

    /// The version as created: `number` of `model`, a draft, its artifact
    /// `size` bytes as the artifact store holds it.
    pub fn into_version(self, model: ModelName, number: u32, size: u64, at: DateTime<Utc>, actor: &str) -> ModelVersion {
        ModelVersion {
            model,
            number,
            state: VersionState::Draft,
            artifact: ArtifactRef { sha256: self.artifact.sha256, size, filename: self.artifact.filename },
            lineage: self.lineage,
            signature: self.signature,
            card: self.card,
            description: self.description,
            tags: self.tags,
            aliases: Vec::new(),
            created_at: at,
            created_by: actor.to_string(),
            updated_at: at,
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_file_name("artifact.filename", &self.artifact.filename)?;
        check_text("description", &self.description, MAX_TEXT_LEN)?;
        check_tags(&self.tags)?;
        check_card(&self.card)?;
        let l = &self.lineage;
        for (field, value) in [("lineage.dataset_uri", &l.dataset_uri), ("lineage.code_commit", &l.code_commit), ("lineage.mlflow_run_id", &l.mlflow_run_id)] {
            if let Some(v) = value {
                check_text(field, v, 2048)?;
            }
        }
        for (name, value) in &l.hyperparameters {
            check_json_depth(&format!("lineage.hyperparameters.{name}"), value)?;
        }
        for (name, value) in &l.training_metrics {
            if !value.is_finite() {
                return Err(Error::invalid(format!("lineage.training_metrics.{name}"), format!("`{value}` is not a finite number")));
            }
        }
        check_signature(&self.signature)
    }
}

/// A partial update of the mutable parts of a version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionPatch {
    pub description: Option<String>,
    pub card: Option<ModelCard>,
}

impl VersionPatch {
    pub fn is_empty(&self) -> bool {
        *self == VersionPatch::default()
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(d) = &self.description {
            check_text("description", d, MAX_TEXT_LEN)?;
        }
        if let Some(card) = &self.card {
            check_card(card)?;
        }
        Ok(())
    }

    pub fn apply(&self, version: &ModelVersion) -> ModelVersion {
        let mut next = version.clone();
        if let Some(d) = &self.description {
            next.description.clone_from(d);
        }
        if let Some(card) = &self.card {
            next.card = card.clone();
        }
        next
    }
}

/// How deeply a hyperparameter value may nest. A version is returned inside
/// listings and audit events, a few levels deeper than it was sent; without
/// a bound well below serde_json's 128-level recursion limit, the server
/// would store versions that its own clients (the CLI among them) cannot read.
pub const MAX_HYPERPARAMETER_DEPTH: usize = 32;

/// Refuses a JSON value nested more than [`MAX_HYPERPARAMETER_DEPTH`] levels.
/// Iterative, so no input can exhaust the stack here.
fn check_json_depth(field: &str, value: &serde_json::Value) -> Result<()> {
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth > MAX_HYPERPARAMETER_DEPTH {
            return Err(Error::invalid(field, format!("nests more than {MAX_HYPERPARAMETER_DEPTH} levels of arrays and objects")));
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

fn check_card(card: &ModelCard) -> Result<()> {
    check_text("card.markdown", &card.markdown, MAX_TEXT_LEN)?;
    check_text("card.intended_use", &card.intended_use, MAX_TEXT_LEN)?;
    check_text("card.limitations", &card.limitations, MAX_TEXT_LEN)?;
    check_text("card.ethical_considerations", &card.ethical_considerations, MAX_TEXT_LEN)?;
    check_text("card.evaluation_data", &card.evaluation_data, MAX_TEXT_LEN)?;
    for (name, value) in &card.metrics {
        if !value.is_finite() {
            return Err(Error::invalid(format!("card.metrics.{name}"), format!("`{value}` is not a finite number")));
        }
    }
    Ok(())
}

fn check_signature(sig: &Signature) -> Result<()> {
    for (side, fields) in [("signature.inputs", &sig.inputs), ("signature.outputs", &sig.outputs)] {
        let mut seen = std::collections::BTreeSet::new();
        for (i, f) in fields.iter().enumerate() {
            if f.name.is_empty() || f.name.chars().any(char::is_control) || f.name.chars().count() > MAX_SHORT_TEXT_LEN {
                return Err(Error::invalid(format!("{side}[{i}].name"), format!("{} is not a valid feature name", quote(&f.name))));
            }
            if !seen.insert(&f.name) {
                return Err(Error::invalid(format!("{side}[{i}].name"), format!("{} is listed twice", quote(&f.name))));
            }
            if let Some(d) = f.shape.iter().find(|d| **d < -1 || **d == 0) {
                return Err(Error::invalid(format!("{side}[{i}].shape"), format!("dimension `{d}` must be positive or -1")));
            }
        }
    }
    Ok(())
}

/// An uploaded file's name as stored beside its digest: not empty, short,
/// no control characters, no directory.
pub fn check_file_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    check_text(field, name, MAX_SHORT_TEXT_LEN)?;
    if name.contains('/') || name.contains('\\') {
        return Err(Error::invalid(field, format!("{} must be a bare file name", quote(name))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> serde_json::Value {
        let mut value = serde_json::json!(1);
        for _ in 0..levels {
            value = serde_json::json!([value]);
        }
        value
    }

    fn version_with(hyperparameter: serde_json::Value) -> NewVersion {
        let digest = Sha256Hex::from_digest(&[0; 32]);
        NewVersion {
            artifact: ArtifactSpec { sha256: digest, filename: "m.onnx".into() },
            lineage: Lineage { hyperparameters: BTreeMap::from([("layers".to_string(), hyperparameter)]), ..Lineage::default() },
            signature: Signature::default(),
            card: ModelCard::default(),
            description: String::new(),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn hyperparameters_nest_at_most_the_limit() {
        assert!(version_with(nested(MAX_HYPERPARAMETER_DEPTH)).validate().is_ok());
        let err = version_with(nested(MAX_HYPERPARAMETER_DEPTH + 1)).validate().unwrap_err();
        assert_eq!(err.field(), Some("lineage.hyperparameters.layers"));
        // Deeper than serde_json would ever parse: still no stack overflow.
        assert!(version_with(nested(1_000)).validate().is_err());
    }
}
