#!/usr/bin/env bash
# Renders deploy/nginx/logs-sse.conf for a local run: the upstream nodes,
# the listen port, the certificate and the app folder replaced, nothing
# else changed. Used by scripts/cluster-demo.sh (and so by its test).
#
#   render.sh OUT LISTEN_PORT CERT KEY APP_DIR NODE_ADDR...
set -euo pipefail
out="$1" port="$2" cert="$3" key="$4" app="$5"
shift 5
servers=""
for node in "$@"; do
  servers+="    server $node max_fails=1 fail_timeout=5s;\n"
done
src="$(dirname "${BASH_SOURCE[0]}")/logs-sse.conf"
awk -v servers="$servers" '
  /^    server gateway-1:3002/ { printf "%s", servers; next }
  /^    server gateway-[0-9]+:3002/ { next }
  { print }
' "$src" | sed \
  -e "s|listen 443 ssl http2;|listen 127.0.0.1:$port ssl http2;|" \
  -e "s|/etc/nginx/tls/tls.crt|$cert|" \
  -e "s|/etc/nginx/tls/tls.key|$key|" \
  -e "s|root /srv/logs-sse-app;|root $app;|" >"$out"
