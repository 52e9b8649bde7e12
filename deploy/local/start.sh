#!/usr/bin/env bash
# start.sh [kafka|clickhouse|clickhouse26|minio|all] — start the local servers on 127.0.0.1
# (all: every one but clickhouse26, the 26.x engine the tests add; start it by name).
# Safe to run twice: a server whose pid file names a live process is left alone.
# Writes .data/env with the AUDITLINE_* variables the tests and the demo read.
source "$(dirname "$0")/lib.sh"

start_kafka() {
  local dir="$TOOLS/kafka-$KAFKA_VERSION" d="$DATA/kafka" logf="$DATA/log/kafka.log"
  [ -f "$dir/.complete" ] || "$ROOT/deploy/local/install.sh" kafka
  if pid_alive kafka; then log "kafka already running (pid $(cat "$DATA/run/kafka.pid"))"; return; fi
  mkdir -p "$d"
  cat > "$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
message.max.bytes=16777216
PROPS
  cat > "$d/log4j2.properties" <<L4J
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $logf
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.request.name = kafka.request.logger
logger.request.level = warn
L4J
  local cp="$dir/libs/*"
  local jvm=(-Xms256m -Xmx${KAFKA_HEAP:-512m} -XX:+UseG1GC -Djava.awt.headless=true
             -Dlog4j2.configurationFile="$d/log4j2.properties")
  if [ ! -f "$d/data/meta.properties" ]; then
    java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$(cat "$d/cluster-id" 2>/dev/null || echo auditlineLocalKRaft1)" \
      -c "$d/server.properties" >"$DATA/log/kafka-format.log" 2>&1 \
      || { tail -20 "$DATA/log/kafka-format.log"; die "kafka storage format failed"; }
  fi
  : > "$logf"
  nohup java "${jvm[@]}" -cp "$cp" kafka.Kafka "$d/server.properties" >"$DATA/log/kafka.stdout" 2>&1 &
  echo $! > "$DATA/run/kafka.pid"
  wait_healthy kafka "${KAFKA_START_TIMEOUT:-90}" "$logf" grep -q 'Kafka Server started' "$logf"
}

start_clickhouse() {
  local d="$DATA/clickhouse" logf="$DATA/log/clickhouse-server.log"
  command -v clickhouse-server >/dev/null || "$ROOT/deploy/local/install.sh" clickhouse
  mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas"
  # users.xml is written even when the server runs: it reloads it by itself
  # (a stack started before a user was added gets it without a restart).
  cat > "$d/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
    <!-- The dashboards' profile: reads only. readonly=2 (not 1) so that a
         client may still set query settings such as max_execution_time. -->
    <readonly>
      <readonly>2</readonly>
      <max_memory_usage>2000000000</max_memory_usage>
    </readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <!-- dashboard.clickhouse.username in the demo: the dashboard never writes. -->
    <dashboard_ro>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>readonly</profile>
      <quota>default</quota>
    </dashboard_ro>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
  if pid_alive clickhouse; then log "clickhouse already running (pid $(cat "$DATA/run/clickhouse.pid"))"; return; fi
  # A generated config: our ports, our folders, loopback only. <yandex> is the root
  # element 18.16 requires; current releases still accept it.
  cat > "$d/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>$logf</log>
    <errorlog>$DATA/log/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>
  <http_port>$CH_HTTP_PORT</http_port>
  <tcp_port>$CH_TCP_PORT</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>512</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/user_files/</user_files_path>
  <format_schema_path>$d/format_schemas/</format_schema_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>
  <kafka><auto_offset_reset>smallest</auto_offset_reset></kafka>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <!-- A one-node cluster: the Distributed shape of deploy/clickhouse/cluster.sql runs on it (store TestClusterShape). -->
  <remote_servers>
    <auditline_local><shard><replica><host>127.0.0.1</host><port>$CH_TCP_PORT</port></replica></shard></auditline_local>
  </remote_servers>
</yandex>
XML
  : > "$logf"
  nohup clickhouse-server --config-file="$d/config.xml" >"$DATA/log/clickhouse.stdout" 2>&1 &
  echo $! > "$DATA/run/clickhouse.pid"
  wait_healthy clickhouse "${CH_START_TIMEOUT:-60}" "$logf" \
    curl -fsS "http://127.0.0.1:$CH_HTTP_PORT/?query=SELECT%201"
}

# start_clickhouse26: ClickHouse 26.x from chdb-core (deploy/local/chdb_serve.py
# explains how it serves, and what a renewal every CH26_LIFETIME seconds does to
# open connections). No Keeper, no replication, one user (default, no password).
start_clickhouse26() {
  local d="$DATA/clickhouse26" logf="$DATA/log/clickhouse26.log" venv="$TOOLS/chdb-core-$CHDB_VERSION"
  "$ROOT/deploy/local/install.sh" clickhouse26
  if pid_alive clickhouse26; then log "clickhouse26 already running (pid $(cat "$DATA/run/clickhouse26.pid"))"; return; fi
  mkdir -p "$d/data"
  # chDB reads config.xml from its working directory.
  cat > "$d/config.xml" <<XML
<?xml version="1.0"?>
<clickhouse>
  <logger>
    <level>information</level>
    <log>$DATA/log/clickhouse26-server.log</log>
    <errorlog>$DATA/log/clickhouse26-server.err.log</errorlog>
    <size>100M</size>
    <count>3</count>
    <console>0</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <!-- Users as on 18.16: default, and the dashboards' read-only dashboard_ro. -->
  <user_directories><users_xml><path>$d/users.xml</path></users_xml></user_directories>
  <tcp_port>$CH26_TCP_PORT</tcp_port>
  <http_port>$CH26_HTTP_PORT</http_port>
  <timezone>UTC</timezone>
  <max_server_memory_usage>${CH26_MAX_MEMORY:-4000000000}</max_server_memory_usage>
  <!-- A one-node cluster, as for 18.16: the Distributed shape of the cluster schema runs on it. -->
  <remote_servers>
    <auditline_local><shard><replica><host>127.0.0.1</host><port>$CH26_TCP_PORT</port></replica></shard></auditline_local>
  </remote_servers>
</clickhouse>
XML
  cat > "$d/users.xml" <<XML
<?xml version="1.0"?>
<clickhouse>
  <profiles>
    <default></default>
    <readonly><readonly>2</readonly></readonly>
  </profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default>
    <dashboard_ro><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>readonly</profile><quota>default</quota></dashboard_ro>
  </users>
  <quotas><default></default></quotas>
</clickhouse>
XML
  : > "$logf"
  (cd "$d" && exec nohup "$venv/bin/python" "$ROOT/deploy/local/chdb_serve.py" supervise "$d/data" "$CH26_LIFETIME" >"$logf" 2>&1) &
  echo $! > "$DATA/run/clickhouse26.pid"
  wait_healthy clickhouse26 "${CH26_START_TIMEOUT:-60}" "$logf" ch26_ready
}

# ch26_ready: the HTTP port answers, and it is a 2x.y server (not some other one on the port).
ch26_ready() { curl -fsS "http://127.0.0.1:$CH26_HTTP_PORT/?query=SELECT%20version()%20FORMAT%20TSV" | grep -q '^2[0-9]\.'; }

start_minio() {
  local d="$DATA/minio" logf="$DATA/log/minio.log"
  [ -x "$TOOLS/bin/minio" ] || "$ROOT/deploy/local/install.sh" minio
  if pid_alive minio; then log "minio already running (pid $(cat "$DATA/run/minio.pid"))"; return; fi
  mkdir -p "$d"
  # MinIO reads every exported MINIO_* variable as config: pass only these two.
  : > "$logf"
  MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
    nohup "$TOOLS/bin/minio" server "$d" --address "127.0.0.1:$MINIO_PORT" \
      --console-address 127.0.0.1:0 --quiet >"$logf" 2>&1 &
  echo $! > "$DATA/run/minio.pid"
  wait_healthy minio "${MINIO_START_TIMEOUT:-60}" "$logf" \
    curl -fsS "http://127.0.0.1:$MINIO_PORT/minio/health/ready"
  # The demo bucket, with Object Lock (it can only be enabled at creation).
  local url="http://127.0.0.1:$MINIO_PORT/$S3_BUCKET"
  if ! curl -fsS -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$MINIO_USER:$MINIO_PASSWORD" -I "$url" 2>/dev/null; then
    curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" --user "$MINIO_USER:$MINIO_PASSWORD" \
      -X PUT -H 'x-amz-bucket-object-lock-enabled: true' "$url" >/dev/null \
      || die "could not create bucket $S3_BUCKET with Object Lock"
    log "minio: created bucket $S3_BUCKET with Object Lock"
  fi
}

write_env() {
  cat > "$DATA/env" <<ENV
export AUDITLINE_KAFKA=127.0.0.1:$KAFKA_PORT
export AUDITLINE_CLICKHOUSE=127.0.0.1:$CH_TCP_PORT
export AUDITLINE_CLICKHOUSE_HTTP=127.0.0.1:$CH_HTTP_PORT
export AUDITLINE_S3=http://$MINIO_USER:$MINIO_PASSWORD@127.0.0.1:$MINIO_PORT
export AUDITLINE_S3_BUCKET=$S3_BUCKET
ENV
  # The 26.x engine only when it runs (start.sh clickhouse26; scripts/test.sh starts it).
  if pid_alive clickhouse26; then
    cat >> "$DATA/env" <<ENV
export AUDITLINE_CLICKHOUSE_MODERN=127.0.0.1:$CH26_TCP_PORT
export AUDITLINE_CLICKHOUSE_MODERN_HTTP=127.0.0.1:$CH26_HTTP_PORT
ENV
  fi
}

what=${1:-all}
case "$what" in
  kafka) start_kafka ;;
  clickhouse) start_clickhouse ;;
  minio) start_minio ;;
  clickhouse26) start_clickhouse26 ;;
  all) start_clickhouse; start_minio; start_kafka ;;
  *) die "unknown server '$what' (want kafka, clickhouse, clickhouse26, minio or all)" ;;
esac
write_env
log "environment for tests and the CLI: source $DATA/env"
