//! Baselines, compare and canary verdicts end to end, reports, the starter probes.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod baseline_cli;
mod baseline_html;
mod baseline_record_e2e;
mod canary_compare;
mod canary_e2e;
mod canary_probes;
#[path = "../common_verdict/mod.rs"]
mod common_verdict;
mod detect_canary;
mod starter_probes;
