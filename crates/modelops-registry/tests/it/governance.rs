//! Governance through the use cases: the lifecycle with the default gates of
//! each tier, separation of duties, approvals that expire, periodic reviews,
//! tokens and policies — on both backends, with the mock clock.

use crate::harness::*;
use chrono::Duration;
use modelops_core::audit::AuditQuery;
use modelops_core::auth::{Principal, Role};
use modelops_core::governance::{Decision, DecisionInput, GateTarget, NewEvidence, NewUser, ReviewOutcome, UserPatch};
use modelops_core::model::{ModelPatch, RiskTier, ValidationTarget};
use modelops_core::name::AliasName;
use modelops_core::version::{ModelCard, Sha256Hex, VersionPatch, VersionState};
use modelops_core::{Error, ErrorKind};
use modelops_registry::reports::{Report, ReportFormat};
use modelops_registry::{PolicyFormat, Registry};

fn dana() -> Principal {
    with_roles("dana", &[Role::Developer])
}
fn vic(n: u8) -> Principal {
    with_roles(&format!("vic{n}"), &[Role::Validator])
}
fn rita() -> Principal {
    with_roles("rita", &[Role::Approver])
}
fn dep() -> Principal {
    with_roles("dep", &[Role::Deployer])
}

fn full_card() -> ModelCard {
    ModelCard {
        markdown: "# credit".into(),
        intended_use: "retail loans under 50k".into(),
        limitations: "thin credit files".into(),
        evaluation_data: "2025 Q4 hold-out".into(),
        ..Default::default()
    }
}

/// The failing condition names of a refusal.
#[track_caller]
fn denied(result: Result<impl std::fmt::Debug, Error>) -> Vec<String> {
    match assert_kind(result, ErrorKind::Forbidden) {
        Error::Forbidden(d) => d.reasons().iter().map(|r| r.condition.clone()).collect(),
        other => panic!("{other}"),
    }
}

async fn model(s: &Registry, n: &str, tier: RiskTier) {
    let mut m = new_model(n);
    m.owner = "dana".into();
    m.team = String::new();
    m.risk_tier = tier;
    m.developers = vec!["dana".into(), "devon".into()];
    m.validation = Some(ValidationTarget { metric: "auc".into(), threshold: 0.8 });
    s.create_model(&actor("admin"), m).await.unwrap();
}

async fn version(s: &Registry, n: &str) -> u32 {
    let mut v = new_version();
    v.card = full_card();
    s.create_version(&dana(), &name(n), v).await.unwrap().number
}

async fn upload_report(s: &Registry, who: &Principal) -> Sha256Hex {
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"%PDF validation report"))]);
    s.upload_artifact(who, body, None).await.unwrap().sha256
}

/// Evidence that satisfies the high tier: the metric over the threshold and a report.
async fn evidence(s: &Registry, n: &str, number: u32, auc: f64) {
    let m = name(n);
    s.add_evidence(&vic(1), &m, number, NewEvidence::Metric { name: "auc".into(), value: auc, dataset: "holdout".into() }).await.unwrap();
    let sha256 = upload_report(s, &vic(1)).await;
    s.add_evidence(&vic(1), &m, number, NewEvidence::Document { name: "validation_report".into(), sha256, filename: "report.pdf".into() })
        .await
        .unwrap();
}

fn approve() -> DecisionInput {
    DecisionInput { comment: "reviewed".into(), ..Default::default() }
}

/// Submit, evidence, two independent approvals: an approved version.
async fn approved_version(s: &Registry, n: &str) -> u32 {
    let number = version(s, n).await;
    s.submit_version(&dana(), &name(n), number).await.unwrap();
    evidence(s, n, number, 0.85).await;
    s.decide(&vic(1), &name(n), number, Decision::Approve, approve()).await.unwrap();
    let outcome = s.decide(&vic(2), &name(n), number, Decision::Approve, approve()).await.unwrap();
    assert_eq!(outcome.version.state, VersionState::Approved, "{:?}", outcome.gate);
    number
}

pub async fn high_tier_walk_with_two_independent_validators(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("credit");
    model(s, "credit", RiskTier::High).await;
    let mut incomplete = new_version();
    incomplete.card = ModelCard { intended_use: "retail loans".into(), ..Default::default() };
    let draft = s.create_version(&dana(), &m, incomplete).await.unwrap().number;
    let gate = s.check_gate(&dep(), &m, draft, GateTarget::Approved).await.unwrap();
    assert!(gate.failures().any(|c| c.name == "complete_card") && gate.failures().any(|c| c.name == "lifecycle"), "{gate:?}");
    // A draft's card may change; this one is retired instead.
    s.retire_version(&dana(), &m, draft).await.unwrap();
    let n = version(s, "credit").await;
    // Only its developers submit.
    assert_eq!(denied(s.submit_version(&with_roles("mallory", &[Role::Developer]), &m, n).await), ["developers"]);
    let submitted = s.submit_version(&dana(), &m, n).await.unwrap();
    assert_eq!(submitted.version.state, VersionState::InValidation);

    // Separation of duties: the author, then a listed developer who is also a validator.
    assert_eq!(denied(s.decide(&with_roles("dana", &[Role::Validator]), &m, n, Decision::Approve, approve()).await), ["separation_of_duties"]);
    assert_eq!(denied(s.decide(&with_roles("devon", &[Role::Validator]), &m, n, Decision::Approve, approve()).await), ["separation_of_duties"]);
    // A viewer may not decide at all.
    assert_eq!(denied(s.decide(&with_roles("vera", &[Role::Viewer]), &m, n, Decision::Approve, approve()).await), ["role"]);

    // One approval: still in validation, and the answer says what is missing.
    let first = s.decide(&vic(1), &m, n, Decision::Approve, approve()).await.unwrap();
    assert_eq!(first.version.state, VersionState::InValidation);
    let gate = first.gate.unwrap();
    let failing: Vec<&str> = gate.failures().map(|c| c.name.as_str()).collect();
    assert_eq!(failing, ["two_independent_validators", "validation_metric", "validation_report"]);
    // The same validator approving twice still counts once.
    let again = s.decide(&vic(1), &m, n, Decision::Approve, approve()).await.unwrap();
    assert!(again.gate.unwrap().failures().any(|c| c.name == "two_independent_validators"));

    // Not approved yet: promotion is refused, naming the lifecycle and the gate.
    let reasons = denied(s.promote_version(&dep(), &m, n).await);
    assert_eq!(reasons[0], "lifecycle", "{reasons:?}");

    // Evidence from the model's own developers does not count, however good.
    s.add_evidence(&dana(), &m, n, NewEvidence::Metric { name: "auc".into(), value: 0.99, dataset: "train".into() }).await.unwrap();
    let gate = s.check_gate(&dep(), &m, n, GateTarget::Approved).await.unwrap();
    assert!(gate.failures().any(|c| c.name == "validation_metric"), "{gate:?}");
    // Developers may not move the goalposts: tier, validation target, developers, owner, team.
    for patch in [
        ModelPatch { risk_tier: Some(RiskTier::Low), ..Default::default() },
        ModelPatch { validation: Some(Some(ValidationTarget { metric: "auc".into(), threshold: -1.0 })), ..Default::default() },
        ModelPatch { developers: Some(vec!["dana".into()]), ..Default::default() },
    ] {
        assert_eq!(denied(s.update_model(&dana(), &m, patch).await), ["governance_fields"]);
    }
    s.update_model(&dana(), &m, ModelPatch { description: Some("scores applications".into()), ..Default::default() }).await.unwrap();
    // The risk officer may: raising the bar is theirs to do.
    let raised = ModelPatch { validation: Some(Some(ValidationTarget { metric: "auc".into(), threshold: 0.82 })), ..Default::default() };
    assert_eq!(s.update_model(&rita(), &m, raised).await.unwrap().validation.unwrap().threshold, 0.82);
    // The card was frozen when the version was submitted.
    assert_kind(s.update_version(&dana(), &m, n, VersionPatch { description: None, card: Some(full_card()) }).await, ErrorKind::Conflict);
    // A metric under the threshold does not do.
    s.add_evidence(&vic(1), &m, n, NewEvidence::Metric { name: "auc".into(), value: 0.7, dataset: "holdout".into() }).await.unwrap();
    let gate = s.check_gate(&dep(), &m, n, GateTarget::Approved).await.unwrap();
    assert!(gate.failures().any(|c| c.name == "validation_metric"));
    evidence(s, "credit", n, 0.85).await;
    let second = s.decide(&vic(2), &m, n, Decision::Approve, approve()).await.unwrap();
    assert_eq!(second.version.state, VersionState::Approved, "{:?}", second.gate);
    assert!(second.gate.as_ref().unwrap().allowed);

    // The approved card is frozen; the description is not.
    assert_kind(s.update_version(&dana(), &m, n, VersionPatch { description: None, card: Some(ModelCard::default()) }).await, ErrorKind::Conflict);
    s.update_version(&dana(), &m, n, VersionPatch { description: Some("approved cut".into()), card: None }).await.unwrap();

    // Promotion: champion moves, the next review is a year away.
    assert_eq!(denied(s.promote_version(&vic(1), &m, n).await), ["role"]);
    let promoted = s.promote_version(&dep(), &m, n).await.unwrap();
    assert_eq!(promoted.version.state, VersionState::Production);
    assert_eq!(s.get_model(&m).await.unwrap().aliases.get("champion"), Some(&n));
    let gov = s.version_governance(&dep(), &m, n).await.unwrap();
    assert_eq!(gov.next_review_at, Some(start_time() + Duration::days(365)));
    assert_eq!(gov.approvals.len(), 3);

    // A second version replaces it; rolling back is promoting the first again.
    let n2 = approved_version(s, "credit").await;
    let outcome = s.promote_version(&dep(), &m, n2).await.unwrap();
    assert_eq!(outcome.previous_production, Some(n));
    assert_eq!(s.get_version(&m, n).await.unwrap().state, VersionState::Approved);
    let back = s.promote_version(&dep(), &m, n).await.unwrap();
    assert_eq!((back.version.state, back.previous_production), (VersionState::Production, Some(n2)));
    assert_eq!(s.get_version(&m, n2).await.unwrap().state, VersionState::Approved);
    let model_now = s.get_model(&m).await.unwrap();
    assert_eq!(model_now.aliases.get("champion"), Some(&n));
    // Only one version is in production, and only it has a review scheduled.
    let due = s.reviews_due(&dep(), Duration::days(400)).await.unwrap();
    assert_eq!(due.iter().map(|d| d.version).collect::<Vec<_>>(), [n]);

    // Every refusal above is in the audit log with its reasons.
    let denials = s.list_events(&AuditQuery { action: Some("access.denied".into()), ..Default::default() }).await.unwrap().items;
    assert!(denials.len() >= 6, "{}", denials.len());
    let promote_denial = denials.iter().find(|e| e.after.as_ref().unwrap()["action"] == "version.promote" && e.after.as_ref().unwrap().get("gate").is_some()).unwrap();
    assert_eq!(promote_denial.after.as_ref().unwrap()["gate"]["policy_sha256"].as_str().unwrap().len(), 64);
    // Allowed transitions record the gate that let them, with the policy hash.
    let promotions = s.list_events(&AuditQuery { action: Some("version.promote".into()), ..Default::default() }).await.unwrap().items;
    assert_eq!(promotions.len(), 3);
    assert!(promotions.iter().all(|e| e.after.as_ref().unwrap()["gate"]["allowed"] == true));
}

pub async fn an_expired_approval_no_longer_counts(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("credit");
    model(s, "credit", RiskTier::High).await;
    let n = version(s, "credit").await;
    s.submit_version(&dana(), &m, n).await.unwrap();
    evidence(s, "credit", n, 0.9).await;
    let expiring = DecisionInput { expires_at: Some(start_time() + Duration::days(1)), ..approve() };
    assert_invalid(s.decide(&vic(1), &m, n, Decision::Approve, DecisionInput { expires_at: Some(start_time() - Duration::days(1)), ..approve() }).await, "expires_at");
    s.decide(&vic(1), &m, n, Decision::Approve, expiring.clone()).await.unwrap();
    assert_eq!(s.decide(&vic(2), &m, n, Decision::Approve, expiring).await.unwrap().version.state, VersionState::Approved);
    ctx.clock.advance(Duration::days(2));
    let reasons = denied(s.promote_version(&dep(), &m, n).await);
    assert_eq!(reasons, ["two_independent_validators"]);
    assert_eq!(s.get_version(&m, n).await.unwrap().state, VersionState::Approved, "a refused promotion changes nothing");
    assert!(s.get_model(&m).await.unwrap().aliases.is_empty());
}

pub async fn a_rejection_ends_validation(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("credit");
    model(s, "credit", RiskTier::Medium).await;
    let n = version(s, "credit").await;
    assert_kind(s.decide(&vic(1), &m, n, Decision::Approve, approve()).await, ErrorKind::Conflict);
    s.submit_version(&dana(), &m, n).await.unwrap();
    let rejected = s.decide(&vic(1), &m, n, Decision::Reject, DecisionInput { comment: "leaks the target".into(), ..Default::default() }).await.unwrap();
    assert_eq!(rejected.version.state, VersionState::Rejected);
    assert_kind(s.decide(&vic(2), &m, n, Decision::Approve, approve()).await, ErrorKind::Conflict);
    assert_eq!(denied(s.promote_version(&dep(), &m, n).await)[0], "lifecycle");
}

pub async fn low_and_medium_tiers_need_less(ctx: &Ctx) {
    let s = &ctx.registry;
    model(s, "low", RiskTier::Low).await;
    let mut v = new_version();
    v.card = ModelCard::default();
    let n = s.create_version(&dana(), &name("low"), v).await.unwrap().number;
    s.submit_version(&dana(), &name("low"), n).await.unwrap();
    // Low: the card's intended use, nothing else; a developer of the model may approve a low-tier version.
    let first = s.decide(&with_roles("devon", &[Role::Validator]), &name("low"), n, Decision::Approve, approve()).await.unwrap();
    assert_eq!(first.gate.unwrap().failures().map(|c| c.name.clone()).collect::<Vec<_>>(), ["card_intended_use"]);
    assert_eq!(s.get_version(&name("low"), n).await.unwrap().state, VersionState::InValidation);
    // With the intended use stated, one approval does it.
    let n = version(s, "low").await;
    s.submit_version(&dana(), &name("low"), n).await.unwrap();
    let again = s.decide(&with_roles("devon", &[Role::Validator]), &name("low"), n, Decision::Approve, approve()).await.unwrap();
    assert_eq!(again.version.state, VersionState::Approved);

    model(s, "medium", RiskTier::Medium).await;
    let n = version(s, "medium").await;
    s.submit_version(&dana(), &name("medium"), n).await.unwrap();
    // Medium: one validator who is not the author.
    let outcome = s.decide(&rita(), &name("medium"), n, Decision::Approve, approve()).await.unwrap();
    assert_eq!(outcome.version.state, VersionState::InValidation, "an approver is not a validator");
    let outcome = s.decide(&vic(1), &name("medium"), n, Decision::Approve, approve()).await.unwrap();
    assert_eq!(outcome.version.state, VersionState::Approved);
}

pub async fn critical_needs_a_risk_officer_and_no_overdue_review(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("pd");
    model(s, "pd", RiskTier::Critical).await;
    let n = version(s, "pd").await;
    s.submit_version(&dana(), &m, n).await.unwrap();
    evidence(s, "pd", n, 0.9).await;
    s.decide(&vic(1), &m, n, Decision::Approve, approve()).await.unwrap();
    let two = s.decide(&vic(2), &m, n, Decision::Approve, approve()).await.unwrap();
    assert_eq!(two.gate.unwrap().failures().map(|c| c.name.clone()).collect::<Vec<_>>(), ["risk_officer_approval"]);
    assert_eq!(s.decide(&rita(), &m, n, Decision::Approve, approve()).await.unwrap().version.state, VersionState::Approved);
    s.promote_version(&dep(), &m, n).await.unwrap();

    // A second version, approved; then the first one's review (every 180 days) goes overdue.
    let n2 = version(s, "pd").await;
    s.submit_version(&dana(), &m, n2).await.unwrap();
    evidence(s, "pd", n2, 0.9).await;
    for who in [vic(1), vic(2), rita()] {
        s.decide(&who, &m, n2, Decision::Approve, approve()).await.unwrap();
    }
    ctx.clock.advance(Duration::days(181));
    let due = s.reviews_due(&dep(), Duration::zero()).await.unwrap();
    assert_eq!((due.len(), due[0].version, due[0].overdue), (1, n, true));
    assert_eq!(denied(s.promote_version(&dep(), &m, n2).await), ["no_overdue_review"]);

    // The author may not review; a validator records the review, and promotion goes through.
    assert_eq!(denied(s.record_review(&with_roles("dana", &[Role::Validator]), &m, n, ReviewOutcome::Satisfactory, "").await), ["separation_of_duties"]);
    assert_kind(s.record_review(&vic(1), &m, n2, ReviewOutcome::Satisfactory, "").await, ErrorKind::Conflict);
    let review = s.record_review(&vic(1), &m, n, ReviewOutcome::Findings, "calibration drifted").await.unwrap();
    assert_eq!(review.next_review_at, start_time() + Duration::days(181 + 180));
    assert!(s.reviews_due(&dep(), Duration::zero()).await.unwrap().is_empty());
    s.promote_version(&dep(), &m, n2).await.unwrap();
    assert_eq!(s.get_model(&m).await.unwrap().aliases.get("champion"), Some(&n2));
}

pub async fn champion_is_moved_only_by_promotion(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("credit");
    model(s, "credit", RiskTier::High).await;
    let n = version(s, "credit").await;
    let champion = AliasName::parse("champion").unwrap();
    assert_eq!(denied(s.set_alias(&actor("admin"), &m, &champion, n).await)[0], "lifecycle");
    let n = approved_version(s, "credit").await;
    // Through the alias, with the promote role and gate.
    assert_eq!(denied(s.set_alias(&dana(), &m, &champion, n).await), ["role"]);
    assert_eq!(s.set_alias(&dep(), &m, &champion, n).await.unwrap().state, VersionState::Production);
    assert_kind(s.delete_alias(&actor("admin"), &m, &champion).await, ErrorKind::Conflict);
    // Retiring the production version takes it out of production and of the review schedule.
    s.retire_version(&dep(), &m, n).await.unwrap();
    assert!(s.get_model(&m).await.unwrap().aliases.is_empty());
    assert!(s.reviews_due(&dep(), Duration::days(4000)).await.unwrap().is_empty());
}

pub async fn developers_are_scoped_to_their_models(ctx: &Ctx) {
    let s = &ctx.registry;
    let mut m = new_model("scoped");
    m.owner = "olga".into();
    m.team = "risk".into();
    m.developers = vec!["dana".into()];
    s.create_model(&actor("admin"), m).await.unwrap();
    let outsider = with_roles("mallory", &[Role::Developer]).with_team("marketing");
    assert_eq!(denied(s.create_version(&outsider, &name("scoped"), new_version()).await), ["developers"]);
    assert_eq!(denied(s.update_model(&outsider, &name("scoped"), ModelPatch { description: Some("x".into()), ..Default::default() }).await), ["developers"]);
    assert_eq!(denied(s.retire_model(&outsider, &name("scoped")).await), ["developers"]);
    let tag = modelops_core::name::TagKey::parse("k").unwrap();
    let target = modelops_core::repo::TagTarget::Model(name("scoped"));
    assert_eq!(denied(s.set_tag(&outsider, &target, &tag, "v").await), ["developers"]);
    // Owner, listed developer and team member may.
    for who in [with_roles("olga", &[Role::Developer]), dana(), with_roles("tom", &[Role::Developer]).with_team("risk")] {
        s.create_version(&who, &name("scoped"), new_version()).await.unwrap();
    }
    assert_eq!(s.get_model(&name("scoped")).await.unwrap().latest_version, Some(3));
    let staging = AliasName::parse("staging").unwrap();
    assert_eq!(denied(s.set_alias(&outsider, &name("scoped"), &staging, 1).await), ["developers"]);
    assert_eq!(denied(s.retire_version(&outsider, &name("scoped"), 1).await), ["developers"]);
    // Deployers move aliases and retire on any model.
    s.set_alias(&dep(), &name("scoped"), &staging, 1).await.unwrap();
    s.retire_version(&dep(), &name("scoped"), 1).await.unwrap();
}

pub async fn tokens_sign_in_until_expired_revoked_or_disabled(ctx: &Ctx) {
    let s = &ctx.registry;
    let admin_token = s.bootstrap_admin().await.unwrap().expect("a fresh installation creates admin");
    assert!(s.bootstrap_admin().await.unwrap().is_none(), "only once");
    let admin = s.authenticate(&admin_token.secret).await.unwrap();
    assert_eq!((admin.name(), admin.has_role(Role::Admin)), ("admin", true));

    let user = s.create_user(&admin, NewUser { name: "vic1".into(), roles: [Role::Validator].into(), team: "mrm".into() }).await.unwrap();
    assert_kind(s.create_user(&admin, NewUser { name: "vic1".into(), roles: [Role::Viewer].into(), team: String::new() }).await, ErrorKind::AlreadyExists);
    assert_invalid(s.create_user(&admin, NewUser { name: "x".into(), roles: Default::default(), team: String::new() }).await, "roles");
    assert_invalid(s.create_user(&admin, NewUser { name: "system".into(), roles: [Role::Admin].into(), team: String::new() }).await, "name");
    assert_invalid(s.create_token(&admin, Some("bad\0name"), "x", None).await, "user");
    assert_eq!(denied(s.create_user(&user.principal().unwrap(), NewUser { name: "y".into(), roles: [Role::Admin].into(), team: String::new() }).await), ["role"]);

    let vic = user.principal().unwrap();
    let token = s.create_token(&vic, None, "laptop", Some(Duration::days(1))).await.unwrap();
    assert!(token.secret.starts_with("mdo_"));
    let signed_in = s.authenticate(&token.secret).await.unwrap();
    assert_eq!((signed_in.name(), signed_in.team()), ("vic1", Some("mrm")));
    // Someone else's token: admins only.
    assert_eq!(denied(s.create_token(&vic, Some("admin"), "x", None).await), ["role"]);
    let for_vic = s.create_token(&admin, Some("vic1"), "ci", None).await.unwrap();
    assert_eq!(s.list_tokens(&vic, Some("vic1")).await.unwrap().len(), 2);
    assert_eq!(denied(s.list_tokens(&vic, None).await), ["role"]);

    let unauthenticated = |r: Result<Principal, Error>| assert_kind(r, ErrorKind::Unauthenticated).to_string();
    // Wrong secret with a real id, unknown id, malformed: all 401, never echoing the token.
    let forged = format!("mdo_{}_{}", token.token.id, "A".repeat(43));
    // One answer for a wrong secret and an unknown id.
    let wrong = unauthenticated(s.authenticate(&forged).await);
    assert_eq!(wrong, unauthenticated(s.authenticate(&format!("mdo_000000000000_{}", "B".repeat(43))).await));
    assert!(!wrong.contains(&token.token.id), "{wrong}");
    let garbage = unauthenticated(s.authenticate("hunter2").await);
    assert!(!garbage.contains("hunter2"), "{garbage}");

    ctx.clock.advance(Duration::days(2));
    assert!(unauthenticated(s.authenticate(&token.secret).await).contains("expired"));
    s.authenticate(&for_vic.secret).await.unwrap();
    // Revoking someone else's token needs admin; one's own is fine.
    let other = s.create_token(&admin, None, "spare", None).await.unwrap();
    assert_eq!(denied(s.revoke_token(&vic, &other.token.id).await), ["role"]);
    s.revoke_token(&vic, &for_vic.token.id).await.unwrap();
    assert!(unauthenticated(s.authenticate(&for_vic.secret).await).contains("revoked"));
    let fresh = s.create_token(&vic, None, "again", None).await.unwrap();
    s.update_user(&admin, "vic1", UserPatch { disabled: Some(true), ..Default::default() }).await.unwrap();
    assert!(unauthenticated(s.authenticate(&fresh.secret).await).contains("disabled"));
    // The last admin cannot lock themself out.
    assert_kind(s.update_user(&admin, "admin", UserPatch { disabled: Some(true), ..Default::default() }).await, ErrorKind::Conflict);

    // No secret and no hash of one is anywhere in the audit log.
    let events = s.list_events(&AuditQuery::default()).await.unwrap().items;
    let text = serde_json::to_string(&events.iter().map(|e| (&e.before, &e.after)).collect::<Vec<_>>()).unwrap();
    for t in [&admin_token.secret, &token.secret, &for_vic.secret, &fresh.secret] {
        // `mdo_<id>_` then the secret, which may itself contain `_`.
        let secret = &t[4 + 12 + 1..];
        assert!(!text.contains(secret));
        assert!(!text.contains(&modelops_core::governance::hash_token_secret(secret)));
    }
    assert!(events.iter().any(|e| e.action == "token.create" && e.subject == format!("token/{}", token.token.id)));
}

const STRICT_LOW: &str = r#"
[[tiers.low.approved]]
name = "needs_a_commit"
when = "version.lineage.code_commit != ''"
message = "the version must name its code commit"
"#;

pub async fn policies_load_whole_or_not_at_all(ctx: &Ctx) {
    let s = &ctx.registry;
    let defaults = s.ensure_policy().await.unwrap();
    let (active, stored) = s.active_policy().await.unwrap();
    assert_eq!((active.sha256(), stored.unwrap().loaded_by.as_str()), (defaults.sha256(), "system"));

    let broken = STRICT_LOW.replace("version.lineage.code_commit", "version.lineage.code_comit");
    let err = assert_kind(s.load_policy(&actor("admin"), &broken, PolicyFormat::Toml, "strict.toml").await, ErrorKind::InvalidInput);
    assert!(err.to_string().contains("strict.toml:4"), "{err}");
    assert_eq!(s.active_policy().await.unwrap().0.sha256(), defaults.sha256(), "the last good policy stays");
    assert_eq!(denied(s.load_policy(&dana(), STRICT_LOW, PolicyFormat::Toml, "strict.toml").await), ["role"]);

    let (loaded, changed) = s.load_policy(&actor("admin"), STRICT_LOW, PolicyFormat::Toml, "strict.toml").await.unwrap();
    assert!(changed);
    let (_, changed_again) = s.load_policy(&actor("admin"), STRICT_LOW, PolicyFormat::Toml, "strict.toml").await.unwrap();
    assert!(!changed_again, "loading the active policy again changes nothing");
    let loads = s.list_events(&AuditQuery { action: Some("policy.load".into()), ..Default::default() }).await.unwrap().items;
    assert_eq!(loads.len(), 2);
    assert_eq!(loads[1].after.as_ref().unwrap()["sha256"], loaded.sha256().as_str());

    model(s, "rules", RiskTier::Low).await;
    let mut v = new_version();
    v.lineage.code_commit = None;
    let n = s.create_version(&dana(), &name("rules"), v).await.unwrap().number;
    s.submit_version(&dana(), &name("rules"), n).await.unwrap();
    let decision = s.decide(&vic(1), &name("rules"), n, Decision::Approve, approve()).await.unwrap();
    let gate = decision.gate.unwrap();
    assert_eq!(gate.policy_sha256, loaded.sha256());
    assert_eq!(gate.failures().map(|c| c.name.clone()).collect::<Vec<_>>(), ["needs_a_commit"]);
}

pub async fn reports_speak_from_the_registry(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("credit");
    model(s, "credit", RiskTier::High).await;
    let n = approved_version(s, "credit").await;
    assert!(!denied(s.promote_version(&dana(), &m, n).await).is_empty());
    s.promote_version(&dep(), &m, n).await.unwrap();
    let viewer = with_roles("vera", &[Role::Viewer]);
    s.record_review(&vic(1), &m, n, ReviewOutcome::Findings, "calibration drifted").await.unwrap();

    let inventory: serde_json::Value = serde_json::from_str(&s.report(&viewer, Report::Inventory, ReportFormat::Json).await.unwrap()).unwrap();
    let row = &inventory["rows"][0];
    assert_eq!(row["name"], "credit");
    assert_eq!(row["status"], "in production (v1)");
    assert_eq!(row["validators"], serde_json::json!(["vic1", "vic2"]));
    assert!(row["next_validation"].is_string());
    let exceptions = row["open_exceptions"].to_string();
    assert!(exceptions.contains("findings: calibration drifted"), "{exceptions}");

    let report = s.report(&viewer, Report::Model(m.clone()), ReportFormat::Markdown).await.unwrap();
    assert!(report.contains("two_independent_validators"), "the gate decisions and their reasons are in the report");
    assert!(report.contains("modelops audit verify"));
    let annex = s.report(&viewer, Report::AnnexIv(m.clone()), ReportFormat::Html).await.unwrap();
    assert!(annex.contains("<html") && annex.contains("Missing"));
    let missing = s.annex_iv_missing(&m).await.unwrap();
    assert!(!missing.is_empty());
    assert_not_found(s.report(&viewer, Report::Model(name("nope")), ReportFormat::Json).await, "model", "nope");
}

pub async fn stepping_out_of_production_keeps_the_review_due(ctx: &Ctx) {
    let s = &ctx.registry;
    let m = name("credit");
    model(s, "credit", RiskTier::High).await;
    let n1 = approved_version(s, "credit").await;
    s.promote_version(&dep(), &m, n1).await.unwrap();
    let n2 = approved_version(s, "credit").await;
    ctx.clock.advance(Duration::days(400));
    s.promote_version(&dep(), &m, n2).await.unwrap();
    // Only production versions are due; v1 is out of production.
    assert!(s.reviews_due(&dep(), Duration::zero()).await.unwrap().is_empty());
    // Back in production, v1 is as overdue as it was: no fresh date.
    s.promote_version(&dep(), &m, n1).await.unwrap();
    let due = s.reviews_due(&dep(), Duration::zero()).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].version, due[0].overdue, due[0].next_review_at), (n1, true, start_time() + Duration::days(365)));
}
