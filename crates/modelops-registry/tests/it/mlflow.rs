//! MLflow's registry in the inventory's terms, on both backends: the
//! artifact index (a directory is one range of paths in byte order, on
//! PostgreSQL too), logged models, versions whose files never change,
//! deletions that are retirements hidden from MLflow, names restored,
//! renames, and stages as the governed lifecycle.

use crate::harness::*;
use bytes::Bytes;
use futures::stream;
use modelops_core::audit::AuditQuery;
use modelops_core::model::{ModelKind, ModelState};
use modelops_core::tracking::{LoggedModelStatus, DEFAULT_EXPERIMENT_ID};
use modelops_core::version::VersionState;
use modelops_core::ErrorKind;
use modelops_registry::mlflow::{NewMlflowVersion, Stage};
use modelops_registry::tracking::{ArtifactEntry, NewLoggedModel};
use std::collections::BTreeMap;

fn body(text: &str) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    stream::iter(vec![Ok(Bytes::from(text.to_string()))])
}

async fn read(ctx: &Ctx, path: &str) -> String {
    use futures::StreamExt;
    let (_, download) = ctx.registry.read_artifact_file(&actor("dana"), path).await.unwrap();
    let mut bytes = Vec::new();
    let mut s = download.stream;
    while let Some(chunk) = s.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(bytes).unwrap()
}

fn names(entries: &[ArtifactEntry]) -> Vec<(&str, Option<u64>)> {
    entries.iter().map(|e| (e.name.as_str(), e.size)).collect()
}

pub async fn artifacts_logged_models_and_immutable_versions(ctx: &Ctx) {
    let s = &ctx.registry;
    let dana = actor("dana");
    // Neighbours of `0/a` in byte order: `0/a.txt` ('.' < '/'), `0/a0`
    // ('0' follows '/'), `0/a/…` inside. Only the last are under `0/a`.
    for (path, text) in [("0/a.txt", "x"), ("0/a0", "yy"), ("0/a/b.txt", "one"), ("0/a/c/d.bin", "four"), ("0/A/e", "e")] {
        s.put_artifact_file(&dana, path, body(text)).await.unwrap();
    }
    assert_eq!(names(&s.list_artifacts(&dana, "0/a").await.unwrap()), vec![("b.txt", Some(3)), ("c", None)]);
    assert_eq!(names(&s.list_artifacts(&dana, "0").await.unwrap()), vec![("A", None), ("a", None), ("a.txt", Some(1)), ("a0", Some(2))]);
    assert!(s.list_artifacts(&dana, "0/a/b.txt").await.unwrap().is_empty(), "a file lists as nothing");
    assert!(s.list_artifacts(&dana, "nowhere").await.unwrap().is_empty());
    assert_eq!(read(ctx, "0/a/b.txt").await, "one");
    assert_invalid(s.put_artifact_file(&dana, "0/../x", body("")).await, "path");
    assert_invalid(s.put_artifact_file(&dana, "_manifests/x", body("")).await, "path");
    assert_kind(s.read_artifact_file(&dana, "0/a/none").await, ErrorKind::NotFound);

    // A logged model, its files, and a version registered from it.
    let logged = s
        .create_logged_model(&dana, NewLoggedModel { experiment_id: DEFAULT_EXPERIMENT_ID, name: Some("model".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(logged.status, LoggedModelStatus::Pending);
    assert_eq!(logged.artifact_uri, format!("mlflow-artifacts:/0/models/{}/artifacts", logged.model_id));
    let root = format!("0/models/{}/artifacts", logged.model_id);
    s.put_artifact_file(&dana, &format!("{root}/MLmodel"), body("flavors: {}")).await.unwrap();
    s.put_artifact_file(&dana, &format!("{root}/data/model.pkl"), body("weights-1")).await.unwrap();
    let ready = s.finalize_logged_model(&dana, &logged.model_id, LoggedModelStatus::Ready).await.unwrap();
    assert_eq!(ready.status, LoggedModelStatus::Ready);
    s.set_logged_model_tags(&dana, &logged.model_id, &[("k".into(), "v".into())]).await.unwrap();
    assert_eq!(s.logged_model(&dana, &logged.model_id).await.unwrap().tags, vec![("k".to_string(), "v".to_string())]);
    assert_eq!(s.logged_models(&dana, &[DEFAULT_EXPERIMENT_ID]).await.unwrap().len(), 1);

    s.mlflow_create_model(&dana, name("scorer"), "d".into(), BTreeMap::new()).await.unwrap();
    let new = NewMlflowVersion { source: format!("models:/{}", logged.model_id), model_id: Some(logged.model_id.clone()), ..Default::default() };
    let v1 = s.mlflow_create_version(&dana, &name("scorer"), new).await.unwrap();
    assert_eq!(v1.version.number, 1);
    assert_eq!(v1.model_id(), Some(logged.model_id.as_str()));
    let files: Vec<_> = v1.manifest.as_ref().unwrap().files.iter().map(|f| (f.path.as_str(), f.size)).collect();
    assert_eq!(files, vec![("MLmodel", 11), ("data/model.pkl", 9)]);
    assert_eq!(s.get_model(&name("scorer")).await.unwrap().kind, ModelKind::Mlflow);

    // Overwriting or deleting the logged model's files changes nothing the version serves.
    s.put_artifact_file(&dana, &format!("{root}/data/model.pkl"), body("tampered")).await.unwrap();
    s.delete_artifact_files(&dana, &format!("{root}/MLmodel")).await.unwrap();
    let dir = v1.download_uri().trim_start_matches("mlflow-artifacts:/").to_string();
    assert_eq!(names(&s.list_artifacts(&dana, &dir).await.unwrap()), vec![("MLmodel", Some(11)), ("data", None)]);
    assert_eq!(read(ctx, &format!("{dir}/data/model.pkl")).await, "weights-1");
    assert_eq!(read(ctx, &format!("{dir}/MLmodel")).await, "flavors: {}");
    assert_invalid(s.delete_artifact_files(&dana, &format!("{dir}/MLmodel")).await, "path");
    // A copy of the version has the same files.
    let copy = s.mlflow_create_version(&dana, &name("scorer"), NewMlflowVersion { source: "models:/scorer/1".into(), ..Default::default() }).await.unwrap();
    assert_ne!(copy.version.artifact.sha256, v1.version.artifact.sha256, "the source differs, so the manifest does");
    assert_eq!(copy.manifest.unwrap().files, v1.manifest.clone().unwrap().files);
    // Garbage collection keeps every blob a manifest or a path names.
    let referenced = s.referenced_artifacts().await.unwrap();
    for file in &v1.manifest.unwrap().files {
        assert!(referenced.contains(&file.sha256), "{} would be collected", file.path);
    }
}

pub async fn deletes_are_retirements_and_names_come_back(ctx: &Ctx) {
    let s = &ctx.registry;
    let dana = actor("dana");
    let model = name("churn");
    s.mlflow_create_model(&dana, model.clone(), "first".into(), BTreeMap::new()).await.unwrap();
    assert_kind(s.mlflow_create_model(&dana, model.clone(), String::new(), BTreeMap::new()).await, ErrorKind::AlreadyExists);
    for _ in 0..3 {
        s.mlflow_create_version(&dana, &model, NewMlflowVersion { source: "s3://b/m".into(), ..Default::default() }).await.unwrap();
    }
    s.mlflow_delete_version(&dana, &model, 2).await.unwrap();
    assert_kind(s.mlflow_version(&dana, &model, 2).await, ErrorKind::NotFound);
    assert_eq!(s.get_version(&model, 2).await.unwrap().state, VersionState::Retired, "the record stays");
    let shown: Vec<u32> = s.mlflow_versions(&dana, Some(&model)).await.unwrap().iter().map(|v| v.version.number).collect();
    assert_eq!(shown, vec![1, 3]);

    s.mlflow_delete_model(&dana, &model).await.unwrap();
    assert_kind(s.mlflow_model(&dana, &model).await, ErrorKind::NotFound);
    assert_eq!(s.get_model(&model).await.unwrap().state, ModelState::Retired);
    assert!(s.mlflow_models(&dana).await.unwrap().iter().all(|m| m.name != model));

    // The name comes back; versions go on from 4; the old ones stay hidden.
    let restored = s.mlflow_create_model(&dana, model.clone(), "again".into(), [("k".to_string(), "v".to_string())].into()).await.unwrap();
    assert_eq!((restored.state, restored.description.as_str()), (ModelState::Active, "again"));
    assert_eq!(restored.tags.get("k").map(String::as_str), Some("v"));
    assert!(s.mlflow_versions(&dana, Some(&model)).await.unwrap().is_empty());
    let next = s.mlflow_create_version(&dana, &model, NewMlflowVersion { source: "s3://b/m2".into(), ..Default::default() }).await.unwrap();
    assert_eq!(next.version.number, 4);

    // Renamed, with its versions.
    s.rename_model(&dana, &model, name("churn-v2")).await.unwrap();
    assert_eq!(s.mlflow_version(&dana, &name("churn-v2"), 4).await.unwrap().source(), "s3://b/m2");
    assert_kind(s.get_model(&model).await, ErrorKind::NotFound);
    s.mlflow_create_model(&dana, name("taken"), String::new(), BTreeMap::new()).await.unwrap();
    assert_kind(s.rename_model(&dana, &name("churn-v2"), name("taken")).await, ErrorKind::AlreadyExists);

    let query = AuditQuery { subject: Some("model/churn*".into()), ..Default::default() };
    let actions: Vec<String> = s.list_events(&query).await.unwrap().items.into_iter().map(|e| e.action).collect();
    for expected in ["model.create", "version.retire", "model.retire", "model.restore", "model.rename"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} missing from {actions:?}");
    }
    // A developer of another team may not bring the model back.
    s.mlflow_delete_model(&dana, &name("taken")).await.unwrap();
    let eve = with_roles("eve", &[modelops_core::auth::Role::Developer]);
    assert_kind(s.mlflow_create_model(&eve, name("taken"), String::new(), BTreeMap::new()).await, ErrorKind::Forbidden);
}

pub async fn stages_are_the_governed_lifecycle(ctx: &Ctx) {
    let s = &ctx.registry;
    let dana = actor("dana");
    let model = name("staged");
    s.mlflow_create_model(&dana, model.clone(), String::new(), BTreeMap::new()).await.unwrap();
    for _ in 0..2 {
        s.mlflow_create_version(&dana, &model, NewMlflowVersion { source: "s3://b/m".into(), ..Default::default() }).await.unwrap();
    }
    let staged = s.mlflow_transition(&dana, &model, 1, Stage::Staging, false).await.unwrap();
    assert_eq!((staged.stage(), staged.version.state), (Stage::Staging, VersionState::InValidation));
    // Production is promotion: the medium tier's gate wants a validator's approval.
    assert_kind(s.mlflow_transition(&dana, &model, 1, Stage::Production, false).await, ErrorKind::Forbidden);
    assert_kind(s.mlflow_transition(&dana, &model, 1, Stage::None, false).await, ErrorKind::Conflict);
    let archived = s.mlflow_transition(&dana, &model, 2, Stage::Archived, false).await.unwrap();
    assert_eq!((archived.stage(), archived.version.state), (Stage::Archived, VersionState::Retired));
    assert_kind(s.mlflow_transition(&dana, &model, 2, Stage::Staging, false).await, ErrorKind::Conflict);
    // Deleting the archived version hides it, on the record.
    let before = s.list_events(&AuditQuery { subject: Some("model/staged/version/2".into()), ..Default::default() }).await.unwrap().items.len();
    s.mlflow_delete_version(&dana, &model, 2).await.unwrap();
    assert_kind(s.mlflow_version(&dana, &model, 2).await, ErrorKind::NotFound);
    let after = s.list_events(&AuditQuery { subject: Some("model/staged/version/2".into()), ..Default::default() }).await.unwrap().items.len();
    assert_eq!(after, before + 1);
    // MLflow's latest versions: the highest shown one per state (2 is hidden).
    for _ in 0..2 {
        s.mlflow_create_version(&dana, &model, NewMlflowVersion { source: "s3://b/m".into(), ..Default::default() }).await.unwrap();
    }
    let latest: Vec<(u32, VersionState)> =
        s.mlflow_latest_versions_of(&dana, std::slice::from_ref(&model)).await.unwrap().iter().map(|v| (v.version.number, v.version.state)).collect();
    assert_eq!(latest, vec![(1, VersionState::InValidation), (4, VersionState::Draft)]);
    // Several models in one call (a search's page): each its own latest; a
    // deleted model's versions are not shown.
    let (other, gone) = (name("staged-other"), name("staged-gone"));
    for m in [&other, &gone] {
        s.mlflow_create_model(&dana, m.clone(), String::new(), BTreeMap::new()).await.unwrap();
        s.mlflow_create_version(&dana, m, NewMlflowVersion { source: "s3://b/m".into(), ..Default::default() }).await.unwrap();
    }
    s.mlflow_delete_model(&dana, &gone).await.unwrap();
    let latest: Vec<(String, u32)> = s
        .mlflow_latest_versions_of(&dana, &[other.clone(), gone.clone(), model.clone()])
        .await
        .unwrap()
        .iter()
        .map(|v| (v.version.model.to_string(), v.version.number))
        .collect();
    assert_eq!(latest, vec![("staged".into(), 1), ("staged".into(), 4), ("staged-other".into(), 1)]);
    assert_eq!(Stage::parse("stage", "production").unwrap(), Stage::Production);
    assert!(Stage::parse("stage", "prod").is_err());
}

/// A multipart upload's id expires, belongs to the one who started it and
/// to one file; a part of another upload cannot be joined in.
pub async fn multipart_uploads_are_their_starters_and_expire(ctx: &Ctx) {
    use modelops_registry::multipart::UploadedPart;
    let s = &ctx.registry;
    let (dana, eve) = (actor("dana"), actor("eve"));
    let id = s.create_multipart_upload(&dana, "0/r1/artifacts/w.bin", 2).await.unwrap();
    let parts = vec![
        UploadedPart { part_number: 1, etag: s.put_upload_part(&id, 1, body("ab")).await.unwrap() },
        UploadedPart { part_number: 2, etag: s.put_upload_part(&id, 2, body("cd")).await.unwrap() },
    ];
    let refused = s.complete_multipart_upload(&eve, "0/r1/artifacts/w.bin", &id, &parts).await.unwrap_err();
    assert!(refused.to_string().contains("started by someone else"), "{refused}");
    // Parts in the wrong order.
    let swapped = vec![UploadedPart { part_number: 1, ..parts[1].clone() }, UploadedPart { part_number: 2, ..parts[0].clone() }];
    let refused = s.complete_multipart_upload(&dana, "0/r1/artifacts/w.bin", &id, &swapped).await.unwrap_err();
    assert!(refused.to_string().contains("parts[0].etag"), "{refused}");
    // A part of another upload (its ETag binds it to that one).
    let other_id = s.create_multipart_upload(&dana, "0/r1/artifacts/v.bin", 2).await.unwrap();
    let foreign = UploadedPart { part_number: 2, etag: s.put_upload_part(&other_id, 2, body("zz")).await.unwrap() };
    let refused = s.complete_multipart_upload(&dana, "0/r1/artifacts/w.bin", &id, &[parts[0].clone(), foreign]).await.unwrap_err();
    assert!(refused.to_string().contains("parts[1].etag"), "{refused}");
    assert!(matches!(s.create_multipart_upload(&dana, "0/r1/artifacts/w.bin", 10_001).await, Err(e) if e.to_string().contains("num_parts")));
    let file = s.complete_multipart_upload(&dana, "0/r1/artifacts/w.bin", &id, &parts).await.unwrap();
    assert_eq!(file.size, 4);
    assert_eq!(read(ctx, "0/r1/artifacts/w.bin").await, "abcd");

    let late = s.create_multipart_upload(&dana, "0/r1/artifacts/late.bin", 1).await.unwrap();
    ctx.clock.advance(chrono::Duration::hours(13));
    let refused = s.put_upload_part(&late, 1, body("x")).await.unwrap_err();
    assert!(refused.to_string().contains("expired"), "{refused}");
    // Another server process (another key) does not know the upload.
    let dir = tempfile::tempdir().unwrap();
    let other = registry_for(ctx.store.clone(), ctx.clock.clone(), dir.path()).await;
    let fresh = s.create_multipart_upload(&dana, "0/r1/artifacts/x.bin", 1).await.unwrap();
    let refused = other.put_upload_part(&fresh, 1, body("x")).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");
    // Replicas sharing the audit signing key take each other's uploads.
    let (signer, _) = modelops_audit::LogSigner::generate("bank.example/audit").unwrap();
    let signing = || modelops_registry::audit::AuditSigning { signer: signer.clone(), witnesses: vec![] };
    // (They share the database and the artifact store too.)
    let shared_dir = tempfile::tempdir().unwrap();
    let a = registry_for(ctx.store.clone(), ctx.clock.clone(), shared_dir.path()).await.with_audit_signing(signing());
    let b = registry_for(ctx.store.clone(), ctx.clock.clone(), shared_dir.path()).await.with_audit_signing(signing());
    let shared = a.create_multipart_upload(&dana, "0/r1/artifacts/y.bin", 1).await.unwrap();
    let etag = b.put_upload_part(&shared, 1, body("y")).await.unwrap();
    a.complete_multipart_upload(&dana, "0/r1/artifacts/y.bin", &shared, &[UploadedPart { part_number: 1, etag }]).await.unwrap();
}

/// What MLflow's searches list is kept while nothing changes, and follows
/// every change at once — one made through another replica (another
/// process on the same database) too.
pub async fn model_listing_follows_every_change_from_any_replica(ctx: &Ctx) {
    use modelops_core::name::{AliasName, TagKey};
    use modelops_core::repo::TagTarget;
    let s = &ctx.registry;
    let dana = actor("dana");
    let listed = name("listed");
    s.mlflow_create_model(&dana, listed.clone(), String::new(), BTreeMap::new()).await.unwrap();
    let first = s.mlflow_model_listing(&dana).await.unwrap();
    assert!(first.models().iter().any(|m| m.name == listed));
    let latest = s.mlflow_listing_latest(&dana, &first, std::slice::from_ref(&listed)).await.unwrap();
    assert!(latest[&listed].is_empty(), "no versions yet");
    assert!(std::sync::Arc::ptr_eq(&first, &s.mlflow_model_listing(&dana).await.unwrap()), "nothing changed: nothing read again");

    // Another replica registers a version, tags the model and sets an alias.
    let dir = tempfile::tempdir().unwrap();
    let other = registry_for(reopen(ctx).await, ctx.clock.clone(), dir.path()).await;
    other.mlflow_create_version(&dana, &listed, NewMlflowVersion { source: "s3://b/m".into(), ..Default::default() }).await.unwrap();
    other.set_tag(&dana, &TagTarget::Model(listed.clone()), &TagKey::parse("team").unwrap(), "risk").await.unwrap();
    other.set_alias(&dana, &listed, &AliasName::parse("challenger").unwrap(), 1).await.unwrap();
    let now = s.mlflow_model_listing(&dana).await.unwrap();
    let model = now.models().iter().find(|m| m.name == listed).unwrap();
    assert_eq!(model.tags.get("team").map(String::as_str), Some("risk"));
    assert_eq!(model.aliases.get("challenger"), Some(&1));
    let latest = s.mlflow_listing_latest(&dana, &now, std::slice::from_ref(&listed)).await.unwrap();
    assert_eq!(latest[&listed].iter().map(|v| v.version.number).collect::<Vec<_>>(), vec![1]);
    // The older listing keeps what it showed to a search already under way.
    assert!(s.mlflow_listing_latest(&dana, &first, std::slice::from_ref(&listed)).await.unwrap()[&listed].is_empty());

    // Deleted through MLflow on the other replica: gone from this one's listing.
    other.mlflow_delete_model(&dana, &listed).await.unwrap();
    assert!(s.mlflow_model_listing(&dana).await.unwrap().models().iter().all(|m| m.name != listed));
}
