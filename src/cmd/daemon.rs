//! `modelwatch daemon`: the long-running service. Signals: SIGHUP reloads (a configuration
//! that fails validation is rejected and the old one keeps running), SIGTERM/SIGINT stop.

use super::EXIT_USAGE;
use anyhow::Context;
use modelwatch::config;
use modelwatch::daemon::{self, Command, notify::Notifier, state::Shared};
use modelwatch::diag;
use modelwatch::http::serve;
use modelwatch::store::Store;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::signal::unix::{SignalKind, signal};

/// SIGXFSZ (25 on Linux and the BSDs).
const XFSZ: i32 = 25;

/// Time asked of systemd (`EXTEND_TIMEOUT_USEC`) for each long start-up step: opening the store
/// (its integrity check and migrations take longer as it grows) and the first scheduling.
const START_STEP: std::time::Duration = std::time::Duration::from_secs(180);
use tokio::sync::{mpsc, watch};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(_args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(global))
}

/// Opens the store, first asking systemd for the time its integrity check and migrations take.
fn open_store(path: &std::path::Path, notifier: &Notifier) -> anyhow::Result<Store> {
    notifier.extend_timeout(
        START_STEP,
        "opening the sample store (integrity check, migrations)",
    );
    Store::open(path).with_context(|| format!("cannot open the sample store {}", path.display()))
}

/// The daemon's own panics and `error!`s go to the configured Sentry project, for the
/// process's life (a reload does not change it), kept in the store's outbox until Sentry has
/// them (in memory only when a second connection to the store cannot be opened); then the
/// configuration's warnings are logged (so they are breadcrumbs of a later event).
///
/// Test hook: with `MODELWATCH_TEST_PANIC` set, a task of the daemon panics a second after the
/// start (the daemon keeps running), so a test can see a panic reach Sentry as a real one would.
fn start_reporting(
    loaded: &config::Loaded,
) -> anyhow::Result<Option<modelwatch::alert::sentry_sdk::Sdk>> {
    let sdk = match &loaded.config.alerts.sentry {
        Some(s) => {
            let path = &loaded.config.storage.path;
            let outbox: Option<Arc<dyn modelwatch::alert::sentry_sdk::EnvelopeStore>> =
                match daemon::SdkOutbox::open(path) {
                    Ok(o) => Some(Arc::new(o)),
                    Err(e) => {
                        tracing::warn!(error = %e, "the daemon's own Sentry events are kept in memory only: cannot open the store for them");
                        None
                    }
                };
            modelwatch::alert::sentry_sdk::init(s, daemon::outputs::SINK_TIMEOUT, outbox)?
        }
        None => {
            loaded.warnings.iter().for_each(|w| tracing::warn!("{w}"));
            return Ok(None);
        }
    };
    loaded.warnings.iter().for_each(|w| tracing::warn!("{w}"));
    if let Some(what) = std::env::var_os("MODELWATCH_TEST_PANIC") {
        tracing::warn!("MODELWATCH_TEST_PANIC is set: a task panics in a second");
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            panic!(
                "deliberate panic (MODELWATCH_TEST_PANIC={})",
                what.display()
            );
        });
    }
    Ok(Some(sdk))
}

/// A file size limit (`LimitFSIZE=`, `ulimit -f`) would kill the process with SIGXFSZ on the
/// first write past it; with a handler the write fails (EFBIG) and is handled as a store error,
/// so the daemon keeps probing and recovers when the limit is raised.
fn survive_file_size_limit() -> anyhow::Result<()> {
    let mut xfsz =
        signal(SignalKind::from_raw(XFSZ)).context("cannot install the SIGXFSZ handler")?;
    tokio::spawn(async move {
        while xfsz.recv().await.is_some() {
            tracing::error!(
                "SIGXFSZ: a write exceeded the file size limit (ulimit -f / LimitFSIZE)"
            );
        }
    });
    Ok(())
}

async fn run(global: &super::Global) -> anyhow::Result<ExitCode> {
    let loaded = match config::load_with_suites(&global.config, &config::process_env) {
        Ok(l) => l,
        Err(diags) => {
            eprint!("{}", diag::render_all(&diags));
            super::hint_missing_config(&global.config);
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let notifier = Notifier::from_env();
    let store = open_store(&loaded.config.storage.path, &notifier)?;
    let _sentry = start_reporting(&loaded)?;
    let listener = tokio::net::TcpListener::bind(loaded.config.server.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} ([server] listen): is another modelwatch running?",
                loaded.config.server.listen
            )
        })?;
    let addr = listener.local_addr()?;
    tracing::info!(address = %addr, "HTTP endpoint listening");

    let shared = Arc::new(Shared::default());
    let (commands, rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = &loaded.config.server;
    let access =
        modelwatch::http::Access::for_listen(addr, server.token.clone(), server.public_metrics);
    let router = modelwatch::http::router_with_history(
        shared.clone(),
        commands.clone(),
        access,
        Some(modelwatch::http::page::History::of(&loaded)),
    );
    let limits = serve::Limits::within_budget(server.max_connections, serve::soft_nofile());
    tracing::info!(
        max_connections = limits.max_connections,
        soft_nofile = serve::soft_nofile(),
        "HTTP connection limit (at most a quarter of the descriptor limit)"
    );
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(serve::serve_with(listener, router, limits, async move {
        let _ = http_stop.wait_for(|s| *s).await;
    }));

    // Signals: SIGHUP validates and reloads; SIGTERM / SIGINT stop.
    let mut hup = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    survive_file_size_limit()?;
    let path = global.config.clone();
    let reload_shared = shared.clone();
    let signal_notifier = notifier.clone();
    let signals = tokio::spawn(async move {
        let notifier = signal_notifier;
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!(config = %path.display(), "SIGHUP: reloading the configuration");
                    notifier.reloading();
                    match config::load_with_suites(&path, &config::process_env) {
                        Ok(l) => {
                            if commands.send(Command::Reload(Box::new(l))).await.is_err() {
                                break;
                            }
                        }
                        Err(diags) => {
                            reload_shared.reload_ok.store(false, Ordering::Relaxed);
                            notifier.ready("reload rejected: invalid configuration; running the previous one");
                            tracing::error!(
                                "the new configuration is invalid; keeping the running one:\n{}",
                                diag::render_all(&diags)
                            );
                        }
                    }
                }
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            }
        }
        let _ = stop_tx.send(true);
    });

    let outputs = daemon::outputs::from_config(&loaded.config).map_err(|e| {
        anyhow::anyhow!(
            "cannot set up the {} output: {}; fix it and start again",
            e.sink,
            e.reason
        )
    })?;
    notifier.extend_timeout(
        START_STEP,
        "loading baselines and alert state; READY=1 follows",
    );
    let options = daemon::Options {
        notifier,
        sinks: outputs.sinks,
        observers: outputs.observers,
        outputs: Some(Arc::new(daemon::outputs::from_config)),
        seed: modelwatch::rng::os_seed(),
        ..daemon::Options::default()
    };
    let mut stop = stop_rx.clone();
    let result = daemon::run(loaded, store, options, shared, rx, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
    signals.abort();
    let _ = (http.await, modelwatch::telemetry::bridge::flush().await);
    result?;
    Ok(ExitCode::SUCCESS)
}
