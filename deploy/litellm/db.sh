#!/usr/bin/env bash
# deploy/litellm/db.sh [start|url|check] — a private PostgreSQL for the LiteLLM proxy's
# database (virtual keys, teams, budgets), under .data/litellm-postgres on 127.0.0.1.
#   start  initdb on first use, start postgres (pid file .data/run/litellm-postgres.pid,
#          log .data/log/litellm-postgres.log), create database "litellm"
#   url    print the DATABASE_URL to give LiteLLM
#   check  try the Prisma toolchain LiteLLM needs (prisma generate) and print why it fails
# Stop with: deploy/local/stop.sh litellm-postgres
#
# Finding (LiteLLM 1.106.2, prisma 0.15.0, 2026-11-22): PostgreSQL runs fine here, but
# the proxy cannot use it offline: the Prisma CLI downloads its Rust engines from
# binaries.prisma.sh at first use, which this machine cannot reach, and no package on
# PyPI, npm or Debian ships those engines. See docs/litellm.md, "Database".
source "$(dirname "$0")/../local/lib.sh"

PG_PORT=${LITELLM_PG_PORT:-15432}
PG_DIR="$DATA/litellm-postgres"
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_USER=postgres   # initdb and postgres refuse to run as root
VENV="$TOOLS/litellm-$LITELLM_VERSION"

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }

start_pg() {
  [ -x "$PG_BIN/postgres" ] || { as_root apt-get install -y -q postgresql >/dev/null || die "apt-get install postgresql failed"; PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); }
  if pid_alive litellm-postgres; then log "litellm-postgres already running"; return; fi
  local logf="$DATA/log/litellm-postgres.log"
  if [ ! -f "$PG_DIR/PG_VERSION" ]; then
    mkdir -p "$PG_DIR"; [ "$(id -u)" = 0 ] && chown "$PG_USER" "$PG_DIR"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR" -U litellm --auth=trust -E UTF8 --locale=C.UTF-8 >"$DATA/log/litellm-postgres-initdb.log" 2>&1 \
      || { tail -20 "$DATA/log/litellm-postgres-initdb.log"; die "initdb failed"; }
  fi
  : > "$logf"; [ "$(id -u)" = 0 ] && chown "$PG_USER" "$logf"
  as_pg "$PG_BIN/postgres" -D "$PG_DIR" -h 127.0.0.1 -p "$PG_PORT" -k "$PG_DIR" >"$logf" 2>&1 &
  echo $! > "$DATA/run/litellm-postgres.pid"
  wait_healthy litellm-postgres 30 "$logf" "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U litellm -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='litellm'" | grep -q 1 \
    || "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U litellm litellm
  log "postgres ready: $(db_url)"
}

db_url() { echo "postgresql://litellm@127.0.0.1:$PG_PORT/litellm"; }

check_prisma() {
  "$ROOT/deploy/litellm/install.sh" --db
  local home="$DATA/litellm-home" schema="$VENV/lib/python3.11/site-packages/litellm/proxy/schema.prisma"
  mkdir -p "$home"
  log "prisma generate (this is what the proxy runs at start-up when DATABASE_URL is set)"
  (cd "$(dirname "$schema")" && env -i PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" HOME="$home" \
     DATABASE_URL="$(db_url)" timeout 300 "$VENV/bin/prisma" generate --schema "$schema") 2>&1 | tail -5
}

case "${1:-start}" in
  start) start_pg ;;
  url) db_url ;;
  check) check_prisma ;;
  *) die "usage: db.sh [start|url|check]" ;;
esac
