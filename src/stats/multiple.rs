//! Multiple-testing control across metrics and probes: Benjamini–Hochberg (1995) and
//! Benjamini–Yekutieli (2001) false discovery rate adjustments, Holm (1979) family-wise
//! adjustment, and e-BH (Wang & Ramdas 2022) for e-values, valid under arbitrary dependence.
//!
//! Adjusted p-values are returned in the input order; reject hypothesis i at level q when
//! `adjusted[i] <= q`. Non-finite or out-of-range inputs are treated as 1 (never rejected).

fn sanitize(p: f64) -> f64 {
    if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// Step-up adjustment p̃₍ᵢ₎ = min_{j >= i} min(1, c · m p₍ⱼ₎ / j).
fn step_up(p: &[f64], c: f64) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| sanitize(p[a]).total_cmp(&sanitize(p[b])));
    let mut out = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        let v = (c * m as f64 * sanitize(p[i]) / (rank + 1) as f64).min(1.0);
        running = running.min(v);
        out[i] = running;
    }
    out
}

/// Benjamini–Hochberg adjusted p-values (FDR under independence or PRDS).
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    step_up(p, 1.0)
}

/// Benjamini–Yekutieli adjusted p-values (FDR under arbitrary dependence): BH × Σ 1/i.
pub fn benjamini_yekutieli(p: &[f64]) -> Vec<f64> {
    let h: f64 = (1..=p.len()).map(|i| 1.0 / i as f64).sum();
    step_up(p, h)
}

/// Holm step-down adjusted p-values (family-wise error rate, any dependence):
/// p̃₍ᵢ₎ = max_{j <= i} min(1, (m − j + 1) p₍ⱼ₎).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| sanitize(p[a]).total_cmp(&sanitize(p[b])));
    let mut out = vec![1.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in idx.iter().enumerate() {
        let v = ((m - rank) as f64 * sanitize(p[i])).min(1.0);
        running = running.max(v);
        out[i] = running;
    }
    out
}

/// e-BH: with e-values e₁..e_K, reject the k* largest, k* = max{k : e₍ₖ₎ >= K / (α k)}
/// (e₍ₖ₎ the k-th largest). Controls FDR at α under any dependence. Negative or NaN e-values
/// count as 0.
pub fn e_bh(e: &[f64], alpha: f64) -> Vec<bool> {
    let k_total = e.len();
    let clean = |v: f64| if v.is_nan() || v < 0.0 { 0.0 } else { v };
    let mut idx: Vec<usize> = (0..k_total).collect();
    idx.sort_by(|&a, &b| clean(e[b]).total_cmp(&clean(e[a])));
    let mut kstar = 0;
    if alpha > 0.0 && alpha.is_finite() {
        for (rank, &i) in idx.iter().enumerate() {
            let k = rank + 1;
            if clean(e[i]) >= k_total as f64 / (alpha * k as f64) {
                kstar = k;
            }
        }
    }
    let mut out = vec![false; k_total];
    for &i in &idx[..kstar] {
        out[i] = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bh_is_monotone_in_input_order_and_bounded() {
        let p = [0.04, 0.01, 0.03, 0.5];
        let a = benjamini_hochberg(&p);
        assert_eq!(a, vec![0.04 * 4.0 / 3.0, 0.04, 0.04 * 4.0 / 3.0, 0.5]);
        assert!(benjamini_yekutieli(&p).iter().zip(&a).all(|(y, b)| y >= b));
    }

    #[test]
    fn nan_is_never_rejected() {
        let a = holm(&[f64::NAN, 0.001]);
        assert_eq!(a[0], 1.0);
        assert!((a[1] - 0.002).abs() < 1e-15);
    }

    #[test]
    fn e_bh_rejects_the_largest_block() {
        // K = 4, α = 0.1: thresholds 40, 20, 13.3, 10 for k = 1..4.
        let r = e_bh(&[50.0, 25.0, 1.0, 0.5], 0.1);
        assert_eq!(r, vec![true, true, false, false]);
        // A large second e-value lifts the first past its own threshold (step-up).
        let r = e_bh(&[21.0, 21.0, 0.0, 0.0], 0.1);
        assert_eq!(r, vec![true, true, false, false]);
        assert_eq!(e_bh(&[39.0, 1.0, 1.0, 1.0], 0.1), vec![false; 4]);
    }
}
