//! A model in the inventory: the logical model that versions belong to.

use crate::error::{Error, Result};
use crate::name::{check_tag_value, quote, ModelName, TagKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_TEXT_LEN: usize = 100_000;
pub const MAX_SHORT_TEXT_LEN: usize = 256;
/// Tags one model or version may hold. Every tag is a row written under the
/// registry's write lock, so the count is bounded, not just the body size.
pub const MAX_TAGS: usize = 100;
/// Dependencies one model may declare, bounded for the same reason.
pub const MAX_DEPENDENCIES: usize = 100;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// Parses the snake_case form, naming `field` and the accepted values on error.
            pub fn parse_field(field: &str, value: &str) -> $crate::error::Result<Self> {
                match value {
                    $($text => Ok($name::$variant),)*
                    other => Err($crate::error::Error::invalid(field, format!(
                        "{} is not one of {}", $crate::name::quote(other),
                        [$($text),*].map(|t| format!("`{t}`")).join(", ")
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// How a model's artifact is executed (DESIGN §4).
    ModelKind { Onnx => "onnx", Rules => "rules", Statistical => "statistical", Llm => "llm", External => "external", Mlflow => "mlflow" }
);
string_enum!(
    /// The model-risk tier; policies are written per tier.
    RiskTier { Low => "low", Medium => "medium", High => "high", Critical => "critical" }
);
string_enum!(
    /// A model is never deleted: retiring keeps its record and history.
    ModelState { Active => "active", Retired => "retired" }
);

/// A model as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub name: ModelName,
    pub kind: ModelKind,
    pub description: String,
    pub owner: String,
    pub team: String,
    pub business_purpose: String,
    pub intended_use: String,
    pub restrictions: String,
    pub risk_tier: RiskTier,
    pub tags: BTreeMap<String, String>,
    /// Models whose output this model consumes.
    pub dependencies: Vec<ModelName>,
    /// Who may push versions besides the owner and the owner's team; for
    /// high and critical tiers none of them may approve a version.
    pub developers: Vec<String>,
    /// The validation metric a version must reach (policies read it).
    pub validation: Option<ValidationTarget>,
    /// alias → version number.
    pub aliases: BTreeMap<String, u32>,
    pub state: ModelState,
    pub latest_version: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

impl ModelState {
    /// A retired model keeps its record but takes no more changes.
    pub fn ensure_active(self, name: &ModelName) -> Result<()> {
        match self {
            ModelState::Active => Ok(()),
            ModelState::Retired => Err(Error::Conflict(format!("model `{name}` is retired"))),
        }
    }
}

impl Model {
    /// A retired model keeps its record but takes no more changes.
    pub fn ensure_active(&self) -> Result<()> {
        self.state.ensure_active(&self.name)
    }

    /// Whether `principal` may change this model and push its versions:
    /// admins, the owner, a listed developer, or a member of the model's
    /// team. Refuses with the condition `developers` otherwise.
    pub fn ensure_developer(&self, principal: &crate::auth::Principal) -> Result<()> {
        let name = principal.name();
        let allowed = principal.has_role(crate::auth::Role::Admin)
            || self.owner == name
            || self.developers.iter().any(|d| d == name)
            || (!self.team.is_empty() && principal.team() == Some(self.team.as_str()))
            // A retraining run's token acts as a developer of its model.
            || principal.scope().is_some_and(|s| s.model == self.name);
        if allowed {
            return Ok(());
        }
        Err(Error::forbidden(
            "developers",
            format!("{} is not the owner, a listed developer or a member of the team of `{}`", quote(name), self.name),
        ))
    }

    /// The model as retiring leaves it: retired, with no aliases (they
    /// pointed at versions that are retired with it).
    pub fn retired(&self, at: DateTime<Utc>) -> Model {
        Model { state: ModelState::Retired, aliases: BTreeMap::new(), updated_at: at, ..self.clone() }
    }
}

/// The metric a validation must report, and the value it must reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationTarget {
    pub metric: String,
    pub threshold: f64,
}

impl ValidationTarget {
    pub fn validate(&self) -> Result<()> {
        let m = &self.metric;
        if m.is_empty() || m.len() > 64 || !m.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
            return Err(Error::invalid("validation.metric", format!("{} is not a metric name (letters, digits, `_`, `-`, `.`; at most 64)", quote(m))));
        }
        if !self.threshold.is_finite() {
            return Err(Error::invalid("validation.threshold", format!("`{}` is not a finite number", self.threshold)));
        }
        Ok(())
    }
}

/// Developers listed on a model: at most this many.
pub const MAX_DEVELOPERS: usize = 100;

fn normalize_people(people: Vec<String>) -> Vec<String> {
    people.into_iter().map(crate::name::to_nfc).collect()
}

fn check_developers(developers: &[String]) -> Result<()> {
    if developers.len() > MAX_DEVELOPERS {
        return Err(Error::invalid("developers", format!("`{}` developers given; at most {MAX_DEVELOPERS} are allowed", developers.len())));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, d) in developers.iter().enumerate() {
        crate::auth::Principal::new(d.clone(), []).map_err(|e| match e {
            Error::InvalidInput { reason, .. } => Error::invalid(format!("developers[{i}]"), reason),
            other => other,
        })?;
        if !seen.insert(d) {
            return Err(Error::invalid("developers", format!("{} is listed twice", quote(d))));
        }
    }
    Ok(())
}

/// What a client supplies to register a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewModel {
    pub name: ModelName,
    pub kind: ModelKind,
    pub description: String,
    pub owner: String,
    pub team: String,
    pub business_purpose: String,
    pub intended_use: String,
    pub restrictions: String,
    pub risk_tier: RiskTier,
    pub tags: BTreeMap<String, String>,
    pub dependencies: Vec<ModelName>,
    pub developers: Vec<String>,
    pub validation: Option<ValidationTarget>,
}

impl NewModel {
    /// The identifying text in the form it is stored and looked up in:
    /// owner and team in NFC, tag keys as [`TagKey`] keeps them.
    pub fn normalized(mut self) -> Result<Self> {
        self.owner = crate::name::to_nfc(self.owner);
        self.team = crate::name::to_nfc(self.team);
        self.tags = normalize_tag_keys(self.tags)?;
        self.developers = normalize_people(self.developers);
        Ok(self)
    }

    /// The model as registered by `actor` at `at`: active, no versions yet.
    pub fn into_model(self, at: DateTime<Utc>, actor: &str) -> Model {
        Model {
            name: self.name,
            kind: self.kind,
            description: self.description,
            owner: self.owner,
            team: self.team,
            business_purpose: self.business_purpose,
            intended_use: self.intended_use,
            restrictions: self.restrictions,
            risk_tier: self.risk_tier,
            tags: self.tags,
            dependencies: self.dependencies,
            developers: self.developers,
            validation: self.validation,
            aliases: BTreeMap::new(),
            state: ModelState::Active,
            latest_version: None,
            created_at: at,
            created_by: actor.to_string(),
            updated_at: at,
        }
    }

    /// Checks what the types cannot: lengths, tags, self-dependency.
    pub fn validate(&self) -> Result<()> {
        check_identifying_text("owner", &self.owner)?;
        check_identifying_text("team", &self.team)?;
        check_text("description", &self.description, MAX_TEXT_LEN)?;
        check_text("business_purpose", &self.business_purpose, MAX_TEXT_LEN)?;
        check_text("intended_use", &self.intended_use, MAX_TEXT_LEN)?;
        check_text("restrictions", &self.restrictions, MAX_TEXT_LEN)?;
        check_tags(&self.tags)?;
        check_developers(&self.developers)?;
        if let Some(v) = &self.validation {
            v.validate()?;
        }
        check_dependencies(&self.name, &self.dependencies)
    }
}

/// A partial update: `None` leaves a field as it is. Name and kind never change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelPatch {
    pub description: Option<String>,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub business_purpose: Option<String>,
    pub intended_use: Option<String>,
    pub restrictions: Option<String>,
    pub risk_tier: Option<RiskTier>,
    pub dependencies: Option<Vec<ModelName>>,
    pub developers: Option<Vec<String>>,
    /// `Some(None)` removes the target.
    pub validation: Option<Option<ValidationTarget>>,
}

impl ModelPatch {
    /// Owner and team in NFC, as [`NewModel::normalized`] stores them.
    pub fn normalized(mut self) -> Self {
        self.owner = self.owner.map(crate::name::to_nfc);
        self.team = self.team.map(crate::name::to_nfc);
        self.developers = self.developers.map(normalize_people);
        self
    }

    pub fn is_empty(&self) -> bool {
        *self == ModelPatch::default()
    }

    /// The fields gates and separation of duties read, named, when the
    /// patch changes any: `risk_tier`, `validation`, `developers`, `owner`,
    /// `team`.
    pub fn governance_fields(&self) -> Option<String> {
        let named = [
            ("`risk_tier`", self.risk_tier.is_some()),
            ("`validation`", self.validation.is_some()),
            ("`developers`", self.developers.is_some()),
            ("`owner`", self.owner.is_some()),
            ("`team`", self.team.is_some()),
        ];
        let fields: Vec<&str> = named.iter().filter(|(_, set)| *set).map(|(name, _)| *name).collect();
        (!fields.is_empty()).then(|| fields.join(", "))
    }

    pub fn validate(&self, name: &ModelName) -> Result<()> {
        let short = [("owner", &self.owner), ("team", &self.team)];
        for (field, value) in short {
            if let Some(v) = value {
                check_identifying_text(field, v)?;
            }
        }
        let long = [
            ("description", &self.description),
            ("business_purpose", &self.business_purpose),
            ("intended_use", &self.intended_use),
            ("restrictions", &self.restrictions),
        ];
        for (field, value) in long {
            if let Some(v) = value {
                check_text(field, v, MAX_TEXT_LEN)?;
            }
        }
        if let Some(deps) = &self.dependencies {
            check_dependencies(name, deps)?;
        }
        if let Some(devs) = &self.developers {
            check_developers(devs)?;
        }
        if let Some(Some(v)) = &self.validation {
            v.validate()?;
        }
        Ok(())
    }

    /// Applies the patch to a stored model, returning the new state.
    pub fn apply(&self, model: &Model) -> Model {
        let mut next = model.clone();
        let set = |target: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                target.clone_from(v);
            }
        };
        set(&mut next.description, &self.description);
        set(&mut next.owner, &self.owner);
        set(&mut next.team, &self.team);
        set(&mut next.business_purpose, &self.business_purpose);
        set(&mut next.intended_use, &self.intended_use);
        set(&mut next.restrictions, &self.restrictions);
        if let Some(tier) = self.risk_tier {
            next.risk_tier = tier;
        }
        if let Some(deps) = &self.dependencies {
            next.dependencies.clone_from(deps);
        }
        if let Some(devs) = &self.developers {
            next.developers.clone_from(devs);
        }
        if let Some(validation) = &self.validation {
            next.validation.clone_from(validation);
        }
        next
    }
}

pub fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("is longer than {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(Error::invalid(field, format!("{} contains a control character", quote(value))));
    }
    Ok(())
}

/// Checks short text that tells people apart (owner, team): as
/// [`check_text`], and no invisible characters, which would let two owners
/// look the same. Longer prose keeps them (emoji and several scripts need the
/// zero width joiner).
fn check_identifying_text(field: &str, value: &str) -> Result<()> {
    check_text(field, value, MAX_SHORT_TEXT_LEN)?;
    crate::name::check_visible(field, value)
}

pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid("tags", format!("`{}` tags given; at most {MAX_TAGS} are allowed", tags.len())));
    }
    for (key, value) in tags {
        TagKey::parse(key.clone()).map_err(|_| Error::invalid(format!("tags.{key}"), format!("{} is not a valid tag key", quote(key))))?;
        check_tag_value(&format!("tags.{key}"), value)?;
    }
    Ok(())
}

/// A tag map as a client sent it, with every key in the form [`TagKey`]
/// keeps (normalised), so a tag set in a body is found again by the key in
/// a path. Two keys that normalise alike are refused.
pub fn normalize_tag_keys(tags: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (key, value) in tags {
        let normalized: String = TagKey::parse(key.clone())
            .map_err(|e| Error::invalid(format!("tags.{key}"), e.to_string()))?
            .into();
        if out.insert(normalized, value).is_some() {
            return Err(Error::invalid(format!("tags.{key}"), format!("{} is the same key as another one in the map", quote(&key))));
        }
    }
    Ok(out)
}

fn check_dependencies(name: &ModelName, deps: &[ModelName]) -> Result<()> {
    if deps.len() > MAX_DEPENDENCIES {
        return Err(Error::invalid("dependencies", format!("`{}` dependencies given; at most {MAX_DEPENDENCIES} are allowed", deps.len())));
    }
    if deps.contains(name) {
        return Err(Error::invalid("dependencies", format!("a model cannot depend on itself ({})", quote(name.as_str()))));
    }
    let mut seen = std::collections::BTreeSet::new();
    for dep in deps {
        if !seen.insert(dep) {
            return Err(Error::invalid("dependencies", format!("{} is listed twice", quote(dep.as_str()))));
        }
    }
    Ok(())
}
