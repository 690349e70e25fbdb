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
    #[arg(long, value_parser = parse_duration)]
    pub grace: Option<u64>,
}

/// `90`, `90s`, `15m`, `12h`, `7d` → seconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("`{text}` is not a duration such as `90m`, `12h` or `7d`"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        _ => return Err(format!("`{text}`: the unit must be `s`, `m`, `h` or `d`")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("`{text}` is too long"))
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
    use super::parse_duration;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("2d").unwrap(), 172_800);
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
