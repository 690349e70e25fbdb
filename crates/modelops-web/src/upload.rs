// A form with a file (a version's artifact, an evidence document): the
// file streams into the artifact store as it arrives, through the same use
// case as `POST /api/v1/artifacts`. The CSRF field must come before the
// file, so a forged form stores nothing.

use crate::page::{ForViewer, PageError, PageResult};
use crate::session::Viewer;
use crate::WebState;
use axum::extract::Multipart;
use modelops_artifacts::StoredArtifact;
use modelops_core::Error;
use std::collections::BTreeMap;

/// The text fields of an upload form, and its file once stored.
pub struct Upload {
    pub fields: BTreeMap<String, String>,
    /// The stored file and the name the browser gave it.
    pub file: Option<(StoredArtifact, String)>,
}

/// Reads `multipart`, storing the field named `file_field`.
pub async fn read(state: &WebState, viewer: &Viewer, mut multipart: Multipart, file_field: &str) -> PageResult<Upload> {
    let bad = |e: axum::extract::multipart::MultipartError| Error::invalid("form", format!("the form could not be read: {e}"));
    let mut upload = Upload { fields: BTreeMap::new(), file: None };
    let mut csrf_checked = false;
    while let Some(field) = multipart.next_field().await.map_err(bad).for_viewer(viewer)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == file_field {
            if !csrf_checked {
                return Err(PageError::new(Error::forbidden("csrf", "the form's `csrf` field must come before the file"), viewer));
            }
            let filename = field.file_name().unwrap_or(file_field).to_string();
            let stored = state.registry.upload_artifact(&viewer.principal, field, None).await.for_viewer(viewer)?;
            upload.file = Some((stored, filename));
        } else {
            let value = field.text().await.map_err(bad).for_viewer(viewer)?;
            if name == "csrf" {
                viewer.check_csrf(&value).for_viewer(viewer)?;
                csrf_checked = true;
            }
            upload.fields.insert(name, value);
        }
    }
    if !csrf_checked {
        return Err(PageError::new(Error::forbidden("csrf", "the form carries no `csrf` field"), viewer));
    }
    Ok(upload)
}
