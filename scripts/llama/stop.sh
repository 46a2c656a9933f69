#!/usr/bin/env bash
# Stops a llama-server started by scripts/llama/start.sh, by its recorded PID.
#
# Usage: scripts/llama/stop.sh [--name NAME]   (default name: default)
# Sends SIGTERM, waits up to 10 s, then SIGKILL. A stale PID file (process gone, or the PID now
# belongs to something else) is removed without signalling anything.
set -euo pipefail

CACHE="${MODELWATCH_CACHE:-$HOME/.cache/modelwatch}"
STATE="${MODELWATCH_LLAMA_STATE:-$CACHE/run}"

die() { printf 'stop.sh: error: %s\n' "$*" >&2; exit 1; }

name="default"
while (($#)); do
    case "$1" in
    --name) name="${2:?--name needs a value}"; shift 2 ;;
    -h | --help) sed -n '2,6p' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
    esac
done
[[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--name may hold letters, digits, '-', '_' and '.' only"

pidfile="$STATE/$name.pid"
if [[ ! -f "$pidfile" ]]; then
    echo "stop.sh: instance '$name' is not running (no $pidfile)" >&2
    exit 0
fi
pid="$(cat "$pidfile")"
[[ "$pid" =~ ^[0-9]+$ ]] || die "$pidfile does not hold a PID"

# Only signal the process if it still is a llama-server: PIDs are reused.
if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'llama-server'; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop.sh: PID $pid did not stop within 10 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stop.sh: stopped llama-server '$name' (PID $pid)" >&2
else
    echo "stop.sh: PID $pid is not a running llama-server; removing the stale state" >&2
fi
rm -f "$pidfile" "$STATE/$name.port"
