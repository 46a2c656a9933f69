//! Alert and telemetry sinks against real receivers, and secrets in every output.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

#[path = "../common_verdict/mod.rs"]
mod common_verdict;
#[path = "../daemon_proc/mod.rs"]
mod daemon_proc;
mod harden_redirects;
mod harden_secrets;
mod secrets_exposure;
#[path = "../sinks_common/mod.rs"]
mod sinks_common;
mod sinks_otlp;
mod sinks_otlp_gzip;
mod sinks_otlp_logs;
mod sinks_otlp_trace;
mod sinks_polarity;
mod sinks_prometheus;
mod sinks_sentry;
mod sinks_sentry_sdk;
mod sinks_tls;
mod sinks_webhook;
