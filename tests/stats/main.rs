//! Statistics: properties and scipy reference values.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod stats_properties;
mod stats_reference;
