//! Governance use cases: users and tokens, the lifecycle transitions with
//! their policy gates, approvals under separation of duties, evidence,
//! periodic reviews and policy loading.
//!
//! A gate is evaluated inside the transaction that would make the change,
//! over the state read under the write lock. A denial rolls that
//! transaction back and is then recorded on its own (`access.denied`, with
//! the failing conditions and the policy's hash), so a refused change leaves
//! nothing but the record of its refusal.

use crate::{event, lock_active_model, snapshot, version_not_found, Registry};
use chrono::{DateTime, Utc};
use modelops_core::audit::{alias_subject, model_subject, version_subject};
use modelops_core::auth::{authorize, Action, Principal, Role};
use modelops_core::error::Denial;
use modelops_core::governance::{
    check_separation_of_duties, check_token_name, hash_token_secret, token_secret_matches, policy_hash, ApiToken, Approval, Decision, DecisionInput,
    DocumentRef, Evidence, EvidenceKind, GateTarget, NewEvidence, NewUser, Review, ReviewOutcome, StoredPolicy, TokenText, Transition, User, UserPatch,
    CHAMPION, TOKEN_ID_LEN, TOKEN_SECRET_BYTES,
};
use modelops_core::model::Model;
use modelops_core::name::{quote, AliasName, ModelName};
use modelops_core::repo::WriteTx;
use modelops_core::version::{ModelVersion, VersionState};
use modelops_core::{Error, Result};
use modelops_governance::context::{
    ActorFacts, ApprovalFacts, CardFacts, DocumentFacts, EvidenceFacts, GateContext, LineageFacts, MetricFacts, ModelFacts, SignatureFacts,
    TransitionFacts, VersionFacts,
};
use modelops_governance::policy::{GateDecision, Policy, PolicyFormat};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The name of the user a fresh installation creates.
pub const BOOTSTRAP_ADMIN: &str = "admin";
/// Tokens expire; this is the default lifetime of a new one.
pub const DEFAULT_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::days(90);
/// The longest lifetime a token may be given.
pub const MAX_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::days(3650);
/// The bootstrap admin's token lasts a year: long enough to create the
/// real users and their tokens.
pub const BOOTSTRAP_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::days(365);

/// The principal the server acts as for what no user asked for (the
/// bootstrap admin, the policy given at start-up).
pub fn system_principal() -> Principal {
    Principal::system()
}

pub fn user_subject(name: &str) -> String {
    format!("user/{name}")
}

pub fn token_subject(id: &str) -> String {
    format!("token/{id}")
}

/// A token just created: its record, and its text, shown once.
#[derive(Clone)]
pub struct NewToken {
    pub token: ApiToken,
    pub secret: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken").field("token", &self.token).field("secret", &"<redacted>").finish()
    }
}

/// What a decision on a version did.
#[derive(Debug, Clone)]
pub struct DecisionOutcome {
    pub version: ModelVersion,
    pub approval: Approval,
    /// The `approved` gate after this decision (for an approval), which says
    /// what is still missing when the version stayed in validation.
    pub gate: Option<GateDecision>,
}

/// A transition that went through, with the gate that let it.
/// What promotion inside a transaction came to.
pub(crate) enum Promotion {
    Done(Box<TransitionOutcome>),
    /// The `production` gate refused: roll back, then record the denial.
    Denied(Denial, GateDecision),
}

#[derive(Debug, Clone)]
pub struct TransitionOutcome {
    pub version: ModelVersion,
    pub gate: Option<GateDecision>,
    /// For a promotion: the version that was in production before.
    pub previous_production: Option<u32>,
}

/// A production version's review that is due within the horizon asked.
#[derive(Debug, Clone, PartialEq)]
pub struct DueReview {
    pub model: ModelName,
    pub version: u32,
    pub tier: modelops_core::model::RiskTier,
    pub owner: String,
    pub next_review_at: DateTime<Utc>,
    pub last_reviewed_at: Option<DateTime<Utc>>,
    pub overdue: bool,
}

/// Everything governance knows about one version.
#[derive(Debug, Clone)]
pub struct VersionGovernance {
    pub version: ModelVersion,
    pub approvals: Vec<Approval>,
    pub evidence: Vec<Evidence>,
    pub reviews: Vec<Review>,
    pub next_review_at: Option<DateTime<Utc>>,
}

/// How long a token read from the database signs requests in without being
/// read again (revocation on another replica takes effect within this).
pub const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Tokens remembered at most; past this the cache starts afresh.
const AUTH_CACHE_ENTRIES: usize = 10_000;

/// A token read for authentication, with the principal every request it
/// signs acts as (built once, not per request).
pub(crate) struct CachedToken {
    record: ApiToken,
    /// The secret's hash as stored.
    hash: String,
    user: User,
    /// `None` when the stored user name no longer passes today's rules:
    /// [`User::principal`] then says why, per request.
    principal: Option<Principal>,
}

impl CachedToken {
    fn new((record, hash, user): (ApiToken, String, User)) -> Self {
        // A retraining run's token acts for its run only.
        let principal = user.principal().ok().map(|p| match &record.scope {
            Some(scope) => p.scoped(scope.clone()),
            None => p,
        });
        Self { record, hash, user, principal }
    }
}

/// A token in the cache, and when it was read.
struct AuthCacheEntry {
    token: Arc<CachedToken>,
    at: std::time::Instant,
    /// Set by the one request that reads an aged entry again.
    refreshing: std::sync::atomic::AtomicBool,
}

type AuthEntries = std::collections::HashMap<String, AuthCacheEntry>;

/// Tokens recently read for authentication, by public id. Read by every
/// authenticated request and written once per token and few seconds: a
/// read lock, and entries shared rather than copied. When an entry ages,
/// the first request reads the token again while the others still use the
/// entry (for at most another [`AUTH_CACHE_TTL`]): a busy client's
/// requests in flight do not all read the database at once.
#[derive(Default)]
pub(crate) struct AuthCache {
    entries: std::sync::RwLock<AuthEntries>,
    /// Moves on every forget and clear; an entry read before it moved is not cached.
    generation: std::sync::atomic::AtomicU64,
}

impl AuthCache {
    fn get(&self, id: &str) -> Option<Arc<CachedToken>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(id)?;
        let age = entry.at.elapsed();
        let usable = age < AUTH_CACHE_TTL
            || (age < AUTH_CACHE_TTL * 2 && entry.refreshing.swap(true, std::sync::atomic::Ordering::AcqRel));
        usable.then(|| entry.token.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, AuthEntries> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, id: &str, entry: Arc<CachedToken>, read_at_generation: u64) {
        let mut entries = self.write();
        if self.generation() != read_at_generation {
            return;
        }
        if entries.len() >= AUTH_CACHE_ENTRIES {
            entries.clear();
        }
        let entry = AuthCacheEntry { token: entry, at: std::time::Instant::now(), refreshing: Default::default() };
        entries.insert(id.to_string(), entry);
    }

    /// Drops an entry the database no longer has (unlike `forget`, it
    /// leaves the generation: unknown ids, which anyone can send, must not
    /// keep other tokens from being cached).
    fn remove(&self, id: &str) {
        if self.entries.read().unwrap_or_else(|e| e.into_inner()).contains_key(id) {
            self.write().remove(id);
        }
    }

    fn forget(&self, id: &str) {
        let mut entries = self.write();
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.remove(id);
    }

    pub(crate) fn clear(&self) {
        let mut entries = self.write();
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.clear();
    }
}

fn random_token() -> (String, String) {
    use base64::Engine;
    use rand::RngCore;
    let mut rng = rand::rng();
    let mut id = [0u8; TOKEN_ID_LEN / 2];
    rng.fill_bytes(&mut id);
    let mut secret = [0u8; TOKEN_SECRET_BYTES];
    rng.fill_bytes(&mut secret);
    (hex::encode(id), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret))
}

/// The audit form of a token: never the secret nor its hash.
fn token_record(token: &ApiToken) -> Value {
    json!({
        "id": token.id, "name": token.name, "user": token.user,
        "expires_at": token.expires_at.map(|t| modelops_core::clock::format_time(&t)),
        "revoked_at": token.revoked_at.map(|t| modelops_core::clock::format_time(&t)),
    })
}

fn gate_record(decision: &GateDecision) -> Value {
    json!({
        "policy_sha256": decision.policy_sha256.as_str(),
        "tier": decision.tier.as_str(),
        "target": decision.target.as_str(),
        "allowed": decision.allowed,
        "conditions": decision.conditions.iter().map(|c| json!({"name": c.name, "passed": c.passed, "message": c.message})).collect::<Vec<_>>(),
    })
}

/// The approvals that count at `now`: each approver's latest decision, when
/// that is an approval still in force.
pub fn approvals_in_force(approvals: &[Approval], now: DateTime<Utc>) -> Vec<&Approval> {
    let mut latest: BTreeMap<&str, &Approval> = BTreeMap::new();
    for a in approvals {
        latest.insert(a.approver.as_str(), a);
    }
    let mut out: Vec<&Approval> = latest.into_values().filter(|a| a.in_force(now)).collect();
    out.sort_by_key(|a| a.created_at);
    out
}

struct GateInput<'a> {
    model: &'a Model,
    version: &'a ModelVersion,
    approvals: &'a [Approval],
    evidence: &'a [Evidence],
    review_overdue: bool,
    principal: &'a Principal,
    transition: Transition,
    now: DateTime<Utc>,
}

fn gate_context(input: GateInput<'_>) -> GateContext {
    let GateInput { model, version, approvals, evidence, review_overdue, principal, transition, now } = input;
    let lineage = &version.lineage;
    GateContext {
        version: VersionFacts {
            model: model.name.to_string(),
            number: i64::from(version.number),
            state: version.state.to_string(),
            author: version.created_by.clone(),
            created_at: version.created_at,
            description: version.description.clone(),
            tags: version.tags.clone(),
            aliases: version.aliases.clone(),
            card: CardFacts {
                markdown: version.card.markdown.clone(),
                intended_use: version.card.intended_use.clone(),
                limitations: version.card.limitations.clone(),
                ethical_considerations: version.card.ethical_considerations.clone(),
                evaluation_data: version.card.evaluation_data.clone(),
                metrics: version.card.metrics.clone(),
            },
            lineage: LineageFacts {
                dataset_uri: lineage.dataset_uri.clone().unwrap_or_default(),
                dataset_sha256: lineage.dataset_sha256.as_ref().map(|s| s.to_string()).unwrap_or_default(),
                dataset_rows: lineage.dataset_rows.map_or(-1, |r| i64::try_from(r).unwrap_or(i64::MAX)),
                code_commit: lineage.code_commit.clone().unwrap_or_default(),
                training_metrics: lineage.training_metrics.clone(),
                parent_version: lineage.parent_version.map_or(-1, i64::from),
                mlflow_run_id: lineage.mlflow_run_id.clone().unwrap_or_default(),
            },
            signature: SignatureFacts {
                inputs: version.signature.inputs.iter().map(|f| f.name.clone()).collect(),
                outputs: version.signature.outputs.iter().map(|f| f.name.clone()).collect(),
            },
        },
        model: ModelFacts {
            name: model.name.to_string(),
            kind: model.kind.to_string(),
            tier: model.risk_tier.to_string(),
            owner: model.owner.clone(),
            team: model.team.clone(),
            developers: developers_of(model),
            business_purpose: model.business_purpose.clone(),
            intended_use: model.intended_use.clone(),
            restrictions: model.restrictions.clone(),
            tags: model.tags.clone(),
            validation_metric: model.validation.as_ref().map(|v| v.metric.clone()).unwrap_or_default(),
            validation_threshold: model.validation.as_ref().map_or(0.0, |v| v.threshold),
            production_version: model.aliases.get(CHAMPION).map_or(-1, |n| i64::from(*n)),
            review_overdue,
        },
        approvals: approvals_in_force(approvals, now)
            .into_iter()
            .map(|a| ApprovalFacts {
                by: a.approver.clone(),
                roles: a.roles.iter().map(|r| r.to_string()).collect(),
                comment: a.comment.clone(),
                conditions: a.conditions.clone(),
                at: a.created_at,
                expires: a.expires_at.is_some(),
            })
            .collect(),
        evidence: EvidenceFacts {
            metrics: evidence
                .iter()
                .filter(|e| e.kind == EvidenceKind::Metric)
                .map(|e| MetricFacts { name: e.name.clone(), value: e.value.unwrap_or(f64::NAN), dataset: e.dataset.clone(), by: e.created_by.clone(), at: e.created_at })
                .collect(),
            documents: evidence
                .iter()
                .filter_map(|e| {
                    let d = e.document.as_ref()?;
                    Some(DocumentFacts { name: e.name.clone(), filename: d.filename.clone(), sha256: d.sha256.to_string(), by: e.created_by.clone(), at: e.created_at })
                })
                .collect(),
        },
        actor: ActorFacts {
            name: principal.name().to_string(),
            roles: principal.roles().iter().map(|r| r.to_string()).collect(),
            team: principal.team().unwrap_or_default().to_string(),
        },
        now,
        transition: TransitionFacts { name: transition.to_string(), to: transition.target().to_string() },
    }
}

/// The policy's decision over the gate's inputs, with the lifecycle's own
/// condition first: a move the lifecycle does not have is denied whatever
/// the policy says.
fn decide_gate(policy: &Policy, target: GateTarget, input: GateInput<'_>) -> GateDecision {
    let (model, version, transition) = (input.model, input.version, input.transition);
    let ctx = gate_context(input);
    let mut decision = policy.evaluate(model.risk_tier, target, &ctx);
    if let Some(failed) = lifecycle_condition(transition, model, version) {
        decision.conditions.insert(0, failed);
        decision.allowed = false;
    }
    decision
}

/// Who develops the model, for policies: its owner and its listed
/// developers (team members are not known by name; separation of duties in
/// core refuses them for high and critical models).
fn developers_of(model: &Model) -> Vec<String> {
    let mut out = model.developers.clone();
    if !model.owner.is_empty() && !out.contains(&model.owner) {
        out.push(model.owner.clone());
    }
    out
}

/// A lifecycle move the version cannot make from its state, as a failing
/// gate condition (so the gate API reports it with the others).
fn lifecycle_condition(transition: Transition, model: &Model, version: &ModelVersion) -> Option<modelops_governance::policy::ConditionOutcome> {
    if transition == Transition::Promote && version.state == VersionState::Production && is_production(model, version.number) {
        // Promoting the production version again changes nothing: allowed.
        return None;
    }
    transition.check_from(&version.model, version.number, version.state).err().map(|e| modelops_governance::policy::ConditionOutcome {
        name: "lifecycle".into(),
        passed: false,
        message: e.to_string(),
    })
}

impl Registry {
    // ------------------------------------------------------------ policy

    /// The policy gates are evaluated with: the one loaded last (as the
    /// database records it, so every replica uses the same), or the shipped
    /// defaults when none was ever loaded.
    pub(crate) async fn policy_in(&self, tx: &mut dyn WriteTx) -> Result<Arc<Policy>> {
        let stored = tx.locked_policy().await?;
        self.policy_for(stored)
    }

    pub(crate) fn policy_for(&self, stored: Option<StoredPolicy>) -> Result<Arc<Policy>> {
        let cached = self.inner.policy.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(stored) = stored else {
            return Ok(Arc::new(Policy::defaults()));
        };
        if cached.as_ref().is_some_and(|p| p.sha256() == stored.sha256) {
            return Ok(cached.unwrap_or_else(|| Arc::new(Policy::defaults())));
        }
        let format = PolicyFormat::parse_field("format", &stored.format)?;
        let policy = Arc::new(Policy::parse(&stored.source, format, "stored policy").map_err(|e| {
            Error::Internal(format!("the active policy `{}` no longer parses: {e}", stored.sha256))
        })?);
        *self.inner.policy.write().unwrap_or_else(|e| e.into_inner()) = Some(policy.clone());
        Ok(policy)
    }

    /// The active policy and whether it was loaded (else: the defaults).
    pub async fn active_policy(&self) -> Result<(Arc<Policy>, Option<StoredPolicy>)> {
        let stored = self.store().active_policy().await?;
        Ok((self.policy_for(stored.clone())?, stored))
    }

    /// Loads a policy file: refused whole, naming `origin`, line and
    /// problem, when it does not parse or a condition does not type-check;
    /// the active policy stays. Loading the active policy's text again
    /// changes nothing. Returns the policy and whether it changed.
    pub async fn load_policy(&self, principal: &Principal, source: &str, format: PolicyFormat, origin: &str) -> Result<(Arc<Policy>, bool)> {
        if source.contains('\0') {
            return Err(Error::invalid("policy", format!("{origin}: the file contains a NUL character")));
        }
        // The role first: compiling a policy costs, and only admins may ask.
        let permit = self.authorize(principal, Action::PolicyLoad, "policy").await?;
        let policy = Arc::new(Policy::parse(source, format, origin)?);
        let mut tx = self.store().begin(&permit).await?;
        let active = tx.locked_policy().await?;
        if active.as_ref().is_some_and(|a| a.sha256 == policy.sha256()) {
            return Ok((policy, false));
        }
        let stored = StoredPolicy {
            sha256: policy_hash(source),
            source: source.to_string(),
            format: format.as_str().to_string(),
            loaded_at: tx.now(),
            loaded_by: tx.actor().to_string(),
        };
        tx.insert_policy(&stored).await?;
        let before = active.map(|a| json!({ "sha256": a.sha256.as_str() }));
        let after = json!({ "sha256": stored.sha256.as_str(), "format": stored.format, "origin": origin });
        let pending = event(tx.as_ref(), Action::PolicyLoad, "policy".into(), before, Some(after));
        tx.record(pending).await?;
        tx.commit().await?;
        *self.inner.policy.write().unwrap_or_else(|e| e.into_inner()) = Some(policy.clone());
        Ok((policy, true))
    }

    /// At start-up: records the shipped defaults as the active policy when
    /// none was ever loaded, so every gate decision names a recorded policy.
    pub async fn ensure_policy(&self) -> Result<Arc<Policy>> {
        if let (policy, Some(_)) = self.active_policy().await? {
            return Ok(policy);
        }
        let defaults = Policy::defaults();
        let (policy, _) = self.load_policy(&system_principal(), defaults.source(), defaults.format(), "shipped defaults").await?;
        Ok(policy)
    }

    // ------------------------------------------------------------ users and tokens

    /// On an installation with no users: creates `admin` with a token that
    /// is returned once (the caller shows it and writes it to a file only
    /// its owner can read). `None` when users exist.
    pub async fn bootstrap_admin(&self) -> Result<Option<NewToken>> {
        if self.store().count_users().await? > 0 {
            return Ok(None);
        }
        let system = system_principal();
        let permit = authorize(&system, Action::UserCreate)?;
        let mut tx = self.store().begin(&permit).await?;
        // Under the write lock: a second replica starting at once finds the user.
        if tx.lock_user(BOOTSTRAP_ADMIN).await?.is_some() {
            return Ok(None);
        }
        let user = NewUser { name: BOOTSTRAP_ADMIN.into(), roles: [Role::Admin].into(), team: String::new() }.validate()?.into_user(tx.now(), tx.actor());
        tx.insert_user(&user).await?;
        let pending = event(tx.as_ref(), Action::UserCreate, user_subject(&user.name), None, Some(snapshot(&user)?));
        tx.record(pending).await?;
        let expires = tx.now() + BOOTSTRAP_TOKEN_LIFETIME;
        let token = Self::insert_token(tx.as_mut(), &user.name, "bootstrap", Some(expires)).await?;
        tx.commit().await?;
        Ok(Some(token))
    }

    /// Break-glass, for whoever runs the server (it needs the database, not
    /// a token): makes sure the user `admin` exists, is enabled and holds the
    /// `admin` role, and gives it a new token (returned once). Every step is
    /// recorded, by `system`.
    pub async fn recover_admin(&self) -> Result<NewToken> {
        let system = system_principal();
        let permit = authorize(&system, Action::UserUpdate)?;
        let mut tx = self.store().begin(&permit).await?;
        match tx.lock_user(BOOTSTRAP_ADMIN).await? {
            None => {
                let user = NewUser { name: BOOTSTRAP_ADMIN.into(), roles: [Role::Admin].into(), team: String::new() }.validate()?.into_user(tx.now(), tx.actor());
                tx.insert_user(&user).await?;
                let pending = event(tx.as_ref(), Action::UserCreate, user_subject(&user.name), None, Some(snapshot(&user)?));
                tx.record(pending).await?;
            }
            Some(before) => {
                let mut roles = before.roles.clone();
                roles.insert(Role::Admin);
                let after = UserPatch { roles: Some(roles), team: None, disabled: Some(false) }.apply(&before, tx.now());
                if after != before {
                    tx.update_user(&after).await?;
                    let pending = event(tx.as_ref(), Action::UserUpdate, user_subject(BOOTSTRAP_ADMIN), Some(snapshot(&before)?), Some(snapshot(&after)?));
                    tx.record(pending).await?;
                }
            }
        }
        let expires = tx.now() + BOOTSTRAP_TOKEN_LIFETIME;
        let token = Self::insert_token(tx.as_mut(), BOOTSTRAP_ADMIN, "recovery", Some(expires)).await?;
        tx.commit().await?;
        self.inner.auth_cache.clear();
        Ok(token)
    }

    async fn insert_token(tx: &mut dyn WriteTx, user: &str, name: &str, expires_at: Option<DateTime<Utc>>) -> Result<NewToken> {
        Self::insert_scoped_token(tx, user, name, expires_at, None).await
    }

    /// A token as [`Registry::insert_token`] makes it, restricted to a
    /// retraining run when `scope` is given.
    pub(crate) async fn insert_scoped_token(
        tx: &mut dyn WriteTx,
        user: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
        scope: Option<modelops_core::retrain::TokenScope>,
    ) -> Result<NewToken> {
        let (id, secret) = random_token();
        let token = ApiToken {
            id,
            name: name.to_string(),
            user: user.to_string(),
            created_at: tx.now(),
            created_by: tx.actor().to_string(),
            expires_at,
            revoked_at: None,
            scope,
        };
        tx.insert_token(&token, &hash_token_secret(&secret)).await?;
        let pending = PendingTokenEvent::created(tx, &token);
        tx.record(pending).await?;
        let text = TokenText::format(&token.id, &secret);
        Ok(NewToken { token, secret: text })
    }

    /// The principal a token signs in: refused (401) when the token is
    /// malformed, unknown, wrong, expired or revoked, or its user disabled.
    /// Messages never contain the token.
    ///
    /// A token found in the database is remembered for [`AUTH_CACHE_TTL`],
    /// so a request costs no database read: revoking a token or changing a
    /// user forgets it at once on this replica; other replicas see the change
    /// within the TTL. Expiry is checked on every request.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let text = TokenText::parse(token)?;
        let found = match self.inner.auth_cache.get(text.id) {
            Some(hit) => Some(hit),
            None => {
                // A revocation committed while this read runs must not be
                // undone by caching what the read saw: the generation tells.
                let generation = self.inner.auth_cache.generation();
                let found = self.store().token_for_auth(text.id).await?.map(|entry| Arc::new(CachedToken::new(entry)));
                match &found {
                    Some(entry) => self.inner.auth_cache.put(text.id, entry.clone(), generation),
                    // Deleted since it was cached: no longer served from the cache.
                    None => self.inner.auth_cache.remove(text.id),
                }
                found
            }
        };
        // One answer for an unknown id and a wrong secret: which ids exist
        // is nobody's business.
        let invalid = || Error::Unauthenticated("the token is not valid (unknown, or a wrong secret)".into());
        let Some(found) = found else {
            return Err(invalid());
        };
        if !token_secret_matches(text.secret, &found.hash) {
            return Err(invalid());
        }
        if let Some(why) = found.record.unusable(self.now()) {
            return Err(Error::Unauthenticated(format!("{why} (token `{}`)", text.id)));
        }
        if found.user.disabled {
            return Err(Error::Unauthenticated(format!("user {} is disabled", quote(&found.user.name))));
        }
        match &found.principal {
            Some(principal) => Ok(principal.clone()),
            None => found.user.principal(),
        }
    }

    pub async fn create_user(&self, principal: &Principal, new: NewUser) -> Result<User> {
        let new = new.validate()?;
        let permit = self.authorize(principal, Action::UserCreate, &user_subject(&new.name)).await?;
        let mut tx = self.store().begin(&permit).await?;
        let user = new.into_user(tx.now(), tx.actor());
        tx.insert_user(&user).await?;
        let pending = event(tx.as_ref(), Action::UserCreate, user_subject(&user.name), None, Some(snapshot(&user)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Changes roles or team, or disables (or re-enables) a user. A
    /// disabled user's tokens sign no one in. An admin cannot disable
    /// themself or take away their own admin role (the installation would
    /// lose its last way in).
    pub async fn update_user(&self, principal: &Principal, name: &str, patch: UserPatch) -> Result<User> {
        patch.validate()?;
        let permit = self.authorize(principal, Action::UserUpdate, &user_subject(name)).await?;
        let mut tx = self.store().begin(&permit).await?;
        let before = tx.lock_user(name).await?.ok_or_else(|| Error::not_found("user", name))?;
        let after = patch.apply(&before, tx.now());
        if after == before {
            return Ok(before);
        }
        if before.name == principal.name() && (after.disabled || !after.roles.contains(&Role::Admin)) {
            return Err(Error::Conflict(format!("{} may not disable themself or remove their own `admin` role", quote(name))));
        }
        tx.update_user(&after).await?;
        let pending = event(tx.as_ref(), Action::UserUpdate, user_subject(name), Some(snapshot(&before)?), Some(snapshot(&after)?));
        tx.record(pending).await?;
        tx.commit().await?;
        // After the commit: a read racing it can no longer see the old row.
        self.inner.auth_cache.clear();
        Ok(after)
    }

    /// Erases the person `name` (GDPR Art. 17): their key is destroyed, so
    /// their name and comments in sealed audit events no longer open; every
    /// other record naming them holds their pseudonym; they are disabled and
    /// their tokens revoked. The log still verifies end to end; the erasure
    /// is audited under the pseudonym. Admins only, never oneself.
    pub async fn erase_user(&self, principal: &Principal, name: &str) -> Result<Erasure> {
        let permit = self.authorize(principal, Action::UserErase, "users").await?;
        if name == principal.name() {
            return Err(Error::Conflict(format!("{} may not erase themself", quote(name))));
        }
        if name == BOOTSTRAP_ADMIN || modelops_core::governance::RESERVED_USER_NAMES.contains(&name) {
            return Err(Error::Conflict(format!("{} is not a person and cannot be erased", quote(name))));
        }
        let mut tx = self.store().begin(&permit).await?;
        let known = tx.lock_user(name).await?.is_some() || tx.person_id(name).await?.is_some();
        if !known {
            return Err(Error::not_found("user", name));
        }
        let pseudonym = tx.erase_person(name).await?;
        let pending = event(
            tx.as_ref(),
            Action::UserErase,
            format!("user/{pseudonym}"),
            None,
            Some(serde_json::json!({"pseudonym": pseudonym})),
        );
        tx.record(pending).await?;
        tx.commit().await?;
        self.inner.auth_cache.clear();
        // Deleted bytes leave the database file (and its write-ahead log) now.
        self.store().scrub().await?;
        let legacy_events = self.store().count_plain_actor_events(name).await?;
        Ok(Erasure { pseudonym, legacy_events })
    }

    pub async fn get_user(&self, principal: &Principal, name: &str) -> Result<User> {
        self.authorize(principal, Action::Read, &user_subject(name)).await?;
        self.store().get_user(name).await?.ok_or_else(|| Error::not_found("user", name))
    }

    pub async fn list_users(&self, principal: &Principal) -> Result<Vec<User>> {
        self.authorize(principal, Action::Read, "users").await?;
        self.store().list_users().await
    }

    /// Creates a token for `user` (the caller when `None`; someone else's
    /// only for admins). It expires after `lifetime` (default
    /// [`DEFAULT_TOKEN_LIFETIME`], at most [`MAX_TOKEN_LIFETIME`]).
    pub async fn create_token(&self, principal: &Principal, user: Option<&str>, name: &str, lifetime: Option<chrono::Duration>) -> Result<NewToken> {
        check_token_name(name)?;
        let lifetime = lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        if lifetime <= chrono::Duration::zero() || lifetime > MAX_TOKEN_LIFETIME {
            return Err(Error::invalid("expires_in", format!("`{}` seconds is not between 1 second and 3650 days", lifetime.num_seconds())));
        }
        let owner = match user {
            // Checked and normalised like every user name (NFC, no NUL or invisible characters).
            Some(u) => Principal::new(u, []).map_err(|e| match e {
                Error::InvalidInput { reason, .. } => Error::invalid("user", reason),
                other => other,
            })?.name().to_string(),
            None => principal.name().to_string(),
        };
        let subject = user_subject(&owner);
        let permit = self.authorize(principal, Action::TokenCreate, &subject).await?;
        if owner != principal.name() {
            self.ensure_admin(principal, Action::TokenCreate, &subject, "tokens of another user are created by admins").await?;
        }
        let mut tx = self.store().begin(&permit).await?;
        let target = tx.lock_user(&owner).await?.ok_or_else(|| Error::not_found("user", &owner))?;
        if target.disabled {
            return Err(Error::Conflict(format!("user {} is disabled", quote(&owner))));
        }
        let expires = tx.now() + lifetime;
        let token = Self::insert_token(tx.as_mut(), &owner, name, Some(expires)).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Forgets every token read for authentication (a revocation made
    /// outside `revoke_token`).
    pub(crate) fn forget_cached_tokens(&self) {
        self.inner.auth_cache.clear();
    }

    /// Tokens of `user` (the caller's own; anyone's for admins), or of
    /// every user with `None` (admins).
    pub async fn list_tokens(&self, principal: &Principal, user: Option<&str>) -> Result<Vec<ApiToken>> {
        self.authorize(principal, Action::Read, "tokens").await?;
        if user != Some(principal.name()) {
            self.ensure_admin(principal, Action::Read, "tokens", "only admins list other users' tokens").await?;
        }
        self.store().list_tokens(user).await
    }

    /// Revokes a token (the caller's own, or anyone's for admins). Revoking
    /// a revoked token changes nothing.
    pub async fn revoke_token(&self, principal: &Principal, id: &str) -> Result<ApiToken> {
        let subject = token_subject(id);
        let permit = self.authorize(principal, Action::TokenRevoke, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let before = tx.lock_token(id).await?.ok_or_else(|| Error::not_found("token", id))?;
        if before.user != principal.name() && !principal.has_role(Role::Admin) {
            drop(tx);
            return Err(self.deny_role(principal, Action::TokenRevoke, &subject, "tokens of another user are revoked by admins").await);
        }
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        let after = ApiToken { revoked_at: Some(tx.now()), ..before.clone() };
        tx.update_token(&after).await?;
        let pending = event(tx.as_ref(), Action::TokenRevoke, subject, Some(token_record(&before)), Some(token_record(&after)));
        tx.record(pending).await?;
        tx.commit().await?;
        self.inner.auth_cache.forget(id);
        Ok(after)
    }

    /// Refuses (and records) an action that needs the admin role here.
    async fn ensure_admin(&self, principal: &Principal, action: Action, subject: &str, why: &str) -> Result<()> {
        if principal.has_role(Role::Admin) {
            return Ok(());
        }
        Err(self.deny_role(principal, action, subject, why).await)
    }

    async fn deny_role(&self, principal: &Principal, action: Action, subject: &str, why: &str) -> Error {
        let denial = Denial::single("role", format!("{}: {why}", quote(principal.name())));
        self.record_denial(principal, action, subject, denial, None).await
    }

    // ------------------------------------------------------------ lifecycle

    /// Reads what a gate needs under the transaction's lock and evaluates it.
    async fn evaluate_gate(
        &self,
        tx: &mut dyn WriteTx,
        model: &Model,
        version: &ModelVersion,
        principal: &Principal,
        target: GateTarget,
        extra_approval: Option<&Approval>,
    ) -> Result<GateDecision> {
        let policy = self.policy_in(tx).await?;
        let mut approvals = tx.version_approvals(&model.name, version.number).await?;
        approvals.extend(extra_approval.cloned());
        let evidence = tx.version_evidence(&model.name, version.number).await?;
        let now = tx.now();
        let review_overdue = match model.aliases.get(CHAMPION) {
            Some(&prod) => tx.next_review(&model.name, prod).await?.is_some_and(|due| due < now),
            None => false,
        };
        let input = GateInput { model, version, approvals: &approvals, evidence: &evidence, review_overdue, principal, transition: target.transition(), now };
        Ok(decide_gate(&policy, target, input))
    }

    /// The `production` gate for a version about to take a share of a
    /// deployment's traffic.
    pub(crate) async fn production_gate(&self, tx: &mut dyn WriteTx, model: &Model, version: &ModelVersion, principal: &Principal) -> Result<GateDecision> {
        self.evaluate_gate(tx, model, version, principal, GateTarget::Production, None).await
    }

    /// Records a denial (its own transaction) and returns it as the error.
    pub(crate) async fn record_denial(&self, principal: &Principal, action: Action, subject: &str, denial: Denial, gate: Option<&GateDecision>) -> Error {
        let mut after = json!({ "action": action.as_str(), "reasons": denial.reasons() });
        if let Some(g) = gate {
            after["gate"] = gate_record(g);
        }
        let recorded = async {
            let mut tx = self.store().begin(&modelops_core::auth::denial_permit(principal)).await?;
            let pending = event(tx.as_ref(), Action::AccessDenied, subject.to_string(), None, Some(after));
            tx.record(pending).await?;
            tx.commit().await
        };
        if let Err(e) = recorded.await {
            tracing::error!(error = %e, actor = principal.name(), %action, subject, "could not record a denial in the audit log");
        }
        Error::Forbidden(denial)
    }

    /// Asks a gate without changing anything: what would moving the version
    /// to `target` need, and does it have it now.
    pub async fn check_gate(&self, principal: &Principal, model: &ModelName, number: u32, target: GateTarget) -> Result<GateDecision> {
        self.authorize(principal, Action::Read, &version_subject(model.as_str(), number)).await?;
        // Plain reads, without the write lock: pipelines may ask often, and
        // the transition itself decides again under the lock.
        let m = self.store().get_model(model).await?;
        let version = self.store().get_version(model, number).await?;
        let (policy, _) = self.active_policy().await?;
        let approvals = self.store().approvals(model, number).await?;
        let evidence = self.store().evidence(model, number).await?;
        let now = self.now();
        let review_overdue = match m.aliases.get(CHAMPION) {
            Some(&prod) => self.store().review_schedule().await?.iter().any(|s| &s.model == model && s.version == prod && s.next_review_at < now),
            None => false,
        };
        let input = GateInput { model: &m, version: &version, approvals: &approvals, evidence: &evidence, review_overdue, principal, transition: target.transition(), now };
        Ok(decide_gate(&policy, target, input))
    }

    /// Draft → in validation, through the `in_validation` gate. For the
    /// model's developers.
    pub async fn submit_version(&self, principal: &Principal, model: &ModelName, number: u32) -> Result<TransitionOutcome> {
        let subject = version_subject(model.as_str(), number);
        let permit = self.authorize(principal, Action::VersionSubmit, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let m = lock_active_model(tx.as_mut(), model).await?;
        let mut tx = self.ensure_developer(tx, principal, &m, &[], Action::VersionSubmit, &subject).await?;
        let before = tx.version(model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        Transition::Submit.check_from(model, number, before.state)?;
        let gate = self.evaluate_gate(tx.as_mut(), &m, &before, principal, GateTarget::InValidation, None).await?;
        if let Some(denial) = gate.denial() {
            drop(tx);
            return Err(self.record_denial(principal, Action::VersionSubmit, &subject, denial, Some(&gate)).await);
        }
        let after = self.change_state(tx.as_mut(), &before, VersionState::InValidation).await?;
        let mut after_record = snapshot(&after)?;
        after_record["gate"] = gate_record(&gate);
        let pending = event(tx.as_ref(), Action::VersionSubmit, subject, Some(snapshot(&before)?), Some(after_record));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(TransitionOutcome { version: after, gate: Some(gate), previous_production: None })
    }

    /// In validation → approved by the server, for a retraining run, when
    /// the `approved` gate allows it with the approvals already given —
    /// the policy asks for no (further) person. Returns the gate's
    /// decision; the version moves only when it allows. Nothing is
    /// approved on anyone's behalf: no approval is recorded.
    pub async fn approve_by_policy(&self, model: &ModelName, number: u32, run: i64) -> Result<GateDecision> {
        let principal = Principal::system();
        let subject = version_subject(model.as_str(), number);
        let permit = self.authorize(&principal, Action::VersionApprove, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let m = lock_active_model(tx.as_mut(), model).await?;
        let before = tx.version(model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        Transition::Approve.check_from(model, number, before.state)?;
        let gate = self.evaluate_gate(tx.as_mut(), &m, &before, &principal, GateTarget::Approved, None).await?;
        if !gate.allowed {
            return Ok(gate);
        }
        let after = self.change_state(tx.as_mut(), &before, VersionState::Approved).await?;
        let record = json!({
            "state": after.state.as_str(),
            "gate": gate_record(&gate),
            "by_policy": format!("retraining run {run}: the `approved` gate allows it without a further approval"),
        });
        let pending = event(tx.as_ref(), Action::VersionApprove, subject, Some(json!({ "state": before.state.as_str() })), Some(record));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(gate)
    }

    /// What the `approved` gate still lacks for a version, as the system
    /// sees it (for a run's "waiting for …" reason).
    pub async fn pending_gate(&self, model: &ModelName, number: u32, target: GateTarget) -> Result<GateDecision> {
        self.check_gate(&Principal::system(), model, number, target).await
    }

    async fn change_state(&self, tx: &mut dyn WriteTx, version: &ModelVersion, state: VersionState) -> Result<ModelVersion> {
        let after = ModelVersion { state, updated_at: tx.now(), ..version.clone() };
        tx.update_version(&after).await?;
        Ok(after)
    }

    /// A validator's (or approver's) decision on a version in validation.
    /// Separation of duties first: the author never decides, and for high
    /// and critical models no listed developer does. A rejection moves the
    /// version to `rejected`; an approval moves it to `approved` as soon as
    /// the `approved` gate allows — until then it stays in validation and
    /// the answer says what is still missing.
    pub async fn decide(&self, principal: &Principal, model: &ModelName, number: u32, decision: Decision, input: DecisionInput) -> Result<DecisionOutcome> {
        input.validate(self.now())?;
        let action = match decision {
            Decision::Approve => Action::VersionApprove,
            Decision::Reject => Action::VersionReject,
        };
        let subject = version_subject(model.as_str(), number);
        let permit = self.authorize(principal, action, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let m = lock_active_model(tx.as_mut(), model).await?;
        let before = tx.version(model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        if let Err(Error::Forbidden(denial)) = check_separation_of_duties(&m, &before.created_by, principal) {
            drop(tx);
            return Err(self.record_denial(principal, action, &subject, denial, None).await);
        }
        let transition = match decision {
            Decision::Approve => Transition::Approve,
            Decision::Reject => Transition::Reject,
        };
        transition.check_from(model, number, before.state)?;
        let approval = Approval {
            model: model.clone(),
            version: number,
            approver: principal.name().to_string(),
            roles: principal.roles().clone(),
            decision,
            comment: input.comment,
            conditions: input.conditions,
            expires_at: input.expires_at,
            created_at: tx.now(),
        };
        tx.insert_approval(&approval).await?;
        let (after, gate) = match decision {
            Decision::Reject => (self.change_state(tx.as_mut(), &before, VersionState::Rejected).await?, None),
            Decision::Approve => {
                let gate = self.evaluate_gate(tx.as_mut(), &m, &before, principal, GateTarget::Approved, None).await?;
                let after = if gate.allowed { self.change_state(tx.as_mut(), &before, VersionState::Approved).await? } else { before.clone() };
                (after, Some(gate))
            }
        };
        let mut record = json!({ "approval": snapshot(&approval)?, "state": after.state.as_str() });
        if let Some(g) = &gate {
            record["gate"] = gate_record(g);
        }
        let pending = event(tx.as_ref(), action, subject, Some(json!({ "state": before.state.as_str() })), Some(record));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(DecisionOutcome { version: after, approval, gate })
    }

    /// Approved → production: the `production` gate, then the `champion`
    /// alias moves here, the previous production version returns to
    /// `approved`, and the next periodic review is scheduled from the
    /// tier's cadence (or kept, when the version was in production before
    /// and its review is due sooner). Rolling back is promoting an earlier approved
    /// version, through the same gate. Promoting the version already in
    /// production changes nothing.
    pub async fn promote_version(&self, principal: &Principal, model: &ModelName, number: u32) -> Result<TransitionOutcome> {
        if number == 0 {
            return Err(Error::invalid("version", "`0` is not a version number (1, 2, 3…)"));
        }
        let subject = version_subject(model.as_str(), number);
        let permit = self.authorize(principal, Action::VersionPromote, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let m = lock_active_model(tx.as_mut(), model).await?;
        match self.promote_in(tx.as_mut(), &m, number, principal).await? {
            Promotion::Done(outcome) => {
                tx.commit().await?;
                Ok(*outcome)
            }
            Promotion::Denied(denial, gate) => {
                drop(tx);
                Err(self.record_denial(principal, Action::VersionPromote, &subject, denial, Some(&gate)).await)
            }
        }
    }

    /// Promotion inside a transaction that holds the model's lock: what
    /// [`Registry::promote_version`] does, and what a deployment does when
    /// a version comes to take all of its traffic. A gate's refusal is
    /// returned for the caller to roll back and record.
    pub(crate) async fn promote_in(&self, tx: &mut dyn WriteTx, m: &Model, number: u32, principal: &Principal) -> Result<Promotion> {
        let model = &m.name;
        let subject = version_subject(model.as_str(), number);
        let before = tx.version(model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        let previous = m.aliases.get(CHAMPION).copied();
        if before.state == VersionState::Production && previous == Some(number) {
            return Ok(Promotion::Done(Box::new(TransitionOutcome { version: before, gate: None, previous_production: None })));
        }
        before.ensure_active()?;
        let gate = self.evaluate_gate(tx, m, &before, principal, GateTarget::Production, None).await?;
        if let Some(denial) = gate.denial() {
            return Ok(Promotion::Denied(denial, gate));
        }
        let now = tx.now();
        if let Some(prev) = previous.filter(|p| *p != number) {
            if let Some(prev_version) = tx.version(model, prev).await? {
                if prev_version.state == VersionState::Production {
                    self.change_state(tx, &prev_version, VersionState::Approved).await?;
                }
            }
            // Its review date is kept: promoted back, it is due when it was
            // (stepping out of production must not reset an overdue review).
        }
        let champion = AliasName::parse(CHAMPION)?;
        tx.set_alias(model, &champion, number).await?;
        let after = self.change_state(tx, &before, VersionState::Production).await?;
        let policy = self.policy_in(tx).await?;
        let fresh = now + policy.review_cadence(m.risk_tier);
        let next_review = match tx.next_review(model, number).await? {
            Some(kept) => kept.min(fresh),
            None => fresh,
        };
        tx.set_next_review(model, number, Some(next_review)).await?;
        let after = tx.version(model, number).await?.unwrap_or(after);
        let pointer = |n: u32| json!({ "alias": CHAMPION, "version": n });
        let alias_event = event(tx, Action::AliasSet, alias_subject(model.as_str(), CHAMPION), previous.map(pointer), Some(pointer(number)));
        tx.record(alias_event).await?;
        let mut record = snapshot(&after)?;
        record["gate"] = gate_record(&gate);
        record["previous_production"] = json!(previous);
        record["next_review_at"] = json!(modelops_core::clock::format_time(&next_review));
        let pending = event(tx, Action::VersionPromote, subject, Some(snapshot(&before)?), Some(record));
        tx.record(pending).await?;
        Ok(Promotion::Done(Box::new(TransitionOutcome { version: after, gate: Some(gate), previous_production: previous })))
    }

    /// After a tier change: the production version's next review comes no
    /// later than the new cadence allows from now.
    pub(crate) async fn reschedule_review(&self, tx: &mut dyn WriteTx, model: &Model) -> Result<()> {
        let Some(&prod) = model.aliases.get(CHAMPION) else { return Ok(()) };
        let Some(due) = tx.next_review(&model.name, prod).await? else { return Ok(()) };
        let policy = self.policy_in(tx).await?;
        let latest = tx.now() + policy.review_cadence(model.risk_tier);
        if latest < due {
            tx.set_next_review(&model.name, prod, Some(latest)).await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ evidence

    /// Attaches evidence to a version: a validation metric, or a document
    /// uploaded beforehand like an artifact. Append-only. A developer (who
    /// is not also a validator) must be one of the model's developers.
    pub async fn add_evidence(&self, principal: &Principal, model: &ModelName, number: u32, new: NewEvidence) -> Result<Evidence> {
        new.validate()?;
        let subject = version_subject(model.as_str(), number);
        let permit = self.authorize(principal, Action::EvidenceAdd, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let m = lock_active_model(tx.as_mut(), model).await?;
        // Validators attach evidence to any model; developers to their own.
        let mut tx = self.ensure_developer(tx, principal, &m, &[Role::Validator], Action::EvidenceAdd, &subject).await?;
        let version = tx.version(model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        version.ensure_active()?;
        let (kind, name, value, dataset, document) = match new {
            NewEvidence::Metric { name, value, dataset } => (EvidenceKind::Metric, name, Some(value), dataset, None),
            NewEvidence::Document { name, sha256, filename } => {
                // Under the write lock, which garbage collection holds too.
                let Some(size) = self.artifacts().head(&sha256).await? else {
                    return Err(Error::invalid("sha256", format!("document `{sha256}` has not been uploaded; upload it with `POST /api/v1/artifacts` first")));
                };
                (EvidenceKind::Document, name, None, String::new(), Some(DocumentRef { sha256, size, filename }))
            }
        };
        let evidence = Evidence { model: model.clone(), version: number, kind, name, value, dataset, document, created_at: tx.now(), created_by: tx.actor().to_string() };
        tx.insert_evidence(&evidence).await?;
        let pending = event(tx.as_ref(), Action::EvidenceAdd, subject, None, Some(snapshot(&evidence)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(evidence)
    }

    /// An evidence document of a version (a validation report) as a
    /// verified stream; only documents attached to this version are served.
    pub async fn download_evidence(
        &self,
        principal: &Principal,
        model: &ModelName,
        number: u32,
        sha256: &modelops_core::version::Sha256Hex,
    ) -> Result<(DocumentRef, modelops_artifacts::Download)> {
        self.authorize(principal, Action::Read, &version_subject(model.as_str(), number)).await?;
        let document = self
            .store()
            .evidence(model, number)
            .await?
            .into_iter()
            .filter_map(|e| e.document)
            .find(|d| &d.sha256 == sha256)
            .ok_or_else(|| Error::not_found("evidence document", format!("{model}/{number}/{sha256}")))?;
        let download = self.artifacts().get(sha256).await?;
        if download.size != document.size {
            return Err(Error::Internal(format!("stored document `{sha256}` has {} bytes, the evidence records {}", download.size, document.size)));
        }
        Ok((document, download))
    }

    /// Approvals, evidence, reviews and the next review date of a version.
    pub async fn version_governance(&self, principal: &Principal, model: &ModelName, number: u32) -> Result<VersionGovernance> {
        self.authorize(principal, Action::Read, &version_subject(model.as_str(), number)).await?;
        let version = self.store().get_version(model, number).await?;
        let approvals = self.store().approvals(model, number).await?;
        let evidence = self.store().evidence(model, number).await?;
        let reviews: Vec<Review> = self.store().reviews(model).await?.into_iter().filter(|r| r.version == number).collect();
        let next_review_at = self.store().review_schedule().await?.into_iter().find(|s| &s.model == model && s.version == number).map(|s| s.next_review_at);
        Ok(VersionGovernance { version, approvals, evidence, reviews, next_review_at })
    }

    // ------------------------------------------------------------ reviews

    /// Records a periodic review of the production version and schedules
    /// the next one from the tier's cadence. The version's author does not
    /// review it.
    pub async fn record_review(&self, principal: &Principal, model: &ModelName, number: u32, outcome: ReviewOutcome, comment: &str) -> Result<Review> {
        modelops_core::model::check_text("comment", comment, modelops_core::model::MAX_TEXT_LEN)?;
        let subject = version_subject(model.as_str(), number);
        let permit = self.authorize(principal, Action::ReviewRecord, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let m = lock_active_model(tx.as_mut(), model).await?;
        let version = tx.version(model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        if version.created_by == principal.name() {
            drop(tx);
            let denial = Denial::single("separation_of_duties", format!("{} created this version and may not review it", quote(principal.name())));
            return Err(self.record_denial(principal, Action::ReviewRecord, &subject, denial, None).await);
        }
        if version.state != VersionState::Production {
            return Err(Error::Conflict(format!("version `{model}/{number}` is `{}`; periodic reviews are of the production version", version.state)));
        }
        let policy = self.policy_in(tx.as_mut()).await?;
        let now = tx.now();
        let review = Review {
            model: model.clone(),
            version: number,
            reviewer: principal.name().to_string(),
            outcome,
            comment: comment.to_string(),
            reviewed_at: now,
            next_review_at: now + policy.review_cadence(m.risk_tier),
        };
        tx.insert_review(&review).await?;
        tx.set_next_review(model, number, Some(review.next_review_at)).await?;
        let pending = event(tx.as_ref(), Action::ReviewRecord, subject, None, Some(snapshot(&review)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(review)
    }

    /// Production versions whose review is due within `within` of now
    /// (zero: only the overdue ones), soonest first.
    pub async fn reviews_due(&self, principal: &Principal, within: chrono::Duration) -> Result<Vec<DueReview>> {
        self.authorize(principal, Action::Read, "reviews").await?;
        let now = self.now();
        let mut out = Vec::new();
        for s in self.store().review_schedule().await? {
            if s.next_review_at > now + within {
                continue;
            }
            let model = self.store().get_model(&s.model).await?;
            // A version out of production keeps its date for when it returns.
            if !is_production(&model, s.version) {
                continue;
            }
            out.push(DueReview {
                model: s.model,
                version: s.version,
                tier: model.risk_tier,
                owner: model.owner,
                next_review_at: s.next_review_at,
                last_reviewed_at: s.last_reviewed_at,
                overdue: s.next_review_at < now,
            });
        }
        Ok(out)
    }
}

/// Events about tokens carry the token's record, never its secret.
struct PendingTokenEvent;

impl PendingTokenEvent {
    fn created(tx: &dyn WriteTx, token: &ApiToken) -> modelops_core::audit::PendingEvent {
        event(tx, Action::TokenCreate, token_subject(&token.id), None, Some(token_record(token)))
    }
}

/// Whether a version is the one the model's champion alias points at.
pub fn is_production(model: &Model, number: u32) -> bool {
    model.aliases.get(CHAMPION) == Some(&number)
}

/// Subjects of everything about one model, for its report.
pub fn model_subjects(model: &ModelName) -> (String, String) {
    (model_subject(model.as_str()), format!("{}/*", model_subject(model.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_principal_is_an_admin() {
        let p = system_principal();
        assert_eq!(p.name(), "system");
        assert!(p.has_role(Role::Admin));
    }

    #[test]
    fn random_tokens_parse_and_differ() {
        let (id, secret) = random_token();
        let text = TokenText::format(&id, &secret);
        let parsed = TokenText::parse(&text).unwrap();
        assert_eq!(parsed.id, id);
        assert_eq!(secret.len(), 43, "32 bytes in unpadded base64url");
        assert_ne!(random_token().1, secret);
    }
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// What the person's name reads as from now on.
    pub pseudonym: String,
    /// Events written before personal values were sealed (by an earlier
    /// release) that name the person as their actor in hashed bytes: erasing
    /// those would break the chain, so they are reported, not changed.
    pub legacy_events: u64,
}
