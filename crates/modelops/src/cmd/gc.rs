//! `modelops gc`: remove uploaded artifacts that no version references.

use crate::client::{Client, ClientArgs};
use crate::output::print_json;
use modelops_server::wire::{GcRequest, GcResponse};
use reqwest::Method;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep unreferenced artifacts uploaded less than this long ago, e.g.
    /// `90m`, `12h`, `7d` or seconds [default: 1d on the server].
    #[arg(long, value_parser = super::parse_seconds)]
    pub grace: Option<u64>,
}


pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let request = GcRequest { dry_run: args.dry_run, grace_seconds: args.grace };
    let report: GcResponse = client.send_json(Method::POST, "/api/v1/artifacts/gc", &request).await?;
    if args.client.json {
        return print_json(&report);
    }
    let verb = if report.dry_run { "would remove" } else { "removed" };
    for artifact in &report.removed {
        println!("{verb} {} ({} bytes, uploaded {})", artifact.sha256, artifact.size, artifact.last_modified.to_rfc3339());
    }
    println!(
        "{verb} {} artifacts ({} bytes); {} referenced, {} unreferenced but within the grace period",
        report.removed.len(),
        report.removed_bytes,
        report.referenced,
        report.kept_recent
    );
    for skipped in &report.skipped {
        eprintln!("left alone: `{skipped}` is not an artifact");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parse_seconds;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_seconds("90").unwrap(), 90);
        assert_eq!(parse_seconds("15m").unwrap(), 900);
        assert_eq!(parse_seconds("2d").unwrap(), 172_800);
        assert!(parse_seconds("1w").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
