//! Eight ASCII bytes at a time in one `u64` (SIMD within a register), for the scans that most
//! text passes through: word counting (`length`), sentence ends and quotation openers
//! (`refusal`). Each test works per byte with no carry or borrow between bytes, so it is exact.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `i`, little-endian, if eight are left.
#[inline(always)]
pub(crate) fn chunk_at(bytes: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// Whether all eight bytes of `x` are ASCII.
#[inline(always)]
pub(crate) fn all_ascii(x: u64) -> bool {
    x & HIGH == 0
}

/// `x` with bit 5 set in every byte: ASCII letters in lower case (other bytes moved too).
#[inline(always)]
pub(crate) fn lower_letters(x: u64) -> u64 {
    x | (ONES * 0x20)
}

/// The high bit of each byte of `x` (all ASCII) that lies in `lo..=hi`: adding `0x80 - lo`
/// sets it from `lo` up, adding `0x7F - hi` sets it above `hi`, and no byte carries into the
/// next.
#[inline(always)]
pub(crate) fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let from_lo = x + ONES * u64::from(0x80 - lo);
    let above_hi = x + ONES * u64::from(0x7F - hi);
    from_lo & !above_hi & HIGH
}

/// One bit per byte (byte `i` to bit `i`) from the high bits [`in_range`] leaves.
#[inline(always)]
pub(crate) fn byte_bits(m: u64) -> u32 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// Skips, eight bytes at a time, bytes from `from` on that are ASCII and none of `ascii`:
/// returns the first byte that may need a closer look (non-ASCII or one of `ascii`), or
/// where fewer than eight bytes are left.
#[inline]
pub(crate) fn skip_plain<const N: usize>(bytes: &[u8], mut from: usize, ascii: [u8; N]) -> usize {
    while let Some(x) = chunk_at(bytes, from) {
        let mut hits = x & HIGH;
        for a in ascii {
            let v = x ^ (ONES * u64::from(a));
            // The high bit of each byte of `v` that is zero, exactly (no borrow between bytes).
            hits |= !(((v & !HIGH) + !HIGH) | v) & HIGH;
        }
        if hits != 0 {
            return from + (hits.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_gather_match_a_byte_loop() {
        let text = b"Az 09\t\n~@[`{/:";
        for i in 0..text.len() - 8 {
            let x = chunk_at(text, i).unwrap();
            let digits = byte_bits(in_range(x, b'0', b'9'));
            let letters = byte_bits(in_range(lower_letters(x), b'a', b'z'));
            for (k, &b) in text[i..i + 8].iter().enumerate() {
                assert_eq!(digits >> k & 1 == 1, b.is_ascii_digit(), "{b}");
                assert_eq!(letters >> k & 1 == 1, b.is_ascii_alphabetic(), "{b}");
            }
        }
    }

    #[test]
    fn skip_plain_stops_at_the_first_listed_or_non_ascii_byte() {
        let s = "abcdefghijklmnop.qrstuvwxyz".as_bytes();
        assert_eq!(skip_plain(s, 0, [b'.']), 16);
        let s = "abcdefghijklé.mnopqrst".as_bytes();
        assert_eq!(skip_plain(s, 0, [b'.']), 12);
        // Fewer than eight bytes left: where the blocks stopped.
        assert_eq!(skip_plain(b"abc.", 0, [b'.']), 0);
    }
}
