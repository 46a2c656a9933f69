//! Compiling a suite's checks: the one place the `expect` tables of probes become
//! [`CompiledChecks`] (regexes, JSON Schemas), when a suite is loaded.

use super::{Probe, Suite};
use crate::eval::{CheckError, CompiledChecks};
use std::collections::HashMap;
use std::path::Path;

/// A check of one probe in a suite that cannot be compiled, prefixed with the probe id and
/// where the probe is defined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: probe '{probe}': {error}")]
pub struct SuiteCheckError {
    pub probe: String,
    pub location: crate::diag::Location,
    /// Part of the message, not a `source`, so error chains do not print it twice.
    pub error: Box<CheckError>,
}

/// Compiles the checks of every probe in `suite`, keyed by probe id; schema paths resolve
/// against the suite file's directory.
pub fn compile_suite(suite: &Suite) -> Result<HashMap<String, CompiledChecks>, SuiteCheckError> {
    let dir = suite.path.parent().unwrap_or(Path::new("."));
    suite
        .probes
        .iter()
        .map(|p| {
            compile_probe(p, dir)
                .map(|c| (p.id.clone(), c))
                .map_err(|error| SuiteCheckError {
                    probe: p.id.clone(),
                    location: p.location.clone(),
                    error: Box::new(error),
                })
        })
        .collect()
}

/// The one compilation of a probe's checks; schema paths resolve against `suite_dir`.
pub(crate) fn compile_probe(probe: &Probe, suite_dir: &Path) -> Result<CompiledChecks, CheckError> {
    CompiledChecks::compile(&probe.expect, suite_dir)
}
