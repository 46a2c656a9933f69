"""The same drift analysis as benches/drift_side_by_side.rs, in scipy, on the same input.

Usage: drift_scipy.py <input.json>   (prints median timings and p-values as JSON)
"""
import json
import statistics
import sys
import time

import numpy as np
from scipy import stats


def analyse(probes):
    p = []
    for pr in probes:
        b, r = pr["baseline"], pr["recent"]
        p.append(stats.mannwhitneyu(b, r, alternative="two-sided").pvalue)
        p.append(stats.ks_2samp(b, r, alternative="two-sided").pvalue)
        for kb, nb, kr, nr in pr["binary"]:
            p.append(stats.fisher_exact([[kb, nb - kb], [kr, nr - kr]]).pvalue)
    return stats.false_discovery_control(p, method="bh")


def median_secs(reps, f):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    doc = json.load(open(sys.argv[1]))
    probes = [
        {"baseline": np.asarray(p["baseline"]), "recent": np.asarray(p["recent"]), "binary": p["binary"]}
        for p in doc["probes"]
    ]
    x = np.asarray(doc["large"]["x"])
    y = np.asarray(doc["large"]["y"])
    adjusted = analyse(probes)
    drift = median_secs(5, lambda: analyse(probes))
    mwu = stats.mannwhitneyu(x, y, alternative="two-sided")
    ks = stats.ks_2samp(x, y, alternative="two-sided")
    mwu_t = median_secs(5, lambda: stats.mannwhitneyu(x, y, alternative="two-sided"))
    ks_t = median_secs(5, lambda: stats.ks_2samp(x, y, alternative="two-sided"))
    print(json.dumps({
        "drift_median_s": drift,
        "mwu_large_median_s": mwu_t,
        "ks_large_median_s": ks_t,
        "mwu_large_p": float(mwu.pvalue),
        "ks_large_p": float(ks.pvalue),
        "bh_adjusted": [float(v) for v in adjusted],
    }))


if __name__ == "__main__":
    main()
