//! `modelops users …`: who may sign in, with which roles (admins change them).

use super::models::{parse_flag, path_segment};
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_record, print_table};
use anyhow::bail;
use modelops_server::wire::{CreateUserRequest, ErasureResponse, Role, UpdateUserRequest, UserList, UserResponse};
use reqwest::Method;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Create a user; give them a token with `modelops tokens create --user`.
    Create {
        name: String,
        /// viewer, developer, validator, approver, deployer, admin or auditor (repeatable).
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        #[arg(long)]
        team: Option<String>,
    },
    /// List users.
    List,
    /// Show one user.
    Show { name: String },
    /// Replace a user's roles (all of them) or change their team.
    Update {
        name: String,
        /// The user's roles from now on (repeatable).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        #[arg(long)]
        team: Option<String>,
    },
    /// Disable a user: their tokens sign no one in.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// Erase a person (GDPR Art. 17): their name and comments become
    /// unreadable everywhere, their records carry a pseudonym, the audit log
    /// still verifies. Irreversible.
    Erase {
        name: String,
        /// Confirms the erasure cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

const USER_COLUMNS: &[(&str, &str)] =
    &[("NAME", "/name"), ("ROLES", "/roles"), ("TEAM", "/team"), ("DISABLED", "/disabled"), ("CREATED", "/created_at"), ("BY", "/created_by")];

const USER_FIELDS: &[(&str, &str)] = &[
    ("name", "/name"),
    ("roles", "/roles"),
    ("team", "/team"),
    ("disabled", "/disabled"),
    ("created", "/created_at"),
    ("created by", "/created_by"),
    ("updated", "/updated_at"),
];

fn parse_roles(roles: &[String]) -> anyhow::Result<Vec<Role>> {
    roles.iter().map(|r| parse_flag::<Role>("--role", r)).collect()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let json_out = args.client.json;
    let show = |user: &UserResponse| if json_out { print_json(user) } else { print_record(user, USER_FIELDS) };
    let user_path = |name: &str| format!("/api/v1/users/{}", path_segment(name));
    match args.command {
        UsersCommand::Create { name, roles, team } => {
            let body = CreateUserRequest { name, roles: parse_roles(&roles)?, team: team.unwrap_or_default() };
            show(&client.send_json(Method::POST, "/api/v1/users", &body).await?)
        }
        UsersCommand::List => {
            let list: UserList = client.get("/api/v1/users").await?;
            if json_out {
                print_json(&list)
            } else {
                print_table(&list.users, USER_COLUMNS)
            }
        }
        UsersCommand::Show { name } => show(&client.get(&user_path(&name)).await?),
        UsersCommand::Update { name, roles, team } => {
            let body = UpdateUserRequest { roles: (!roles.is_empty()).then(|| parse_roles(&roles)).transpose()?, team, disabled: None };
            if body == UpdateUserRequest::default() {
                bail!("nothing to update: give --role or --team");
            }
            show(&client.send_json(Method::PATCH, &user_path(&name), &body).await?)
        }
        UsersCommand::Disable { name } => {
            let body = UpdateUserRequest { disabled: Some(true), ..UpdateUserRequest::default() };
            show(&client.send_json(Method::PATCH, &user_path(&name), &body).await?)
        }
        UsersCommand::Erase { name, yes } => {
            if !yes {
                bail!("erasing `{name}` cannot be undone: add --yes to confirm");
            }
            let erased: ErasureResponse = client.post(&format!("{}/erase", user_path(&name))).await?;
            if json_out {
                print_json(&erased)
            } else {
                println!("erased `{name}`: their records now read `{}`; the audit log still verifies", erased.pseudonym);
                if erased.legacy_events > 0 {
                    println!(
                        "note: {} audit events written before personal data was sealed still name them in hashed bytes (see docs/audit.md)",
                        erased.legacy_events
                    );
                }
                Ok(())
            }
        }
        UsersCommand::Enable { name } => {
            let body = UpdateUserRequest { disabled: Some(false), ..UpdateUserRequest::default() };
            show(&client.send_json(Method::PATCH, &user_path(&name), &body).await?)
        }
    }
}
