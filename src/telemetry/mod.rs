//! OpenTelemetry export: a minimal protobuf writer ([`proto`]) and the OTLP/HTTP exporter of
//! metrics and traces ([`otlp`]), which runs off the scheduler; the quality readings both it and
//! `/metrics` show ([`quality`]); this process's own readings ([`process`]).

pub mod observer;
pub mod otlp;
pub mod process;
pub mod proto;
pub mod quality;
