//! A real llama.cpp server with small real models: install, fingerprints, verdicts, faults.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod llama_behaviour;
mod llama_canary;
mod llama_config;
mod llama_fault;
mod llama_fingerprint;
mod llama_gguf_license;
mod llama_install;
mod llama_license_swap;
#[path = "../llama_support/mod.rs"]
mod llama_support;
mod llama_verdicts;
