//! The daemon's own failures in Sentry, through the `sentry` SDK: a panic (its panic
//! integration) or a `tracing` `error!` (its tracing layer) becomes an event of the configured
//! project, with the last `warn!`/`info!` lines as breadcrumbs. Alert events and Crons
//! check-ins keep their own path ([`super::sentry`]): deliberate grouping, idempotent ids,
//! the SQLite outbox.
//!
//! The SDK builds the envelopes; [`QueueTransport`] only queues them (the SDK calls it from
//! any thread, a panic hook included), and one task posts them through [`SentrySink`]: the
//! project's HTTP client (no redirects, the sink's `ca_file` and `tls_roots`), its rate limits
//! per category (a limited event waits the limit out), retries with backoff. The queue is held
//! in memory and bounded: what is still queued when the process ends is lost, after the SDK's
//! flush at shutdown.

use super::SinkError;
use super::outbox::RetryPolicy;
use super::sentry::SentrySink;
use crate::config::Sentry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Whether a client is bound: until then [`SdkLayer`] converts nothing (every command logs
/// through it, most never bind one).
static BOUND: AtomicBool = AtomicBool::new(false);

/// Envelopes queued at most; more are dropped (a panic loop must not eat the memory).
const QUEUE: usize = 100;
/// Attempts per envelope before it is given up.
const ATTEMPTS: u32 = 8;

/// Envelopes handed over and not yet finished (delivered or given up), for `flush`.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Pending {
    fn add(&self, n: isize) {
        if let Ok(mut c) = self.count.lock() {
            *c = c.saturating_add_signed(n);
            self.changed.notify_all();
        }
    }

    /// Waits until nothing is pending or `timeout` passes; true when nothing is.
    fn wait_empty(&self, timeout: Duration) -> bool {
        let Ok(c) = self.count.lock() else {
            return false;
        };
        match self.changed.wait_timeout_while(c, timeout, |c| *c > 0) {
            Ok((c, _)) => *c == 0,
            Err(_) => false,
        }
    }
}

/// The SDK's transport: queues each envelope's bytes for [`deliver`].
pub struct QueueTransport {
    tx: mpsc::Sender<Vec<u8>>,
    pending: Arc<Pending>,
}

impl sentry::Transport for QueueTransport {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        let mut body = Vec::new();
        if envelope.to_writer(&mut body).is_err() {
            return;
        }
        self.pending.add(1);
        if self.tx.try_send(body).is_err() {
            self.pending.add(-1);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.pending.wait_empty(timeout)
    }
}

/// Hands the SDK the one transport built by [`init`].
struct Factory(Arc<QueueTransport>);

impl sentry::TransportFactory for Factory {
    fn create_transport(&self, _: &sentry::ClientOptions) -> Arc<dyn sentry::Transport> {
        self.0.clone()
    }
}

/// The SDK while it is on: dropping it flushes the queue (up to the SDK's shutdown timeout)
/// and unbinds the client; the delivery task then ends with its queue.
pub struct Sdk {
    _guard: sentry::ClientInitGuard,
}

impl Drop for Sdk {
    fn drop(&mut self) {
        BOUND.store(false, Ordering::Relaxed);
    }
}

/// Turns the SDK on for `config`: binds the client to the process and starts the delivery
/// task on the current runtime. Call it on the thread that started the runtime, before other
/// threads report through `tracing`, so every thread sees the client.
pub fn init(config: &Sentry, timeout: Duration) -> Result<Sdk, SinkError> {
    let err = |reason: String| SinkError::permanent("sentry", "", reason);
    let dsn: sentry::types::Dsn = config
        .dsn
        .expose()
        .parse()
        .map_err(|e| err(format!("invalid DSN for the SDK: {e}")))?;
    let sink = Arc::new(SentrySink::new(
        config.clone(),
        Default::default(),
        timeout,
    )?);
    let (tx, rx) = mpsc::channel(QUEUE);
    let pending = Arc::new(Pending::default());
    let transport = Arc::new(QueueTransport {
        tx,
        pending: pending.clone(),
    });
    tokio::spawn(deliver(sink, rx, pending));
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn);
    options.release = Some(config.release.clone().into());
    options.environment = Some(config.environment.clone().into());
    options.server_name = super::sentry::host_name().map(Into::into);
    options.transport = Some(Arc::new(Factory(transport)));
    options.shutdown_timeout = Duration::from_secs(2);
    let guard = sentry::init(options);
    BOUND.store(true, Ordering::Relaxed);
    Ok(Sdk { _guard: guard })
}

/// The `tracing` layer of the SDK: `error!` → an event, `warn!` and `info!` → breadcrumbs
/// (of the next event); spans are not traced. Without a bound client (no `[alerts.sentry]`)
/// it does nothing. The SDK's layers are meant to be filtered per layer, which the `fmt`
/// subscriber of the binary does not support: each event is handed to one of them here.
#[derive(Default)]
pub struct SdkLayer {
    errors: sentry::integrations::tracing::ErrorLayer,
    breadcrumbs: sentry::integrations::tracing::BreadcrumbLayer,
}

impl<S> tracing_subscriber::Layer<S> for SdkLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if !BOUND.load(Ordering::Relaxed) {
            return;
        }
        match *event.metadata().level() {
            tracing::Level::ERROR => self.errors.on_event(event, ctx),
            tracing::Level::WARN | tracing::Level::INFO => self.breadcrumbs.on_event(event, ctx),
            _ => {}
        }
    }
}

/// Posts the queued envelopes one by one, waiting out rate limits and retrying failures with
/// backoff; never logs at `error` (that would queue another event about itself).
async fn deliver(sink: Arc<SentrySink>, mut rx: mpsc::Receiver<Vec<u8>>, pending: Arc<Pending>) {
    let policy = RetryPolicy::default();
    let mut rng = crate::rng::Rng::from_parts(&[crate::rng::hash_str("sentry-sdk")]);
    while let Some(body) = rx.recv().await {
        let mut attempts = 0;
        loop {
            match sink.post_envelope(body.clone()).await {
                Ok(()) => break,
                Err(e) if e.permanent => {
                    tracing::warn!(error = %e, "Sentry refused an event of the daemon's own");
                    break;
                }
                Err(e) => {
                    if !e.deferred {
                        attempts += 1;
                    }
                    if attempts >= ATTEMPTS {
                        tracing::warn!(error = %e, "an event of the daemon's own was given up");
                        break;
                    }
                    let wait = policy
                        .backoff(attempts.max(1), &mut rng)
                        .max(e.retry_after.unwrap_or_default().min(policy.max));
                    tokio::time::sleep(wait).await;
                }
            }
        }
        pending.add(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_waits_for_what_is_pending() {
        let p = Pending::default();
        assert!(p.wait_empty(Duration::ZERO));
        p.add(1);
        assert!(!p.wait_empty(Duration::from_millis(1)));
        p.add(-1);
        assert!(p.wait_empty(Duration::ZERO));
    }
}
