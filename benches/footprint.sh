#!/usr/bin/env bash
# Daemon idle footprint: `modelwatch daemon` (release) monitoring the simulator with a small
# suite and a long interval. Waits for the first round (and its baseline episode) to finish,
# then samples RSS (/proc/PID/status VmRSS) and CPU (utime + stime from /proc/PID/stat) over
# DURATION seconds of idling between rounds.
#
#   benches/footprint.sh                  # 10 probes × 3 samples, interval 1h, 60 s window
#   DURATION=120 BIN=target/release/modelwatch benches/footprint.sh
#   SMAPS=/tmp/idle.smaps benches/footprint.sh   # also keep /proc/PID/smaps at the end
#   BASELINE_SAMPLES=80 benches/footprint.sh      # a baseline of 80 samples per probe (default 20)
#
# Besides the total it prints the RSS by kind (/proc/PID/status): anonymous memory (heap,
# thread stacks, mmap'd allocations, relocated and written pages of the binary) and file
# pages (the binary's code and read-only data that start-up and a round touched, libraries).
#
# A binary written minutes before (a fresh build, a copy) maps about 1 MB more of its file for
# a quarter of an hour: compare binaries of the same age (BENCHMARKS.md, "Daemon idle footprint").
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-60}
BASELINE_SAMPLES=${BASELINE_SAMPLES:-20}
BIN=${BIN:-}
if [[ -z "$BIN" ]]; then
  cargo build --release --quiet --bin modelwatch
  BIN=target/release/modelwatch
fi
BIN=$(realpath "$BIN")

work=$(mktemp -d)
sim_pid=""
daemon_pid=""
cleanup() {
  for p in $daemon_pid $sim_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

sed -e 's/^latency_scale = .*/latency_scale = 0.0/' sim/profiles/healthy.toml > "$work/profile.toml"
"$BIN" sim --listen 127.0.0.1:0 --profile "$work/profile.toml" > "$work/sim.out" 2> "$work/sim.err" &
sim_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
base_url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/sim.out" | head -1)
[[ -n "$base_url" ]] || { echo "simulator did not start" >&2; exit 1; }

mkdir -p "$work/probes" "$work/baselines"
{
  echo 'suite = "small"'
  echo '[defaults]'
  echo 'samples = 3'
  echo 'max_tokens = 256'
  for i in $(seq 1 10); do
    echo '[[probe]]'
    echo "id = \"p$i\""
    echo "prompt = \"Footprint prompt $i: explain briefly how a hash map works.\""
    echo 'expect.refusal = false'
  done
} > "$work/probes/small.toml"
cat > "$work/modelwatch.toml" <<EOF
probes_dir = "probes"
[storage]
path = "state.db"
[server]
listen = "127.0.0.1:0"
[[target]]
name = "sim"
provider = "openai"
base_url = "$base_url"
model = "sim-7b"
suites = ["small"]
interval = "1h"
baseline = "baselines/sim.json"
EOF
(cd "$work" && "$BIN" --config modelwatch.toml baseline record --target sim --samples "$BASELINE_SAMPLES" > record.out 2>&1) \
  || { echo "baseline record failed" >&2; cat "$work/record.out" >&2; exit 1; }
ls "$work"/baselines/*.json > /dev/null

(cd "$work" && exec "$BIN" --config modelwatch.toml daemon > daemon.out 2> daemon.err) &
daemon_pid=$!
addr=""
for _ in $(seq 200); do
  addr=$(sed 's/\x1b\[[0-9;]*m//g' "$work/daemon.err" 2>/dev/null | grep -o 'address=[0-9.:]*' | head -1 | cut -d= -f2 || true)
  [[ -n "$addr" ]] && break
  sleep 0.1
done
[[ -n "$addr" ]] || { echo "daemon did not start" >&2; cat "$work/daemon.err" >&2; exit 1; }
# The daemon is a child of the subshell: find its pid.
pid=$(pgrep -P "$daemon_pid" -x modelwatch || echo "$daemon_pid")

# Wait for the first round to be stored (the status API lists rounds per target).
done_round=""
for _ in $(seq 300); do
  if curl -fsS "http://$addr/api/v1/status" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
def rounds(x):
    if isinstance(x, dict):
        return max([v for k, v in x.items() if k == "rounds" and isinstance(v, int)] + [rounds(v) for v in x.values()] + [0])
    if isinstance(x, list):
        return max([rounds(v) for v in x] + [0])
    return 0
sys.exit(0 if rounds(d) >= 1 else 1)'; then done_round=1; break; fi
  sleep 0.2
done
[[ -n "$done_round" ]] || { echo "the first round did not finish" >&2; exit 1; }
sleep 5

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); r0=$(rss); s0=$(date +%s.%N)
sleep "$DURATION"
t1=$(ticks); r1=$(rss); s1=$(date +%s.%N)
threads=$(awk '/^Threads/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
file=$(awk '/^RssFile/ {print $2}' "/proc/$pid/status")
[[ -z "${SMAPS:-}" ]] || cp "/proc/$pid/smaps" "$SMAPS"
python3 - <<PY
cpu = ($t1 - $t0) / $hz
wall = $s1 - $s0
print(f"idle over {wall:.0f} s: CPU {100 * cpu / wall:.3f} % ({cpu:.2f} s), RSS {$r0 / 1024:.1f} MB -> {$r1 / 1024:.1f} MB, peak RSS {$hwm / 1024:.1f} MB (anon {$anon / 1024:.1f}, file {$file / 1024:.1f}), threads $threads")
PY
