#!/usr/bin/env bash
# deploy/litellm/install.sh [--db] — the LiteLLM proxy in an isolated venv,
# .tools/litellm-<version>/, installed only from the committed hash lock:
#   pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock
# --db also installs requirements-db.lock (prisma + nodeenv, for the proxy's
# PostgreSQL database: virtual keys, teams, budgets) into the same venv.
#
# Idempotent: a marker file per version and lock checksum; a second run is a no-op.
# Prints the time it took. Refuses the two malicious releases (1.82.7, 1.82.8) and
# fails when the venv ends up with a .pth file that is not on the allow-list
# (that is how those releases ran code at every Python start-up).
source "$(dirname "$0")/../local/lib.sh"

HERE="$ROOT/deploy/litellm"
LOCK="$HERE/requirements.lock"
DBLOCK="$HERE/requirements-db.lock"
VENV="$TOOLS/litellm-$LITELLM_VERSION"
# .pth files a clean venv with this lock has (setuptools' own shim). Anything else fails the install.
PTH_ALLOW='^(distutils-precedence\.pth)$'

want_db=0
[ "${1:-}" = "--db" ] && want_db=1

case "$LITELLM_VERSION" in
  1.82.7|1.82.8) die "litellm $LITELLM_VERSION was a malicious release (.pth credential stealer); pin another version" ;;
esac
grep -q "^litellm==$LITELLM_VERSION " "$LOCK" \
  || die "$LOCK does not pin litellm==$LITELLM_VERSION; regenerate it (see its header) or set LITELLM_VERSION to the locked version"

# find_python: CPython 3.11, the version the lock was resolved for.
find_python() {
  local c
  for c in "${LITELLM_PYTHON:-}" python3.11 /root/.pyenv/versions/3.11*/bin/python3.11 /usr/bin/python3.11 python3; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
    if "$c" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      "$c" -c "import sys; print(sys.executable)"; return 0
    fi
  done
  return 1
}

lock_sum() { cat "$@" | sha256sum | cut -c1-16; }

check_pth() {
  local bad
  bad=$(find "$VENV/lib" -name '*.pth' -printf '%f\n' | grep -Ev "$PTH_ALLOW" || true)
  if [ -n "$bad" ]; then
    find "$VENV/lib" -name '*.pth' >&2
    die "unexpected .pth file(s) in $VENV: $bad — do not run this venv; inspect and delete it"
  fi
}

pip_locked() { # pip_locked LOCKFILE
  # --isolated would also drop the CA bundle settings of this machine; the hashes are
  # what makes the install safe, so ordinary pip configuration is kept.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --require-hashes --no-deps --only-binary=:all: -r "$1"
}

tools_lock litellm
base_marker="$VENV/.complete-$(lock_sum "$LOCK")"
db_marker="$VENV/.complete-db-$(lock_sum "$LOCK" "$DBLOCK")"

if [ -f "$base_marker" ] && { [ $want_db = 0 ] || [ -f "$db_marker" ]; }; then
  log "litellm $LITELLM_VERSION already installed in $VENV (0s)"
  exit 0
fi

t0=$SECONDS
if [ ! -f "$base_marker" ]; then
  py=$(find_python) || die "CPython 3.11 not found (set LITELLM_PYTHON=/path/to/python3.11)"
  log "litellm $LITELLM_VERSION: new venv in $VENV with $py ($("$py" -V 2>&1))"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  log "litellm $LITELLM_VERSION: pip install --require-hashes --no-deps -r deploy/litellm/requirements.lock"
  pip_locked "$LOCK" || die "hash-checked install failed (see pip output above)"
  check_pth
  "$VENV/bin/python" -m pip check --disable-pip-version-check >&2 || die "pip check: the lock is inconsistent"
  got=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')
  [ "$got" = "$LITELLM_VERSION" ] || die "installed litellm is $got, want $LITELLM_VERSION"
  touch "$base_marker"
  log "litellm $LITELLM_VERSION: installed in $((SECONDS - t0))s, venv $(du -sh "$VENV" | cut -f1)"
fi

if [ $want_db = 1 ] && [ ! -f "$db_marker" ]; then
  t1=$SECONDS
  log "litellm $LITELLM_VERSION: database extras from deploy/litellm/requirements-db.lock"
  pip_locked "$DBLOCK" || die "hash-checked install of the database extras failed"
  check_pth
  touch "$db_marker"
  log "litellm $LITELLM_VERSION: database extras installed in $((SECONDS - t1))s"
fi
log "litellm $LITELLM_VERSION ready in $((SECONDS - t0))s: $VENV/bin/litellm"
