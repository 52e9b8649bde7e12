#!/usr/bin/env bash
# install.sh [kafka|clickhouse|minio|chromium|litellm|all] — install what is missing.
# Idempotent: each tool is cached under .tools/ per pinned version; Debian packages
# are installed only when absent. Prints the time each install took.
source "$(dirname "$0")/lib.sh"

install_kafka() {
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
  if command -v clickhouse-server >/dev/null && command -v clickhouse-client >/dev/null; then return; fi
  local t0=$SECONDS
  log "clickhouse: apt-get install clickhouse-server clickhouse-client"
  as_root apt-get update -q >/dev/null || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q clickhouse-server clickhouse-client >/dev/null
  log "clickhouse: $(clickhouse-server --version 2>/dev/null | head -1) in $((SECONDS - t0))s"
}

install_minio() {
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

install_chromium() {
  if command -v chromium >/dev/null; then return; fi
  local t0=$SECONDS
  log "chromium: apt-get install chromium"
  as_root apt-get update -q >/dev/null || true
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q chromium >/dev/null
  log "chromium: installed in $((SECONDS - t0))s"
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
  litellm) install_litellm ;;
  all) install_clickhouse; install_kafka; install_minio ;;
  *) die "unknown tool '$what' (want kafka, clickhouse, minio, chromium, litellm or all)" ;;
esac
