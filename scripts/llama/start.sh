#!/usr/bin/env bash
# Starts a llama.cpp `llama-server` with the Gemma 3 270M model on 127.0.0.1, waits until it is
# ready, records its PID and port, and prints its base URL.
#
# Usage: scripts/llama/start.sh [--port PORT] [--name NAME] [--alias ALIAS] [--timeout SECONDS]
#                               [-- EXTRA...]
#   --port     port to listen on (default: a free port chosen by the system)
#   --name     instance name, so several servers can run side by side (default: default)
#   --alias    the served model name (default: gemma-3-270m); llama-server adds a repeated
#              --alias to the list instead of replacing it, so change it here
#   --timeout  seconds to wait for /health (default: 120)
#   EXTRA      passed to llama-server after the standard arguments; later arguments win, so
#              `-- --chat-template chatml` changes the chat template.
#
# The binary and model are taken from MODELWATCH_LLAMA_SERVER / MODELWATCH_LLAMA_MODEL, or from
# the cache that scripts/llama/install.sh fills. State (PID, port, log) goes to
# ${MODELWATCH_LLAMA_STATE:-${MODELWATCH_CACHE:-$HOME/.cache/modelwatch}/run}/NAME.{pid,port,log}.
# Stop with scripts/llama/stop.sh [--name NAME].
set -euo pipefail

CACHE="${MODELWATCH_CACHE:-$HOME/.cache/modelwatch}"
STATE="${MODELWATCH_LLAMA_STATE:-$CACHE/run}"
SERVER="${MODELWATCH_LLAMA_SERVER:-$CACHE/llama-server/11434.0.0/llama-server}"
MODEL="${MODELWATCH_LLAMA_MODEL:-$CACHE/models/a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818/gemma-3-270m-q4_k_m.gguf}"

die() { printf 'start.sh: error: %s\n' "$*" >&2; exit 1; }

port=""
name="default"
alias="gemma-3-270m"
timeout=120
while (($#)); do
    case "$1" in
    --port) port="${2:?--port needs a value}"; shift 2 ;;
    --name) name="${2:?--name needs a value}"; shift 2 ;;
    --alias) alias="${2:?--alias needs a value}"; shift 2 ;;
    --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown option $1 (extra llama-server arguments go after --)" ;;
    esac
done
[[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--name may hold letters, digits, '-', '_' and '.' only"
[[ -z "$port" || "$port" =~ ^[0-9]+$ ]] || die "--port must be a number"
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout must be a whole number of seconds"
[[ -x "$SERVER" ]] || die "no llama-server at $SERVER: run scripts/llama/install.sh first"
[[ -f "$MODEL" ]] || die "no model at $MODEL: run scripts/llama/install.sh first"

mkdir -p "$STATE"
pidfile="$STATE/$name.pid"
if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    die "instance '$name' is already running (PID $(cat "$pidfile"), port $(cat "$STATE/$name.port" 2>/dev/null)); stop it with scripts/llama/stop.sh --name $name"
fi

if [[ -z "$port" ]]; then
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" ||
        die "could not find a free port; pass --port"
fi

log="$STATE/$name.log"
# setsid: the server does not share the caller's process group, so it outlives this script and
# the terminal; it is stopped by PID only.
setsid "$SERVER" -m "$MODEL" --alias "$alias" --host 127.0.0.1 --port "$port" \
    -c 2048 -np 2 -t 1 --no-jinja --chat-template gemma "$@" >"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"
echo "$port" >"$STATE/$name.port"

url="http://127.0.0.1:$port"
deadline=$((SECONDS + timeout))
while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 20 "$log" >&2 || true
        rm -f "$pidfile" "$STATE/$name.port"
        die "llama-server exited during start-up (log: $log)"
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/health" || true)"
    [[ "$code" == "200" ]] && break
    if ((SECONDS >= deadline)); then
        kill "$pid" 2>/dev/null || true
        rm -f "$pidfile" "$STATE/$name.port"
        die "llama-server did not become ready within ${timeout}s (last /health status: ${code:-none}; log: $log)"
    fi
    sleep 0.25
done
printf 'start.sh: llama-server ready (PID %s, log %s)\n' "$pid" "$log" >&2
echo "$url"
