#!/usr/bin/env bash
# deploy/litellm/capture/run.sh [case,case,...] — record the exact HTTP bodies and headers
# LiteLLM sends to a generic_api endpoint (all three log_formats at once) and to the
# alert webhook, for every case in drive.py, into deploy/litellm/captured/.
#
# Starts its own fakeupstream and LiteLLM (with a generated config under
# .data/litellm-capture/) and stops the proxy at the end. The capture server runs inside
# drive.py on 127.0.0.1:$CAPTURE_PORT. Takes about 4 minutes.
source "$(dirname "$0")/../../local/lib.sh"

HERE="$ROOT/deploy/litellm"
CAPTURE_PORT=${CAPTURE_PORT:-18089}
OUT="$DATA/litellm-capture"
VENV="$TOOLS/litellm-$LITELLM_VERSION"

"$HERE/install.sh"
pid_alive litellm && die "a LiteLLM proxy is already running (stop it: deploy/local/stop.sh litellm)"
[ "${1:-}" != budget_sdk ] || export CAPTURE_MAX_BUDGET=${CAPTURE_MAX_BUDGET:-0.0002}
"$VENV/bin/python" "$HERE/capture/drive.py" config --base "$HERE/config.yaml" --out "$OUT" --capture-port "$CAPTURE_PORT"

export LITELLM_CONFIG="$OUT/config.yaml"
# No credentials in the URL: LiteLLM's aiohttp transport then fails every alert with
# "Cannot combine AUTHORIZATION header with AUTH argument or credentials encoded in URL".
export WEBHOOK_URL="http://127.0.0.1:$CAPTURE_PORT/alerts?token=alert-token"
export AUDITLINE_LITELLM_ENDPOINT="http://127.0.0.1:$CAPTURE_PORT/generic/lossless"   # auditline_logger.py
export AUDITLINE_LITELLM_AUTH="Bearer capture-token-lossless"
"$HERE/start.sh" all
trap '"$ROOT/deploy/local/stop.sh" litellm' EXIT
source "$DATA/litellm.env"
# A full run replaces every captured file; a run of named cases replaces only theirs.
if [ -z "${1:-}" ]; then rm -rf "$HERE/captured"; else for c in ${1//,/ }; do rm -f "$HERE/captured/$c".*; done; fi

LITELLM_LOG_FILE="$DATA/log/litellm.log" "$VENV/bin/python" "$HERE/capture/drive.py" run \
  --raw "$OUT/raw" --captured "$HERE/captured" --capture-port "$CAPTURE_PORT" --cases "${1:-}"
cp "$DATA/log/litellm.log" "$OUT/litellm.log"
log "captured bodies in deploy/litellm/captured/, raw requests in $OUT/raw, proxy log in $OUT/litellm.log"
