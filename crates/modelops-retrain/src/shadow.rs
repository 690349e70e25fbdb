//! The shadow stage's measure: of the deployment's calls since the stage
//! began that the new version shadowed, how many got the same decision
//! from it as from the version that answered. Read from the prediction
//! log, where a shadow's call is recorded under the caller's request id.

use chrono::{DateTime, Utc};
use modelops_core::deployment::{PredictionQuery, RecordRoute};
use modelops_core::name::ModelName;
use modelops_core::Result;
use modelops_registry::Registry;
use serde_json::Value;
use std::collections::HashMap;

const PAGE: u32 = 10_000;

/// A call's decision: `None` until its record is read, `Some(None)` when
/// the call failed.
type Seen = Option<Option<Value>>;

/// The compared tensor's values in a call's recorded outputs: the one
/// named `output`, or the first. `None` for a failed call.
fn decision(outputs: &str, output: Option<&str>) -> Option<Value> {
    let tensors: Vec<Value> = serde_json::from_str(outputs).ok()?;
    let tensor = match output {
        Some(name) => tensors.into_iter().find(|t| t.get("name").and_then(Value::as_str) == Some(name))?,
        None => tensors.into_iter().next()?,
    };
    tensor.get("data").cloned()
}

/// `(compared, agreed)` over at most `wanted` calls.
pub(crate) async fn agreement(registry: &Registry, deployment: &ModelName, since: DateTime<Utc>, version: u32, output: Option<&str>, wanted: u64) -> Result<(u64, u64)> {
    let log = registry.prediction_log();
    // Request id → (the answer's decision, the shadow's), until both are seen.
    let mut open: HashMap<String, (Seen, Seen)> = HashMap::new();
    let (mut compared, mut agreed) = (0u64, 0u64);
    let mut after = None;
    loop {
        let query = PredictionQuery { deployment: deployment.clone(), since: Some(since), until: None, after_id: after, limit: PAGE, payload_only: false };
        let page = log.list_predictions(&query).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let full = page.len() == PAGE as usize;
        for record in page {
            let slot = open.entry(record.request_id.clone()).or_default();
            let value = decision(&record.outputs, output);
            match record.route {
                RecordRoute::Shadow if record.version == version => slot.1 = Some(value),
                RecordRoute::Primary => slot.0 = Some(value),
                RecordRoute::Shadow => continue,
            }
            if let (Some(primary), Some(shadow)) = slot {
                compared += 1;
                agreed += u64::from(primary.is_some() && primary == shadow);
                open.remove(&record.request_id);
                if compared >= wanted {
                    return Ok((compared, agreed));
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok((compared, agreed))
}
