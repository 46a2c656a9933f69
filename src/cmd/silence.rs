//! `modelwatch silence --target T --for 2h`: mute a target's notifications (they are still
//! recorded). Goes through the running daemon's API when `[server] token` is set and the
//! daemon answers; otherwise writes the silence into the store, where the daemon reads it.

use super::EXIT_USAGE;
use anyhow::Context;
use modelwatch::config::{self, duration::parse_duration};
use modelwatch::diag;
use modelwatch::runner::{Clock, SystemClock};
use modelwatch::store::Store;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target to silence.
    #[arg(long)]
    pub target: String,
    /// How long, e.g. `2h` or `30m`.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: String,
    /// Only this alert metric (e.g. `refusal_rate`); default: every alert of the target.
    #[arg(long)]
    pub metric: Option<String>,
    /// Why (kept with the silence).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Write into the store even when the daemon's API is reachable.
    #[arg(long)]
    pub offline: bool,
}

pub fn exec(mut args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let loaded = match config::load(&global.config, &config::process_env) {
        Ok(l) => l,
        Err(diags) => {
            eprint!("{}", diag::render_all(&diags));
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let Some(duration) = parse_duration(&args.duration).filter(|d| !d.is_zero()) else {
        eprintln!(
            "error: invalid duration `{}` for --for: expected e.g. 2h or 30m",
            args.duration
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    // A deprecated metric name (`task_success_rate`) silences its successor.
    args.metric = args
        .metric
        .map(|m| modelwatch::drift::Metric::canonical_id(&m).to_string());
    if let Err(why) = modelwatch::http::check_silence(args.metric.as_deref(), duration) {
        eprintln!("error: {why}");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    if !loaded.targets.iter().any(|t| t.name == args.target) {
        eprintln!(
            "error: no target named '{}' in {}",
            args.target,
            loaded.path.display()
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    if let (Some(token), false) = (&loaded.server.token, args.offline) {
        let url = format!("http://{}/api/v1/silence", loaded.server.listen);
        let body = serde_json::json!({
            "target": args.target, "metric": args.metric, "for": args.duration, "reason": args.reason
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let sent = runtime.block_on(async {
            let client = modelwatch::provider::http::outbound_client().build()?;
            client
                .post(&url)
                .bearer_auth(token.expose())
                .json(&body)
                .timeout(std::time::Duration::from_secs(10))
                .send()
                .await
        });
        match sent {
            Ok(resp) if resp.status().is_success() => {
                println!(
                    "silenced {} of {} for {} (through the daemon)",
                    what(&args),
                    args.target,
                    args.duration
                );
                return Ok(ExitCode::SUCCESS);
            }
            Ok(resp) => {
                let status = resp.status();
                let text = runtime.block_on(resp.text()).unwrap_or_default();
                eprintln!("error: the daemon refused the silence ({status}): {text}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            Err(e) => {
                tracing::info!(error = %e, "the daemon API is not reachable; writing the silence into the store")
            }
        }
    }
    let mut store = Store::open(&loaded.storage.path)
        .with_context(|| format!("cannot open the store {}", loaded.storage.path.display()))?;
    let now = SystemClock.now_ms();
    let s = store.add_silence(
        &args.target,
        args.metric.as_deref(),
        now,
        now.saturating_add(duration.as_millis() as i64),
        &args.reason,
    )?;
    println!(
        "silenced {} of {} for {} (silence {} in {})",
        what(&args),
        s.target,
        args.duration,
        s.id,
        loaded.storage.path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What a silence mutes, in words: one metric's alerts or all of them.
fn what(args: &Args) -> String {
    match &args.metric {
        Some(m) => format!("{m} alerts"),
        None => "every alert".into(),
    }
}
