//! `modelops models …`: the model inventory.

use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_record, print_table};
use anyhow::{anyhow, bail, Context};
use modelops_server::wire::{CreateModelRequest, ListModelsParams, ModelList, ModelResponse, UpdateModelRequest, ValidationTargetWire};
use reqwest::Method;
use serde::de::{value::StrDeserializer, DeserializeOwned};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// The descriptive fields that create and update share.
#[derive(Debug, Default, clap::Args)]
pub struct ModelFields {
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub owner: Option<String>,
    #[arg(long)]
    pub team: Option<String>,
    /// The business purpose the model serves.
    #[arg(long)]
    pub purpose: Option<String>,
    #[arg(long)]
    pub intended_use: Option<String>,
    /// Restrictions on use.
    #[arg(long)]
    pub restrictions: Option<String>,
    /// low, medium, high or critical.
    #[arg(long)]
    pub risk_tier: Option<String>,
    /// A model whose output this one consumes (repeatable).
    #[arg(long = "depends-on", value_name = "MODEL")]
    pub depends_on: Vec<String>,
    /// A user who develops the model (repeatable; on update: the whole list).
    /// They may push versions; for high and critical tiers they may not approve.
    #[arg(long = "developer", value_name = "NAME")]
    pub developers: Vec<String>,
    /// The metric a validation must report, e.g. `auc` (with --validation-threshold).
    #[arg(long, value_name = "METRIC", requires = "validation_threshold")]
    pub validation_metric: Option<String>,
    /// The value the validation metric must reach.
    #[arg(long, value_name = "NUMBER", requires = "validation_metric")]
    pub validation_threshold: Option<f64>,
}

impl ModelFields {
    fn validation(&self) -> anyhow::Result<Option<ValidationTargetWire>> {
        match (&self.validation_metric, self.validation_threshold) {
            (Some(metric), Some(threshold)) if threshold.is_finite() => Ok(Some(ValidationTargetWire { metric: metric.clone(), threshold })),
            (Some(_), Some(threshold)) => bail!("invalid `--validation-threshold`: `{threshold}` is not a finite number"),
            (None, None) => Ok(None),
            _ => bail!("give `--validation-metric` and `--validation-threshold` together"),
        }
    }

    /// The update these flags ask for; flags not given stay as they are.
    fn to_update(&self, clear_validation: bool) -> anyhow::Result<UpdateModelRequest> {
        Ok(UpdateModelRequest {
            description: self.description.clone(),
            owner: self.owner.clone(),
            team: self.team.clone(),
            business_purpose: self.purpose.clone(),
            intended_use: self.intended_use.clone(),
            restrictions: self.restrictions.clone(),
            risk_tier: parse_opt_flag("--risk-tier", self.risk_tier.as_deref())?,
            dependencies: (!self.depends_on.is_empty()).then(|| self.depends_on.clone()),
            developers: (!self.developers.is_empty()).then(|| self.developers.clone()),
            validation: self.validation()?,
            clear_validation,
        })
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Register a model in the inventory.
    Create {
        name: String,
        /// onnx, rules, statistical, llm, external or mlflow.
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        fields: ModelFields,
        /// A tag `key=value` (repeatable).
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        tags: Vec<(String, String)>,
    },
    /// List or search models.
    List(ListArgs),
    /// Show one model.
    Show { name: String },
    /// Change a model's descriptive fields.
    Update {
        name: String,
        #[command(flatten)]
        fields: ModelFields,
        /// Remove the validation target.
        #[arg(long, conflicts_with_all = ["validation_metric", "validation_threshold"])]
        clear_validation: bool,
    },
    /// Retire a model and all its versions; the record and history stay.
    Retire { name: String },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    owner: Option<String>,
    #[arg(long)]
    team: Option<String>,
    #[arg(long)]
    risk_tier: Option<String>,
    /// `key` or `key=value`.
    #[arg(long)]
    tag: Option<String>,
    #[arg(long)]
    name_prefix: Option<String>,
    /// active or retired.
    #[arg(long)]
    state: Option<String>,
    /// Text to look for in name, description and purpose.
    #[arg(long = "search", short = 'q')]
    text: Option<String>,
    /// name, created_at or updated_at.
    #[arg(long)]
    order_by: Option<String>,
    /// asc or desc.
    #[arg(long)]
    direction: Option<String>,
    #[arg(long)]
    page_size: Option<u32>,
    #[arg(long)]
    page_token: Option<String>,
}

pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` must be KEY=VALUE"))
}

/// A flag's text as the wire value it stands for (a kind, a tier, a time),
/// read the way the server reads it.
pub fn parse_flag<T: DeserializeOwned>(flag: &str, text: &str) -> anyhow::Result<T> {
    T::deserialize(StrDeserializer::<serde::de::value::Error>::new(text)).map_err(|e| anyhow!("invalid `{flag}` `{text}`: {e}"))
}

pub fn parse_opt_flag<T: DeserializeOwned>(flag: &str, text: Option<&str>) -> anyhow::Result<Option<T>> {
    text.map(|t| parse_flag(flag, t)).transpose()
}

pub fn path_segment(s: &str) -> String {
    // Names may hold spaces and other characters that are not URL-safe.
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub const MODEL_COLUMNS: &[(&str, &str)] = &[
    ("NAME", "/name"),
    ("KIND", "/kind"),
    ("RISK", "/risk_tier"),
    ("OWNER", "/owner"),
    ("TEAM", "/team"),
    ("STATE", "/state"),
    ("LATEST", "/latest_version"),
    ("UPDATED", "/updated_at"),
];

const MODEL_FIELDS: &[(&str, &str)] = &[
    ("name", "/name"),
    ("kind", "/kind"),
    ("state", "/state"),
    ("risk tier", "/risk_tier"),
    ("owner", "/owner"),
    ("team", "/team"),
    ("description", "/description"),
    ("purpose", "/business_purpose"),
    ("intended use", "/intended_use"),
    ("restrictions", "/restrictions"),
    ("depends on", "/dependencies"),
    ("developers", "/developers"),
    ("validation", "/validation"),
    ("tags", "/tags"),
    ("aliases", "/aliases"),
    ("latest version", "/latest_version"),
    ("created", "/created_at"),
    ("created by", "/created_by"),
    ("updated", "/updated_at"),
];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let json_out = args.client.json;
    let show = |model: &ModelResponse| -> anyhow::Result<()> {
        if json_out {
            return print_json(model);
        }
        let mut record = serde_json::to_value(model)?;
        if let Some(v) = &model.validation {
            record["validation"] = format!("{} (threshold {})", v.metric, v.threshold).into();
        }
        print_record(&record, MODEL_FIELDS)
    };
    match args.command {
        ModelsCommand::Create { name, kind, fields, tags } => {
            let validation = fields.validation()?;
            let ModelFields { description, owner, team, purpose, intended_use, restrictions, risk_tier, depends_on, developers, .. } = fields;
            let risk_tier = risk_tier.context("`--risk-tier` is required: low, medium, high or critical")?;
            let body = CreateModelRequest {
                name,
                kind: parse_flag("--kind", &kind)?,
                risk_tier: parse_flag("--risk-tier", &risk_tier)?,
                description: description.unwrap_or_default(),
                owner: owner.unwrap_or_default(),
                team: team.unwrap_or_default(),
                business_purpose: purpose.unwrap_or_default(),
                intended_use: intended_use.unwrap_or_default(),
                restrictions: restrictions.unwrap_or_default(),
                tags: tags.into_iter().collect(),
                dependencies: depends_on,
                developers,
                validation,
            };
            let model: ModelResponse = client.send_json(Method::POST, "/api/v1/models", &body).await?;
            show(&model)
        }
        ModelsCommand::Show { name } => show(&client.get(&format!("/api/v1/models/{}", path_segment(&name))).await?),
        ModelsCommand::Update { name, fields, clear_validation } => {
            let body = fields.to_update(clear_validation)?;
            if body == UpdateModelRequest::default() {
                bail!("nothing to update: give at least one field, e.g. --description");
            }
            let model: ModelResponse = client.send_json(Method::PATCH, &format!("/api/v1/models/{}", path_segment(&name)), &body).await?;
            show(&model)
        }
        ModelsCommand::Retire { name } => show(&client.post(&format!("/api/v1/models/{}/retire", path_segment(&name))).await?),
        ModelsCommand::List(list) => {
            let query = ListModelsParams {
                kind: parse_opt_flag("--kind", list.kind.as_deref())?,
                owner: list.owner,
                team: list.team,
                risk_tier: parse_opt_flag("--risk-tier", list.risk_tier.as_deref())?,
                tag: list.tag,
                name_prefix: list.name_prefix,
                state: parse_opt_flag("--state", list.state.as_deref())?,
                q: list.text,
                order_by: parse_opt_flag("--order-by", list.order_by.as_deref())?,
                direction: parse_opt_flag("--direction", list.direction.as_deref())?,
                page_size: list.page_size,
                page_token: list.page_token,
            };
            let page: ModelList = client.get_query("/api/v1/models", &query).await?;
            if json_out {
                return print_json(&page);
            }
            print_table(&page.models, MODEL_COLUMNS)?;
            if let Some(token) = &page.next_page_token {
                eprintln!("more: --page-token {token}");
            }
            Ok(())
        }
    }
}
