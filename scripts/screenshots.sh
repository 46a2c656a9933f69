#!/usr/bin/env bash
# Regenerates docs/img/status-page.png and docs/img/time-report.png from a real run, never by
# hand: `modelwatch demo` leaves a store with a baseline and a swap to a degraded model; the
# daemon then runs on that configuration against the simulator serving the degraded model (so
# its alerts fire), and headless Chromium renders the daemon's `/` and the file written by
# `modelwatch report`. Needs chromium (scripts/test-deps.sh) and curl.
#
#   scripts/screenshots.sh            # builds the debug binary first
#   MODELWATCH=path/to/modelwatch scripts/screenshots.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/docs/img"
bin=${MODELWATCH:-}
if [ -z "$bin" ]; then
    cargo build --quiet --manifest-path "$root/Cargo.toml"
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/modelwatch"
fi
command -v chromium >/dev/null || { echo "screenshots: chromium is missing (scripts/test-deps.sh)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

shoot() { # url file
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --user-data-dir="$work/chromium" --window-size=1200,1250 --screenshot="$2" "$1" \
        >/dev/null 2>&1
    echo "screenshots: wrote $2"
}

"$bin" demo --dir "$work/demo" >/dev/null 2>&1

"$bin" sim --listen 127.0.0.1:0 --profile degraded >"$work/sim.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$work/sim.out" && break; sleep 0.1; done
sim_url=$(sed -n 's/^modelwatch sim listening on //p' "$work/sim.out")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cfg="$work/demo/modelwatch.toml"
sed -i "s|^base_url = .*|base_url = \"$sim_url\"|" "$cfg"
# The demo's target is the file's last table: these keys land in it, then the server section.
printf 'interval = "10s"\njitter = "0s"\n\n[server]\nlisten = "127.0.0.1:%s"\n' "$port" >>"$cfg"

"$bin" daemon --config "$cfg" 2>"$work/daemon.log" &
pids+=($!)
status="http://127.0.0.1:$port/api/v1/status"
for _ in $(seq 120); do
    if curl -sf "$status" | grep -q '"status":"firing"'; then break; fi
    sleep 0.5
done
curl -sf "$status" | grep -q '"status":"firing"' ||
    echo "screenshots: no alert fired yet; the status page shows none" >&2
# A few more rounds, so the evidence charts show a line and not a point.
sleep 35

mkdir -p "$out"
shoot "http://127.0.0.1:$port/" "$out/status-page.png"
"$bin" report --config "$cfg" --target demo --since 1d --format html -o "$work/report.html" 2>/dev/null
shoot "file://$work/report.html" "$out/time-report.png"
