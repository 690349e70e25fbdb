//! `modelops tokens …`: API tokens. A new token's text is shown once; the
//! server keeps only its hash.

use super::models::path_segment;
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_table, time};
use modelops_server::wire::{CreateTokenRequest, ListTokensParams, NewTokenResponse, TokenList, TokenResponse};
use reqwest::Method;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: TokensCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (once) on stdout; the details go to stderr.
    Create {
        /// What or who uses it, e.g. `laptop`, `ci`.
        #[arg(long)]
        name: String,
        /// For another user (admins) [default: yourself].
        #[arg(long)]
        user: Option<String>,
        /// Days until it expires, 1 to 3650 [default: 90].
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their text): yours, another user's, or everyone's.
    List {
        /// Another user's tokens (admins).
        #[arg(long, conflicts_with = "all")]
        user: Option<String>,
        /// Everyone's tokens (admins).
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token by its id: it signs no one in from then on.
    Revoke { id: String },
}

const TOKEN_COLUMNS: &[(&str, &str)] = &[
    ("ID", "/id"),
    ("NAME", "/name"),
    ("USER", "/user"),
    ("CREATED", "/created_at"),
    ("BY", "/created_by"),
    ("EXPIRES", "/expires_at"),
    ("REVOKED", "/revoked_at"),
];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let json_out = args.client.json;
    match args.command {
        TokensCommand::Create { name, user, expires_in_days } => {
            let body = CreateTokenRequest { name, user, expires_in_days };
            let new: NewTokenResponse = client.send_json(Method::POST, "/api/v1/tokens", &body).await?;
            if json_out {
                return print_json(&new);
            }
            // The token alone on stdout, so `$(modelops tokens create …)` captures just it.
            println!("{}", new.token);
            let expires = new.record.expires_at.map_or_else(|| "never".to_string(), |t| time(&t));
            eprintln!("token `{}` ({}) for user `{}`, expires {expires}; shown this once", new.record.id, new.record.name, new.record.user);
            Ok(())
        }
        TokensCommand::List { user, all } => {
            let query = ListTokensParams { user: if all { Some("*".to_string()) } else { user } };
            let list: TokenList = client.get_query("/api/v1/tokens", &query).await?;
            if json_out {
                print_json(&list)
            } else {
                print_table(&list.tokens, TOKEN_COLUMNS)
            }
        }
        TokensCommand::Revoke { id } => {
            let token: TokenResponse = client.post(&format!("/api/v1/tokens/{}/revoke", path_segment(&id))).await?;
            if json_out {
                print_json(&token)
            } else {
                println!("revoked token `{}` ({}) of user `{}`", token.id, token.name, token.user);
                Ok(())
            }
        }
    }
}
