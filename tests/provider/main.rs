//! Model clients against scripted and simulated servers: Ollama, OpenAI-compatible, faults, parsing.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod judge;
mod parse_fuzz;
#[path = "../provider_common/mod.rs"]
mod provider_common;
mod provider_faults;
mod provider_ollama;
mod provider_openai;
mod provider_sim;
