//! Criterion benchmarks of the statistics core at realistic (20–200 per arm) and large
//! (100,000 per arm) sizes. Run short:
//! `cargo bench --bench stats -- --warm-up-time 1 --measurement-time 2`

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use modelwatch::rng::Rng;
use modelwatch::stats::sequential::{BetaBinomialEProcess, BetaPrior, MixtureSprt, RankEProcess};
use modelwatch::stats::{self, Alternative, KsMethod, Table2x2};

fn lengths(seed: u64, n: usize, median: f64) -> Vec<f64> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.lognormal(median, 0.7).round()).collect()
}

fn two_sample(c: &mut Criterion) {
    for &n in &[20usize, 200, 100_000] {
        let x = lengths(1, n, 200.0);
        let y = lengths(2, n, 220.0);
        let mut g = c.benchmark_group(format!("two_sample_n{n}"));
        g.bench_function(BenchmarkId::new("mann_whitney_u", n), |b| {
            b.iter(|| stats::mann_whitney_u(black_box(&x), black_box(&y), Alternative::TwoSided))
        });
        g.bench_function(BenchmarkId::new("ks_2samp_auto", n), |b| {
            b.iter(|| {
                stats::ks_2samp(
                    black_box(&x),
                    black_box(&y),
                    Alternative::TwoSided,
                    KsMethod::Auto,
                )
            })
        });
        g.bench_function(BenchmarkId::new("cliffs_delta", n), |b| {
            b.iter(|| stats::cliffs_delta(black_box(&x), black_box(&y), 0.95))
        });
        g.bench_function(BenchmarkId::new("hodges_lehmann", n), |b| {
            b.iter(|| stats::hodges_lehmann(black_box(&x), black_box(&y), 0.95))
        });
        if n <= 200 {
            g.bench_function(BenchmarkId::new("anderson_ksamp_interpolated", n), |b| {
                b.iter(|| stats::anderson_ksamp(&[black_box(&x), black_box(&y)], true, None))
            });
        }
        g.finish();
    }
    // The exact KS path at scipy's auto limit.
    let x = lengths(3, 10_000, 200.0);
    let y = lengths(4, 10_000, 200.0);
    c.bench_function("ks_2samp_exact_n10000", |b| {
        b.iter(|| {
            stats::ks_2samp(
                black_box(&x),
                black_box(&y),
                Alternative::TwoSided,
                KsMethod::Exact,
            )
        })
    });
    let x = lengths(5, 60, 200.0);
    let y = lengths(6, 60, 230.0);
    c.bench_function("anderson_ksamp_permutation_2000_n60", |b| {
        b.iter(|| stats::anderson_ksamp(&[black_box(&x), black_box(&y)], true, Some((2000, 1))))
    });
}

fn counts(c: &mut Criterion) {
    c.bench_function("fisher_exact_n40", |b| {
        b.iter(|| stats::fisher_exact(black_box(3), 17, 9, 11, Alternative::TwoSided))
    });
    c.bench_function("fisher_exact_n2000", |b| {
        b.iter(|| stats::fisher_exact(black_box(20), 980, 45, 955, Alternative::TwoSided))
    });
    c.bench_function("mcnemar_exact_b25_c48", |b| {
        b.iter(|| stats::mcnemar_exact(black_box(25), 48))
    });
    c.bench_function("clopper_pearson_45_1000", |b| {
        b.iter(|| stats::clopper_pearson(black_box(45), 1000, 0.95))
    });
    let tables: Vec<Table2x2> = (0..200)
        .map(|i| Table2x2::new(i % 5, 20 - i % 5, (i + 2) % 7, 20 - (i + 2) % 7))
        .collect();
    c.bench_function("cmh_200_strata", |b| {
        b.iter(|| stats::cmh(black_box(&tables)))
    });
    let mut r = Rng::new(9);
    let p: Vec<f64> = (0..1000).map(|_| r.f64()).collect();
    c.bench_function("benjamini_hochberg_1000", |b| {
        b.iter(|| stats::benjamini_hochberg(black_box(&p)))
    });
}

fn sequential(c: &mut Criterion) {
    c.bench_function("beta_binomial_eprocess_1000_updates", |b| {
        b.iter(|| {
            let mut e = BetaBinomialEProcess::new(0.05, BetaPrior::for_alternative(0.10))
                .unwrap_or_else(|_| unreachable!());
            for i in 0..1000 {
                e.update(i % 13 == 0);
            }
            e.p_value()
        })
    });
    c.bench_function("msprt_1000_updates", |b| {
        b.iter(|| {
            let mut m = MixtureSprt::new(0.0, 1.0, 0.1).unwrap_or_else(|_| unreachable!());
            for i in 0..1000 {
                m.update((i % 7) as f64 / 7.0 - 0.4);
            }
            m.p_value()
        })
    });
    let mut base = lengths(7, 20, 200.0);
    base.sort_by(f64::total_cmp);
    let xs = lengths(8, 1000, 210.0);
    c.bench_function("rank_eprocess_1000_updates", |b| {
        b.iter(|| {
            let mut e =
                RankEProcess::new(0.05, Alternative::TwoSided).unwrap_or_else(|_| unreachable!());
            for &x in &xs {
                e.update(&base, x);
            }
            e.p_value()
        })
    });
}

criterion_group!(benches, two_sample, counts, sequential);
criterion_main!(benches);
