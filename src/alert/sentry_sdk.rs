//! The daemon's own failures in Sentry, through the `sentry` SDK: a panic (its panic
//! integration) or a `tracing` `error!` (its tracing layer) becomes an event of the configured
//! project, with the last `warn!`/`info!` lines as breadcrumbs. Alert events (the SDK's types,
//! not captured through its client) and Crons check-ins keep their own path
//! ([`super::sentry`]): deliberate grouping, idempotent ids, the alert outbox.
//!
//! The SDK builds the envelopes; [`OutboxTransport`] writes each one into the SQLite outbox
//! (an [`EnvelopeStore`] the daemon provides, rows of the sink [`OUTBOX_SINK`]) before it
//! returns: the SDK calls it on the panicking thread, so a panic's event is on disk before the
//! process can die. One task posts the rows through [`SentrySink`]: the project's HTTP client
//! (no redirects, the sink's `ca_file` and `tls_roots`), its rate limits per category (a
//! limited event waits the limit out, without using up an attempt), retries with backoff; a
//! row is marked delivered once Sentry has accepted it, and rows still pending at the next
//! start are sent then. When the store cannot be written (full disk, locked for longer than
//! [`SAVE_WAIT`], read-only), the envelope is kept in memory only, as a bounded queue: it is
//! lost if the process ends before Sentry has it.

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

/// Envelopes queued at most; more are dropped (a panic loop must not eat the memory). A
/// dropped envelope that is in the store is sent at the next start.
const QUEUE: usize = 100;
/// The outbox's sink name for the SDK's envelopes.
pub const OUTBOX_SINK: &str = "sentry-sdk";
/// Longest wait for the store's lock when saving an envelope (another thread may be writing
/// one; the thread holding it may be the one that panics).
pub const SAVE_WAIT: Duration = Duration::from_secs(2);

/// Where the SDK's envelopes are kept until Sentry has them (the daemon's store, through a
/// connection of their own). Called synchronously, from any thread, a panic hook included;
/// never logs at `error` (that would make another envelope).
pub trait EnvelopeStore: Send + Sync {
    /// Keeps one envelope under `key`; its row id, `None` when the key is already kept, or why
    /// it could not be kept.
    fn save(&self, key: &str, body: &[u8]) -> Result<Option<i64>, String>;
    /// The envelopes kept and not finished by an earlier run, oldest first: (id, body, attempts).
    fn pending(&self) -> Result<Vec<(i64, Vec<u8>, u32)>, String>;
    /// Records an attempt on a kept envelope: `done` (delivered, refused or given up) or not,
    /// attempts made, the last error.
    fn record(&self, id: i64, outcome: Finish, attempts: u32, error: Option<&str>);
}

/// How an attempt on a kept envelope ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Delivered,
    /// Still pending: retried later (at the next start too).
    Retry,
    /// Refused by Sentry (a 4xx other than 408 and 429).
    Rejected,
    /// Given up after the last attempt.
    Expired,
}

/// One envelope for the delivery task: its row in the store, if it has one.
struct Item {
    row: Option<i64>,
    body: Vec<u8>,
    attempts: u32,
}
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

/// The SDK's transport: keeps each envelope in the store, then queues it for [`deliver`].
pub struct OutboxTransport {
    tx: mpsc::Sender<Item>,
    pending: Arc<Pending>,
    store: Option<Arc<dyn EnvelopeStore>>,
}

impl sentry::Transport for OutboxTransport {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        let mut body = Vec::new();
        if envelope.to_writer(&mut body).is_err() {
            return;
        }
        let key = match envelope.uuid() {
            Some(id) => id.simple().to_string(),
            None => {
                use sha2::Digest;
                crate::util::hex(&sha2::Sha256::digest(&body)[..16])
            }
        };
        let row = match self.store.as_ref().map(|s| s.save(&key, &body)) {
            Some(Ok(Some(id))) => Some(id),
            // Already kept: an earlier copy is (or was) delivered.
            Some(Ok(None)) => return,
            Some(Err(e)) => {
                // Not `eprintln!`: it panics when stderr is a closed pipe, and this runs in the
                // daemon, which must outlive its log pipe.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "modelwatch: an event for Sentry could not be written to the store ({e}); it is kept in memory only"
                );
                None
            }
            None => None,
        };
        self.pending.add(1);
        let item = Item {
            row,
            body,
            attempts: 0,
        };
        if self.tx.try_send(item).is_err() {
            self.pending.add(-1);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.pending.wait_empty(timeout)
    }
}

/// Hands the SDK the one transport built by [`init`].
struct Factory(Arc<OutboxTransport>);

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
/// task on the current runtime, which first sends what `store` kept from earlier runs. Call it
/// on the thread that started the runtime, before other threads report through `tracing`, so
/// every thread sees the client. Without a `store` the envelopes are held in memory only.
pub fn init(
    config: &Sentry,
    timeout: Duration,
    store: Option<Arc<dyn EnvelopeStore>>,
) -> Result<Sdk, SinkError> {
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
    let earlier = match store.as_ref().map(|s| s.pending()) {
        Some(Ok(rows)) => rows,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the daemon's own Sentry events kept by an earlier run");
            Vec::new()
        }
        None => Vec::new(),
    };
    if !earlier.is_empty() {
        tracing::info!(
            events = earlier.len(),
            "sending the daemon's own Sentry events kept by an earlier run"
        );
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let pending = Arc::new(Pending::default());
    let transport = Arc::new(OutboxTransport {
        tx,
        pending: pending.clone(),
        store: store.clone(),
    });
    let earlier = earlier.into_iter().map(|(id, body, attempts)| Item {
        row: Some(id),
        body,
        attempts,
    });
    tokio::spawn(deliver(sink, earlier.collect(), rx, pending, store));
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

/// Posts the envelopes kept by earlier runs, then the queued ones, one by one, waiting out
/// rate limits and retrying failures with backoff, and records each attempt in the store;
/// never logs at `error` (that would queue another event about itself).
async fn deliver(
    sink: Arc<SentrySink>,
    earlier: Vec<Item>,
    mut rx: mpsc::Receiver<Item>,
    pending: Arc<Pending>,
    store: Option<Arc<dyn EnvelopeStore>>,
) {
    let mut rng =
        crate::rng::Rng::from_parts(&[crate::rng::hash_str("sentry-sdk"), crate::rng::os_seed()]);
    for item in earlier {
        send(&sink, item, store.as_deref(), &mut rng).await;
    }
    while let Some(item) = rx.recv().await {
        send(&sink, item, store.as_deref(), &mut rng).await;
        pending.add(-1);
    }
}

/// Delivers one envelope (or gives it up), recording every attempt on its row.
async fn send(
    sink: &SentrySink,
    mut item: Item,
    store: Option<&dyn EnvelopeStore>,
    rng: &mut crate::rng::Rng,
) {
    let policy = RetryPolicy::default();
    let row = item.row;
    loop {
        let result = sink.post_envelope(item.body.clone()).await;
        if !matches!(&result, Err(e) if e.deferred) {
            item.attempts += 1;
        }
        let finish = match &result {
            Ok(()) => Finish::Delivered,
            Err(e) if e.permanent => {
                tracing::warn!(error = %e, "Sentry refused an event of the daemon's own");
                Finish::Rejected
            }
            Err(e) if !e.deferred && item.attempts >= ATTEMPTS => {
                tracing::warn!(error = %e, "an event of the daemon's own was given up");
                Finish::Expired
            }
            Err(_) => Finish::Retry,
        };
        if let (Some(store), Some(id)) = (store, row) {
            let error = result.as_ref().err().map(ToString::to_string);
            store.record(id, finish, item.attempts, error.as_deref());
        }
        let Err(e) = result else {
            return;
        };
        if finish != Finish::Retry {
            return;
        }
        let wait = policy
            .backoff(item.attempts.max(1), rng)
            .max(e.retry_after.unwrap_or_default().min(policy.max));
        tokio::time::sleep(wait).await;
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
