#!/usr/bin/env bash
# Checks the running gateway against its own OpenAPI document with
# schemathesis (from PyPI, installed into target/openapi-venv): no 5xx and no
# response outside the documented statuses, types, headers and schemas.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

ensure_rust
cargo build --locked -p logs-sse-gateway
VENV="$ROOT/target/openapi-venv"
REQUIREMENTS="$ROOT/gateway/tests/openapi/requirements.txt"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQUIREMENTS" "$VENV/.requirements"; then
  section "installing schemathesis into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/.requirements"
fi
cd "$ROOT/gateway/tests/openapi"
GATEWAY_BIN="$ROOT/target/debug/logs-sse-gateway" "$VENV/bin/python" -m pytest -p no:cacheprovider -q
