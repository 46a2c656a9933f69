//! Renderers of a drift [`Report`](crate::drift::Report).
