//! `modelwatch inventory`: every target with the model it actually serves, its license and
//! where that was read, pin status and review age, the triage tier (*safe*, *watch*, *act*)
//! with its reasons, baseline age and current verdict. `--from` merges the JSON exports of
//! several hosts into one table.

use modelwatch::daemon::promote::{InventoryRow, inventory};
use modelwatch::runner::{Clock, SystemClock};
use std::path::PathBuf;
use std::process::ExitCode;

/// Largest inventory export read by `--from`.
const MAX_EXPORT_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    Markdown,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Merge these exports (`inventory --format json` of each host) instead of reading the
    /// local configuration and store.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub from: Vec<PathBuf>,
    /// The host name written into the rows (default: this machine's host name).
    #[arg(long)]
    pub host: Option<String>,
}

pub fn exec(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let rows = if args.from.is_empty() {
        let loaded = match super::live::load(global) {
            Ok(l) => l,
            Err(code) => return Ok(code),
        };
        let store = super::live::open_store(&loaded)?;
        let host = args.host.clone().unwrap_or_else(local_host);
        let mut rows = inventory(&loaded, &store, SystemClock.now_ms())?;
        for r in &mut rows {
            r.host = Some(host.clone());
        }
        rows
    } else {
        match merge(&args.from) {
            Ok(rows) => rows,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Text => print_text(&rows),
        Format::Markdown => print!("{}", markdown(&rows)),
        Format::Csv => print!("{}", csv(&rows)),
    }
    Ok(ExitCode::SUCCESS)
}

/// This machine's host name, or `local`.
fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "local".into())
}

/// Reads and concatenates exports; a row without a host takes the file's stem.
fn merge(files: &[PathBuf]) -> Result<Vec<InventoryRow>, String> {
    let mut rows = Vec::new();
    for f in files {
        let text = modelwatch::files::read_text_limited(f, MAX_EXPORT_BYTES)
            .map_err(|e| format!("cannot read inventory export {}: {e}", f.display()))?;
        let mut part: Vec<InventoryRow> = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not an inventory export ({e}); write one with \
                 `modelwatch inventory --format json > host.json` on each host",
                f.display()
            )
        })?;
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for r in &mut part {
            if r.host.as_deref().is_none_or(str::is_empty) {
                r.host = Some(stem.clone());
            }
        }
        rows.extend(part);
    }
    rows.sort_by(|a, b| (&a.host, &a.target).cmp(&(&b.host, &b.target)));
    Ok(rows)
}

/// What is served: the digest (shortened), file or fingerprint, with the evidence's name and
/// version when it states them.
fn served(r: &InventoryRow) -> String {
    let id = match (&r.digest, &r.fingerprint) {
        (Some(d), _) => {
            let d = d.strip_prefix("sha256:").unwrap_or(d);
            if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
                d[..12].to_string()
            } else {
                d.to_string()
            }
        }
        (None, Some(f)) => f.clone(),
        (None, None) => "-".into(),
    };
    let ev = r.license_evidence.as_ref();
    let name = ev.and_then(|e| e.name.clone().or(e.basename.clone()));
    match (name, ev.and_then(|e| e.version.as_ref())) {
        (Some(n), Some(v)) => format!("{id} [{n} {v}]"),
        (Some(n), None) => format!("{id} [{n}]"),
        _ => id,
    }
}

fn license(r: &InventoryRow) -> String {
    match (&r.license, &r.license_sha256) {
        (Some(l), _) => l.clone(),
        (None, Some(s)) => format!("text {}", &s[..s.len().min(12)]),
        (None, None) => "unknown".into(),
    }
}

fn review(r: &InventoryRow) -> String {
    r.review_age_days
        .map(|d| format!("{d}d"))
        .unwrap_or_else(|| "-".into())
}

/// The triage columns, in table order.
const HEADERS: [&str; 10] = [
    "host", "target", "served", "license", "evidence", "pin", "review", "tier", "reason", "verdict",
];

fn cells(r: &InventoryRow) -> [String; 10] {
    [
        r.host.clone().unwrap_or_default(),
        r.target.clone(),
        served(r),
        license(r),
        r.license_source.clone().unwrap_or_else(|| "-".into()),
        r.pin_status.clone(),
        review(r),
        r.tier.clone(),
        r.tier_reasons.join("; "),
        r.verdict.clone(),
    ]
}

fn print_text(rows: &[InventoryRow]) {
    println!(
        "{:<20} {:<28} {:<17} {:<17} {:<11} {:<16} {:>8}  verdict",
        "target", "model", "fingerprint", "config", "pin", "approved by", "baseline"
    );
    for r in rows {
        let age = match (r.baseline_age_days, r.baseline_matches_served) {
            (Some(d), Some(false)) => format!("{d:.0}d*"),
            (Some(d), _) => format!("{d:.0}d"),
            _ => "none".into(),
        };
        let verdict = if r.firing.is_empty() {
            r.verdict.clone()
        } else {
            format!("{} ({})", r.verdict, r.firing.join(", "))
        };
        println!(
            "{:<20} {:<28} {:<17} {:<17} {:<11} {:<16} {:>8}  {}",
            r.target,
            r.model,
            r.fingerprint.as_deref().unwrap_or("-"),
            r.config_digest.as_deref().unwrap_or("-"),
            r.pin_status,
            r.approved_by.as_deref().unwrap_or("-"),
            age,
            verdict
        );
    }
    if rows
        .iter()
        .any(|r| r.baseline_matches_served == Some(false))
    {
        println!("* baseline recorded from a different model than the one served now");
    }
    println!();
    println!(
        "{:<12} {:<20} {:<34} {:<12} {:<10} {:<11} {:>6}  {:<5}  reason",
        "host", "target", "served", "license", "evidence", "pin", "review", "tier"
    );
    for r in rows {
        let c = cells(r);
        // The evidence kind only; the full location is in the JSON, Markdown and CSV forms.
        let kind = c[4].split(' ').next().unwrap_or("-");
        println!(
            "{:<12} {:<20} {:<34} {:<12} {:<10} {:<11} {:>6}  {:<5}  {}",
            c[0], c[1], c[2], c[3], kind, c[5], c[6], c[7], c[8]
        );
    }
}

/// A GitHub-flavoured Markdown table (pipes in cells escaped).
fn markdown(rows: &[InventoryRow]) -> String {
    let mut out = format!("| {} |\n", HEADERS.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(HEADERS.len())));
    for r in rows {
        let c: Vec<String> = cells(r)
            .iter()
            .map(|v| v.replace('|', "\\|").replace('\n', " "))
            .collect();
        out.push_str(&format!("| {} |\n", c.join(" | ")));
    }
    out
}

/// RFC 4180 CSV: every field quoted, quotes doubled.
fn csv(rows: &[InventoryRow]) -> String {
    let line = |fields: &[String]| {
        fields
            .iter()
            .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(",")
            + "\r\n"
    };
    let mut out = line(&HEADERS.map(String::from));
    for r in rows {
        out.push_str(&line(&cells(r)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: Option<&str>, target: &str, tier: &str) -> InventoryRow {
        InventoryRow {
            host: host.map(str::to_string),
            target: target.into(),
            digest: Some(format!("sha256:{}", "5e2c".repeat(16))),
            license: Some("apache-2.0".into()),
            license_source: Some("ollama_show".into()),
            pin_status: "unpinned".into(),
            tier: tier.into(),
            tier_reasons: vec![
                "unpinned: no approved version".into(),
                "a \"quoted\" | piped".into(),
            ],
            verdict: "ok".into(),
            ..InventoryRow::default()
        }
    }

    #[test]
    fn markdown_and_csv_escape_their_separators() {
        let rows = [row(Some("h1"), "t", "watch")];
        let md = markdown(&rows);
        assert!(md.starts_with("| host | target | served |"), "{md}");
        assert!(
            md.contains("| h1 | t | 5e2c5e2c5e2c | apache-2.0 | ollama_show |"),
            "{md}"
        );
        assert!(md.contains("a \"quoted\" \\| piped"), "{md}");
        let c = csv(&rows);
        assert!(c.contains("; a \"\"quoted\"\" | piped\",\"ok\""), "{c}");
        assert_eq!(c.lines().count(), 2);
    }

    #[test]
    fn exports_merge_with_the_file_name_as_the_missing_host() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("gpu-a.json");
        let b = dir.path().join("gpu-b.json");
        std::fs::write(&a, serde_json::to_string(&[row(None, "z", "act")]).unwrap()).unwrap();
        std::fs::write(
            &b,
            serde_json::to_string(&[row(Some("edge-1"), "y", "safe")]).unwrap(),
        )
        .unwrap();
        let rows = merge(&[b.clone(), a.clone()]).unwrap();
        let hosts: Vec<_> = rows.iter().map(|r| r.host.clone().unwrap()).collect();
        assert_eq!(hosts, ["edge-1", "gpu-a"]);
        std::fs::write(&a, "{\"not\": \"rows\"}").unwrap();
        let err = merge(&[a]).unwrap_err();
        assert!(err.contains("not an inventory export"), "{err}");
        let err = merge(&[dir.path().join("missing.json")]).unwrap_err();
        assert!(err.contains("cannot read inventory export"), "{err}");
    }
}
