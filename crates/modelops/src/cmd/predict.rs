//! `modelops predict NAME[@ALIAS|/VERSION] --input FILE`: runs a version
//! on rows from a JSON or CSV file (or stdin) through the server's
//! `predict` route, the one every inference surface shares;
//! `--deployment NAME` runs it through a deployment instead.

use super::models::path_segment;
use super::versions::version_path;
use crate::client::{Client, ClientArgs};
use crate::output::print_json;
use anyhow::{bail, Context};
use modelops_core::version::DataType;
use modelops_server::wire::{DeploymentResponse, PredictRequest, PredictResponse, SignatureWire, VersionResponse};
use serde_json::{Map, Value};
use std::io::Read;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    /// `NAME` (the production version), `NAME@ALIAS` or `NAME/VERSION`.
    target: String,
    /// Rows: a `.json` file (`{"rows": […]}`, `{"columns": {…}}` or an array of rows), a `.csv` file with a header, or `-` for stdin.
    #[arg(long, short = 'i', value_name = "FILE")]
    input: String,
    /// Also explain each prediction (rules fired, contributions, reason codes, TreeSHAP).
    #[arg(long)]
    explain: bool,
    /// `NAME` is a deployment: it picks the version (routes, canary, sticky key) and records the call.
    #[arg(long)]
    deployment: bool,
}

/// Splits `NAME[@ALIAS|/VERSION]` into the model and the version segment.
fn split_target(target: &str) -> anyhow::Result<(String, String)> {
    let (model, version) = match (target.rsplit_once('@'), target.rsplit_once('/')) {
        (Some((m, a)), _) => (m, a),
        (None, Some((m, v))) => (m, v),
        (None, None) => (target, "champion"),
    };
    if model.is_empty() || version.is_empty() {
        bail!("invalid target `{target}`: expected NAME, NAME@ALIAS or NAME/VERSION");
    }
    Ok((model.to_string(), version.to_string()))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (model, version) = if args.deployment { (args.target.clone(), String::new()) } else { split_target(&args.target)? };
    let text = if args.input == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read stdin")?;
        text
    } else {
        std::fs::read_to_string(&args.input).with_context(|| format!("cannot read `{}`", args.input))?
    };
    let client = Client::new(&args.client)?;
    let trimmed = text.trim_start();
    let mut request = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        from_json(&text).with_context(|| format!("`{}` is not a JSON request", args.input))?
    } else {
        // CSV cells are text: the signature says which are numbers (a
        // deployment's: that of the version taking most of its traffic).
        let meta: VersionResponse = if args.deployment {
            let d: DeploymentResponse = client.get(&format!("/api/v1/deployments/{}", path_segment(&model))).await?;
            let main = d.routes.iter().max_by_key(|r| r.weight).map(|r| r.version).unwrap_or(1);
            client.get(&version_path(&d.model, &main.to_string())).await?
        } else {
            client.get(&version_path(&model, &version)).await?
        };
        from_csv(&text, &meta.signature).with_context(|| format!("cannot read `{}` as CSV", args.input))?
    };
    request.explain |= args.explain;
    let path = if args.deployment {
        format!("/api/v1/deployments/{}/predict", path_segment(&model))
    } else {
        format!("/api/v1/models/{}/versions/{}/predict", path_segment(&model), path_segment(&version))
    };
    let answer: PredictResponse = client.send_json(reqwest::Method::POST, &path, &request).await?;
    if args.client.json {
        return print_json(&answer);
    }
    // One JSON document per row: easy to read, to grep and to pipe on.
    for (i, row) in answer.predictions.iter().enumerate() {
        let mut line = row.clone();
        if let Some(explanation) = answer.explanations.as_ref().and_then(|e| e.get(i)) {
            line.insert("explanation".into(), explanation.clone());
        }
        println!("{}", Value::Object(line));
    }
    if let Some(usage) = &answer.usage {
        eprintln!(
            "{} version {}: {} prompt + {} completion tokens, cost {:.6}",
            answer.model, answer.version, usage.prompt_tokens, usage.completion_tokens, usage.cost
        );
    }
    Ok(())
}

fn from_json(text: &str) -> anyhow::Result<PredictRequest> {
    let value: Value = serde_json::from_str(text)?;
    Ok(match value {
        Value::Array(rows) => PredictRequest { rows: Some(rows), ..PredictRequest::default() },
        Value::Object(_) => serde_json::from_value(value)?,
        _ => bail!("expected an object with `rows` or `columns`, or an array of rows"),
    })
}

fn from_csv(text: &str, signature: &SignatureWire) -> anyhow::Result<PredictRequest> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    let named = header.iter().all(|h| signature.inputs.iter().any(|f| &f.name == h));
    // A model with one vector input (an ONNX export's `float_input`) takes
    // every column, in order, as that vector.
    let vector = match signature.inputs.as_slice() {
        [only] if !only.shape.is_empty() && !named => Some(only),
        _ => None,
    };
    let mut rows = Vec::new();
    for (r, record) in reader.records().enumerate() {
        let record = record?;
        let line = r + 2;
        if let Some(field) = vector {
            let cells = record.iter().enumerate().map(|(c, cell)| cell_value(cell, field.dtype.into(), line, &header[c])).collect::<anyhow::Result<Vec<_>>>()?;
            rows.push(Value::Array(cells));
            continue;
        }
        let mut row = Map::new();
        for (c, cell) in record.iter().enumerate() {
            let name = &header[c];
            let Some(field) = signature.inputs.iter().find(|f| &f.name == name) else {
                bail!("column `{name}` is not an input of the model");
            };
            row.insert(name.clone(), cell_value(cell, field.dtype.into(), line, name)?);
        }
        rows.push(Value::Object(row));
    }
    Ok(PredictRequest { rows: Some(rows), ..PredictRequest::default() })
}

fn cell_value(cell: &str, dtype: DataType, line: usize, column: &str) -> anyhow::Result<Value> {
    let cell = cell.trim();
    let bad = |what: &str| anyhow::anyhow!("line {line}, column `{column}`: `{cell}` is not {what}");
    Ok(match dtype {
        DataType::Float32 | DataType::Float64 if cell.is_empty() || cell.eq_ignore_ascii_case("nan") => Value::Null,
        DataType::Float32 | DataType::Float64 => {
            serde_json::Number::from_f64(cell.parse::<f64>().map_err(|_| bad("a number"))?).map_or(Value::Null, Value::Number)
        }
        DataType::Int32 | DataType::Int64 => Value::from(cell.parse::<i64>().map_err(|_| bad("an integer"))?),
        DataType::Bool => Value::Bool(match cell.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(bad("true or false")),
        }),
        DataType::String | DataType::Bytes | DataType::Datetime => Value::String(cell.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(split_target("m").unwrap(), ("m".into(), "champion".into()));
        assert_eq!(split_target("m@staging").unwrap(), ("m".into(), "staging".into()));
        assert_eq!(split_target("m/3").unwrap(), ("m".into(), "3".into()));
        assert!(split_target("m/").is_err());
    }
}
