//! Response evaluation: the refusal corpus, explain, robustness.
//!
//! One test binary per area: each module is one former test file; shared helpers are declared
//! once here.

mod eval_corpus;
mod eval_explain;
mod eval_partial_refusal;
mod eval_robustness;
mod export_explain;
mod refusal_classifier;
