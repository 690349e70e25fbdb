//! Who may call what: every route of the native API with the action its use
//! case authorises (`modelops_core::auth::Action`), whose role list is the
//! one `authorize` checks. The endpoint × role table in `docs/roles.md` is
//! generated from this (`roles_table`), and the role-matrix test calls every
//! route as every role and checks the answers against it, and that no route
//! of the OpenAPI document is missing here.

use modelops_core::auth::{Action, Role};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (health, the API document).
    Public,
    /// Any valid token: every role may.
    SignedIn,
    /// The roles of this action.
    Action(Action),
}

impl Access {
    /// Whether a principal holding only `role` passes the role check.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::SignedIn => true,
            Access::Action(action) => action.roles().contains(&role),
        }
    }
}

/// One route and what it needs; `note` states rules beyond the role.
#[derive(Debug, Clone, Copy)]
pub struct EndpointAccess {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub note: &'static str,
}

const fn e(method: &'static str, path: &'static str, access: Access, note: &'static str) -> EndpointAccess {
    EndpointAccess { method, path, access, note }
}

const DEVELOPERS: &str = "developers of the model only: its owner, a listed developer or a member of its team (admins: any)";
const SOD: &str = "never the version's author; for high and critical models never a listed developer";

/// Every route of the native API.
pub fn endpoints() -> Vec<EndpointAccess> {
    use Access::{Public, SignedIn};
    use Action as A;
    let act = Access::Action;
    vec![
        e("GET", "/healthz", Public, ""),
        e("GET", "/readyz", Public, ""),
        e("GET", "/api/v1/openapi.json", Public, ""),
        e("GET", "/api/v1/whoami", SignedIn, ""),
        e("GET", "/api/v1/models", SignedIn, ""),
        e("POST", "/api/v1/models", act(A::ModelCreate), ""),
        e("GET", "/api/v1/models/{name}", SignedIn, ""),
        e(
            "PATCH",
            "/api/v1/models/{name}",
            act(A::ModelUpdate),
            "developers: their own models' descriptive fields; `risk_tier`, `validation`, `developers`, `owner`, `team`: approvers and admins only",
        ),
        e("DELETE", "/api/v1/models/{name}", SignedIn, "always 405: models are retired, not deleted"),
        e("POST", "/api/v1/models/{name}/retire", act(A::ModelRetire), ""),
        e("POST", "/api/v1/artifacts", act(A::ArtifactUpload), ""),
        e("POST", "/api/v1/artifacts/gc", act(A::ArtifactGc), ""),
        e("GET", "/api/v1/models/{name}/versions", SignedIn, ""),
        e("POST", "/api/v1/models/{name}/versions", act(A::VersionCreate), DEVELOPERS),
        e("GET", "/api/v1/models/{name}/versions/{version}", SignedIn, ""),
        e("PATCH", "/api/v1/models/{name}/versions/{version}", act(A::VersionUpdate), DEVELOPERS),
        e("DELETE", "/api/v1/models/{name}/versions/{version}", SignedIn, "always 405: versions are retired, not deleted"),
        e("POST", "/api/v1/models/{name}/versions/{version}/retire", act(A::VersionRetire), ""),
        e("GET", "/api/v1/models/{name}/versions/{version}/artifact", SignedIn, ""),
        e("POST", "/api/v1/models/{name}/versions/{version}/submit", act(A::VersionSubmit), DEVELOPERS),
        e("POST", "/api/v1/models/{name}/versions/{version}/approve", act(A::VersionApprove), SOD),
        e("POST", "/api/v1/models/{name}/versions/{version}/reject", act(A::VersionReject), SOD),
        e("POST", "/api/v1/models/{name}/versions/{version}/promote", act(A::VersionPromote), "through the tier's `production` gate"),
        e("GET", "/api/v1/models/{name}/versions/{version}/gate", SignedIn, ""),
        e("GET", "/api/v1/models/{name}/versions/{version}/governance", SignedIn, ""),
        e("POST", "/api/v1/models/{name}/versions/{version}/evidence", act(A::EvidenceAdd), "a developer who is not a validator: developers of the model only"),
        e("GET", "/api/v1/models/{name}/versions/{version}/evidence/{sha256}", SignedIn, ""),
        e("POST", "/api/v1/models/{name}/versions/{version}/reviews", act(A::ReviewRecord), "never the version's author"),
        e("GET", "/api/v1/reviews/due", SignedIn, ""),
        e("GET", "/api/v1/models/{name}/aliases/{alias}", SignedIn, ""),
        e("PUT", "/api/v1/models/{name}/aliases/{alias}", act(A::AliasSet), "`champion` is promotion: the `promote` roles and gate"),
        e("DELETE", "/api/v1/models/{name}/aliases/{alias}", act(A::AliasDelete), "`champion` cannot be removed (409)"),
        e("PUT", "/api/v1/models/{name}/tags/{key}", act(A::TagSet), ""),
        e("DELETE", "/api/v1/models/{name}/tags/{key}", act(A::TagDelete), ""),
        e("PUT", "/api/v1/models/{name}/versions/{version}/tags/{key}", act(A::TagSet), ""),
        e("DELETE", "/api/v1/models/{name}/versions/{version}/tags/{key}", act(A::TagDelete), ""),
        e("GET", "/api/v1/audit", SignedIn, ""),
        e("GET", "/api/v1/audit/verify", act(A::AuditVerify), ""),
        e("GET", "/api/v1/audit/key", SignedIn, ""),
        e("GET", "/api/v1/audit/checkpoints", act(A::AuditRead), ""),
        e("POST", "/api/v1/audit/checkpoints", act(A::AuditCheckpoint), ""),
        e("GET", "/api/v1/audit/checkpoints/{size}", act(A::AuditRead), ""),
        e("GET", "/api/v1/audit/events/{seq}/proof", act(A::AuditRead), ""),
        e("GET", "/api/v1/audit/consistency", act(A::AuditRead), ""),
        e("GET", "/api/v1/audit/range", act(A::AuditRead), ""),
        e("GET", "/api/v1/users", SignedIn, ""),
        e("POST", "/api/v1/users", act(A::UserCreate), ""),
        e("GET", "/api/v1/users/{user}", SignedIn, ""),
        e("PATCH", "/api/v1/users/{user}", act(A::UserUpdate), "an admin cannot disable themself or drop their own admin role"),
        e("POST", "/api/v1/users/{user}/erase", act(A::UserErase), "an admin cannot erase themself"),
        e("GET", "/api/v1/tokens", SignedIn, "one's own; other users' (`user=`, `user=*`): admins"),
        e("POST", "/api/v1/tokens", act(A::TokenCreate), "for oneself; for another user: admins"),
        e("POST", "/api/v1/tokens/{id}/revoke", act(A::TokenRevoke), "one's own; other users': admins"),
        e("GET", "/api/v1/policy", SignedIn, ""),
        e("PUT", "/api/v1/policy", act(A::PolicyLoad), ""),
        e("GET", "/api/v1/reports/inventory", SignedIn, ""),
        e("GET", "/api/v1/reports/models/{name}", SignedIn, ""),
        e("GET", "/api/v1/reports/models/{name}/annex-iv", SignedIn, ""),
        e(
            "POST",
            "/api/v1/models/{name}/versions/{version}/predict",
            act(A::Predict),
            "the Open Inference Protocol under `/v2` takes the same token and roles",
        ),
        e("GET", "/api/v1/inference/metrics", SignedIn, ""),
        e("GET", "/metrics", SignedIn, "Prometheus text format; a scrape config sends the token (`authorization: {credentials: <token>}`)"),
        e("GET", "/api/v1/deployments", SignedIn, ""),
        e(
            "POST",
            "/api/v1/deployments",
            act(A::DeploymentCreate),
            "every version given traffic is approved and passes the tier's `production` gate (a shadow: in validation at least); one taking all traffic is promoted",
        ),
        e("GET", "/api/v1/deployments/{name}", SignedIn, ""),
        e("PATCH", "/api/v1/deployments/{name}", act(A::DeploymentUpdate), "new versions as for creation; a stale `revision` or a change during a canary is 409"),
        e("DELETE", "/api/v1/deployments/{name}", act(A::DeploymentRetire), "retires: serves nothing more, records kept"),
        e("POST", "/api/v1/deployments/{name}/rollback", act(A::DeploymentRollback), "the version rolled back to passes the `production` gate"),
        e("POST", "/api/v1/deployments/{name}/predict", act(A::Predict), "`/v2/models/{name}/infer` serves the deployment too"),
        e("GET", "/api/v1/deployments/{name}/predictions", act(A::PredictionsRead), "the inputs callers sent: not for viewers"),
        e("GET", "/api/v1/models/{name}/versions/{version}/reference", SignedIn, ""),
        e("PUT", "/api/v1/models/{name}/versions/{version}/reference", act(A::ReferenceSet), "once per version: a second is 409"),
        e("GET", "/api/v1/deployments/{name}/monitors", SignedIn, ""),
        e("POST", "/api/v1/deployments/{name}/monitors", act(A::MonitorCreate), ""),
        e("GET", "/api/v1/deployments/{name}/monitors/{monitor}", SignedIn, ""),
        e("DELETE", "/api/v1/deployments/{name}/monitors/{monitor}", act(A::MonitorDelete), ""),
        e("GET", "/api/v1/deployments/{name}/monitors/{monitor}/results", SignedIn, ""),
        e("POST", "/api/v1/deployments/{name}/labels", act(A::LabelsRecord), ""),
        e("GET", "/api/v1/alerts", SignedIn, ""),
        e("GET", "/api/v1/retrain-requests", SignedIn, ""),
        e(
            "PUT",
            "/api/v1/models/{name}/retrain-job",
            act(A::RetrainDefine),
            "a developer of the model; runs act as the caller (or `run_as`: admins), through a token scoped to the run; a `command` job: admins; a `rollout`: deployers and admins",
        ),
        e("GET", "/api/v1/models/{name}/retrain-job", SignedIn, ""),
        e("GET", "/api/v1/retrain-jobs", SignedIn, ""),
        e("POST", "/api/v1/models/{name}/retrain", act(A::RetrainStart), "a developer of the model, or a deployer; 409 while a run is under way"),
        e("GET", "/api/v1/retrain-runs", SignedIn, ""),
        e("GET", "/api/v1/retrain-runs/{run}", SignedIn, ""),
        e("GET", "/api/v1/retrain-runs/{run}/log", act(A::PredictionsRead), "a job's output may hold data"),
        e("GET", "/api/v1/retrain-runs/{run}/window", act(A::PredictionsRead), "the recorded calls; also the run's own token"),
        e("POST", "/api/v1/retrain-runs/{run}/cancel", act(A::RetrainCancel), "a developer of the model, or a deployer; a run waiting for people or shadowing (a running job or a canary: 409)"),
        e("DELETE", "/api/v1/models/{name}/retrain-job", act(A::RetrainDefine), "a developer of the model; runs under way go on"),
    ]
}

/// The endpoint × role table as Markdown (`docs/roles.md`).
pub fn roles_table() -> String {
    let mut out = String::from(
        "# Who may call what\n\n\
         Generated from `crates/modelops-server/src/routes/access.rs` (the action each route's use case authorises, and the\n\
         roles `modelops_core::auth` allows for it); a test checks this file against that code and every route of the API\n\
         as every role. Regenerate with `UPDATE_DOCS=1 cargo test -p modelops-server --test it roles_doc`.\n\n\
         ✓ allowed · — refused with 403 (and recorded as `access.denied`) · every route but the public ones answers 401\n\
         without a valid token. Gates, separation of duties and developer scoping apply on top, as the notes say.\n\n",
    );
    out.push_str("| method | path | action |");
    for role in Role::ALL {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str(" notes |\n|---|---|---|");
    for _ in Role::ALL {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for ep in endpoints() {
        let action = match ep.access {
            Access::Public => "public".to_string(),
            Access::SignedIn => "read".to_string(),
            Access::Action(a) => format!("`{a}`"),
        };
        out.push_str(&format!("| {} | `{}` | {action} |", ep.method, ep.path));
        for role in Role::ALL {
            out.push_str(if ep.access.allows(*role) { " ✓ |" } else { " — |" });
        }
        out.push_str(&format!(" {} |\n", ep.note));
    }
    out
}
