#!/usr/bin/env bash
# Starts a local fnhost cluster on 127.0.0.1, as a new user would try it:
#   one redis-server (port 6390) and 3 nodes (RTMFP udp 1941-1943, HTTP 8081-8083).
# Then, in another terminal:
#   npx fnhost deploy functions/ --redis redis://127.0.0.1:6390
#   npx fnhost status --redis redis://127.0.0.1:6390
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT=${REDIS_PORT:-6390}
NODES=${NODES:-3}
REDIS_URL="redis://127.0.0.1:${REDIS_PORT}"
# Each background job in its own process group, so a node and its log filter stop together.
set -m

cleanup() {
  trap - INT TERM EXIT
  for pgid in $(jobs -p); do kill -TERM -- "-$pgid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

for i in $(seq 1 "$NODES"); do
  npx fnhost node --redis "$REDIS_URL" \
    --rtmfp "127.0.0.1:$((1940 + i))" --http "127.0.0.1:$((8080 + i))" \
    --public-address "127.0.0.1:$((1940 + i))" 2>&1 | sed -u "s/^/[node $i] /" &
done

echo "cluster up: redis $REDIS_URL, nodes on udp 1941-$((1940 + NODES)); Ctrl-C to stop" >&2
wait
