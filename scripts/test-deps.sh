#!/usr/bin/env bash
# Installs what the receiver tests need, idempotently: Prometheus and promtool (Debian package
# `prometheus`) and a Python venv with the official envelope and protobuf parsers (sentry-sdk,
# opentelemetry-proto) under ${MODELWATCH_CACHE:-$HOME/.cache/modelwatch}/venv.
# Tests that need them skip with a message when they are missing.
set -euo pipefail

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    if command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "test-deps: no apt-get; install prometheus and promtool by hand" >&2
    fi
fi

cache="${MODELWATCH_CACHE:-$HOME/.cache/modelwatch}"
venv="$cache/venv"
if ! "$venv/bin/python" -c 'import sentry_sdk.envelope, opentelemetry.proto.collector.metrics.v1.metrics_service_pb2' 2>/dev/null; then
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'sentry-sdk>=2,<3' 'opentelemetry-proto>=1.27,<2'
fi
echo "test-deps: ok (venv $venv)"
