//! The SQLite store end to end and its ingest rate.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod store_e2e;
mod store_ingest;
