//! `modelops login`, `logout` and `whoami`: the token the other commands
//! send, saved per server in the credentials file (see [`Credentials`]).

use crate::client::{Client, ClientArgs, Credentials, Secret, ServerCredentials};
use crate::output::{print_json, text_of};
use anyhow::{anyhow, Context};
use modelops_server::wire::WhoAmIResponse;
use serde_json::json;
use std::io::{BufRead, IsTerminal};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `name (roles: a, b; team t)`.
fn describe(who: &WhoAmIResponse) -> String {
    let team = who.team.as_deref().filter(|t| !t.is_empty()).map(|t| format!("; team {t}")).unwrap_or_default();
    format!("{} (roles: {}{team})", who.name, text_of(&who.roles))
}

/// Checks the token (from `--token`, `MODELOPS_TOKEN` or standard input)
/// with the server and saves it for that server.
pub async fn login(args: Args) -> anyhow::Result<()> {
    let base = args.client.base_url()?;
    let token = match args.client.token.clone() {
        Some(token) => token,
        None => read_token()?,
    };
    let who: WhoAmIResponse = Client::with_token(&args.client, token.clone())?.get("/api/v1/whoami").await?;
    let dir = Credentials::dir().context("cannot tell where to save the token: set MODELOPS_CONFIG_DIR or HOME")?;
    let mut credentials = Credentials::load()?;
    credentials.servers.insert(base.clone(), ServerCredentials { token: token.expose().to_string() });
    create_private_dir(&dir)?;
    let path = dir.join(crate::client::CREDENTIALS_FILE);
    super::write_secret(&path, &credentials.to_toml()?).with_context(|| format!("cannot write the credentials file `{}`", path.display()))?;
    if args.client.json {
        print_json(&json!({"server": base, "user": who, "credentials": path}))
    } else {
        println!("signed in to {base} as {}; token saved in {}", describe(&who), path.display());
        Ok(())
    }
}

/// Forgets the token saved for the server (it stays valid: `modelops tokens revoke` ends it).
pub async fn logout(args: Args) -> anyhow::Result<()> {
    let base = args.client.base_url()?;
    let mut credentials = Credentials::load()?;
    let removed = credentials.servers.remove(&base).is_some();
    if removed {
        let path = Credentials::path().context("cannot tell where the credentials file is: set MODELOPS_CONFIG_DIR or HOME")?;
        super::write_secret(&path, &credentials.to_toml()?).with_context(|| format!("cannot write the credentials file `{}`", path.display()))?;
    }
    if args.client.json {
        return print_json(&json!({"server": base, "removed": removed}));
    }
    if removed {
        println!("signed out of {base}: its token was removed from this machine (it stays valid until revoked)");
    } else {
        println!("no token saved for {base}");
    }
    Ok(())
}

/// Who the token in use belongs to.
pub async fn whoami(args: Args) -> anyhow::Result<()> {
    let who: WhoAmIResponse = Client::new(&args.client)?.get("/api/v1/whoami").await?;
    if args.client.json {
        print_json(&who)
    } else {
        println!("{}", describe(&who));
        Ok(())
    }
}

/// One line from standard input; at a terminal, asked for without echo.
fn read_token() -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("token for the server (not shown): ");
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        set_echo(true);
        eprintln!();
    }
    read.context("cannot read the token from standard input")?;
    line.parse::<Secret>().map_err(|_| anyhow!("no token given: pass --token, set MODELOPS_TOKEN or write it to standard input"))
}

/// Switches the terminal's echo with `stty`; where that fails the token is
/// echoed, which is no worse than typing it in a command line.
fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty").arg(if on { "echo" } else { "-echo" }).stdin(std::process::Stdio::inherit()).status();
}

/// Creates the credentials folder, readable by its owner only when new.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).with_context(|| format!("cannot create `{}`", dir.display()))
}
