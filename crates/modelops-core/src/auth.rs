//! Who acts, and the permit that authorisation yields.
//!
//! Every mutating repository method takes a [`Permit`]. The only way to get
//! one is [`authorize`], so no code path can mutate without passing the
//! check, and the permit carries the actor and action the audit event records.

use crate::error::{Error, Result};
use crate::model::string_enum;
use crate::name::quote;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

string_enum!(
    /// Roles from DESIGN §9. The governance issue binds them to tokens.
    Role {
        Viewer => "viewer",
        Developer => "developer",
        Validator => "validator",
        Approver => "approver",
        Deployer => "deployer",
        Admin => "admin",
        Auditor => "auditor",
    }
);

string_enum!(
    /// Every mutation modelops knows. The string form is the audit event's `action`.
    Action {
        ModelCreate => "model.create",
        ModelUpdate => "model.update",
        ModelRetire => "model.retire",
        // MLflow's `rename_registered_model`; and its `create_registered_model`
        // of a name whose model was deleted (retired) through MLflow.
        ModelRename => "model.rename",
        ModelRestore => "model.restore",
        VersionCreate => "version.create",
        VersionUpdate => "version.update",
        VersionRetire => "version.retire",
        AliasSet => "alias.set",
        AliasDelete => "alias.delete",
        TagSet => "tag.set",
        TagDelete => "tag.delete",
        ArtifactGc => "artifact.gc",
        ArtifactUpload => "artifact.upload",
        AuditVerify => "audit.verify",
        AuditRead => "audit.read",
        AuditCheckpoint => "audit.checkpoint",
        AccessDenied => "access.denied",
        VersionSubmit => "version.submit",
        VersionApprove => "version.approve",
        VersionReject => "version.reject",
        VersionPromote => "version.promote",
        EvidenceAdd => "evidence.add",
        ReviewRecord => "review.record",
        PolicyLoad => "policy.load",
        UserCreate => "user.create",
        UserUpdate => "user.update",
        UserErase => "user.erase",
        TokenCreate => "token.create",
        TokenRevoke => "token.revoke",
        DeploymentCreate => "deployment.create",
        DeploymentUpdate => "deployment.update",
        // Back to the version served before, or a canary stopped; by a
        // deployer, or by the server when a canary's condition trips.
        DeploymentRollback => "deployment.rollback",
        // A canary's next step, or its completion: by the server.
        DeploymentAdvance => "deployment.advance",
        DeploymentRetire => "deployment.retire",
        // Read recorded predictions: the inputs customers sent, which may
        // be personal data.
        PredictionsRead => "predictions.read",
        // A version's reference profile, set once.
        ReferenceSet => "version.reference",
        MonitorCreate => "monitor.create",
        MonitorDelete => "monitor.delete",
        // Ground truth for recorded calls, days later included.
        LabelsRecord => "labels.record",
        // By the server: an alert rule fired or resolved, a retraining
        // request opened.
        AlertFire => "alert.fire",
        AlertResolve => "alert.resolve",
        // A model's retraining job defined, changed or removed.
        RetrainDefine => "retrain.define",
        // A retraining run started: by hand, or by the server (an alert, a schedule).
        RetrainStart => "retrain.start",
        // By the server: a run's job ended, or its version moved on
        // (approved by policy, canary started, promoted, rolled back).
        RetrainProgress => "retrain.progress",
        // A person stopped a run waiting for people or shadowing.
        RetrainCancel => "retrain.cancel",
        // Read: the inventory, the audit log and the reports, for any signed-in user.
        Read => "read",
        // Predict: run a version on inputs (the inference APIs). Changes nothing.
        Predict => "predict",
        // Track: record experiments and runs (MLflow's tracking API), which
        // are not part of the governed inventory and write no audit event.
        Track => "track",
    }
);

impl Action {
    /// The roles that may perform this action.
    fn allowed_roles(self) -> &'static [Role] {
        use Action::*;
        match self {
            ModelCreate | ModelRename | ModelRestore | VersionCreate | VersionUpdate | TagSet | TagDelete => &[Role::Developer, Role::Admin],
            // Risk officers keep the inventory's governance fields (tier,
            // validation target, developers, owner, team).
            ModelUpdate => &[Role::Developer, Role::Approver, Role::Admin],
            ModelRetire | VersionRetire | AliasSet | AliasDelete => &[Role::Developer, Role::Deployer, Role::Admin],
            VersionSubmit => &[Role::Developer, Role::Admin],
            // Approvers are the risk officers the critical tier asks for.
            VersionApprove | VersionReject => &[Role::Validator, Role::Approver, Role::Admin],
            VersionPromote => &[Role::Deployer, Role::Admin],
            // Deployers put versions where traffic reaches them (through the
            // `production` gate) and take them away.
            DeploymentCreate | DeploymentUpdate | DeploymentRollback | DeploymentAdvance | DeploymentRetire => &[Role::Deployer, Role::Admin],
            // Those who retrain, validate, operate and audit models; not
            // every signed-in viewer.
            PredictionsRead => &[Role::Developer, Role::Validator, Role::Approver, Role::Deployer, Role::Admin, Role::Auditor],
            EvidenceAdd => &[Role::Developer, Role::Validator, Role::Admin],
            ReferenceSet => &[Role::Developer, Role::Validator, Role::Admin],
            // Those who operate deployments, and those who built the model.
            MonitorCreate | MonitorDelete => &[Role::Developer, Role::Deployer, Role::Admin],
            // The systems that learn the outcome (a service account with
            // the developer or deployer role).
            LabelsRecord => &[Role::Developer, Role::Deployer, Role::Admin],
            // Only the server (`Principal::system`, an admin) fires alerts.
            AlertFire | AlertResolve | RetrainProgress => &[Role::Admin],
            // The model's developers define its job (the registry checks
            // they are); deployers may also start a run by hand.
            RetrainDefine => &[Role::Developer, Role::Admin],
            RetrainStart | RetrainCancel => &[Role::Developer, Role::Deployer, Role::Admin],
            ReviewRecord => &[Role::Validator, Role::Approver, Role::Admin],
            // Developers upload model artifacts, validators their reports.
            ArtifactUpload => &[Role::Developer, Role::Validator, Role::Admin],
            ArtifactGc | PolicyLoad | UserCreate | UserUpdate | UserErase => &[Role::Admin],
            // Everyone manages their own tokens; the use case asks for
            // `admin` when the token is someone else's.
            TokenCreate | TokenRevoke => Role::ALL,
            Read => Role::ALL,
            // Any signed-in user or service account may call a model; who
            // may put a version where production traffic reaches it is
            // governed by promotion and deployments.
            Predict => Role::ALL,
            // Those who train and those who evaluate log runs.
            Track => &[Role::Developer, Role::Validator, Role::Admin],
            // Re-hashing the whole chain is costly: only those who audit may ask.
            AuditVerify => &[Role::Auditor, Role::Admin],
            // Checkpoints and proofs: what any signed-in user may read of
            // the log, as `GET /api/v1/audit`.
            AuditRead => Role::ALL,
            // Signing on demand; the server also signs on its own timer.
            AuditCheckpoint => &[Role::Auditor, Role::Admin],
            // Anyone may have their own refusal recorded.
            AccessDenied => Role::ALL,
        }
    }

    /// The roles that may perform this action, for documentation and the
    /// endpoint × role table (the same list [`authorize`] checks).
    pub fn roles(self) -> &'static [Role] {
        self.allowed_roles()
    }
}

/// The acting identity behind a request: a user or a service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    name: String,
    roles: BTreeSet<Role>,
    /// The team the user belongs to, if any: a developer may change the
    /// models of their team as well as those listing them as developers.
    #[serde(default)]
    team: Option<String>,
    /// Set for a retraining run's token: the principal acts only on that
    /// model (see [`Principal::check_scope`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<crate::retrain::TokenScope>,
}

impl Principal {
    /// Names are 1–128 printable characters, none invisible, kept in NFC;
    /// they appear in the audit log, where one actor must not pass for another.
    pub fn new(name: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Result<Self> {
        let name = crate::name::to_nfc(name.into());
        if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) || name.trim() != name {
            return Err(Error::invalid("actor", format!("{} is not a valid actor name", quote(&name))));
        }
        crate::name::check_visible("actor", &name)?;
        Ok(Self { name, roles: roles.into_iter().collect(), team: None, scope: None })
    }

    /// The principal as a member of `team` (empty: none).
    pub fn with_team(mut self, team: impl Into<String>) -> Self {
        let team = crate::name::to_nfc(team.into());
        self.team = (!team.is_empty()).then_some(team);
        self
    }

    pub fn team(&self) -> Option<&str> {
        self.team.as_deref()
    }

    /// The principal as a retraining run's token makes it: a developer of
    /// the run's model and nothing else, whatever roles the user holds.
    pub fn scoped(mut self, scope: crate::retrain::TokenScope) -> Self {
        self.roles = [Role::Developer].into();
        self.scope = Some(scope);
        self
    }

    pub fn scope(&self) -> Option<&crate::retrain::TokenScope> {
        self.scope.as_ref()
    }

    /// A scoped principal may read, call models and upload artifacts, and
    /// change only its own model's versions, their tags, evidence and
    /// reference data; anything else is refused, naming the scope. (The
    /// registry narrows "its own model's versions" to the one version the
    /// run registered.)
    pub fn check_scope(&self, action: Action, subject: &str) -> Result<()> {
        let Some(scope) = &self.scope else { return Ok(()) };
        use Action::*;
        let anywhere = matches!(action, Read | Predict | ArtifactUpload | AccessDenied | AuditRead);
        let own_model = matches!(action, VersionCreate | VersionUpdate | VersionSubmit | EvidenceAdd | ReferenceSet | TagSet | TagDelete);
        let prefix = crate::audit::model_subject(scope.model.as_str());
        let on_own = subject == prefix || subject.starts_with(&format!("{prefix}/"));
        if anywhere || (own_model && on_own) {
            return Ok(());
        }
        Err(Error::forbidden(
            "scope",
            format!("the token of retraining run {} may only register versions of `{}`, not perform `{action}` on `{subject}`", scope.run, scope.model),
        ))
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The server itself, as the actor of what no user asked for (the
    /// bootstrap admin, a policy given at start-up).
    pub fn system() -> Self {
        Self { name: "system".into(), roles: [Role::Admin].into(), team: None, scope: None }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn roles(&self) -> &BTreeSet<Role> {
        &self.roles
    }
}

/// Proof that `actor` may perform `action`. Only [`authorize`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    actor: String,
    action: Action,
}

impl Permit {
    pub fn actor(&self) -> &str {
        &self.actor
    }

    pub fn action(&self) -> Action {
        self.action
    }
}

/// Checks that `principal` holds a role allowed to perform `action`. A
/// refusal names the failing condition `role` and the roles that would do.
pub fn authorize(principal: &Principal, action: Action) -> Result<Permit> {
    if action.allowed_roles().iter().any(|r| principal.roles.contains(r)) {
        Ok(Permit { actor: principal.name.clone(), action })
    } else {
        let allowed = action.allowed_roles().iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ");
        Err(Error::forbidden("role", format!("`{}` may not perform `{action}`: it needs one of the roles {allowed}", principal.name)))
    }
}

/// The permit to record that `principal` was refused: a refusal is an
/// audited event too, and recording it must not itself need a role.
pub fn denial_permit(principal: &Principal) -> Permit {
    Permit { actor: principal.name.clone(), action: Action::AccessDenied }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_cannot_mutate_and_a_developer_can() {
        let viewer = Principal::new("vera", [Role::Viewer]).unwrap();
        assert!(matches!(authorize(&viewer, Action::ModelCreate), Err(Error::Forbidden(_))));
        let dev = Principal::new("dana", [Role::Developer]).unwrap();
        let permit = authorize(&dev, Action::ModelCreate).unwrap();
        assert_eq!(permit.actor(), "dana");
        assert_eq!(permit.action().as_str(), "model.create");
    }

    #[test]
    fn actor_names_are_checked() {
        assert!(Principal::new("", [Role::Admin]).is_err());
        assert!(Principal::new("a\nb", [Role::Admin]).is_err());
    }

    #[test]
    fn actor_names_refuse_invisible_characters() {
        // Each would let one actor pass for another in the audit log.
        for (bad, code_point) in [
            ("ad\u{200b}min", "U+200B"),
            ("ad\u{200d}min", "U+200D"),
            ("\u{202e}nimda", "U+202E"),
            ("ad\u{2066}min", "U+2066"),
            ("ad\u{ad}min", "U+00AD"),
            ("\u{feff}admin", "U+FEFF"),
            ("admin\u{e0041}", "U+E0041"),
        ] {
            let err = Principal::new(bad, [Role::Admin]).unwrap_err();
            assert_eq!(err.field(), Some("actor"), "{bad:?}");
            assert!(err.to_string().contains(code_point), "{err}");
        }
    }

    #[test]
    fn actor_names_are_stored_in_nfc() {
        let decomposed = Principal::new("jose\u{301}", [Role::Developer]).unwrap();
        assert_eq!(decomposed.name(), "jos\u{e9}");
        assert_eq!(authorize(&decomposed, Action::ModelCreate).unwrap().actor(), "jos\u{e9}");
        for good in ["Zoë Müller", "王小明", "ci-bot 🤖"] {
            assert_eq!(Principal::new(good, [Role::Viewer]).unwrap().name(), good);
        }
    }
}
