//! The built-in simulated model server: a real HTTP server speaking the Ollama and
//! OpenAI-compatible APIs, whose behaviour (lengths, refusals, JSON quality, correctness,
//! latency, faults and fingerprint) comes from a [`Profile`]. Used by tests, benchmarks and the
//! demo; swapping the profile at runtime emulates a model swap.
//!
//! Layout: [`profile`] (TOML profile), [`model`] (pure core: request → outcome), [`text`]
//! (response texts), `server` (router, state, faults, streaming), `ollama` and `openai` (wire
//! formats), `admin` (profile swap and stats).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = modelwatch::sim::spawn_on_free_port(modelwatch::sim::Profile::default(), 42)?;
//! println!("{}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod admin;
pub mod model;
mod ollama;
mod openai;
pub mod profile;
mod server;
pub mod text;

pub use profile::{Answer, Matcher, Profile, Rates, Rule, Secret};
pub use server::{SimHandle, SimStats, serve, spawn_on_free_port};

/// Errors of the simulator's profile handling.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The TOML does not parse or a value is out of range.
    #[error("invalid simulator profile at line {line}, column {column}: {message}")]
    Profile {
        line: usize,
        column: usize,
        message: String,
    },
    /// A profile built in code breaks a rule.
    #[error("invalid simulator profile: {message}")]
    InvalidProfile { message: String },
}
