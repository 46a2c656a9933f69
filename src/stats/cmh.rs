//! Cochran–Mantel–Haenszel test for K stratified 2×2 tables (strata = probes), and the
//! Mantel–Haenszel common odds ratio with the Robins–Breslow–Greenland (1986) interval.
//! Stratifying by probe stops Simpson's paradox when probes differ in base rate.

use super::dist::{chi2_sf, norm_ppf};
use super::{Interval, Result, StatsError, TestResult, check_conf, clip_p};

/// One stratum `[[a, b], [c, d]]`: rows are arms (e.g. recent, baseline), columns outcome
/// (e.g. refused, not refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table2x2 {
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub d: u64,
}

impl Table2x2 {
    pub fn new(a: u64, b: u64, c: u64, d: u64) -> Self {
        Table2x2 { a, b, c, d }
    }
    fn n(&self) -> u64 {
        self.a + self.b + self.c + self.d
    }
}

/// CMH test result: the test (statistic is the continuity-corrected CMH chi-square, 1 df) and
/// the Mantel–Haenszel common odds ratio with a 95% RBG interval (`None` when undefined).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CmhResult {
    pub test: TestResult,
    pub common_odds_ratio: Option<Interval>,
}

/// Cochran–Mantel–Haenszel chi-square with continuity correction (Mantel & Haenszel 1959;
/// R `mantelhaen.test(correct = TRUE)`):
/// (|Σ aₖ − Σ E[aₖ]| − ½)² / Σ Var(aₖ), E[aₖ] = r1ₖ c1ₖ / nₖ,
/// Var(aₖ) = r1ₖ r2ₖ c1ₖ c2ₖ / (nₖ² (nₖ − 1)). Strata with fewer than two observations carry no
/// information and are skipped.
pub fn cmh(tables: &[Table2x2]) -> Result<CmhResult> {
    if tables.is_empty() {
        return Err(StatsError::Empty {
            what: "CMH strata",
            min: 1,
        });
    }
    let (mut sum_a, mut sum_e, mut sum_v) = (0.0, 0.0, 0.0);
    for t in tables.iter().filter(|t| t.n() >= 2) {
        let n = t.n() as f64;
        let r1 = (t.a + t.b) as f64;
        let r2 = (t.c + t.d) as f64;
        let c1 = (t.a + t.c) as f64;
        let c2 = (t.b + t.d) as f64;
        sum_a += t.a as f64;
        sum_e += r1 * c1 / n;
        sum_v += r1 * r2 * c1 * c2 / (n * n * (n - 1.0));
    }
    if sum_v <= 0.0 {
        return Err(StatsError::Degenerate {
            what: "CMH test (every stratum has a zero margin)",
        });
    }
    let dev = ((sum_a - sum_e).abs() - 0.5).max(0.0);
    let stat = dev * dev / sum_v;
    let test = TestResult {
        statistic: stat,
        p_value: clip_p(chi2_sf(stat, 1.0)),
        method: "CMH chi-square, continuity corrected",
    };
    Ok(CmhResult {
        test,
        common_odds_ratio: mh_odds_ratio(tables, 0.95).ok(),
    })
}

/// Mantel–Haenszel common odds ratio Σ(aₖdₖ/nₖ) / Σ(bₖcₖ/nₖ) with the Robins–Breslow–Greenland
/// variance of its logarithm.
pub fn mh_odds_ratio(tables: &[Table2x2], conf: f64) -> Result<Interval> {
    check_conf(conf)?;
    let (mut r, mut s) = (0.0, 0.0);
    let (mut pr, mut ps_qr, mut qs) = (0.0, 0.0, 0.0);
    for t in tables.iter().filter(|t| t.n() >= 2) {
        let n = t.n() as f64;
        let (a, b, c, d) = (t.a as f64, t.b as f64, t.c as f64, t.d as f64);
        let rk = a * d / n;
        let sk = b * c / n;
        let pk = (a + d) / n;
        let qk = (b + c) / n;
        r += rk;
        s += sk;
        pr += pk * rk;
        ps_qr += pk * sk + qk * rk;
        qs += qk * sk;
    }
    if r <= 0.0 || s <= 0.0 {
        return Err(StatsError::Degenerate {
            what: "Mantel-Haenszel odds ratio (zero numerator or denominator)",
        });
    }
    let or = r / s;
    let var = pr / (2.0 * r * r) + ps_qr / (2.0 * r * s) + qs / (2.0 * s * s);
    let z = norm_ppf(1.0 - (1.0 - conf) / 2.0);
    let half = z * var.sqrt();
    Ok(Interval {
        estimate: or,
        lower: (or.ln() - half).exp(),
        upper: (or.ln() + half).exp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_stratum_equals_scaled_pearson() {
        // One stratum: uncorrected CMH = Pearson chi-square × (n − 1)/n; check with the
        // correction removed by construction (|a − E| − ½ computed by hand).
        let t = Table2x2::new(12, 5, 7, 30);
        let r = cmh(&[t]).unwrap();
        let n = 54.0;
        let e = 17.0 * 19.0 / n;
        let v = 17.0 * 37.0 * 19.0 * 35.0 / (n * n * (n - 1.0));
        let expect = ((12.0f64 - e).abs() - 0.5).powi(2) / v;
        assert!((r.test.statistic - expect).abs() < 1e-12);
        assert!(r.test.p_value < 0.001);
    }

    #[test]
    fn mh_odds_ratio_of_identical_strata_is_the_stratum_odds_ratio() {
        let t = Table2x2::new(10, 20, 5, 40);
        let i = mh_odds_ratio(&[t, t, t], 0.95).unwrap();
        assert!((i.estimate - 4.0).abs() < 1e-12);
        assert!(i.lower < 4.0 && i.upper > 4.0);
    }

    #[test]
    fn opposite_strata_cancel() {
        // Simpson-style: opposite effects in two strata give no common effect.
        let r = cmh(&[Table2x2::new(10, 0, 0, 10), Table2x2::new(0, 10, 10, 0)]).unwrap();
        assert!(r.test.p_value > 0.99);
    }
}
