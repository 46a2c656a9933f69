//! Serving the router connection by connection, with limits of its own, so that nobody who can
//! reach the port can tie it up or starve the daemon of file descriptors:
//!
//! - **A connection cap inside a descriptor budget.** At most [`Limits::max_connections`]
//!   connections are served at once, and never more than a quarter of the soft `RLIMIT_NOFILE`
//!   ([`Limits::within_budget`]): the rest stays for model servers, sinks and the store. At the
//!   cap, a new connection takes the place of the oldest one that is not in the middle of a
//!   request, so a flood of idle or slow clients cannot lock out `/healthz` or a scrape.
//! - **Header-read timeout**, which is also the keep-alive idle limit: a connection that has not
//!   sent a complete request head within [`Limits::header_read_timeout`] is closed.
//! - **Bounded memory per connection**: request heads larger than [`Limits::max_header_bytes`]
//!   are refused (`431`), bodies are limited by the router, and a connection lives at most
//!   [`Limits::max_connection_age`].
//!
//! `axum::serve` exposes none of these, hence hyper's connection builder here.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

pub use crate::config::server::DEFAULT_MAX_CONNECTIONS;
/// The share of the soft descriptor limit the port may use: 1 / `BUDGET_SHARE`.
const BUDGET_SHARE: u64 = 4;
/// Fewest connections allowed, however low the descriptor limit.
const MIN_CONNECTIONS: usize = 8;

/// The limits of the HTTP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    /// Time to send a complete request head, from connecting or from the previous response.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers); hyper's minimum is 8 KiB.
    pub max_header_bytes: usize,
    /// A connection is closed after this long, however active.
    pub max_connection_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connection_age: Duration::from_secs(300),
        }
    }
}

impl Limits {
    /// The default limits with `configured` connections, cut to a quarter of the soft
    /// descriptor limit `soft_nofile` (when known) and to at least [`MIN_CONNECTIONS`].
    pub fn within_budget(configured: usize, soft_nofile: Option<u64>) -> Limits {
        let budget = soft_nofile
            .map(|n| usize::try_from(n / BUDGET_SHARE).unwrap_or(usize::MAX))
            .unwrap_or(usize::MAX);
        Limits {
            max_connections: configured.min(budget).max(MIN_CONNECTIONS),
            ..Limits::default()
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (`None` elsewhere or when
/// unlimited).
pub fn soft_nofile() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_soft_nofile(&text)
}

fn parse_soft_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The connections being served, oldest first, so the oldest idle one can make room.
#[derive(Default)]
struct Registry {
    next: Mutex<u64>,
    conns: Mutex<BTreeMap<u64, Slot>>,
}

struct Slot {
    evict: Arc<Notify>,
    /// A request is being handled.
    busy: Arc<AtomicBool>,
}

impl Registry {
    fn add(&self) -> (u64, Arc<Notify>, Arc<AtomicBool>) {
        let id = {
            let mut n = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n
        };
        let evict = Arc::new(Notify::new());
        let busy = Arc::new(AtomicBool::new(false));
        let slot = Slot {
            evict: evict.clone(),
            busy: busy.clone(),
        };
        self.lock().insert(id, slot);
        (id, evict, busy)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the oldest connection not handling a request (else the oldest); false if none.
    fn evict_oldest(&self) -> bool {
        let mut conns = self.lock();
        let id = conns
            .iter()
            .find(|(_, s)| !s.busy.load(Ordering::Relaxed))
            .or_else(|| conns.iter().next())
            .map(|(id, _)| *id);
        match id.and_then(|id| conns.remove(&id)) {
            Some(slot) => {
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets the
/// connections finish their requests (at most 5 s).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accept_errors = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE / ENFILE / ECONNABORTED: back off instead of spinning.
                accept_errors += 1;
                if accept_errors.is_power_of_two() {
                    tracing::warn!(error = %e, count = accept_errors, "HTTP port: cannot accept a connection (descriptors exhausted? raise LimitNOFILE)");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Full: the oldest idle connection makes room for this one.
                registry.evict_oldest();
                match tokio::time::timeout(Duration::from_secs(1), slots.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(p)) => p,
                    _ => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (id, evict, busy) = registry.add();
        let registry = registry.clone();
        let router = router.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection(stream, router, limits, evict, busy, stop).await;
            registry.remove(id);
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all)).await;
    Ok(())
}

/// Serves one connection until it ends, is evicted, grows too old or the server stops.
async fn connection(
    stream: tokio::net::TcpStream,
    router: Router,
    limits: Limits,
    evict: Arc<Notify>,
    busy: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let inner = TowerToHyperService::new(router);
    let flag = busy.clone();
    let service = hyper::service::service_fn(move |req| {
        flag.store(true, Ordering::Relaxed);
        let fut = hyper::service::Service::call(&inner, req);
        let flag = flag.clone();
        async move {
            let r = fut.await;
            flag.store(false, Ordering::Relaxed);
            r
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = evict.notified() => return,
        _ = tokio::time::sleep(limits.max_connection_age) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    // Too old or stopping: finish the request in flight, then close.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_budget_caps_the_connections() {
        assert_eq!(Limits::within_budget(256, Some(1024)).max_connections, 256);
        assert_eq!(Limits::within_budget(1000, Some(1024)).max_connections, 256);
        assert_eq!(
            Limits::within_budget(1000, Some(65536)).max_connections,
            1000
        );
        assert_eq!(Limits::within_budget(1000, Some(20)).max_connections, 8);
        assert_eq!(Limits::within_budget(300, None).max_connections, 300);
    }

    #[test]
    fn the_soft_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63499                63499                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_soft_nofile(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_soft_nofile(unlimited), None);
        assert_eq!(parse_soft_nofile(""), None);
    }

    #[test]
    fn eviction_takes_the_oldest_idle_connection() {
        let r = Registry::default();
        let (a, _, busy_a) = r.add();
        let (b, _, _) = r.add();
        let (_c, _, _) = r.add();
        busy_a.store(true, Ordering::Relaxed);
        assert!(r.evict_oldest());
        assert!(r.lock().contains_key(&a) && !r.lock().contains_key(&b));
        r.remove(a);
        assert!(r.evict_oldest());
        assert!(r.lock().is_empty());
        assert!(!r.evict_oldest());
    }
}
