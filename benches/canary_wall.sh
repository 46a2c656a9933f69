#!/usr/bin/env bash
# Canary wall time on the simulator: `modelwatch canary` between two `modelwatch sim` processes
# at their default latency, with the starter suites (`modelwatch init`'s probes, all five
# suites), default margins and the targets' default `max_concurrency`, one run per seed.
# Prints each run's verdict, exit code, pairs and wall time, then the distribution.
#
#   benches/canary_wall.sh                          # unchanged candidate, seeds paired, 20 runs
#   CANDIDATE=degraded RUNS=5 benches/canary_wall.sh
#   PAIRING=off RUNS=3 benches/canary_wall.sh       # independent answers (`--no-seed-pairing`)
#   BIN=target/release/modelwatch FIRST_SEED=21 benches/canary_wall.sh
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
FIRST_SEED=${FIRST_SEED:-1}
CANDIDATE=${CANDIDATE:-healthy}
PAIRING=${PAIRING:-on}
BIN=${BIN:-}
if [[ -z "$BIN" ]]; then
  cargo build --quiet --bin modelwatch
  BIN=target/debug/modelwatch
fi
BIN=$(realpath "$BIN")

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 100); do
    if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "simulator on port $1 did not start" >&2
  exit 1
}

cd "$work"
"$BIN" init >/dev/null 2>&1
suites=$(ls probes/*.toml | xargs -n1 basename | sed 's/\.toml$//' | sed 's/.*/"&"/' | paste -sd, -)

walls=()
for ((i = 0; i < RUNS; i++)); do
  seed=$((FIRST_SEED + i))
  pa=$(free_port)
  "$BIN" sim --listen "127.0.0.1:$pa" --profile healthy --seed "$seed" >/dev/null 2>&1 &
  pids+=($!)
  pb=$(free_port)
  "$BIN" sim --listen "127.0.0.1:$pb" --profile "$CANDIDATE" --seed $((seed + 100)) >/dev/null 2>&1 &
  pids+=($!)
  wait_port "$pa"
  wait_port "$pb"
  cat >c.toml <<EOF
probes_dir = "probes"
[storage]
path = "c-$seed.db"
[[target]]
name = "a"
provider = "openai"
base_url = "http://127.0.0.1:$pa/v1"
model = "sim-7b"
stream = true
suites = [$suites]
[[target]]
name = "b"
provider = "openai"
base_url = "http://127.0.0.1:$pb/v1"
model = "sim-7b"
stream = true
suites = [$suites]
EOF
  if [[ "$PAIRING" == off ]]; then extra=(--no-seed-pairing); else extra=(--pair-seed "$seed"); fi
  start=$(date +%s.%N)
  set +e
  "$BIN" canary -c c.toml --current a --candidate b "${extra[@]}" --format json >out.json 2>err.txt
  rc=$?
  set -e
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  verdict=$(python3 -c 'import json,sys; print(json.load(open("out.json")).get("verdict","?"))' 2>/dev/null || echo "?")
  pairs=$(grep -o 'after [0-9]* pairs' err.txt | tail -1 | grep -o '[0-9]*' || echo "?")
  printf 'seed %3d  %-12s exit %d  pairs %6s  %7.1f s\n' "$seed" "$verdict" "$rc" "$pairs" "$wall"
  if [[ "$rc" == 2 ]]; then tail -3 err.txt >&2; fi
  walls+=("$wall")
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
done
printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {
  m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2;
  printf "runs %d  min %.1f s  median %.1f s  p90 %.1f s  max %.1f s\n", NR, a[1], m, a[int(0.9*NR+0.999)], a[NR]
}'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
