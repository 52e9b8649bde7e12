#!/usr/bin/env bash
# install.sh [kafka|clickhouse|clickhouse26|minio|chromium|litellm|helm|litewitness|zookeeper|all] — install what is missing.
# Idempotent: each tool is cached under .tools/ per pinned version; Debian packages
# are installed only when absent. Prints the time each install took.
source "$(dirname "$0")/lib.sh"

install_kafka() {
  tools_lock kafka
  local dir="$TOOLS/kafka-$KAFKA_VERSION"
  if [ -f "$dir/.complete" ]; then return; fi
  command -v java >/dev/null || die "java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
  command -v mvn >/dev/null || as_root apt-get install -y -q maven >/dev/null
  log "kafka $KAFKA_VERSION: fetching jars from Maven Central"
  local t0=$SECONDS
  rm -rf "$dir" && mkdir -p "$dir/libs"
  cat > "$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>auditline.local</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
  (cd "$dir" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory=libs -DincludeScope=runtime) \
    || die "maven could not fetch kafka $KAFKA_VERSION (see output above)"
  touch "$dir/.complete"
  log "kafka $KAFKA_VERSION: $(du -sh "$dir/libs" | cut -f1) of jars in $((SECONDS - t0))s"
}

install_clickhouse() {
  tools_lock apt
  if command -v clickhouse-server >/dev/null && command -v clickhouse-client >/dev/null; then return; fi
  local t0=$SECONDS
  log "clickhouse: apt-get install clickhouse-server clickhouse-client"
  as_root apt-get update -q >/dev/null || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q clickhouse-server clickhouse-client >/dev/null
  log "clickhouse: $(clickhouse-server --version 2>/dev/null | head -1) in $((SECONDS - t0))s"
}

install_minio() {
  tools_lock minio
  local bin="$TOOLS/minio-$MINIO_VERSION/minio"
  if [ -x "$bin" ]; then ln -sf "$bin" "$TOOLS/bin/minio"; return; fi
  local t0=$SECONDS
  log "minio: go install github.com/minio/minio@$MINIO_VERSION (cold: ~3 min, 1.5 GB RAM)"
  mkdir -p "$(dirname "$bin")"
  # Built outside the project module: it is a tool, not a dependency.
  (cd "$TOOLS" && GOBIN="$(dirname "$bin")" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION") \
    || die "go install of minio failed"
  ln -sf "$bin" "$TOOLS/bin/minio"
  log "minio: built in $((SECONDS - t0))s"
}

install_helm() {
  tools_lock helm
  local bin="$TOOLS/helm-$HELM_VERSION/helm"
  if [ -x "$bin" ]; then ln -sf "$bin" "$TOOLS/bin/helm"; return; fi
  local t0=$SECONDS
  log "helm: go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION (cold: ~3 min)"
  mkdir -p "$(dirname "$bin")"
  # Built outside the project module, like minio: a tool, not a dependency.
  (cd "$TOOLS" && GOBIN="$(dirname "$bin")" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") \
    || die "go install of helm failed"
  ln -sf "$bin" "$TOOLS/bin/helm"
  log "helm: built in $((SECONDS - t0))s"
}

# litewitness and witnessctl: an independent C2SP tlog-witness (SQLite + ssh-agent)
# that the archive's witness tests interoperate with. Built in its own module
# (a tool, not a dependency); go.sum of the tool is checked by the Go checksum
# database (sum.golang.org), which is the hash check here.
install_litewitness() {
  tools_lock litewitness
  local dir="$TOOLS/torchwood-$TORCHWOOD_VERSION"
  if [ -x "$dir/litewitness" ] && [ -x "$dir/witnessctl" ]; then
    ln -sf "$dir/litewitness" "$TOOLS/bin/litewitness"; ln -sf "$dir/witnessctl" "$TOOLS/bin/witnessctl"; return
  fi
  command -v ssh-agent >/dev/null && command -v ssh-keygen >/dev/null \
    || as_root apt-get install -y -q openssh-client >/dev/null
  local t0=$SECONDS
  log "litewitness: go install filippo.io/torchwood/cmd/{litewitness,witnessctl}@$TORCHWOOD_VERSION (~40 s)"
  mkdir -p "$dir"
  (cd "$TOOLS" && GOBIN="$dir" GOFLAGS=-mod=mod GOTOOLCHAIN=local go install \
      "filippo.io/torchwood/cmd/litewitness@$TORCHWOOD_VERSION" "filippo.io/torchwood/cmd/witnessctl@$TORCHWOOD_VERSION") \
    || die "go install of litewitness failed"
  ln -sf "$dir/litewitness" "$TOOLS/bin/litewitness"; ln -sf "$dir/witnessctl" "$TOOLS/bin/witnessctl"
  log "litewitness: built in $((SECONDS - t0))s"
}

install_chromium() {
  tools_lock apt
  if command -v chromium >/dev/null; then return; fi
  local t0=$SECONDS
  log "chromium: apt-get install chromium"
  as_root apt-get update -q >/dev/null || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q chromium >/dev/null
  log "chromium: installed in $((SECONDS - t0))s"
}

# install_clickhouse26: PyPI's chdb-core (ClickHouse 26.x as a library) in an
# isolated venv, only from the committed hash lock.
install_clickhouse26() {
  tools_lock clickhouse26
  local venv="$TOOLS/chdb-core-$CHDB_VERSION" lock="$ROOT/deploy/local/chdb-core.lock"
  local marker="$venv/.complete-$(sha256sum "$lock" | cut -c1-16)"
  if [ -f "$marker" ]; then return; fi
  grep -q "^chdb-core==$CHDB_VERSION " "$lock" || die "$lock does not pin chdb-core==$CHDB_VERSION"
  local py t0=$SECONDS
  py=$(chdb_python) || die "no CPython >= 3.9 with venv found (apt-get install python3-venv, or set CHDB_PYTHON)"
  log "clickhouse26: chdb-core $CHDB_VERSION into $venv with $py (wheel ~181 MB)"
  rm -rf "$venv"
  "$py" -m venv "$venv" || die "python -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --require-hashes --no-deps --only-binary=:all: -r "$lock" \
    || die "hash-checked install of chdb-core failed (see pip output above)"
  local bad; bad=$(find "$venv/lib" -name '*.pth' -printf '%f\n' | grep -Ev '^distutils-precedence\.pth$' || true)
  [ -z "$bad" ] || die "unexpected .pth file(s) in $venv: $bad — inspect and delete it"
  "$venv/bin/python" -c 'from chdb import _chdb' || die "chdb-core does not load"
  touch "$marker"
  log "clickhouse26: chdb-core $CHDB_VERSION installed in $((SECONDS - t0))s, venv $(du -sh "$venv" | cut -f1)"
}

# chdb_python: a CPython >= 3.9 (the wheel is abi3 cp39) that can create venvs.
chdb_python() {
  local c
  for c in "${CHDB_PYTHON:-}" python3 python3.11 /root/.pyenv/versions/3.*/bin/python3 /usr/bin/python3; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
    if "$c" -c 'import sys, ensurepip; sys.exit(0 if sys.version_info[:2] >= (3, 9) else 1)' 2>/dev/null; then
      "$c" -c "import sys; print(sys.executable)"; return 0
    fi
  done
  return 1
}

# install_zookeeper: Debian's zookeeper 3.8 (ClickHouse 18.16's Replicated
# tables and ON CLUSTER DDL need it; the cluster profile, scripts/cluster.sh,
# runs it as our own process, never as the system service).
install_zookeeper() {
  if [ -f /usr/share/java/zookeeper.jar ]; then return; fi
  tools_lock apt
  if [ -f /usr/share/java/zookeeper.jar ]; then return; fi
  local t0=$SECONDS
  log "zookeeper: apt-get install zookeeper"
  as_root apt-get update -q >/dev/null || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends zookeeper >/dev/null
  log "zookeeper: installed in $((SECONDS - t0))s"
}

install_litellm() {
  "$ROOT/deploy/litellm/install.sh"
}

what=${1:-all}
case "$what" in
  kafka) install_kafka ;;
  clickhouse) install_clickhouse ;;
  minio) install_minio ;;
  chromium) install_chromium ;;
  helm) install_helm ;;
  litellm) install_litellm ;;
  clickhouse26) install_clickhouse26 ;;
  litewitness) install_litewitness ;;
  zookeeper) install_zookeeper ;;
  all) install_clickhouse; install_kafka; install_minio; install_litewitness ;;
  *) die "unknown tool '$what' (want kafka, clickhouse, clickhouse26, minio, chromium, litellm, helm, litewitness, zookeeper or all)" ;;
esac
