//! OpenTelemetry export through the SDK: the OTLP/HTTP exporter of metrics and traces
//! ([`otlp`]), which runs off the scheduler; the daemon's own `tracing` spans and log records
//! ([`bridge`]); the quality readings both the export and `/metrics` show ([`quality`]); this
//! process's own readings ([`process`]).

pub mod bridge;
pub mod observer;
pub mod otlp;
pub mod process;
pub mod quality;
