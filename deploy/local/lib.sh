# shellcheck shell=bash
# Shared settings for the local stack scripts. Sourced, never run.
# Everything lives under the repository: tools in .tools/ (cached downloads and
# builds), data, logs and pid files in .data/ — both git-ignored.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=${AUDITLINE_TOOLS:-$ROOT/.tools}
DATA=${AUDITLINE_DATA:-$ROOT/.data}
mkdir -p "$TOOLS/bin" "$DATA/run" "$DATA/log"

# Pinned versions. Change here only; install.sh is idempotent per version.
KAFKA_VERSION=4.3.1          # org.apache.kafka:kafka_2.13 on Maven Central
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c   # github.com/minio/minio (no semver tags)
LITELLM_VERSION=${LITELLM_VERSION:-1.106.2}   # PyPI; hash lock deploy/litellm/requirements.lock
HELM_VERSION=v3.22.0         # helm.sh/helm/v3 (go install; renders deploy/helm in scripts/deploy-check.sh)
CHDB_VERSION=26.9.0          # PyPI chdb-core (ClickHouse 26.9.2.1); hash lock deploy/local/chdb-core.lock
TORCHWOOD_VERSION=v0.6.1     # filippo.io/torchwood: litewitness + witnessctl (C2SP tlog-witness); v0.10 needs Go 1.27

# Loopback ports (away from the defaults so a developer's own servers don't clash).
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
CH_TCP_PORT=${CH_TCP_PORT:-19000}
CH_HTTP_PORT=${CH_HTTP_PORT:-18123}
CH26_TCP_PORT=${CH26_TCP_PORT:-19100}   # the ClickHouse 26.x engine (chdb-core)
CH26_HTTP_PORT=${CH26_HTTP_PORT:-18124}
CH26_LIFETIME=${CH26_LIFETIME:-21600}   # seconds one chdb server process serves before it is renewed
MINIO_PORT=${MINIO_PORT:-19010}
MINIO_USER=${MINIO_USER:-auditline}
MINIO_PASSWORD=${MINIO_PASSWORD:-auditline-secret}
S3_BUCKET=${S3_BUCKET:-auditline-archive}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# tools_lock NAME: hold an exclusive lock ($TOOLS/.NAME.lock) until this
# script exits, so that two checkouts sharing one tools folder (AUDITLINE_TOOLS)
# never install the same tool at once: the second waits, then finds it
# installed. Debian packages share the lock "apt" (dpkg refuses a second
# apt-get while one runs).
tools_lock() {
  local held="_tools_lock_$1" fd
  [ -n "${!held:-}" ] && return 0   # a second flock of ours on a new descriptor would wait for ourselves
  exec {fd}>"$TOOLS/.$1.lock"
  flock "$fd"
  printf -v "$held" %s "$fd"
}

# as_root runs a command as root (sudo when we are not root).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# pid_alive NAME: true when .data/run/NAME.pid names a live process.
pid_alive() {
  local f="$DATA/run/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# wait_healthy NAME TIMEOUT LOGFILE CMD...: poll CMD until it succeeds; on timeout
# print the server log tail and fail.
wait_healthy() {
  local name=$1 timeout=$2 logf=$3; shift 3
  local start=$SECONDS
  while ! "$@" >/dev/null 2>&1; do
    if ! pid_alive "$name"; then
      log "$name exited during start-up; last lines of $logf:"; tail -n 40 "$logf" >&2 || true
      exit 1
    fi
    if (( SECONDS - start > timeout )); then
      log "$name not healthy after ${timeout}s; last lines of $logf:"; tail -n 40 "$logf" >&2 || true
      exit 1
    fi
    sleep 0.3
  done
  log "$name healthy in $((SECONDS - start))s (log: $logf)"
}
