#!/usr/bin/env bash
# Starts a local fnhost cluster on 127.0.0.1, as a new user would try it:
#   one redis-server (port 6390) and 3 nodes (RTMFP udp 1941-1943, HTTP 8081-8083).
# Then, in another terminal:
#   npx fnhost deploy functions/ --redis redis://127.0.0.1:6390
#   npx fnhost status --redis redis://127.0.0.1:6390
# Ctrl-C stops everything it started: the nodes first (they leave the cluster while Redis still
# answers, each within its [node] shutdown_ms), then Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT=${REDIS_PORT:-6390}
NODES=${NODES:-3}
# Node i listens on RTMFP_BASE+i (UDP) and HTTP_BASE+i (TCP).
RTMFP_BASE=${RTMFP_BASE:-1940}
HTTP_BASE=${HTTP_BASE:-8080}
REDIS_URL="redis://127.0.0.1:${REDIS_PORT}"
# Each background job in its own process group, so a node and its log filter stop together,
# and Ctrl-C (sent to this script's group) reaches only the script, which stops them in order.
set -m

REDIS_JOB=""
NODE_JOBS=()
cleanup() {
  trap - INT TERM EXIT
  for pgid in "${NODE_JOBS[@]}"; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
  for pgid in "${NODE_JOBS[@]}"; do
    while kill -0 -- "-$pgid" 2>/dev/null; do sleep 0.1; done
  done
  if [ -n "$REDIS_JOB" ]; then kill -TERM -- "-$REDIS_JOB" 2>/dev/null || true; fi
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
REDIS_JOB=$!
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

for i in $(seq 1 "$NODES"); do
  npx fnhost node --redis "$REDIS_URL" \
    --rtmfp "127.0.0.1:$((RTMFP_BASE + i))" --http "127.0.0.1:$((HTTP_BASE + i))" \
    --public-address "127.0.0.1:$((RTMFP_BASE + i))" 2>&1 | sed -u "s/^/[node $i] /" &
  NODE_JOBS+=("$(jobs -p %+)")
done

echo "cluster up: redis $REDIS_URL, nodes on udp $((RTMFP_BASE + 1))-$((RTMFP_BASE + NODES)); Ctrl-C to stop" >&2
wait
