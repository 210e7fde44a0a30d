#!/usr/bin/env bash
# A local Redis Cluster for the tests: 3 primaries + 3 replicas on
# 127.0.0.1:BASE..BASE+5 (BASE = FAIR_REDIS_CLUSTER_PORT, default 7100),
# daemonized, nothing saved to disk, state under FAIR_REDIS_CLUSTER_DIR
# (default /tmp/fair-redis-cluster), one directory per port. Replicas sync at
# once (repl-diskless-sync-delay 0; the default waits 5 s).
#
#   pnpm redis:cluster start    # idempotent: succeeds at once if a cluster is ok on BASE
#   pnpm redis:cluster status   # cluster_state of each node; exit 1 unless BASE says ok
#   pnpm redis:cluster stop     # shuts the 6 nodes down and removes the directory
#
# The tests find it through FAIR_TEST_REDIS_CLUSTER_URL (default
# redis://127.0.0.1:7100,redis://127.0.0.1:7101,redis://127.0.0.1:7102).
set -euo pipefail

BASE="${FAIR_REDIS_CLUSTER_PORT:-7100}"
DIR="${FAIR_REDIS_CLUSTER_DIR:-/tmp/fair-redis-cluster}"
HOST=127.0.0.1
WAIT_SECONDS=30

if ! [[ "$BASE" =~ ^[0-9]+$ ]] || [ "$BASE" -lt 1 ] || [ "$BASE" -gt 65530 ]; then
  echo "redis-cluster: FAILED: FAIR_REDIS_CLUSTER_PORT=$BASE is not a port (1-65530)" >&2
  exit 1
fi
case "$DIR" in
  "" | "/") echo "redis-cluster: FAILED: FAIR_REDIS_CLUSTER_DIR must be a directory of its own, not '$DIR'" >&2; exit 1 ;;
esac

PORTS=()
for i in 0 1 2 3 4 5; do PORTS+=("$((BASE + i))"); done
LAST="${PORTS[5]}"

fail() {
  echo "redis-cluster: FAILED: $*" >&2
  exit 1
}

# One redis-cli call, bounded (redis-cli 7.0 has no connect timeout of its own).
cli() {
  local port="$1"
  shift
  timeout 5 redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null
}

# The node's cluster_state ("ok", "fail"), or "" when nothing (cluster-enabled) answers.
cluster_state() {
  cli "$1" cluster info | tr -d '\r' | sed -n 's/^cluster_state://p' || true
}

# How many replicas the node knows of (CLUSTER NODES), counting itself when it
# is one only once its link to its primary is up.
replicas_seen() {
  local nodes link
  nodes="$(cli "$1" cluster nodes || true)"
  if [[ "$nodes" == *myself,slave* ]]; then
    link="$(cli "$1" info replication || true)"
    [[ "$link" == *master_link_status:up* ]] || { echo 0; return; }
  fi
  grep -cE '[ ,]slave ' <<<"$nodes" || true
}

answers() {
  [ "$(cli "$1" ping | tr -d '\r' || true)" = "PONG" ]
}

# Whether anything accepts TCP connections on the port.
listening() {
  timeout 1 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# Stops the nodes on our ports: SHUTDOWN NOSAVE to each cluster-enabled node that
# answers (never a standalone Redis someone else runs there), then SIGKILL to any
# redis-server whose pid file is still ours.
stop_nodes() {
  local port pidfile pid
  for port in "${PORTS[@]}"; do
    if [[ "$(cli "$port" info cluster || true)" == *cluster_enabled:1* ]]; then
      cli "$port" shutdown nosave >/dev/null || true
    fi
  done
  for port in "${PORTS[@]}"; do
    pidfile="$DIR/$port/redis.pid"
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [ "$(ps -p "$pid" -o comm= 2>/dev/null || true)" = "redis-server" ]; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

show_log() {
  local file="$1"
  if [ -s "$file" ]; then
    echo "--- last lines of $file:" >&2
    tail -n 15 "$file" >&2
  fi
}

start() {
  command -v redis-server >/dev/null 2>&1 || fail "redis-server is not installed (apt-get install redis-server)"
  command -v redis-cli >/dev/null 2>&1 || fail "redis-cli is not installed (apt-get install redis-tools)"

  if [ "$(cluster_state "$BASE")" = "ok" ]; then
    echo "redis-cluster: already ok on $HOST:$BASE-$LAST"
    return 0
  fi
  local port
  for port in "${PORTS[@]}"; do
    listening "$port" || continue
    if answers "$port"; then
      fail "a Redis already answers on $HOST:$port, but there is no healthy cluster on $HOST:$BASE; if it is a leftover of this script run 'pnpm redis:cluster stop', else choose other ports with FAIR_REDIS_CLUSTER_PORT"
    fi
    fail "port $HOST:$port is taken by a process that is not Redis; free it or choose other ports with FAIR_REDIS_CLUSTER_PORT"
  done

  # From here on, a failure stops what this run started (the logs stay in $DIR).
  local started=0
  trap 'if [ "$started" = 1 ]; then stop_nodes; fi' EXIT
  trap 'exit 130' INT TERM

  mkdir -p "$DIR"
  for port in "${PORTS[@]}"; do
    rm -rf "${DIR:?}/$port"
    mkdir -p "$DIR/$port"
    started=1
    if ! redis-server \
      --port "$port" --bind "$HOST" --daemonize yes \
      --dir "$DIR/$port" --pidfile "$DIR/$port/redis.pid" --logfile "$DIR/$port/redis.log" \
      --save "" --appendonly no --repl-diskless-sync-delay 0 \
      --cluster-enabled yes --cluster-node-timeout 2000 \
      --cluster-config-file "$DIR/$port/nodes.conf"; then
      fail "redis-server did not start on $HOST:$port (see $DIR/$port/redis.log)"
    fi
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do
      answers "$port" && break
      sleep 0.1
    done
    if ! answers "$port"; then
      show_log "$DIR/$port/redis.log"
      fail "redis-server on $HOST:$port did not answer within 5 s (port taken by another process? see $DIR/$port/redis.log; pick other ports with FAIR_REDIS_CLUSTER_PORT)"
    fi
  done

  local seeds=()
  for port in "${PORTS[@]}"; do seeds+=("$HOST:$port"); done
  if ! timeout 60 redis-cli --cluster create "${seeds[@]}" --cluster-yes --cluster-replicas 1 \
    >"$DIR/create.log" 2>&1; then
    show_log "$DIR/create.log"
    fail "'redis-cli --cluster create' failed (see $DIR/create.log); run 'pnpm redis:cluster stop' and start again"
  fi

  # cluster_state:ok comes before every node has learned of every replica:
  # wait for both, so a test may fail a primary over at once.
  local deadline=$((SECONDS + WAIT_SECONDS)) pending
  while :; do
    pending=()
    for port in "${PORTS[@]}"; do
      [ "$(cluster_state "$port")" = "ok" ] && [ "$(replicas_seen "$port")" = 3 ] || pending+=("$port")
    done
    [ "${#pending[@]}" = 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "after ${WAIT_SECONDS} s, nodes ${pending[*]} still do not report cluster_state:ok with 3 replicas linked (see $DIR/<port>/redis.log); run 'pnpm redis:cluster stop' and start again"
    fi
    sleep 0.2
  done

  started=0
  trap - EXIT INT TERM
  echo "redis-cluster: ok on $HOST:$BASE-$LAST"
}

stop() {
  stop_nodes
  rm -rf "${DIR:?}"
  echo "redis-cluster: stopped $HOST:$BASE-$LAST"
}

status() {
  local port state base_state
  for port in "${PORTS[@]}"; do
    state="$(cluster_state "$port")"
    echo "redis-cluster: $HOST:$port cluster_state:${state:-not running}"
  done
  base_state="$(cluster_state "$BASE")"
  [ "$base_state" = "ok" ]
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status (ports FAIR_REDIS_CLUSTER_PORT=$BASE..$LAST, dir FAIR_REDIS_CLUSTER_DIR=$DIR)" >&2
    exit 2
    ;;
esac
