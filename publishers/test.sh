#!/usr/bin/env bash
# Runs the publisher SDK test suites (pytest, node --test) against the real
# gateway binary. Builds no Rust: set GATEWAY_BIN or build it first with
#   cargo build -p logs-sse-gateway
# Installs what the suites need on first use: a venv with pytest under
# python/.venv, and `npm ci` in node/.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/target/debug/logs-sse-gateway}"
if [[ ! -x "$GATEWAY_BIN" ]]; then
  echo "error: gateway binary not found at $GATEWAY_BIN; run 'cargo build -p logs-sse-gateway' or set GATEWAY_BIN" >&2
  exit 1
fi

python_suite() {
  cd "$HERE/python"
  local py=.venv/bin/python
  if ! "$py" -c 'import pytest, logs_sse_publisher' 2>/dev/null; then
    if python3 -m venv .venv 2>/dev/null; then
      "$py" -m pip install --quiet --disable-pip-version-check -e '.[test]'
    else
      # No venv module (e.g. Debian without python3-venv): install pytest
      # into a private directory instead and import the SDK from src/.
      echo "python3 -m venv unavailable; installing pytest into python/.venv/site" >&2
      rm -rf .venv && mkdir -p .venv
      python3 -m pip install --quiet --disable-pip-version-check --target .venv/site pytest
      export PYTHONPATH="$PWD/src:$PWD/.venv/site${PYTHONPATH:+:$PYTHONPATH}"
      py=python3
    fi
  fi
  "$py" -m pytest
}

node_suite() {
  cd "$HERE/node"
  if [[ ! -d node_modules ]]; then
    npm ci --no-audit --no-fund
  fi
  # Plain JavaScript with hand-written declarations: no build step; the
  # declarations are compiled by tsc inside the suite (types.test.mjs).
  node --test test/*.test.mjs
}

status=0
( python_suite ) || status=1
( node_suite ) || status=1
exit "$status"
