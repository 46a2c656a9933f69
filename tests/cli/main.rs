//! The command line as a user drives it: version and help, init, the simulator command, the documented commands, the demo, bad input, ops files, the source tree's shape.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod architecture;
mod bad_input;
mod canary_docs;
mod cli_meta;
#[path = "../common_verdict/mod.rs"]
mod common_verdict;
mod demo_e2e;
mod docs_commands;
mod doctor_cli;
mod harden_files;
mod init_cli;
mod ops_files;
mod ops_rules;
mod run_dead_server;
mod run_output;
mod sim_cli;
