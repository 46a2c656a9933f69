//! Alerts: the lifecycle of one (target, metric) and where notifications go.
//!
//! [`machine`] is the pure state machine: a transition takes the current state, one
//! observation and the time, and returns the next state and the notifications it produced. No
//! clock and no I/O inside, so every path is tested without waiting. [`mute`] decides whether a
//! notification is muted (silences, maintenance windows): a muted notification is still
//! recorded, only not delivered. [`sink`] delivers notifications (a log sink and an in-memory
//! fake; more sinks plug in behind the same trait); [`outbox`] delivers them durably, one
//! retrying worker per sink. The state is persisted by the store
//! (`alert_state`, `silences`), so a restart neither fires twice nor forgets a resolution.

mod hmac;
mod machine;
mod mute;
pub mod outbox;
pub mod ratelimit;
pub mod sentry;
mod sentry_envelope;
pub mod sentry_sdk;
pub mod sink;
pub mod webhook;

pub use machine::{
    AlertKey, AlertState, Evidence, Notification, NotificationKind, Observation, Policy, Severity,
    Status, transition,
};
pub use mute::{MaintenanceWindow, Silence, is_muted};
pub use outbox::{RetryPolicy, idempotency_key};
pub use sink::{AlertSink, LogSink, MemorySink, SinkError, SinkFuture};
