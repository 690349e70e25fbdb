//! Governance vocabulary: users and API tokens, the lifecycle transitions of
//! a version, approvals with separation of duties, evidence, periodic
//! reviews and stored policies. Plain data and pure rules; the policy
//! language and its evaluation live in `modelops-governance`, the use cases
//! in `modelops-registry`.

use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::model::{check_text, string_enum, Model, MAX_SHORT_TEXT_LEN, MAX_TEXT_LEN};
use crate::name::{quote, ModelName};
use crate::version::{Sha256Hex, VersionState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

// ------------------------------------------------------------ users and tokens

/// A person or service account that signs in with API tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub roles: BTreeSet<Role>,
    /// Empty: no team.
    pub team: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// The principal a valid token of this user acts as.
    pub fn principal(&self) -> Result<Principal> {
        Ok(Principal::new(self.name.clone(), self.roles.iter().copied())?.with_team(self.team.clone()))
    }
}

/// Names the audit log uses for actors that are not users.
pub const RESERVED_USER_NAMES: &[&str] = &["system", "anonymous"];

/// What an admin supplies to create a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub roles: BTreeSet<Role>,
    pub team: String,
}

impl NewUser {
    /// The name as stored (NFC), checked like every actor name; at least one role.
    pub fn validate(self) -> Result<Self> {
        let principal = Principal::new(self.name, []).map_err(|e| rename_field(e, "name"))?;
        if RESERVED_USER_NAMES.contains(&principal.name()) {
            return Err(Error::invalid("name", format!("{} is reserved: the audit log uses it for the server itself", quote(principal.name()))));
        }
        // What an erased person's name becomes (modelops-audit::personal).
        if principal.name().starts_with("erased-") {
            return Err(Error::invalid("name", format!("{} is reserved: names starting with `erased-` are the pseudonyms of erased people", quote(principal.name()))));
        }
        if self.roles.is_empty() {
            return Err(Error::invalid("roles", format!("a user needs at least one role: {}", role_list())));
        }
        check_text("team", &self.team, MAX_SHORT_TEXT_LEN)?;
        crate::name::check_visible("team", &self.team)?;
        Ok(Self { name: principal.name().to_string(), team: crate::name::to_nfc(self.team), ..self })
    }

    pub fn into_user(self, at: DateTime<Utc>, actor: &str) -> User {
        User { name: self.name, roles: self.roles, team: self.team, disabled: false, created_at: at, created_by: actor.to_string(), updated_at: at }
    }
}

/// A change to a user: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPatch {
    pub roles: Option<BTreeSet<Role>>,
    pub team: Option<String>,
    pub disabled: Option<bool>,
}

impl UserPatch {
    pub fn validate(&self) -> Result<()> {
        if self.roles.as_ref().is_some_and(BTreeSet::is_empty) {
            return Err(Error::invalid("roles", format!("a user needs at least one role: {}", role_list())));
        }
        if let Some(team) = &self.team {
            check_text("team", team, MAX_SHORT_TEXT_LEN)?;
            crate::name::check_visible("team", team)?;
        }
        Ok(())
    }

    pub fn apply(&self, user: &User, at: DateTime<Utc>) -> User {
        let mut next = user.clone();
        if let Some(roles) = &self.roles {
            next.roles.clone_from(roles);
        }
        if let Some(team) = &self.team {
            next.team = crate::name::to_nfc(team.clone());
        }
        if let Some(disabled) = self.disabled {
            next.disabled = disabled;
        }
        if next != *user {
            next.updated_at = at;
        }
        next
    }
}

fn role_list() -> String {
    Role::ALL.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")
}

fn rename_field(e: Error, field: &str) -> Error {
    match e {
        Error::InvalidInput { reason, .. } => Error::invalid(field, reason),
        other => other,
    }
}

/// The prefix every modelops token starts with, so secret scanners and
/// people recognise one.
pub const TOKEN_PREFIX: &str = "mdo_";
/// Characters of a token's public id (hex).
pub const TOKEN_ID_LEN: usize = 12;
/// Random bytes in a token's secret part (256 bits).
pub const TOKEN_SECRET_BYTES: usize = 32;

/// An API token as stored and listed: never the secret, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Public identifier: listed, used to revoke, part of the token text.
    pub id: String,
    pub name: String,
    pub user: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// A retraining run's token: what it may act on. Left out of the
    /// stored form otherwise, so earlier token events hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::retrain::TokenScope>,
}

impl ApiToken {
    /// Why this token does not sign anyone in at `now`, if it does not.
    pub fn unusable(&self, now: DateTime<Utc>) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("the token was revoked")
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Some("the token has expired")
        } else {
            None
        }
    }
}

/// A token's text split into its public id and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenText<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

impl std::fmt::Debug for TokenText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenText").field("id", &self.id).finish_non_exhaustive()
    }
}

impl<'a> TokenText<'a> {
    /// Parses `mdo_<12 hex>_<secret>`. The error never quotes the text: it
    /// may be a real secret sent to the wrong place.
    pub fn parse(text: &'a str) -> Result<Self> {
        let malformed = || Error::Unauthenticated("the token is malformed (modelops tokens look like `mdo_<id>_<secret>`)".into());
        let rest = text.strip_prefix(TOKEN_PREFIX).ok_or_else(malformed)?;
        let (id, secret) = rest.split_once('_').ok_or_else(malformed)?;
        let id_ok = id.len() == TOKEN_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        let secret_ok = (32..=128).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok || !secret_ok {
            return Err(malformed());
        }
        Ok(Self { id, secret })
    }

    /// The whole token text for an id and secret.
    pub fn format(id: &str, secret: &str) -> String {
        format!("{TOKEN_PREFIX}{id}_{secret}")
    }
}

/// The stored form of a token's secret: its sha256, hex. A 256-bit random
/// secret needs no salt or slow hash: it cannot be guessed from its hash.
pub fn hash_token_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored` (the hex form [`hash_token_secret`]
/// gives), in time independent of where they differ; without allocating, as
/// it runs for every authenticated request.
pub fn token_secret_matches(secret: &str, stored: &str) -> bool {
    let mut hashed = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    hex::encode_to_slice(Sha256::digest(secret.as_bytes()), &mut hashed).is_ok()
        && std::str::from_utf8(&hashed).is_ok_and(|hashed| constant_time_eq(hashed, stored))
}

/// Compares two hashes in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A token name: short, visible text.
pub fn check_token_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("name", "a token needs a name (what or who uses it)"));
    }
    check_text("name", name, MAX_SHORT_TEXT_LEN)?;
    crate::name::check_visible("name", name)
}

// ------------------------------------------------------------ lifecycle

string_enum!(
    /// The governed moves of a version between states (DESIGN §3).
    Transition {
        Submit => "submit",
        Approve => "approve",
        Reject => "reject",
        Promote => "promote",
        Retire => "retire",
    }
);

impl Transition {
    /// The state this transition leads to.
    pub fn target(self) -> VersionState {
        match self {
            Transition::Submit => VersionState::InValidation,
            Transition::Approve => VersionState::Approved,
            Transition::Reject => VersionState::Rejected,
            Transition::Promote => VersionState::Production,
            Transition::Retire => VersionState::Retired,
        }
    }

    /// The states it may start from.
    pub fn sources(self) -> &'static [VersionState] {
        use VersionState::*;
        match self {
            Transition::Submit => &[Draft],
            Transition::Approve | Transition::Reject => &[InValidation],
            // Promoting the current production version again is a no-op the
            // use case answers without a change.
            Transition::Promote => &[Approved],
            Transition::Retire => &[Draft, InValidation, Approved, Production, Rejected],
        }
    }

    /// Refuses a move the lifecycle does not have, naming the state.
    pub fn check_from(self, model: &ModelName, number: u32, state: VersionState) -> Result<()> {
        if self.sources().contains(&state) {
            return Ok(());
        }
        let from = self.sources().iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" or ");
        Err(Error::Conflict(format!("version `{model}/{number}` is `{state}`; `{self}` moves a version from {from}")))
    }
}

string_enum!(
    /// The states a gate guards: `?to=` of the gate API.
    GateTarget {
        InValidation => "in_validation",
        Approved => "approved",
        Production => "production",
    }
);

impl GateTarget {
    pub fn transition(self) -> Transition {
        match self {
            GateTarget::InValidation => Transition::Submit,
            GateTarget::Approved => Transition::Approve,
            GateTarget::Production => Transition::Promote,
        }
    }
}

/// The alias that marks the production version: moving it is promotion.
pub const CHAMPION: &str = "champion";

// ------------------------------------------------------------ approvals

string_enum!(
    Decision { Approve => "approve", Reject => "reject" }
);

/// A validator's or approver's decision on a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub model: ModelName,
    pub version: u32,
    pub approver: String,
    /// The approver's roles when deciding: what policies count.
    pub roles: BTreeSet<Role>,
    pub decision: Decision,
    pub comment: String,
    /// Conditions attached to an approval (e.g. "re-validate after Q1").
    pub conditions: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Approval {
    /// An approval counts until it expires; a rejection never counts as one.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.decision == Decision::Approve && self.expires_at.is_none_or(|e| e > now)
    }
}

/// What a validator supplies with a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionInput {
    pub comment: String,
    pub conditions: String,
    pub expires_at: Option<DateTime<Utc>>,
}

impl DecisionInput {
    pub fn validate(&self, now: DateTime<Utc>) -> Result<()> {
        check_text("comment", &self.comment, MAX_TEXT_LEN)?;
        check_text("conditions", &self.conditions, MAX_TEXT_LEN)?;
        if let Some(at) = self.expires_at {
            if at <= now {
                return Err(Error::invalid("expires_at", format!("`{}` is not in the future", crate::clock::format_time(&at))));
            }
        }
        Ok(())
    }
}

/// Separation of duties, which no policy can switch off: the author of a
/// version never decides on it; for high and critical models no listed
/// developer does either.
pub fn check_separation_of_duties(model: &Model, author: &str, principal: &Principal) -> Result<()> {
    let approver = principal.name();
    if author == approver {
        return Err(Error::forbidden(
            "separation_of_duties",
            format!("{} created this version and may not approve or reject it", quote(approver)),
        ));
    }
    let strict = matches!(model.risk_tier, crate::model::RiskTier::High | crate::model::RiskTier::Critical);
    // Whoever may develop the model (owner, listed developer, team member)
    // is not independent of it.
    let develops = model.owner == approver
        || model.developers.iter().any(|d| d == approver)
        || (!model.team.is_empty() && principal.team() == Some(model.team.as_str()));
    if strict && develops {
        return Err(Error::forbidden(
            "separation_of_duties",
            format!(
                "{} develops `{}` (its owner, a listed developer or a member of its team), a {} tier model, and may not approve or reject its versions",
                quote(approver),
                model.name,
                model.risk_tier
            ),
        ));
    }
    Ok(())
}

// ------------------------------------------------------------ evidence

string_enum!(
    EvidenceKind { Metric => "metric", Document => "document" }
);

/// A document attached as evidence, stored content-addressed like artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    pub sha256: Sha256Hex,
    pub size: u64,
    pub filename: String,
}

/// Evidence about a version: a validation metric or a document. Append-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub model: ModelName,
    pub version: u32,
    pub kind: EvidenceKind,
    /// The metric's name, or the document's kind (`validation_report`, …).
    pub name: String,
    pub value: Option<f64>,
    /// The dataset a metric was computed on.
    pub dataset: String,
    pub document: Option<DocumentRef>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// What a client supplies to attach evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NewEvidence {
    Metric { name: String, value: f64, dataset: String },
    Document { name: String, sha256: Sha256Hex, filename: String },
}

impl NewEvidence {
    pub fn validate(&self) -> Result<()> {
        let name = match self {
            NewEvidence::Metric { name, value, dataset } => {
                if !value.is_finite() {
                    return Err(Error::invalid("value", format!("`{value}` is not a finite number")));
                }
                check_text("dataset", dataset, MAX_TEXT_LEN)?;
                name
            }
            NewEvidence::Document { name, filename, .. } => {
                check_text("filename", filename, MAX_SHORT_TEXT_LEN)?;
                name
            }
        };
        check_evidence_name(name)
    }
}

fn check_evidence_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name.as_bytes()[0].is_ascii_alphabetic();
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("name", format!("{} is not a valid evidence name (a letter, then letters, digits, `_`, `-`, `.`; at most 64)", quote(name))))
    }
}

// ------------------------------------------------------------ reviews

string_enum!(
    ReviewOutcome { Satisfactory => "satisfactory", Findings => "findings", Unsatisfactory => "unsatisfactory" }
);

/// A periodic review of a production version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub model: ModelName,
    pub version: u32,
    pub reviewer: String,
    pub outcome: ReviewOutcome,
    pub comment: String,
    pub reviewed_at: DateTime<Utc>,
    pub next_review_at: DateTime<Utc>,
}

/// When a production version is next to be reviewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledReview {
    pub model: ModelName,
    pub version: u32,
    pub next_review_at: DateTime<Utc>,
    pub last_reviewed_at: Option<DateTime<Utc>>,
}

// ------------------------------------------------------------ policies

/// A policy file as loaded: its text, and the sha256 of that text, which
/// every gate decision records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPolicy {
    pub sha256: Sha256Hex,
    pub source: String,
    /// `toml` or `yaml`.
    pub format: String,
    pub loaded_at: DateTime<Utc>,
    pub loaded_by: String,
}

/// The sha256 of a policy's text.
pub fn policy_hash(source: &str) -> Sha256Hex {
    Sha256Hex::from_digest(&Sha256::digest(source.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_text_round_trips_and_refuses_without_quoting() {
        let text = TokenText::format("0123456789ab", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ");
        let parsed = TokenText::parse(&text).unwrap();
        assert_eq!(parsed.id, "0123456789ab");
        for bad in ["", "mdo_", "mdo_0123456789ab", "xyz_0123456789ab_abcdefghijklmnopqrstuvwxyzABCDEFG", "mdo_0123456789AB_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", "mdo_0123456789ab_short"] {
            let err = TokenText::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Unauthenticated);
            if bad.len() > 8 {
                assert!(!err.to_string().contains(bad), "{err}");
            }
        }
        assert!(!format!("{parsed:?}").contains("abcdef"));
    }

    #[test]
    fn hashes_compare_in_constant_time_and_exactly() {
        let h = hash_token_secret("s3cret");
        assert!(constant_time_eq(&h, &hash_token_secret("s3cret")));
        assert!(!constant_time_eq(&h, &hash_token_secret("s3cres")));
        assert!(!constant_time_eq(&h, &h[1..]));
        assert!(token_secret_matches("s3cret", &h));
        assert!(!token_secret_matches("s3cres", &h));
        assert!(!token_secret_matches("s3cret", &h[1..]));
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        let m = ModelName::parse("m").unwrap();
        assert!(Transition::Submit.check_from(&m, 1, VersionState::Draft).is_ok());
        let err = Transition::Approve.check_from(&m, 1, VersionState::Draft).unwrap_err();
        assert!(err.to_string().contains("is `draft`"), "{err}");
        assert!(Transition::Promote.check_from(&m, 1, VersionState::Approved).is_ok());
        assert!(Transition::Promote.check_from(&m, 1, VersionState::Rejected).is_err());
        assert!(Transition::Retire.check_from(&m, 1, VersionState::Retired).is_err());
    }

    #[test]
    fn expired_approvals_and_rejections_do_not_count() {
        let now = Utc::now();
        let mut a = Approval {
            model: ModelName::parse("m").unwrap(),
            version: 1,
            approver: "val".into(),
            roles: [Role::Validator].into(),
            decision: Decision::Approve,
            comment: String::new(),
            conditions: String::new(),
            expires_at: Some(now + chrono::Duration::days(1)),
            created_at: now,
        };
        assert!(a.in_force(now));
        assert!(!a.in_force(now + chrono::Duration::days(1)));
        a.decision = Decision::Reject;
        assert!(!a.in_force(now));
    }

    #[test]
    fn evidence_names_and_values_are_checked() {
        let ok = NewEvidence::Metric { name: "auc".into(), value: 0.9, dataset: "holdout".into() };
        assert!(ok.validate().is_ok());
        let nan = NewEvidence::Metric { name: "auc".into(), value: f64::NAN, dataset: String::new() };
        assert_eq!(nan.validate().unwrap_err().field(), Some("value"));
        let bad = NewEvidence::Metric { name: "1st metric".into(), value: 1.0, dataset: String::new() };
        assert_eq!(bad.validate().unwrap_err().field(), Some("name"));
    }
}
