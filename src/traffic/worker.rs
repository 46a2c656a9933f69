//! The traffic task: a thread of its own with its own store connection, so that neither the
//! measurements nor the SQLite writes of production traffic run on the async workers that
//! schedule the prober's rounds. It takes the queued batches (several at once when they pile
//! up, written in one transaction), updates the stream readings, and prunes the traffic tables
//! by `[storage]`'s retention every hour. When the ingest side closes, it drains what was
//! queued before it stops: nothing accepted is dropped.

use super::Traffic;
use crate::config::Storage;
use crate::store::{Store, TrafficRow};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the traffic tables are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Most rows written in one transaction.
const MAX_ROWS_PER_WRITE: usize = 20_000;

/// The running traffic task.
pub struct Worker {
    handle: std::thread::JoinHandle<()>,
}

impl Worker {
    /// Waits for the task to end (after [`Traffic::close`]: once the queue is drained).
    pub fn join(self) {
        if self.handle.join().is_err() {
            tracing::error!("the traffic task panicked");
        }
    }
}

pub(super) fn spawn(
    traffic: Arc<Traffic>,
    store: Store,
    rx: Receiver<Vec<TrafficRow>>,
    storage: Storage,
) -> Result<Worker, super::TrafficError> {
    let handle = std::thread::Builder::new()
        .name("modelwatch-traffic".into())
        .spawn(move || run(&traffic, store, &rx, &storage))
        .map_err(super::TrafficError::Thread)?;
    Ok(Worker { handle })
}

fn run(traffic: &Traffic, mut store: Store, rx: &Receiver<Vec<TrafficRow>>, storage: &Storage) {
    let mut last_prune: Option<Instant> = None;
    loop {
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            prune(&mut store, storage);
            last_prune = Some(Instant::now());
        }
        let first = match rx.recv_timeout(PRUNE_EVERY) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut batches = 1;
        let mut rows = first;
        while rows.len() < MAX_ROWS_PER_WRITE {
            match rx.try_recv() {
                Ok(more) => {
                    batches += 1;
                    rows.extend(more);
                }
                Err(_) => break,
            }
        }
        process(traffic, &mut store, &rows);
        traffic
            .counters
            .queued
            .fetch_sub(batches, Ordering::Relaxed);
    }
    tracing::info!(
        processed = traffic.counters.processed.load(Ordering::Relaxed),
        "traffic task stopped: queue drained"
    );
}

/// Counts the rows in their streams and stores them.
fn process(traffic: &Traffic, store: &mut Store, rows: &[TrafficRow]) {
    if let Ok(mut streams) = traffic.streams.lock() {
        for r in rows {
            streams
                .entry((r.target.clone(), r.route.clone()))
                .or_default()
                .observe(r);
        }
    }
    if let Ok(mut mixes) = traffic.mix.lock() {
        let mut touched = std::collections::BTreeSet::new();
        for r in rows {
            mixes.entry(r.target.clone()).or_default().observe(&r.route);
            touched.insert(r.target.as_str());
        }
        for target in touched {
            if let Some(m) = mixes.get_mut(target) {
                for change in m.evaluate() {
                    tracing::info!(target, route = %change.route, "{}", super::mix::describe(target, &change));
                }
            }
        }
    }
    if let Ok(mut w) = traffic.watch.lock()
        && let Some(w) = w.as_mut()
    {
        w.observe(rows);
    }
    let c = &traffic.counters;
    c.processed.fetch_add(rows.len() as u64, Ordering::Relaxed);
    match store.insert_traffic(rows) {
        Ok(()) => {
            c.stored.fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
        Err(e) => {
            let n = c.store_errors.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(error = %e, rows = rows.len(), failures = n, "traffic: cannot store measured completions (their readings are counted)");
            }
        }
    }
}

fn prune(store: &mut Store, storage: &Storage) {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match store.prune_traffic(
        crate::time::now_ms(),
        ms(storage.raw_text_retention),
        ms(storage.sample_retention),
    ) {
        Ok(p) if p.completions > 0 || p.texts > 0 => {
            tracing::info!(
                completions = p.completions,
                texts = p.texts,
                "traffic: pruned by retention"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "traffic: pruning failed"),
    }
}
