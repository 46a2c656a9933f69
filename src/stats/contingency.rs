//! Pearson chi-square and G (log-likelihood ratio) tests of independence for r×c tables
//! (scipy `chi2_contingency`; Yates' correction applies only when df = 1).

use super::dist::chi2_sf;
use super::{Result, StatsError, TestResult, clip_p};

/// A contingency test with its degrees of freedom and expected counts.
#[derive(Debug, Clone, PartialEq)]
pub struct ContingencyResult {
    pub test: TestResult,
    pub dof: u64,
    pub expected: Vec<Vec<f64>>,
}

fn expected(table: &[&[u64]]) -> Result<(Vec<Vec<f64>>, u64)> {
    let rows = table.len();
    let cols = table.first().map_or(0, |r| r.len());
    if rows < 2 || cols < 2 {
        return Err(StatsError::Empty {
            what: "contingency table (needs at least 2 rows and 2 columns)",
            min: 2,
        });
    }
    if table.iter().any(|r| r.len() != cols) {
        return Err(StatsError::OutOfRange {
            what: "contingency table row length",
            value: cols as f64,
            expected: "all rows of the same length",
        });
    }
    let row_sums: Vec<f64> = table.iter().map(|r| r.iter().sum::<u64>() as f64).collect();
    let col_sums: Vec<f64> = (0..cols)
        .map(|j| table.iter().map(|r| r[j]).sum::<u64>() as f64)
        .collect();
    let n: f64 = row_sums.iter().sum();
    if n == 0.0 {
        return Err(StatsError::ZeroTotal {
            what: "contingency table",
        });
    }
    if row_sums.iter().chain(col_sums.iter()).any(|&s| s == 0.0) {
        return Err(StatsError::Degenerate {
            what: "contingency table (a row or column sums to zero, so an expected count is zero)",
        });
    }
    let exp = row_sums
        .iter()
        .map(|r| col_sums.iter().map(|c| r * c / n).collect())
        .collect();
    Ok((exp, ((rows - 1) * (cols - 1)) as u64))
}

/// Observed counts after Yates' correction (each moved ½ toward its expectation, never past it).
fn corrected(table: &[&[u64]], exp: &[Vec<f64>], correction: bool, dof: u64) -> Vec<Vec<f64>> {
    table
        .iter()
        .zip(exp)
        .map(|(row, er)| {
            row.iter()
                .zip(er)
                .map(|(&o, &e)| {
                    let o = o as f64;
                    if correction && dof == 1 {
                        let diff = e - o;
                        o + diff.signum() * diff.abs().min(0.5)
                    } else {
                        o
                    }
                })
                .collect()
        })
        .collect()
}

/// Pearson chi-square test of independence, Σ (O − E)² / E.
pub fn chi2_contingency(table: &[&[u64]], correction: bool) -> Result<ContingencyResult> {
    let (exp, dof) = expected(table)?;
    let obs = corrected(table, &exp, correction, dof);
    let stat: f64 = obs
        .iter()
        .zip(&exp)
        .flat_map(|(o, e)| o.iter().zip(e).map(|(o, e)| (o - e) * (o - e) / e))
        .sum();
    Ok(ContingencyResult {
        test: TestResult {
            statistic: stat,
            p_value: clip_p(chi2_sf(stat, dof as f64)),
            method: if correction && dof == 1 {
                "chi-square, Yates corrected"
            } else {
                "chi-square"
            },
        },
        dof,
        expected: exp,
    })
}

/// G-test (log-likelihood ratio), G = 2 Σ O ln(O / E), with 0 ln 0 = 0.
pub fn g_test(table: &[&[u64]], correction: bool) -> Result<ContingencyResult> {
    let (exp, dof) = expected(table)?;
    let obs = corrected(table, &exp, correction, dof);
    let stat: f64 = 2.0
        * obs
            .iter()
            .zip(&exp)
            .flat_map(|(o, e)| {
                o.iter()
                    .zip(e)
                    .map(|(&o, &e)| if o > 0.0 { o * (o / e).ln() } else { 0.0 })
            })
            .sum::<f64>();
    let stat = stat.max(0.0);
    Ok(ContingencyResult {
        test: TestResult {
            statistic: stat,
            p_value: clip_p(chi2_sf(stat, dof as f64)),
            method: "G-test",
        },
        dof,
        expected: exp,
    })
}
