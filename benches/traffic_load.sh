#!/usr/bin/env bash
# Production traffic cost through real HTTP: `modelwatch daemon` probing the simulator every
# 10 s while a sender posts a sustained RATE completions/s (batches of 100 JSON lines, 9 in 10
# with text) to POST /api/v1/ingest for DURATION seconds. Prints the daemon's RSS
# (/proc/PID/status VmRSS, sampled every 5 s) and CPU (utime + stime) over the load, the answers,
# how many completions the traffic task processed, and the start times of the prober's rounds
# meanwhile (they must stay 10 s apart).
#
#   benches/traffic_load.sh                         # release build, 1,000/s for 60 s
#   RATE=2000 DURATION=30 BIN=target/debug/modelwatch benches/traffic_load.sh
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-60}
RATE=${RATE:-1000}
BIN=${BIN:-}
if [[ -z "$BIN" ]]; then
  cargo build --release --quiet --bin modelwatch
  BIN=${CARGO_TARGET_DIR:-target}/release/modelwatch
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

mkdir -p "$work/probes"
{
  echo 'suite = "small"'
  echo '[defaults]'
  echo 'samples = 2'
  echo 'max_tokens = 256'
  for i in $(seq 1 5); do
    echo '[[probe]]'
    echo "id = \"p$i\""
    echo "prompt = \"Load prompt $i: explain briefly how a hash map works.\""
  done
} > "$work/probes/small.toml"
token="traffic-load-$(date +%s%N)"
cat > "$work/modelwatch.toml" <<EOF
probes_dir = "probes"
[storage]
path = "state.db"
[server]
listen = "127.0.0.1:0"
[traffic]
token = "$token"
[[target]]
name = "chat"
provider = "openai"
base_url = "$base_url"
model = "sim-7b"
suites = ["small"]
interval = "10s"
jitter = "0s"
EOF

(cd "$work" && exec "$BIN" --config modelwatch.toml daemon > daemon.out 2> daemon.err) &
daemon_pid=$!
addr=""
for _ in $(seq 200); do
  addr=$(sed 's/\x1b\[[0-9;]*m//g' "$work/daemon.err" 2>/dev/null | grep -o 'address=[0-9.:]*' | head -1 | cut -d= -f2 || true)
  [[ -n "$addr" ]] && break
  sleep 0.1
done
[[ -n "$addr" ]] || { echo "daemon did not start" >&2; cat "$work/daemon.err" >&2; exit 1; }
pid=$(pgrep -P "$daemon_pid" -x modelwatch || echo "$daemon_pid")
for _ in $(seq 100); do curl -fsS "http://$addr/readyz" > /dev/null 2>&1 && break; sleep 0.2; done

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hz=$(getconf CLK_TCK)
r_idle=$(rss)
t0=$(ticks)
( while kill -0 "$pid" 2>/dev/null; do rss >> "$work/rss"; sleep 5; done ) &
sampler=$!

python3 - "$addr" "$token" "$RATE" "$DURATION" > "$work/load.out" <<'PY'
import http.client, json, sys, threading, time
addr, token, rate, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
host, port = addr.rsplit(":", 1)
routes = ["/support", "/search", "/billing"]
def body(k):
    lines = []
    for i in range(100):
        route = routes[i % 3]
        if i % 10 == 9:
            lines.append({"target": "chat", "route": route, "output_chars": 300 + i, "finish_reason": "stop"})
        elif i % 20 == 0:
            lines.append({"target": "chat", "route": route, "output": "I'm sorry, but I can't help with that request.", "finish_reason": "stop", "latency_ms": 400})
        else:
            lines.append({"target": "chat", "route": route, "output": f"To reset the device, hold the power button for ten seconds, wait for the light to blink twice, then sign in again ({k}).", "finish_reason": "stop", "latency_ms": 350})
    return "\n".join(json.dumps(l) for l in lines).encode()

starts, stop = [], threading.Event()
def watch_rounds():
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    while not stop.is_set():
        try:
            c.request("GET", "/api/v1/status")
            d = json.loads(c.getresponse().read())
            s = (d["targets"][0].get("last_round") or {}).get("started_at_ms")
            if s and (not starts or starts[-1] != s):
                starts.append(s)
        except Exception:
            c = http.client.HTTPConnection(host, int(port), timeout=5)
        stop.wait(0.5)
t = threading.Thread(target=watch_rounds); t.start()

conn = http.client.HTTPConnection(host, int(port), timeout=10)
answers, accepted, sent = {}, 0, 0
period = 100 / rate
begin = time.monotonic()
k = 0
while time.monotonic() - begin < duration:
    due = begin + k * period
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    b = body(k)
    k += 1
    try:
        conn.request("POST", "/api/v1/ingest", body=b, headers={"Authorization": "Bearer " + token, "Content-Type": "application/x-ndjson"})
        r = conn.getresponse(); data = r.read()
        answers[r.status] = answers.get(r.status, 0) + 1
        if r.status == 200:
            accepted += json.loads(data)["accepted"]
    except Exception as e:
        answers[type(e).__name__] = answers.get(type(e).__name__, 0) + 1
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
    sent += 100
elapsed = time.monotonic() - begin
time.sleep(2)
stop.set(); t.join()
c = http.client.HTTPConnection(host, int(port), timeout=5)
c.request("GET", "/api/v1/status")
processed = json.loads(c.getresponse().read())["traffic"]["processed"]
gaps = [round((b - a) / 1000, 1) for a, b in zip(starts, starts[1:])]
print(f"sent {sent} completions in {elapsed:.1f} s ({sent / elapsed:.0f}/s): answers {answers}, accepted {accepted}, processed {processed}")
print(f"round starts during the load: {len(starts)}, gaps (s): {gaps} (interval 10 s)")
PY
t1=$(ticks)
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
cat "$work/load.out"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
python3 - "$work/rss" <<PY
import sys, statistics
rss = [int(l) for l in open(sys.argv[1]) if l.strip()]
cpu = ($t1 - $t0) / $hz
print(f"daemon RSS: {$r_idle / 1024:.1f} MiB before the load; during it min {min(rss) / 1024:.1f}, median {statistics.median(rss) / 1024:.1f}, max {max(rss) / 1024:.1f} MiB ({len(rss)} samples every 5 s); peak {$hwm / 1024:.1f} MiB")
print(f"daemon CPU over the load: {cpu:.1f} s, {100 * cpu / ($DURATION + 2):.1f} % of one core")
PY
