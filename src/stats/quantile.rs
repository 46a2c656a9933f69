//! Sample quantiles, type 7 of Hyndman and Fan (1996), "Sample quantiles in statistical
//! packages": the default of R's `quantile` and numpy's `percentile`. For sorted `x[0..n]` and
//! probability `p`: `h = (n-1)p`, `Q = x[⌊h⌋] + (h-⌊h⌋)(x[⌊h⌋+1] - x[⌊h⌋])`.

/// Type-7 quantile of `sorted` (ascending, finite) at probability `p` in [0, 1]; `None` when
/// `sorted` is empty or `p` is outside [0, 1].
pub fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = (n - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn interpolates_between_order_statistics() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&x, 0.5), Some(2.5));
        assert!((quantile(&x, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile(&x, 1.0), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&x, -0.1), None);
    }
}
