//! The window a run is fed: the triggering window's recorded calls as the
//! prediction export's table (one row per predicted row), plus a
//! `ground_truth` column holding the label recorded for the row's call
//! (null where none arrived) — what a trainer needs to learn the new
//! concept from the traffic that revealed it.

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use modelops_core::deployment::PredictionQuery;
use modelops_core::retrain::TriggerWindow;
use modelops_core::{Error, Result};
use modelops_deploy::export::ParquetExport;
use modelops_registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;

/// The column of the recorded labels.
pub const GROUND_TRUTH: &str = "ground_truth";

/// Calls read per query.
const PAGE: u32 = 10_000;

/// A label as text: a JSON string's value, any other JSON as written.
fn label_text(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::String(s)) => s,
        _ => json.to_string(),
    }
}

pub(crate) async fn export(registry: &Registry, window: &TriggerWindow, max_calls: usize) -> Result<RecordBatch> {
    let log = registry.prediction_log();
    let mut table = ParquetExport::new();
    let mut after = None;
    let mut calls = 0usize;
    loop {
        let query = PredictionQuery {
            deployment: window.deployment.clone(),
            since: Some(window.start),
            until: Some(window.end),
            after_id: after,
            limit: PAGE,
            payload_only: false,
        };
        let page = log.list_predictions(&query).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        calls += page.len();
        if calls > max_calls {
            return Err(Error::Conflict(format!("the window holds more than {max_calls} calls; too many to hand a job")));
        }
        table.push(&page)?;
        if page.len() < PAGE as usize {
            break;
        }
    }
    let mut labels = HashMap::new();
    let store = registry.monitor_store();
    let mut after = None;
    loop {
        let page = store.labeled_predictions(&window.deployment, window.start, window.end, after, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.id);
        let full = page.len() == PAGE as usize;
        for (record, label) in page {
            labels.insert(record.request_id, label_text(&label));
        }
        if !full {
            break;
        }
    }
    let batch = table.into_batch()?;
    with_ground_truth(batch, &labels)
}

fn with_ground_truth(batch: RecordBatch, labels: &HashMap<String, String>) -> Result<RecordBatch> {
    let internal = |e: arrow::error::ArrowError| Error::Internal(format!("the window's table: {e}"));
    let ids = batch
        .column_by_name("request_id")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| Error::Internal("the export has no request_id column".into()))?;
    let mut truth = StringBuilder::new();
    for i in 0..ids.len() {
        match labels.get(ids.value(i)) {
            Some(label) => truth.append_value(label),
            None => truth.append_null(),
        }
    }
    let name = if batch.schema().field_with_name(GROUND_TRUTH).is_ok() { format!("{GROUND_TRUTH}_label") } else { GROUND_TRUTH.to_string() };
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(name, DataType::Utf8, true));
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(truth.finish()));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(internal)
}
