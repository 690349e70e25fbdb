//! Which runtime serves a model logged with MLflow: its `MLmodel` file
//! names the flavours it was saved in, and the ones modelops executes
//! natively (today `onnx`) say which file to load as which kind. A model
//! saved only in Python flavours (`sklearn`, `python_function`) is stored
//! and governed but not served here.

use crate::error::RuntimeError;
use modelops_core::model::ModelKind;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The model file to load and how, from an MLflow model's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServableFlavour {
    pub kind: ModelKind,
    /// Relative to the model's directory.
    pub path: String,
}

#[derive(Deserialize)]
struct MlModel {
    #[serde(default)]
    flavors: BTreeMap<String, serde_norway::Value>,
}

/// Reads `MLmodel` (YAML) and picks the flavour modelops serves, or says
/// which flavours the model has and that none is servable.
pub fn servable_flavour(mlmodel: &[u8]) -> Result<ServableFlavour, RuntimeError> {
    let parsed: MlModel =
        serde_norway::from_slice(mlmodel).map_err(|e| RuntimeError::Load(format!("its MLmodel file is not valid YAML: {e}")))?;
    if let Some(onnx) = parsed.flavors.get("onnx") {
        let data = onnx.get("data").and_then(serde_norway::Value::as_str).unwrap_or("model.onnx");
        if data.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(RuntimeError::Load(format!("its onnx flavour names `{data}`, not a file of the model")));
        }
        return Ok(ServableFlavour { kind: ModelKind::Onnx, path: data.to_string() });
    }
    let names: Vec<&str> = parsed.flavors.keys().map(String::as_str).collect();
    Err(RuntimeError::Load(format!(
        "it was logged with the flavours [{}]; modelops serves MLflow models saved with the `onnx` flavour \
         (`mlflow.onnx.log_model`), or register the ONNX export as a model of kind `onnx`",
        names.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_onnx_flavour_is_served_and_python_ones_are_named() {
        let onnx = b"artifact_path: model\nflavors:\n  onnx:\n    data: model.onnx\n    onnx_version: 1.17.0\n  python_function:\n    loader_module: mlflow.onnx\n";
        assert_eq!(servable_flavour(onnx).unwrap(), ServableFlavour { kind: ModelKind::Onnx, path: "model.onnx".into() });
        let sklearn = b"flavors:\n  python_function: {}\n  sklearn:\n    pickled_model: model.skops\n";
        let err = servable_flavour(sklearn).unwrap_err().to_string();
        assert!(err.contains("[python_function, sklearn]"), "{err}");
        assert!(servable_flavour(b"flavors:\n  onnx:\n    data: ../../etc/passwd\n").is_err());
        assert!(servable_flavour(b"{not yaml").is_err());
    }
}
