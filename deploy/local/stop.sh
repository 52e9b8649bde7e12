#!/usr/bin/env bash
# stop.sh [kafka|clickhouse|clickhouse26|minio|litellm|all] — stop only the processes our scripts
# started (by pid file), gracefully, then by force after a timeout.
source "$(dirname "$0")/lib.sh"

stop_one() {
  local name=$1 f="$DATA/run/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in 20s; killing"; kill -9 "$pid" 2>/dev/null || true; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

what=${1:-all}
case "$what" in
  all) for n in auditline litellm fakeupstream kafka clickhouse clickhouse26 minio; do stop_one "$n"; done ;;
  *) stop_one "$what" ;;
esac
