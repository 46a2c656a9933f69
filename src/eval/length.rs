//! Length measurements: characters, words, lines and an output-token estimate.
//!
//! Word rule (Unicode-aware, documented in `docs/evaluation.md`): every CJK ideograph, hiragana
//! or katakana character is one word (those scripts do not separate words with spaces); any
//! other maximal run of non-whitespace characters is one word when it contains at least one
//! letter or digit, so a lone dash or bullet is not a word.

use super::swar::{all_ascii, byte_bits, chunk_at, in_range, lower_letters};

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

/// Byte classes for the ASCII fast path: bit 0 whitespace, bit 1 letter or digit.
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

/// Measures `text`. Words in one pass: eight ASCII bytes at a time where they are all ASCII,
/// otherwise a byte or character at a time; characters and lines by counting loops the
/// compiler vectorises.
pub fn measure(text: &str) -> Length {
    // 1 while reading a run of non-space, non-CJK characters that has a letter or digit:
    // the run is a word once it ends.
    let mut in_word: u32 = 0;
    let mut words: u32 = 0;
    let mut cjk_chars: u32 = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(x) = chunk_at(bytes, i)
            && all_ascii(x)
        {
            let space = byte_bits(in_range(x, 0x09, 0x0D) | in_range(x, b' ', b' '));
            let alnum = byte_bits(in_range(x, b'0', b'9') | in_range(lower_letters(x), b'a', b'z'));
            // A run of non-spaces with a letter or digit, or continuing a word, carries
            // into the space after it (a word ends there) or out of the chunk.
            let ends = (!space & 0xFF) + alnum + in_word;
            words += (ends & space).count_ones();
            in_word = ends >> 8;
            i += 8;
            continue;
        }
        let b = bytes[i];
        if b < 0x80 {
            let class = u32::from(ASCII_CLASS[usize::from(b)]);
            let space = class & 1;
            words += in_word & space;
            in_word = (in_word & (space ^ 1)) | (class >> 1);
            i += 1;
            continue;
        }
        let c = text[i..].chars().next().unwrap_or(' ');
        i += c.len_utf8();
        if is_cjk(c) {
            cjk_chars += 1;
            words += in_word + 1;
            in_word = 0;
        } else if is_cjk_punctuation(c) {
            // Neither a space nor part of a word: a word before it goes on.
        } else if c.is_whitespace() {
            words += in_word;
            in_word = 0;
        } else {
            in_word |= u32::from(c.is_alphanumeric());
        }
    }
    words += in_word;
    // Per 255 bytes, a byte-wide count cannot overflow.
    let newlines: usize = bytes
        .chunks(255)
        .map(|c| usize::from(c.iter().map(|&b| u8::from(b == b'\n')).sum::<u8>()))
        .sum();
    // As `str::lines` counts: a final line without a newline still counts.
    let lines = newlines + usize::from(!bytes.is_empty() && !text.ends_with('\n'));
    Length {
        // Wraps like a running `u32` count would.
        chars: text.chars().count() as u32,
        words,
        lines: u32::try_from(lines).unwrap_or(u32::MAX),
        cjk_chars,
    }
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

/// CJK and full-width punctuation (`、。「」【】，！？：；（）` and the like): neither letters,
/// digits nor whitespace (a test checks this against the Unicode tables). Most non-CJK
/// characters of CJK text are these, and they answer without `char`'s slower table lookups.
pub fn is_cjk_punctuation(c: char) -> bool {
    matches!(c as u32,
        0x3001..=0x3004
        | 0x3008..=0x3020
        | 0x3030
        | 0x3036..=0x3037
        | 0x303D..=0x303F
        | 0xFF01..=0xFF0F
        | 0xFF1A..=0xFF20
        | 0xFF3B..=0xFF40
        | 0xFF5B..=0xFF65
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_punctuation_is_neither_a_letter_a_digit_nor_a_space() {
        let all = (0x3000..=0x303F)
            .chain(0xFF00..=0xFFEF)
            .filter_map(char::from_u32);
        let punctuation: Vec<char> = all.filter(|&c| is_cjk_punctuation(c)).collect();
        assert!(punctuation.len() > 70 && punctuation.contains(&'，'));
        for c in punctuation {
            assert!(
                !c.is_alphanumeric() && !c.is_whitespace() && !is_cjk(c),
                "{c:?}"
            );
            assert!(!c.is_uppercase() && !c.is_lowercase(), "{c:?}");
        }
    }

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
