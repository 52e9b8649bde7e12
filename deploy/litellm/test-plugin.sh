#!/usr/bin/env bash
# deploy/litellm/test-plugin.sh — lint and unit-test the LiteLLM plugin (auditline_litellm/).
# Installs the pinned, hash-checked test tools (tools.lock: pytest, ruff) into
# .tools/pytools-<lock sum>/ once, then runs `ruff check`, `ruff format --check` and
# pytest on deploy/litellm/tests. Tests that load the plugin inside the real LiteLLM
# use the proxy venv (deploy/litellm/install.sh); AUDITLINE_REQUIRE_SERVERS=1 turns
# their skip into a failure.
source "$(dirname "$0")/../local/lib.sh"

HERE="$ROOT/deploy/litellm"
LOCK="$HERE/tools.lock"
sum=$(sha256sum "$LOCK" | cut -c1-12)
VENV="$TOOLS/pytools-$sum"

if [ ! -f "$VENV/.complete" ]; then
  t0=$SECONDS
  py=""
  for c in "${LITELLM_PYTHON:-}" python3.11 /root/.pyenv/versions/3.11*/bin/python3.11 /usr/bin/python3.11; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then py=$c; break; fi
  done
  [ -n "$py" ] || die "CPython 3.11 not found (set LITELLM_PYTHON=/path/to/python3.11)"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --require-hashes --no-deps --only-binary=:all: -r "$LOCK" || die "hash-checked install of $LOCK failed"
  touch "$VENV/.complete"
  log "plugin test tools installed in $((SECONDS - t0))s: $VENV"
fi

cd "$HERE"
log "ruff check + ruff format --check (auditline_litellm, tests)"
"$VENV/bin/ruff" check auditline_litellm tests
"$VENV/bin/ruff" format --check auditline_litellm tests
export AUDITLINE_LITELLM_VENV="${AUDITLINE_LITELLM_VENV:-$TOOLS/litellm-$LITELLM_VERSION}"
log "pytest deploy/litellm/tests"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
