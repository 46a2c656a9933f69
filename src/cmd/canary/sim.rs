//! `canary --sim`: a first canary with no server and no configuration. Two built-in simulators
//! (the current model healthy, the candidate healthy or any profile) on free ports, a
//! configuration naming them `sim-current` and `sim-candidate` over the starter suites, in a
//! scratch folder that lives as long as the run.

use crate::cmd::TempDir;
use anyhow::Context;
use modelwatch::config::{self, Loaded};
use modelwatch::{diag, sim};
use std::path::Path;

/// What `--sim` keeps alive while the canary runs.
pub struct SimGuard {
    _current: sim::SimHandle,
    _candidate: sim::SimHandle,
    _dir: TempDir,
}

/// Starts both simulators and loads a configuration naming them.
pub fn setup(candidate: Option<&Path>, seed: u64) -> anyhow::Result<(Loaded, SimGuard)> {
    let healthy = || sim::Profile::builtin("healthy").unwrap_or_default();
    let cand = match candidate {
        Some(path) => crate::cmd::sim::load(path)?,
        None => healthy(),
    };
    let current =
        sim::spawn_on_free_port(healthy(), seed).context("cannot start the built-in simulator")?;
    let candidate = sim::spawn_on_free_port(cand, seed.wrapping_add(1))
        .context("cannot start the built-in simulator")?;
    let dir = TempDir::new("canary-sim")?;
    let probes = dir.path().join("probes");
    modelwatch::demo::write_starter_probes(&probes)?;
    let mut text = format!(
        "# Written by `modelwatch canary --sim`.\nprobes_dir = {:?}\n\n[storage]\npath = {:?}\n",
        probes.display().to_string(),
        dir.path().join("canary-sim.db").display().to_string()
    );
    for (name, h) in [("sim-current", &current), ("sim-candidate", &candidate)] {
        text.push_str(&format!(
            "\n[[target]]\nname = \"{name}\"\nprovider = \"openai\"\nbase_url = \"http://{}\"\n\
             model = \"sim-7b\"\nsuites = [\"core\", \"json\", \"tasks\", \"format\", \
             \"multilingual\"]\nmax_concurrency = 8\n",
            h.addr()
        ));
    }
    let path = dir.path().join("modelwatch-canary-sim.toml");
    std::fs::write(&path, text)?;
    let loaded = config::load_with_suites(&path, &config::process_env).map_err(|d| {
        anyhow::anyhow!(
            "the built-in simulator config is invalid:\n{}",
            diag::render_all(&d)
        )
    })?;
    Ok((
        loaded,
        SimGuard {
            _current: current,
            _candidate: candidate,
            _dir: dir,
        },
    ))
}
