//! `modelops reviews …`: the periodic reviews of production versions.

use super::models::{parse_flag, path_segment};
use super::versions::resolve_number;
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_record, print_table};
use modelops_server::wire::{DueParams, DueReviewList, ReviewRequest, ReviewResponse};
use reqwest::Method;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ReviewsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReviewsCommand {
    /// Production versions whose review is due, soonest first.
    Due {
        /// Due within this many days; 0: overdue only [default: 30].
        #[arg(long, value_name = "DAYS")]
        within_days: Option<u32>,
    },
    /// Record a review of a production version; the next is scheduled by its tier.
    Record {
        model: String,
        /// A number or an alias.
        version: String,
        /// satisfactory, findings or unsatisfactory.
        #[arg(long)]
        outcome: String,
        #[arg(long)]
        comment: Option<String>,
    },
}

const DUE_COLUMNS: &[(&str, &str)] = &[
    ("MODEL", "/model"),
    ("VERSION", "/version"),
    ("TIER", "/tier"),
    ("OWNER", "/owner"),
    ("NEXT REVIEW", "/next_review_at"),
    ("LAST REVIEWED", "/last_reviewed_at"),
    ("OVERDUE", "/overdue"),
];

const REVIEW_FIELDS: &[(&str, &str)] = &[
    ("model", "/model"),
    ("version", "/version"),
    ("outcome", "/outcome"),
    ("reviewer", "/reviewer"),
    ("comment", "/comment"),
    ("reviewed", "/reviewed_at"),
    ("next review", "/next_review_at"),
];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let json_out = args.client.json;
    match args.command {
        ReviewsCommand::Due { within_days } => {
            let due: DueReviewList = client.get_query("/api/v1/reviews/due", &DueParams { within_days }).await?;
            if json_out {
                print_json(&due)
            } else if due.reviews.is_empty() {
                println!("no reviews due");
                Ok(())
            } else {
                print_table(&due.reviews, DUE_COLUMNS)
            }
        }
        ReviewsCommand::Record { model, version, outcome, comment } => {
            let body = ReviewRequest { outcome: parse_flag("--outcome", &outcome)?, comment: comment.unwrap_or_default() };
            let number = resolve_number(&client, &model, &version).await?;
            let path = format!("/api/v1/models/{}/versions/{number}/reviews", path_segment(&model));
            let review: ReviewResponse = client.send_json(Method::POST, &path, &body).await?;
            if json_out {
                print_json(&review)
            } else {
                print_record(&review, REVIEW_FIELDS)
            }
        }
    }
}
