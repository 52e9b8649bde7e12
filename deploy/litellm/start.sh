#!/usr/bin/env bash
# deploy/litellm/start.sh [fakeupstream|litellm|all] — start the fake OpenAI-compatible
# upstream and the LiteLLM proxy on 127.0.0.1 (pid files .data/run/{fakeupstream,litellm}.pid,
# logs .data/log/{fakeupstream,litellm}.log). Safe to run twice: a server whose pid file
# names a live process is left alone. Stop with deploy/local/stop.sh litellm|fakeupstream.
#
# Environment (defaults in brackets):
#   LITELLM_PORT [14000]  FAKEUPSTREAM_PORT [18090]
#   LITELLM_CONFIG [deploy/litellm/config.yaml]
#   AUDITLINE_LITELLM_ENDPOINT [http://127.0.0.1:8080/v1/litellm]   generic_api endpoint
#   AUDITLINE_INGEST_TOKEN [dev-ingest-token] → AUDITLINE_LITELLM_AUTH "Bearer <token>"
#   WEBHOOK_URL [http://127.0.0.1:8080/v1/litellm/alerts?access_token=<AUDITLINE_ALERTS_TOKEN>]
#       budget alert endpoint. LiteLLM sends alerts with no Authorization header and fails
#       every alert when the URL holds user:password@, so the token travels as the
#       access_token query parameter (auditline ingest: auth.query_token: true).
#   AUDITLINE_ALERTS_TOKEN [= AUDITLINE_INGEST_TOKEN]
#   LITELLM_MASTER_KEY [sk-auditline-local-master]
#   DATABASE_URL [unset]   set it (e.g. by deploy/litellm/db.sh) for virtual keys, teams, budgets
#   LITELLM_START_TIMEOUT [120]
#   LITELLM_NUM_WORKERS [1]   proxy worker processes (each has its own spool slot and emitter id)
#   LITELLM_WORKER_HEALTHCHECK_TIMEOUT [60]   uvicorn's worker health-check timeout when NUM_WORKERS > 1
#   AUDITLINE_SPOOL_DIR [.data/litellm-spool]   the plugin's spool; AUDITLINE_SPOOL_*, AUDITLINE_SEND_*,
#       AUDITLINE_RETRY_MAX, AUDITLINE_REFUSED_RETRY_MAX, AUDITLINE_CONFIG_INTERVAL and
#       AUDITLINE_PLUGIN_METRICS_PORT/HOST are passed through when set (deploy/litellm/auditline_litellm/settings.py)
# Writes .data/litellm.env (LITELLM_URL, LITELLM_MASTER_KEY, FAKEUPSTREAM_URL) for tests.
source "$(dirname "$0")/../local/lib.sh"

HERE="$ROOT/deploy/litellm"
LITELLM_PORT=${LITELLM_PORT:-14000}
FAKEUPSTREAM_PORT=${FAKEUPSTREAM_PORT:-18090}
VENV="$TOOLS/litellm-$LITELLM_VERSION"

start_fakeupstream() {
  local bin="$TOOLS/bin/fakeupstream" logf="$DATA/log/fakeupstream.log"
  if pid_alive fakeupstream; then log "fakeupstream already running (pid $(cat "$DATA/run/fakeupstream.pid"))"; return; fi
  if [ ! -x "$bin" ] || [ -n "$(find "$HERE/fakeupstream" -name '*.go' -newer "$bin")" ]; then
    (cd "$ROOT" && go build -o "$bin" ./deploy/litellm/fakeupstream) || die "go build of fakeupstream failed"
  fi
  : > "$logf"
  nohup "$bin" --addr "127.0.0.1:$FAKEUPSTREAM_PORT" >"$logf" 2>&1 &
  echo $! > "$DATA/run/fakeupstream.pid"
  wait_healthy fakeupstream 20 "$logf" curl -fsS "http://127.0.0.1:$FAKEUPSTREAM_PORT/health"
}

# litellm_env: the environment the proxy runs with. Nothing of the caller's provider
# credentials is passed on (env -i), and every remote fetch LiteLLM knows how to skip is off.
litellm_env() {
  local token=${AUDITLINE_INGEST_TOKEN:-dev-ingest-token}
  printf '%s\n' \
    "PATH=$VENV/bin:/usr/local/bin:/usr/bin:/bin" \
    "HOME=$DATA/litellm-home" \
    "LANG=C.UTF-8" \
    "LITELLM_LOCAL_MODEL_COST_MAP=True" \
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS=True" \
    "LITELLM_LOCAL_AUTOROUTER_PRESETS=True" \
    "LITELLM_LOCAL_POLICY_TEMPLATES=True" \
    "LITELLM_LOCAL_BLOG_POSTS=True" \
    "LITELLM_DONT_SHOW_FEEDBACK_BOX=True" \
    "LITELLM_LOG=${LITELLM_LOG:-INFO}" \
    "HF_HUB_OFFLINE=1" \
    "NO_PROXY=127.0.0.1,localhost" \
    "AUDITLINE_LITELLM_ENDPOINT=${AUDITLINE_LITELLM_ENDPOINT:-http://127.0.0.1:8080/v1/litellm}" \
    "AUDITLINE_LITELLM_AUTH=${AUDITLINE_LITELLM_AUTH:-Bearer $token}" \
    "WEBHOOK_URL=${WEBHOOK_URL:-http://127.0.0.1:8080/v1/litellm/alerts?access_token=${AUDITLINE_ALERTS_TOKEN:-$token}}" \
    "LITELLM_MASTER_KEY=${LITELLM_MASTER_KEY:-sk-auditline-local-master}" \
    "FAKEUPSTREAM_API_BASE=${FAKEUPSTREAM_API_BASE:-http://127.0.0.1:$FAKEUPSTREAM_PORT/v1}" \
    "FAKEUPSTREAM_API_KEY=sk-fake-not-a-real-key"
  [ -z "${DATABASE_URL:-}" ] || printf '%s\n' "DATABASE_URL=$DATABASE_URL" "STORE_MODEL_IN_DB=False"
  # The plugin's spool (auditline_litellm, deploy/litellm/auditline_litellm/settings.py).
  printf '%s\n' "AUDITLINE_SPOOL_DIR=${AUDITLINE_SPOOL_DIR:-$DATA/litellm-spool}"
  # Extra settings for tests (batch size, flush interval, plugin tuning ...), passed through when set.
  local v
  for v in DEFAULT_BATCH_SIZE DEFAULT_FLUSH_INTERVAL_SECONDS PRISMA_QUERY_ENGINE_BINARY PRISMA_SCHEMA_ENGINE_BINARY \
           PRISMA_BINARY_CACHE_DIR PRISMA_HOME_DIR PRISMA_CLI_BINARY DISABLE_SCHEMA_UPDATE \
           AUDITLINE_SPOOL_MAX_BYTES AUDITLINE_SPOOL_SEGMENT_BYTES AUDITLINE_SPOOL_FSYNC AUDITLINE_SPOOL_FSYNC_INTERVAL \
           AUDITLINE_SEND_TIMEOUT AUDITLINE_SEND_MAX_EVENTS AUDITLINE_SEND_MAX_BYTES AUDITLINE_SEND_LINGER \
           AUDITLINE_RETRY_MAX AUDITLINE_REFUSED_RETRY_MAX AUDITLINE_CONFIG_INTERVAL \
           AUDITLINE_PLUGIN_METRICS_PORT AUDITLINE_PLUGIN_METRICS_HOST; do
    [ -z "${!v:-}" ] || printf '%s=%s\n' "$v" "${!v}"
  done
}

start_litellm() {
  local config=${LITELLM_CONFIG:-$HERE/config.yaml} logf="$DATA/log/litellm.log"
  "$HERE/install.sh" ${DATABASE_URL:+--db}
  if pid_alive litellm; then log "litellm already running (pid $(cat "$DATA/run/litellm.pid"))"; return; fi
  [ -f "$config" ] || die "config $config not found"
  mkdir -p "$DATA/litellm-home"
  local envs=(); mapfile -t envs < <(litellm_env)
  # With several workers uvicorn restarts a worker that does not answer its health
  # check within 5 s, which a busy machine turns into a restart loop during start-up.
  local hc=""
  [ "${LITELLM_NUM_WORKERS:-1}" -le 1 ] || hc=${LITELLM_WORKER_HEALTHCHECK_TIMEOUT:-60}
  : > "$logf"
  # cd to the data folder: LiteLLM writes a few files into its working directory.
  (cd "$DATA/litellm-home" && exec env -i "${envs[@]}" nohup "$VENV/bin/litellm" --config "$config" \
      --host 127.0.0.1 --port "$LITELLM_PORT" --num_workers "${LITELLM_NUM_WORKERS:-1}" \
      ${hc:+--timeout_worker_healthcheck "$hc"}) >"$logf" 2>&1 &
  echo $! > "$DATA/run/litellm.pid"
  wait_healthy litellm "${LITELLM_START_TIMEOUT:-120}" "$logf" \
    curl -fsS "http://127.0.0.1:$LITELLM_PORT/health/liveliness"
  cat > "$DATA/litellm.env" <<ENV
export LITELLM_URL=http://127.0.0.1:$LITELLM_PORT
export LITELLM_MASTER_KEY=${LITELLM_MASTER_KEY:-sk-auditline-local-master}
export FAKEUPSTREAM_URL=http://127.0.0.1:$FAKEUPSTREAM_PORT
ENV
}

what=${1:-all}
case "$what" in
  fakeupstream) start_fakeupstream ;;
  litellm) start_litellm ;;
  all) start_fakeupstream; start_litellm ;;
  *) die "unknown server '$what' (want fakeupstream, litellm or all)" ;;
esac
