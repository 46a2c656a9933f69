//! Length measurements: characters, words, lines and an output-token estimate.
//!
//! Word rule (Unicode-aware, documented in `docs/evaluation.md`): every CJK ideograph, hiragana
//! or katakana character is one word (those scripts do not separate words with spaces); any
//! other maximal run of non-whitespace characters is one word when it contains at least one
//! letter or digit, so a lone dash or bullet is not a word.

/// Counts taken from one response text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Length {
    /// Unicode scalar values.
    pub chars: u32,
    pub words: u32,
    /// Lines as `str::lines` counts them: a trailing newline does not start a new line.
    pub lines: u32,
    /// Characters of CJK scripts (see [`is_cjk`]); they weigh more in the token estimate.
    pub cjk_chars: u32,
}

/// How the token estimate is made when the server reports no usage, for explanations.
pub const TOKEN_ESTIMATE_RULE: &str = "ceil(non-CJK chars / 4) + CJK chars";

/// Byte classes for the ASCII fast path: 0 other, 1 whitespace, 2 letter or digit.
const ASCII_CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_whitespace() || c == 0x0b {
            1
        } else if c.is_ascii_alphanumeric() {
            2
        } else {
            0
        };
        b += 1;
    }
    t
};

/// Measures `text` in one pass; ASCII bytes take a table lookup, other characters are decoded.
pub fn measure(text: &str) -> Length {
    let mut len = Length::default();
    // Inside a run of non-space, non-CJK characters; whether that run had a letter or digit.
    let mut in_run = false;
    let mut run_has_alnum = false;
    let mut words: u32 = 0;
    let mut chars: u32 = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        chars += 1;
        if b < 0x80 {
            match ASCII_CLASS[usize::from(b)] {
                1 => {
                    words += u32::from(in_run & run_has_alnum);
                    in_run = false;
                    run_has_alnum = false;
                }
                class => {
                    in_run = true;
                    run_has_alnum |= class == 2;
                }
            }
            i += 1;
            continue;
        }
        let c = text[i..].chars().next().unwrap_or(' ');
        i += c.len_utf8();
        if is_cjk(c) {
            len.cjk_chars += 1;
            words += u32::from(in_run & run_has_alnum) + 1;
            in_run = false;
            run_has_alnum = false;
        } else if c.is_whitespace() {
            words += u32::from(in_run & run_has_alnum);
            in_run = false;
            run_has_alnum = false;
        } else {
            in_run = true;
            run_has_alnum |= c.is_alphanumeric();
        }
    }
    words += u32::from(in_run & run_has_alnum);
    len.chars = chars;
    len.words = words;
    // As `str::lines` counts: a final line without a newline still counts.
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
    let lines = newlines + usize::from(!bytes.is_empty() && !text.ends_with('\n'));
    len.lines = u32::try_from(lines).unwrap_or(u32::MAX);
    len
}

/// Estimated output tokens when the server gave no usage: one token per four characters of
/// alphabetic scripts (the usual rule of thumb for BPE vocabularies on English text), rounded
/// up, plus one token per CJK character (BPE vocabularies spend about one token or more each).
pub fn estimate_tokens(len: &Length) -> u32 {
    let other = len.chars - len.cjk_chars;
    other.div_ceil(4) + len.cjk_chars
}

/// CJK ideographs (unified, extension A–F, compatibility), hiragana, katakana (including the
/// phonetic extensions and half-width forms).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x309F // hiragana
        | 0x30A0..=0x30FF // katakana
        | 0x31F0..=0x31FF // katakana phonetic extensions
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF66..=0xFF9D // half-width katakana
        | 0x20000..=0x2FA1F // extensions B–F and compatibility supplement
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_across_scripts() {
        assert_eq!(measure("Hello, world!").words, 2);
        assert_eq!(measure("  spaced   out\twords\n").words, 3);
        assert_eq!(measure("Привет, как дела?").words, 3);
        // A lone dash is not a word; "e.g." is.
        assert_eq!(measure("one - two e.g. three").words, 4);
        // Each ideograph or kana is one word; the full stop is not.
        assert_eq!(measure("日本の首都は東京です。").words, 10);
        // Mixed: "Python" is one word, each ideograph one more.
        assert_eq!(measure("Python进程").words, 3);
        assert_eq!(measure("").words, 0);
    }

    #[test]
    fn counts_chars_and_lines() {
        let l = measure("ab\ncdé\n");
        assert_eq!(l.chars, 7);
        assert_eq!(l.lines, 2);
        assert_eq!(measure("").lines, 0);
        assert_eq!(measure("one line").lines, 1);
        assert_eq!(measure("a\n\nb").lines, 3);
    }

    #[test]
    fn agrees_with_str_lines_and_chars() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\r\nb",
            "\n\nx\n",
            "é\u{2028}ü",
            "x\ty\u{3000}z",
        ] {
            let l = measure(text);
            assert_eq!(l.lines as usize, text.lines().count(), "{text:?}");
            assert_eq!(l.chars as usize, text.chars().count(), "{text:?}");
        }
        // Unicode whitespace (ideographic space) separates words too.
        assert_eq!(measure("x\ty\u{3000}z").words, 3);
    }

    #[test]
    fn estimates_tokens_by_script() {
        // 9 chars → ceil(9/4) = 3.
        assert_eq!(estimate_tokens(&measure("abcdefghi")), 3);
        // 4 CJK chars → 4 tokens.
        assert_eq!(estimate_tokens(&measure("東京です")), 4);
        // 5 Latin + 2 CJK → 2 + 2.
        assert_eq!(estimate_tokens(&measure("hello東京")), 4);
        assert_eq!(estimate_tokens(&measure("")), 0);
    }
}
