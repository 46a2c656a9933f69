#!/usr/bin/env bash
# Engine throughput: `modelwatch run` (release) against `modelwatch sim` with zero latency.
#
# Starts the simulator on a free 127.0.0.1 port, generates a suite of PROBES probes with
# SAMPLES samples each, runs one round RUNS times and prints requests/s end to end (wall time of
# the whole `modelwatch run` process: config, requests, evaluation, SQLite store, summary) and
# CPU per request (user + system of `run`, and of the simulator, from /proc), with the median
# over the runs.
#
#   benches/throughput.sh                 # 200 probes × 50 samples, concurrency 256, 5 runs
#   STREAM=true benches/throughput.sh     # streamed responses (one frame per token)
#   BIN=target/release/modelwatch PROBES=100 SAMPLES=20 RUNS=3 benches/throughput.sh
#   LATENCY=on PROBES=100 SAMPLES=20 CONCURRENCY=16 RUNS=3 benches/throughput.sh
#       the simulator's realistic latency kept: also prints how full the concurrency slots were,
#       the round's wall time against the sum of request latencies divided by the concurrency
#       (1.0 when every slot is busy all the time)
set -euo pipefail

cd "$(dirname "$0")/.."
PROBES=${PROBES:-200}
SAMPLES=${SAMPLES:-50}
CONCURRENCY=${CONCURRENCY:-256}
RUNS=${RUNS:-5}
STREAM=${STREAM:-false}
LATENCY=${LATENCY:-off}
BIN=${BIN:-}
if [[ -z "$BIN" ]]; then
  cargo build --release --quiet --bin modelwatch
  BIN=target/release/modelwatch
fi
BIN=$(realpath "$BIN")

work=$(mktemp -d)
sim_pid=""
cleanup() {
  if [[ -n "$sim_pid" ]]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Healthy model, no sleeping (or with its latency, LATENCY=on).
if [[ "$LATENCY" == "on" ]]; then
  cp sim/profiles/healthy.toml "$work/profile.toml"
else
  sed -e 's/^latency_scale = .*/latency_scale = 0.0/' sim/profiles/healthy.toml > "$work/profile.toml"
  grep -q '^latency_scale = 0.0' "$work/profile.toml"
fi

"$BIN" sim --listen 127.0.0.1:0 --profile "$work/profile.toml" > "$work/sim.out" 2> "$work/sim.err" &
sim_pid=$!
for _ in $(seq 100); do
  grep -q 'listening on' "$work/sim.out" 2>/dev/null && break
  sleep 0.1
done
base_url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/sim.out" | head -1)
[[ -n "$base_url" ]] || { echo "simulator did not start" >&2; cat "$work/sim.err" >&2; exit 1; }

mkdir -p "$work/probes"
{
  echo 'suite = "bench"'
  echo '[defaults]'
  echo "samples = $SAMPLES"
  echo 'max_tokens = 256'
  for i in $(seq 1 "$PROBES"); do
    echo '[[probe]]'
    echo "id = \"p$i\""
    echo "prompt = \"Benchmark prompt number $i: explain briefly how a hash map works.\""
    echo 'expect.refusal = false'
  done
} > "$work/probes/bench.toml"

cat > "$work/modelwatch.toml" <<EOF
probes_dir = "probes"
[storage]
path = "bench.db"
[[target]]
name = "sim"
provider = "openai"
base_url = "$base_url"
model = "sim-7b"
suites = ["bench"]
max_concurrency = $CONCURRENCY
stream = $STREAM
retries = 0
EOF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
requests=$((PROBES * SAMPLES))
results=()
echo "# $requests requests per run ($PROBES probes × $SAMPLES samples), concurrency $CONCURRENCY, stream=$STREAM"
for run in $(seq 1 "$RUNS"); do
  rm -f "$work"/bench.db*
  sim_before=$(cpu_ticks "$sim_pid")
  /usr/bin/time -f '%e %U %S %M' -o "$work/time.txt" \
    "$BIN" --config "$work/modelwatch.toml" run --format json > "$work/run.json" 2> "$work/run.err" || true
  sim_after=$(cpu_ticks "$sim_pid")
  read -r wall user sys maxrss < "$work/time.txt"
  stored=$(python3 - "$work/bench.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
t = "samples" if "samples" in tables else None
print(db.execute(f"select count(*) from {t}").fetchone()[0] if t else -1)
PY
)
  if [[ "$LATENCY" == "on" ]]; then
    python3 - "$work/bench.db" "$CONCURRENCY" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
c = int(sys.argv[2])
lat = db.execute("select sum(latency_ms) from samples").fetchone()[0] or 0.0
first, last = db.execute("select min(started_at_ms), max(started_at_ms + latency_ms) from samples").fetchone()
wall = last - first
ideal = lat / c
print(f"  slots: requests from first start to last end {wall/1000:.2f} s; sum of latencies / concurrency {ideal/1000:.2f} s; ratio {wall/ideal:.3f} (busy slots {lat/wall:.1f} of {c})")
PY
  fi
  line=$(python3 -c "
w,u,s,rss=$wall,$user,$sys,$maxrss
n=$requests
sim=($sim_after-$sim_before)/$hz
print(f'{n/w:.0f} {1e6*(u+s)/n:.1f} {1e6*sim/n:.1f} {w:.3f} {rss/1024:.1f}')")
  read -r rps cpu_run cpu_sim wall_s rss_mb <<< "$line"
  echo "run $run: $rps req/s, wall ${wall_s}s, run CPU ${cpu_run} µs/req, simulator CPU ${cpu_sim} µs/req, run max RSS ${rss_mb} MB, stored samples $stored"
  if [[ "$stored" != "$requests" ]]; then
    echo "warning: stored $stored samples, expected $requests" >&2
    tail -5 "$work/run.err" >&2
  fi
  results+=("$rps $cpu_run $cpu_sim")
done
printf '%s\n' "${results[@]}" | python3 -c "
import sys, statistics as st
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
m = [st.median(c) for c in zip(*rows)]
print(f'median over {len(rows)} runs: {m[0]:.0f} requests/s end to end; CPU per request: run {m[1]:.1f} µs, simulator {m[2]:.1f} µs')
"
