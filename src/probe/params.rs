//! Generation parameters read from a suite's `[defaults]`, a probe or a target table.

use super::GenParams;
use crate::diag::fields::{Fields, Reader};
use toml::Spanned;

/// The keys [`read_gen_params`] reads.
pub(crate) const GEN_PARAM_KEYS: [&str; 5] = ["temperature", "top_p", "max_tokens", "seed", "stop"];

/// Generation parameters (`temperature`, `top_p`, `max_tokens`, `seed`, `stop`) from a table.
pub(crate) fn read_gen_params(r: &mut Reader, f: &Fields) -> GenParams {
    let stop = r.strings(f, "stop").map(|v| {
        for s in &v {
            if s.get_ref().is_empty() {
                r.error(
                    s.span(),
                    format!("`stop` in {} must not contain empty strings", f.what),
                );
            }
        }
        v.into_iter().map(Spanned::into_inner).collect()
    });
    let top_p = r.number(f, "top_p", 0.0, 1.0);
    if let Some(p) = &top_p
        && *p.get_ref() == 0.0
    {
        r.error(
            p.span(),
            format!("`top_p` in {} must be greater than 0 and at most 1", f.what),
        );
    }
    GenParams {
        temperature: r
            .number(f, "temperature", 0.0, 2.0)
            .map(Spanned::into_inner),
        top_p: top_p.map(Spanned::into_inner),
        max_tokens: r.u32(f, "max_tokens", 1).map(Spanned::into_inner),
        seed: r
            .uint(f, "seed", 0, i64::MAX as u64)
            .map(Spanned::into_inner),
        stop,
    }
}
