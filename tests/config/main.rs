//! Configuration and suite files: fixtures with their exact errors, fuzzing, loading, sinks.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod config_fixtures;
mod config_fuzz;
mod config_load;
mod config_sinks;
