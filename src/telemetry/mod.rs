//! OpenTelemetry export: a minimal protobuf writer ([`proto`]) and the OTLP/HTTP exporter of
//! metrics and traces ([`otlp`]), which runs off the scheduler; the quality readings both it and
//! `/metrics` show ([`quality`]).

pub mod observer;
pub mod otlp;
pub mod proto;
pub mod quality;
