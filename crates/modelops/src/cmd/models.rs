//! `modelops models …`: the model inventory.

use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_record, print_table};
use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Map, Value};

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
}

impl ModelFields {
    fn to_json(&self) -> Map<String, Value> {
        let mut body = Map::new();
        let fields = [
            ("description", &self.description),
            ("owner", &self.owner),
            ("team", &self.team),
            ("business_purpose", &self.purpose),
            ("intended_use", &self.intended_use),
            ("restrictions", &self.restrictions),
            ("risk_tier", &self.risk_tier),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                body.insert(key.into(), json!(v));
            }
        }
        if !self.depends_on.is_empty() {
            body.insert("dependencies".into(), json!(self.depends_on));
        }
        body
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
    let show = |model: &Value| -> anyhow::Result<()> {
        if json_out {
            print_json(model)
        } else {
            print_record(model, MODEL_FIELDS);
            Ok(())
        }
    };
    match args.command {
        ModelsCommand::Create { name, kind, fields, tags } => {
            let mut body = fields.to_json();
            body.insert("name".into(), json!(name));
            body.insert("kind".into(), json!(kind));
            if !tags.is_empty() {
                body.insert("tags".into(), json!(tags.into_iter().collect::<std::collections::BTreeMap<String, String>>()));
            }
            let model: Value = client.send_json(Method::POST, "/api/v1/models", &body).await?;
            show(&model)
        }
        ModelsCommand::Show { name } => show(&client.get(&format!("/api/v1/models/{}", path_segment(&name))).await?),
        ModelsCommand::Update { name, fields } => {
            let body = fields.to_json();
            if body.is_empty() {
                anyhow::bail!("nothing to update: give at least one field, e.g. --description");
            }
            let model: Value = client.send_json(Method::PATCH, &format!("/api/v1/models/{}", path_segment(&name)), &body).await?;
            show(&model)
        }
        ModelsCommand::Retire { name } => {
            let model: Value = client.send_json(Method::POST, &format!("/api/v1/models/{}/retire", path_segment(&name)), &json!({})).await?;
            show(&model)
        }
        ModelsCommand::List(list) => {
            let query: Vec<(&str, String)> = [
                ("kind", list.kind),
                ("owner", list.owner),
                ("team", list.team),
                ("risk_tier", list.risk_tier),
                ("tag", list.tag),
                ("name_prefix", list.name_prefix),
                ("state", list.state),
                ("q", list.text),
                ("order_by", list.order_by),
                ("direction", list.direction),
                ("page_size", list.page_size.map(|n| n.to_string())),
                ("page_token", list.page_token),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let page: Value = client.get_query("/api/v1/models", &query).await?;
            if json_out {
                return print_json(&page);
            }
            let items = page["models"].as_array().context("the server's answer has no `items`")?;
            print_table(items, MODEL_COLUMNS);
            if let Some(token) = page["next_page_token"].as_str() {
                eprintln!("more: --page-token {token}");
            }
            Ok(())
        }
    }
}
