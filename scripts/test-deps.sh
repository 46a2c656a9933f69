#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, idempotently (a second run only
# checks): Debian's chromium (renders HTML reports), prometheus and promtool (scrape and lint
# /metrics), and a Python venv with the official Sentry envelope and OTLP protobuf parsers
# (sentry-sdk, opentelemetry-proto) and the OpenTelemetry SDK with its OTLP/HTTP exporter (a
# test application sending GenAI spans to the daemon) under ${MODELWATCH_CACHE:-$HOME/.cache/modelwatch}/venv.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || need+=(prometheus)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "test-deps: missing packages: ${need[*]}; install them (apt-get install ${need[*]})" >&2
        exit 1
    fi
    echo "test-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cache="${MODELWATCH_CACHE:-$HOME/.cache/modelwatch}"
venv="$cache/venv"
if ! "$venv/bin/python" -c 'import sentry_sdk.envelope, opentelemetry.proto.collector.metrics.v1.metrics_service_pb2, opentelemetry.exporter.otlp.proto.http.trace_exporter' 2>/dev/null; then
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'sentry-sdk>=2,<3' \
        'opentelemetry-proto==1.45.2' 'opentelemetry-sdk==1.45.2' 'opentelemetry-exporter-otlp-proto-http==1.45.2'
fi
echo "test-deps: ok (venv $venv)"
