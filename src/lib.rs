//! modelwatch: catches silent quality regressions in served language models.
//!
//! # Layout
//!
//! Modules in layer order, bottom first; each imports only modules above it in this list
//! (checked by `tests/cli/architecture.rs`, described in `docs/architecture.md`):
//!
//! - `util` (private), [`time`], [`rng`]: hex and excerpts; the [`time::Clock`] trait and RFC 3339; the
//!   seeded PRNG every random choice draws from.
//! - [`diag`]: errors that point into a file (`file:line:column` and a caret), the TOML field
//!   reader and `${VAR}` expansion shared by configuration and suite files.
//! - [`sample`]: one observation: a completion, an infrastructure error, the measurements.
//! - [`stats`]: tests, intervals, quantiles, sequential tests (pure).
//! - [`eval`]: the check language and the evaluation of a response (pure).
//! - [`probe`]: suite files: probes, parameters, content hashes.
//! - [`provider`]: Ollama and OpenAI-compatible clients behind [`provider::ModelClient`];
//!   fingerprints.
//! - [`drift`]: fixed-sample verdicts (and the canary's sequential monitor) over samples.
//! - [`baseline`]: baseline files.
//! - [`config`]: the configuration file.
//! - [`runner`]: one round: plan, concurrency, samples; recordings; the paired canary.
//! - [`judge`]: the optional judge model asked about ambiguous refusal judgements (`explain`).
//! - [`alert`]: the alert state machine (pure), mutes, the outbox and the sinks.
//! - [`store`]: SQLite: rounds ([`store::Store::record_round`]), samples, fingerprints, alerts.
//! - [`report`]: verdict renderers and the per-round summary.
//! - [`telemetry`]: the round observer trait; OTLP export.
//! - [`sim`]: the simulated model server.
//! - [`traffic`]: production completions received by the daemon, measured per stream.
//! - [`daemon`]: the scheduler, split by job; [`http`]: its HTTP endpoint.
//! - [`demo`]: the one-command demo, judged by the daemon's monitor and alert lifecycle.
//!
//! # Data flow
//!
//! `config` + `probe` → `runner` → `provider` → model server; responses → `eval` →
//! [`sample::Sample`] → `store`; `baseline` + samples → `drift` → verdicts → `report`; in the
//! daemon, samples → `daemon::monitor` → `alert` transitions → sinks and `telemetry`.
//!
//! Modules nothing outside its folder uses are private; `docs/architecture.md` lists them.

pub mod alert;
pub mod baseline;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diag;
pub mod drift;
pub mod eval;
pub mod files;
pub mod http;
pub mod judge;
pub mod probe;
pub mod provider;
pub mod report;
pub mod rng;
pub mod runner;
pub mod sample;
pub mod sim;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod traffic;
mod util;
