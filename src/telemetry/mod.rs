//! OpenTelemetry export: a minimal protobuf writer ([`proto`]) and the OTLP/HTTP exporter of
//! metrics and traces ([`otlp`]), which runs off the scheduler.

pub mod otlp;
pub mod proto;
