//! Production traffic: completions that applications send to `POST /api/v1/ingest` (JSON
//! lines), measured with the probes' evaluator and counted per stream (target × route).
//!
//! The HTTP handler calls [`Traffic::ingest`] on a blocking thread (at most [`PARSERS`] at a
//! time; more answer `503`): it checks the rate, parses and validates each line, measures the
//! output and hands the batch to the traffic task over a bounded queue. A full queue refuses
//! the batch (`503` with `Retry-After`) instead of waiting, so ingestion never holds up the
//! prober; a batch once queued is always processed (the task drains the queue at shutdown). The
//! task ([`worker`]) runs on its own thread with its own store connection: it writes the rows,
//! updates the stream readings and prunes by the samples' retention rules.
//!
//! `POST /v1/traces` and `POST /v1/logs` (OTLP/HTTP) take GenAI spans and log records through
//! [`Traffic::ingest_otlp`] the same way.
//!
//! Submodules: [`line`] (parsing one line, pure), [`otlp`] (OTLP exports to records, pure),
//! [`routes`] (the JSON Schemas routes declare), [`stream`] (per-stream readings, pure),
//! [`worker`] (the traffic task).

mod baseline_file;
mod line;
mod mix;
pub mod otlp;
mod redact;
mod routes;
mod stream;
pub mod worker;

use crate::config::{Secret, Storage, TrafficSettings};
use crate::eval::{Evaluator, RefusalConfig};
use crate::sample::{Completion, FinishReason};
use crate::store::{Store, StoreError, TrafficRow};
use line::{LineError, Record};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use stream::{StreamKey, StreamStats, StreamStatus};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Request bodies parsed at once; further requests are refused with `503` while they run.
pub const PARSERS: usize = 2;
/// Per-line errors listed in a response (the count says how many there were).
const MAX_LISTED_ERRORS: usize = 50;
/// The route of completions sent without one.
pub const DEFAULT_ROUTE: &str = "default";

/// Why the traffic task could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("cannot open the store for traffic: {0}")]
    Store(#[from] StoreError),
    #[error("the refusal detector could not be built: {0}")]
    Refusal(String),
    #[error("cannot start the traffic thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Baseline(String),
}

/// What an ingest request gets back: an HTTP status, an optional `Retry-After` (seconds) and a
/// JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub retry_after_s: Option<u64>,
    pub body: serde_json::Value,
}

impl Reply {
    fn error(status: u16, retry_after_s: Option<u64>, message: impl Into<String>) -> Reply {
        Reply {
            status,
            retry_after_s,
            body: serde_json::json!({ "error": message.into(), "accepted": 0 }),
        }
    }
}

/// Told about every batch of measured completions, on the traffic task's thread (the daemon's
/// monitor of production traffic). Its status is shown under `traffic.watch`.
pub trait Watch: Send {
    fn observe(&mut self, rows: &[TrafficRow]);
    fn status(&self) -> serde_json::Value;
    /// The latest reading of each traffic alert of `target` (alert metric, observation),
    /// stepped with the target's next round.
    fn alerts(&self, target: &str) -> Vec<(String, crate::alert::Observation)>;
    /// The alert `metric` of `target` is no longer firing: stop reporting its clear readings.
    fn settled(&mut self, target: &str, metric: &str);
    /// The JSON Schema of `route` was declared, changed or removed (`schema`: the new one's
    /// digest): its baselines start again.
    fn route_changed(&mut self, _route: &str, _schema: Option<&str>) {}
}

/// A decoded completion or why it was refused, with its 1-based number in the request.
pub type Numbered = (usize, Result<Record, LineError>);

/// What became of the completions of a request that was not refused as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Queued: always measured and stored.
    pub accepted: u64,
    pub errors: Vec<LineError>,
}

impl Outcome {
    /// The answer of `POST /api/v1/ingest`: `200`, or `400` when every line was refused.
    pub fn reply(&self) -> Reply {
        let status = if self.accepted == 0 && !self.errors.is_empty() {
            400
        } else {
            200
        };
        Reply {
            status,
            retry_after_s: None,
            body: serde_json::json!({
                "accepted": self.accepted,
                "rejected": self.errors.len(),
                "errors": self.listed_errors(),
            }),
        }
    }

    /// The errors as `line N: /field: what`, at most [`MAX_LISTED_ERRORS`] and a count of the
    /// rest.
    pub fn listed_errors(&self) -> Vec<String> {
        let mut listed: Vec<String> = self
            .errors
            .iter()
            .take(MAX_LISTED_ERRORS)
            .map(|e| e.to_string())
            .collect();
        if self.errors.len() > MAX_LISTED_ERRORS {
            listed.push(format!(
                "… and {} more",
                self.errors.len() - MAX_LISTED_ERRORS
            ));
        }
        listed
    }
}

/// A configured target as lines may name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownTarget {
    pub name: String,
    pub model: String,
}

/// Counters shown in the status and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    invalid: AtomicU64,
    /// Requests refused as a whole, by reason.
    refused: Mutex<BTreeMap<&'static str, u64>>,
    pub(crate) processed: AtomicU64,
    pub(crate) stored: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) queued: AtomicUsize,
}

/// The `traffic` object of `/api/v1/status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrafficStatus {
    /// Lines accepted into the queue since the start.
    pub accepted: u64,
    /// Lines refused for what they held (each listed in its response).
    pub invalid: u64,
    /// Requests refused as a whole, nothing of them accepted: `unauthorized`, `too_large`,
    /// `rate_limited`, `busy` (queue full or parsers taken), `slow` (body not received within 30 s),
    /// `closed` (shutting down), and for OTLP `malformed` (not a valid export) and
    /// `unsupported` (content type or compression).
    pub refused: BTreeMap<String, u64>,
    /// Lines measured by the traffic task.
    pub processed: u64,
    pub stored: u64,
    pub store_errors: u64,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub store_text: bool,
    pub streams: Vec<StreamStatus>,
    /// Each target's route mix: baseline and current share per route, and which moved (a mix
    /// shift, never a quality alert).
    pub mix: Vec<mix::MixStatus>,
    /// The monitor's readings, when one watches the traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<serde_json::Value>,
}

/// A simple token bucket over completions.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes `n` tokens, or says how long until they are there.
    fn take(&mut self, n: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((n - self.tokens) / self.rate))
        }
    }
}

/// The ingest side of production traffic, shared by the HTTP handler and the traffic task.
pub struct Traffic {
    settings: TrafficSettings,
    evaluator: Evaluator,
    targets: RwLock<Vec<KnownTarget>>,
    queue: Mutex<Option<SyncSender<Vec<TrafficRow>>>>,
    parsers: Arc<Semaphore>,
    bucket: Mutex<Bucket>,
    /// Streams seen (bounded by `max_streams`).
    keys: Mutex<BTreeSet<StreamKey>>,
    pub(crate) streams: Mutex<BTreeMap<StreamKey, StreamStats>>,
    /// The route mix per target.
    pub(crate) mix: Mutex<BTreeMap<String, mix::Mix>>,
    pub(crate) counters: Counters,
    pub(crate) watch: Mutex<Option<Box<dyn Watch>>>,
    /// Applied to the texts that are stored.
    redactor: RwLock<redact::TextRedactor>,
    /// The checks of the routes that declare a JSON Schema (`[[traffic.route]]`).
    routes: RwLock<routes::RouteChecks>,
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traffic")
            .field("settings", &self.settings)
            .finish()
    }
}

/// Starts the traffic task over the store at `storage.path` and returns the ingest handle and
/// the task (join it after [`Traffic::close`]).
pub fn start(
    settings: &TrafficSettings,
    storage: &Storage,
    targets: Vec<KnownTarget>,
) -> Result<(Arc<Traffic>, worker::Worker), TrafficError> {
    let store = Store::open(&storage.path)?;
    let evaluator = Evaluator::new(&RefusalConfig::default())
        .map_err(|e| TrafficError::Refusal(e.to_string()))?;
    let checks = routes::by_route(&settings.routes);
    let (tx, rx) = std::sync::mpsc::sync_channel(settings.queue);
    let traffic = Arc::new(Traffic {
        settings: settings.clone(),
        evaluator,
        targets: RwLock::new(targets),
        queue: Mutex::new(Some(tx)),
        parsers: Arc::new(Semaphore::new(PARSERS)),
        bucket: Mutex::new(Bucket {
            rate: f64::from(settings.max_rate),
            tokens: f64::from(settings.max_rate),
            last: Instant::now(),
        }),
        keys: Mutex::new(BTreeSet::new()),
        streams: Mutex::new(BTreeMap::new()),
        mix: Mutex::new(BTreeMap::new()),
        counters: Counters::default(),
        watch: Mutex::new(None),
        redactor: RwLock::new(redact::TextRedactor::new([settings.token.expose()])),
        routes: RwLock::new(checks),
    });
    let w = worker::spawn(traffic.clone(), store, rx, storage.clone())?;
    Ok((traffic, w))
}

impl Traffic {
    pub fn settings(&self) -> &TrafficSettings {
        &self.settings
    }

    /// The bearer token of the ingest endpoint.
    pub fn token(&self) -> &Secret {
        &self.settings.token
    }

    /// Lets `watch` see every measured batch from now on.
    pub fn set_watch(&self, watch: Box<dyn Watch>) {
        if let Ok(mut w) = self.watch.lock() {
            *w = Some(watch);
        }
    }

    /// The watch's alert readings of `target` (see [`Watch::alerts`]).
    pub fn watch_alerts(&self, target: &str) -> Vec<(String, crate::alert::Observation)> {
        self.watch
            .lock()
            .ok()
            .and_then(|w| w.as_ref().map(|w| w.alerts(target)))
            .unwrap_or_default()
    }

    /// See [`Watch::settled`].
    pub fn watch_settled(&self, target: &str, metric: &str) {
        if let Ok(mut w) = self.watch.lock()
            && let Some(w) = w.as_mut()
        {
            w.settled(target, metric);
        }
    }

    /// The daemon's secrets (the targets' API keys and header values, the server token) to
    /// redact from stored texts, besides the ingest token and the credential shapes.
    pub fn set_secrets(&self, values: &[&str]) {
        let all = values.iter().copied().chain([self.settings.token.expose()]);
        if let Ok(mut r) = self.redactor.write() {
            *r = redact::TextRedactor::new(all);
        }
    }

    /// Replaces the targets lines may name (after a reload).
    pub fn set_targets(&self, targets: Vec<KnownTarget>) {
        if let Ok(mut t) = self.targets.write() {
            *t = targets;
        }
    }

    /// A parser slot, or `None` when [`PARSERS`] requests are being parsed (answer `busy`).
    pub fn try_parser(&self) -> Option<OwnedSemaphorePermit> {
        self.parsers.clone().try_acquire_owned().ok()
    }

    /// Counts a request refused as a whole for `reason`.
    pub fn refuse(&self, reason: &'static str) {
        if let Ok(mut r) = self.counters.refused.lock() {
            *r.entry(reason).or_default() += 1;
        }
    }

    /// Stops accepting: later requests get `503`, and the task ends once the queue is drained.
    pub fn close(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
    }

    /// Handles one request body received at `now_ms` (blocking: call it off the async
    /// workers). The body's size was checked by the caller.
    pub fn ingest(&self, body: &[u8], now_ms: i64) -> Reply {
        let records: Vec<Numbered> = body
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .enumerate()
            .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            .map(|(i, raw)| (i + 1, self.parse_raw(i + 1, raw)))
            .collect();
        match self.ingest_records("line", records, now_ms) {
            Ok(outcome) => outcome.reply(),
            Err(refused) => refused,
        }
    }

    /// Takes a batch of decoded completions (JSON lines or OTLP spans and log records, each
    /// already parsed or refused) through the same rate limit, resolution, measurement and
    /// queue: all valid ones are queued, or none and the [`Reply`] says why. Errors name
    /// each record by its number and `unit` (`line`, `span`, `log record`).
    pub fn ingest_records(
        &self,
        unit: &'static str,
        records: Vec<Numbered>,
        now_ms: i64,
    ) -> Result<Outcome, Reply> {
        let count = records.len() as u64;
        let max_lines = u64::from(self.settings.max_rate);
        if count > max_lines {
            self.refuse("too_large");
            return Err(Reply::error(
                413,
                None,
                format!(
                    "{count} {unit}s in one request; at most {max_lines} ([traffic] max_rate) are accepted: split the batch"
                ),
            ));
        }
        let take = self
            .bucket
            .lock()
            .map(|mut b| b.take(count as f64, Instant::now()))
            .unwrap_or(Ok(()));
        if let Err(wait) = take {
            self.refuse("rate_limited");
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Err(Reply::error(
                429,
                Some(secs),
                format!(
                    "more than {} completions/s ([traffic] max_rate): retry after {secs} s",
                    self.settings.max_rate
                ),
            ));
        }
        let (rows, errors) = self.measure_records(unit, records, now_ms);
        self.enqueue(rows, errors)
    }

    /// Handles one OTLP export (blocking, like [`Traffic::ingest`]): its GenAI spans or log
    /// records, and how many spans or log records it held in all. An export that cannot be
    /// decoded is refused with `400`.
    pub fn ingest_otlp(
        &self,
        signal: otlp::Signal,
        encoding: otlp::Encoding,
        body: &[u8],
        now_ms: i64,
    ) -> Result<(Outcome, usize), Reply> {
        let (records, total) = otlp::decode(signal, encoding, body).map_err(|e| {
            self.refuse("malformed");
            Reply::error(400, None, e.0)
        })?;
        let mut outcome = self.ingest_records(signal.unit(), records, now_ms)?;
        for e in &mut outcome.errors {
            // Resolution errors name the line fields; an OTLP sender knows the attributes.
            if let Some(attribute) = otlp::attribute_of(&e.pointer) {
                e.pointer = format!("/{attribute}");
            }
        }
        Ok((outcome, total))
    }

    /// Parses line `n` of a JSON-lines body.
    fn parse_raw(&self, n: usize, raw: &[u8]) -> Result<Record, LineError> {
        if raw.len() > self.settings.max_line_bytes {
            return Err(LineError::new(
                n,
                "",
                format!(
                    "longer than {} bytes ([traffic] max_line_bytes)",
                    self.settings.max_line_bytes
                ),
            ));
        }
        std::str::from_utf8(raw)
            .map_err(|_| LineError::new(n, "", "not valid UTF-8"))
            .and_then(|text| line::parse_line(n, text))
    }

    /// Resolves and measures every parsed record; the rows to queue and the errors.
    fn measure_records(
        &self,
        unit: &'static str,
        records: Vec<Numbered>,
        now_ms: i64,
    ) -> (Vec<TrafficRow>, Vec<LineError>) {
        let targets = self.targets.read().map(|t| t.clone()).unwrap_or_default();
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for (n, parsed) in records {
            match parsed
                .and_then(|r| self.resolve(n, &targets, r))
                .map(|(key, r)| self.measure(key, r, now_ms))
            {
                Ok(row) => rows.push(row),
                Err(mut e) => {
                    e.unit = unit;
                    errors.push(e);
                }
            }
        }
        (rows, errors)
    }

    /// The stream of a record: its target (by name, or by the model a single target serves)
    /// and route, within `max_streams`.
    fn resolve(
        &self,
        n: usize,
        targets: &[KnownTarget],
        r: Record,
    ) -> Result<(StreamKey, Record), LineError> {
        let names = || {
            targets
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let target = match (&r.target, &r.model) {
            (Some(t), _) => match targets.iter().find(|k| &k.name == t) {
                Some(k) => k.name.clone(),
                None => {
                    return Err(LineError::new(
                        n,
                        "target",
                        format!("unknown target `{t}`: expected one of {}", names()),
                    ));
                }
            },
            (None, Some(m)) => {
                let serving: Vec<&KnownTarget> = targets.iter().filter(|k| &k.model == m).collect();
                match serving.as_slice() {
                    [one] => one.name.clone(),
                    [] => {
                        return Err(LineError::new(
                            n,
                            "model",
                            format!(
                                "no configured target serves model `{m}`: send `target` (one of {})",
                                names()
                            ),
                        ));
                    }
                    many => {
                        let list: Vec<&str> = many.iter().map(|k| k.name.as_str()).collect();
                        return Err(LineError::new(
                            n,
                            "model",
                            format!(
                                "model `{m}` is served by several targets ({}): send `target`",
                                list.join(", ")
                            ),
                        ));
                    }
                }
            }
            (None, None) => {
                return Err(LineError::new(
                    n,
                    "target",
                    "missing: expected `target` or `model`",
                ));
            }
        };
        let route = r.route.clone().unwrap_or_else(|| DEFAULT_ROUTE.to_string());
        let key = (target, route);
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if !keys.contains(&key) {
            if keys.len() >= self.settings.max_streams {
                return Err(LineError::new(
                    n,
                    "route",
                    format!(
                        "a new stream beyond [traffic] max_streams = {}: send fewer distinct routes (prompt classes, not URLs with ids)",
                        self.settings.max_streams
                    ),
                ));
            }
            keys.insert(key.clone());
        }
        Ok((key, r))
    }

    /// Measures a record with the probes' evaluator when its text was sent (with the route's
    /// JSON Schema when it declares one); with lengths only, refusal, emptiness and the
    /// structured outcome stay unknown.
    fn measure(&self, (target, route): StreamKey, r: Record, now_ms: i64) -> TrafficRow {
        let checks = self.route_checks(&route);
        let finish = r.finish_reason.as_deref().map(FinishReason::parse);
        let truncated = finish == Some(FinishReason::Length);
        let mut row = TrafficRow {
            target,
            route,
            received_at_ms: now_ms,
            timestamp_ms: r.timestamp_ms,
            chars: r.output_chars,
            output_tokens: r.output_tokens,
            finish_reason: finish.as_ref().map(|f| f.as_str().to_string()),
            truncated,
            latency_ms: r.latency_ms,
            declares_schema: checks.is_some(),
            ..TrafficRow::default()
        };
        if let Some(text) = r.output {
            let completion = Completion {
                text,
                finish_reason: finish,
                output_tokens: r.output_tokens,
                latency_ms: r.latency_ms.unwrap_or(f64::NAN),
                attempts: 1,
                ..Completion::default()
            };
            let m = self.evaluator.evaluate(&completion, checks.as_deref());
            row.chars = Some(m.chars);
            row.empty = Some(m.empty);
            row.refusal = Some(m.refusal);
            row.partial_refusal = Some(m.partial_refusal);
            row.refusal_rule = m.refusal_rule;
            row.structured = m.structured;
            if self.settings.store_text {
                row.text = Some(match self.redactor.read() {
                    Ok(r) => r.apply(&completion.text),
                    // Never store an unredacted text.
                    Err(_) => redact::REDACTED_TEXT.to_string(),
                });
            }
        }
        row
    }

    /// Queues the rows (all or none) and says what happened to each record.
    fn enqueue(&self, rows: Vec<TrafficRow>, errors: Vec<LineError>) -> Result<Outcome, Reply> {
        let accepted = rows.len() as u64;
        if !rows.is_empty() {
            let queue = self.queue.lock().ok().and_then(|q| q.clone());
            let Some(queue) = queue else {
                self.refuse("closed");
                return Err(Reply::error(
                    503,
                    Some(5),
                    "the daemon is shutting down: retry later",
                ));
            };
            self.counters.queued.fetch_add(1, Ordering::Relaxed);
            match queue.try_send(rows) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                    self.refuse("busy");
                    return Err(Reply::error(
                        503,
                        Some(1),
                        format!(
                            "the traffic queue is full ({} batches waiting): retry after 1 s; nothing of this request was accepted",
                            self.settings.queue
                        ),
                    ));
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                    self.refuse("closed");
                    return Err(Reply::error(
                        503,
                        Some(5),
                        "the traffic task has stopped: retry later",
                    ));
                }
            }
        }
        self.counters
            .accepted
            .fetch_add(accepted, Ordering::Relaxed);
        self.counters
            .invalid
            .fetch_add(errors.len() as u64, Ordering::Relaxed);
        Ok(Outcome { accepted, errors })
    }

    /// The `traffic` object of the status document.
    pub fn status(&self) -> TrafficStatus {
        let c = &self.counters;
        let streams = self
            .streams
            .lock()
            .map(|s| s.iter().map(|(k, v)| stream::stream_status(k, v)).collect())
            .unwrap_or_default();
        TrafficStatus {
            accepted: c.accepted.load(Ordering::Relaxed),
            invalid: c.invalid.load(Ordering::Relaxed),
            refused: c
                .refused
                .lock()
                .map(|r| r.iter().map(|(k, v)| (k.to_string(), *v)).collect())
                .unwrap_or_default(),
            processed: c.processed.load(Ordering::Relaxed),
            stored: c.stored.load(Ordering::Relaxed),
            store_errors: c.store_errors.load(Ordering::Relaxed),
            queue_depth: c.queued.load(Ordering::Relaxed),
            queue_capacity: self.settings.queue,
            store_text: self.settings.store_text,
            streams,
            mix: self
                .mix
                .lock()
                .map(|m| m.iter().map(|(t, m)| m.status(t)).collect())
                .unwrap_or_default(),
            watch: self
                .watch
                .lock()
                .ok()
                .and_then(|w| w.as_ref().map(|w| w.status())),
        }
    }

    /// The traffic families of `/metrics`.
    pub fn render_metrics(&self, o: &mut String) {
        use std::fmt::Write;
        let st = self.status();
        stream::family(
            o,
            "modelwatch_traffic_ingest_lines_total",
            "counter",
            "Completions of ingest requests (lines, GenAI spans, log records) by outcome: accepted (queued) or invalid (listed in the response).",
        );
        let _ = writeln!(
            o,
            "modelwatch_traffic_ingest_lines_total{{outcome=\"accepted\"}} {}",
            st.accepted
        );
        let _ = writeln!(
            o,
            "modelwatch_traffic_ingest_lines_total{{outcome=\"invalid\"}} {}",
            st.invalid
        );
        stream::family(
            o,
            "modelwatch_traffic_ingest_refused_total",
            "counter",
            "Ingest requests (/api/v1/ingest, /v1/traces, /v1/logs) refused as a whole by reason (unauthorized, too_large, rate_limited, busy, slow, closed, malformed, unsupported).",
        );
        for (reason, n) in &st.refused {
            let _ = writeln!(
                o,
                "modelwatch_traffic_ingest_refused_total{{reason=\"{reason}\"}} {n}"
            );
        }
        stream::family(
            o,
            "modelwatch_traffic_queue_depth",
            "gauge",
            "Batches of accepted completions waiting for the traffic task.",
        );
        let _ = writeln!(o, "modelwatch_traffic_queue_depth {}", st.queue_depth);
        stream::family(
            o,
            "modelwatch_traffic_store_errors_total",
            "counter",
            "Batches of measured completions the store could not write (their readings are counted).",
        );
        let _ = writeln!(
            o,
            "modelwatch_traffic_store_errors_total {}",
            st.store_errors
        );
        if let Ok(s) = self.streams.lock() {
            stream::render_streams(o, &s);
        }
        stream::family(
            o,
            "modelwatch_traffic_share",
            "gauge",
            "Share (0-1) of a target's most recent completions that went to the route: its traffic mix, not a quality reading.",
        );
        for m in &st.mix {
            for r in &m.routes {
                let _ = writeln!(
                    o,
                    "modelwatch_traffic_share{{target=\"{}\",route=\"{}\"}} {}",
                    stream::esc(&m.target),
                    stream::esc(&r.route),
                    r.current
                );
            }
        }
        stream::family(
            o,
            "modelwatch_traffic_mix_shifted",
            "gauge",
            "1 while the route's share has moved away from the target's baseline mix (a mix shift, not model degradation).",
        );
        for m in &st.mix {
            for r in &m.routes {
                let _ = writeln!(
                    o,
                    "modelwatch_traffic_mix_shifted{{target=\"{}\",route=\"{}\"}} {}",
                    stream::esc(&m.target),
                    stream::esc(&r.route),
                    u8::from(r.shifted)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
