//! The simulated model server over HTTP and its profiles.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod sim_http;
mod sim_profiles;
