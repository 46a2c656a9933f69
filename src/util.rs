//! Small helpers shared across layers: hex encoding and SHA-256 digests, one-line text
//! excerpts and cutting text at a character boundary.

/// Longest stored text excerpt, in characters.
pub const EXCERPT_CHARS: usize = 240;

/// The largest character boundary of `s` at or below byte `i` (`s.len()` when beyond it).
#[inline]
pub(crate) fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `x` for printing at two decimals: a value that rounds to zero is zero, so an estimate a hair
/// below it (an unbiased MMD², say) prints `0.00`, never `-0.00`.
pub fn zero_at_two_decimals(x: f64) -> f64 {
    if x.abs() < 0.005 { 0.0 } else { x }
}

/// Lower-case hexadecimal SHA-256 of `bytes`: the form every digest takes in stored rows,
/// fingerprints and cache keys.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

/// At most [`EXCERPT_CHARS`] characters of `text` on one line (whitespace runs collapsed),
/// with `…` when cut.
pub fn excerpt(text: &str) -> String {
    excerpt_chars(text, EXCERPT_CHARS)
}

/// [`excerpt`] with another limit: at most `max` characters, `…` included.
pub fn excerpt_chars(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        let sep = usize::from(!out.is_empty());
        let len = word.chars().count();
        if count + sep + len > max {
            let room = max.saturating_sub(count + sep + 1);
            if sep == 1 && room > 0 {
                out.push(' ');
            }
            out.extend(word.chars().take(room));
            out.push('…');
            return out;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
        count += sep + len;
    }
    out
}
