#!/usr/bin/env bash
# Side-by-side: one realistic drift analysis (200 probes × 20 baseline and 20 recent samples;
# per probe Mann–Whitney and KS on lengths, Fisher on three binary metrics; BH across all) and
# two large single tests (100,000 vs 100,000), in modelwatch and in scipy, on the same input.
# Creates its own virtual environment under target/ and installs scipy into it with pip.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=target/scipy_compare
venv=target/scipy-venv
mkdir -p "$work"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import scipy' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet scipy numpy
fi
input="$work/input.json"
cargo bench --quiet --bench drift_side_by_side -- generate "$input"
cargo bench --quiet --bench drift_side_by_side -- run "$input" > "$work/modelwatch.json"
"$venv/bin/python" benches/scipy_compare/drift_scipy.py "$input" > "$work/scipy.json"
"$venv/bin/python" - "$work/modelwatch.json" "$work/scipy.json" <<'PY'
import json, sys
mw = json.load(open(sys.argv[1])); sp = json.load(open(sys.argv[2]))
import scipy
print(f"scipy {scipy.__version__}")
print(f"{'workload':<38}{'modelwatch':>14}{'scipy':>14}{'speed-up':>10}")
for key, name in [("drift_median_s", "drift analysis (200 probes, 1000 tests)"),
                  ("mwu_large_median_s", "Mann-Whitney 100k vs 100k"),
                  ("ks_large_median_s", "KS 100k vs 100k")]:
    a, b = mw[key], sp[key]
    print(f"{name:<38}{a*1e3:>11.3f} ms{b*1e3:>11.3f} ms{b/a:>9.1f}x")
diff = max(abs(a - b) for a, b in zip(mw["bh_adjusted"], sp["bh_adjusted"]))
print(f"max |BH-adjusted p difference| over {len(mw['bh_adjusted'])} tests: {diff:.2e}")
print(f"large MWU p: {mw['mwu_large_p']:.12g} vs {sp['mwu_large_p']:.12g}; "
      f"large KS p: {mw['ks_large_p']:.12g} vs {sp['ks_large_p']:.12g}")
PY
