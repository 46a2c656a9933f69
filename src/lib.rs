//! modelwatch: catches silent quality regressions in served language models.
//!
//! Data flow: `config` + `probe` → `runner` → `provider` → model server; responses → `eval` →
//! [`sample::Sample`] → `store`; baselines → `stats` → verdicts. `sim` is a simulated model server
//! for tests and demos.

pub mod alert;
pub mod baseline;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diag;
pub mod drift;
pub mod eval;
pub mod http;
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
pub mod util;
