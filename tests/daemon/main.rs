//! The daemon: the scheduler in process, the real binary under faults, crashes, disk and storage failures, HTTP security, load.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod behaviour_watch;
mod daemon_checks;
mod daemon_cli;
mod daemon_crash;
mod daemon_crash_monitor;
mod daemon_disk;
mod daemon_e2e;
mod daemon_heartbeat;
mod daemon_http_security;
mod daemon_journal;
mod daemon_license;
mod daemon_load;
#[path = "../daemon_proc/mod.rs"]
mod daemon_proc;
mod daemon_process;
mod daemon_rounds;
mod daemon_scheduler;
mod daemon_storage;
mod daemon_store_heal;
mod daemon_traffic;
mod daemon_traffic_baseline;
mod daemon_traffic_mix;
mod daemon_traffic_otlp;
mod daemon_traffic_privacy;
mod daemon_traffic_schema;
mod harden_http;
mod harden_pin;
#[path = "../sinks_common/mod.rs"]
mod sinks_common;
mod status_page;
