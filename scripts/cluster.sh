#!/usr/bin/env bash
# scripts/cluster.sh start|stop|status [NAME] — the local cluster profile: the
# servers auditline depends on, scaled out on 127.0.0.1, for the cluster fault
# suite (tests/cluster) and the capacity figures (docs/capacity.md).
#
#   kafka-1..3        Kafka KRaft, each node broker + controller (3 voters),
#                     replication factor 3, min.insync.replicas 2
#   zookeeper         Debian's ZooKeeper 3.8 (ClickHouse 18.16's Replicated tables
#                     and ON CLUSTER DDL)
#   clickhouse-1..4   ClickHouse 18.16, cluster "auditline" = 2 shards × 2 replicas
#                     (clickhouse-1,2 = shard 01; clickhouse-3,4 = shard 02)
#   minio             MinIO, one server over 4 drives (erasure coded, EC:2), a
#                     bucket with Object Lock
#
# Transport security (issue 20): a private CA (.data/cluster/tls/ca.pem) signs
# one server certificate for 127.0.0.1/localhost; each Kafka node has a
# SASL_SSL listener (SCRAM-SHA-512, user auditline) beside the PLAINTEXT one the
# brokers use among themselves; each ClickHouse node a native TLS port
# (tcp_port_secure) and a user auditline with a password; MinIO serves HTTPS
# only. .data/cluster/env names both the secure endpoints (what the suite's
# stages use) and the plain ones (the harness's own reads).
#
# Ports 30100–30300 only, data/logs/pids under .data/cluster (CLUSTER_DATA):
# nothing is shared with deploy/local's stack (19xxx ports, .data/), so starting,
# killing or wiping the cluster never disturbs it. `start` is safe to run twice;
# `stop` stops only what this script started (pid files); `stop NAME` /
# `start NAME` act on one process (the fault suite restarts nodes this way);
# `wipe` stops everything and deletes .data/cluster. `start` writes
# .data/cluster/env (AUDITLINE_CLUSTER_*).
#
# Memory (measured, docs/capacity.md): each Kafka JVM -Xmx256m (CLUSTER_KAFKA_HEAP),
# ZooKeeper -Xmx128m, ClickHouse caches 64 MiB each and max_memory_usage 1 GB.
source "$(cd "$(dirname "$0")/.." && pwd)/deploy/local/lib.sh"

CD=${CLUSTER_DATA:-$ROOT/.data/cluster}
mkdir -p "$CD/run" "$CD/log"
ZK_PORT=30101
kafka_port() { echo $((30110 + $1)); }       # client listener (PLAINTEXT)
kafka_ctl_port() { echo $((30120 + $1)); }   # KRaft controller
ch_tcp_port() { echo $((30140 + $1)); }
ch_http_port() { echo $((30150 + $1)); }
ch_inter_port() { echo $((30160 + $1)); }    # replication fetches between replicas
ch_secure_port() { echo $((30170 + $1)); }   # native protocol over TLS
kafka_sasl_port() { echo $((30130 + $1)); }  # SASL_SSL (SCRAM-SHA-512) for clients
KAFKA_USER=auditline
KAFKA_PASSWORD=${CLUSTER_KAFKA_PASSWORD:-auditline-kafka-secret}
CH_USER=auditline
CH_PASSWORD=${CLUSTER_CH_PASSWORD:-auditline-clickhouse-secret}
TLS_DIR=$CD/tls
MINIO_CLUSTER_PORT=30181
MINIO_CLUSTER_CONSOLE=30182
CLUSTER_NAME=auditline
CLUSTER_BUCKET=${CLUSTER_BUCKET:-auditline-cluster}
KAFKA_NODES=(1 2 3)
CH_NODES=(1 2 3 4)

# make_certs: a private CA and a server certificate for 127.0.0.1 and
# localhost, signed by it (kept across restarts: clients trust ca.pem).
make_certs() {
  [ -f "$TLS_DIR/server.pem" ] && return
  mkdir -p "$TLS_DIR"
  ( cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=auditline cluster profile CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.rsa.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile ext.cnf -out server.pem 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in server.rsa.key -out server.key   # Kafka's PEM keystore wants PKCS#8
    cat server.key server.pem > kafka-keystore.pem
    mkdir -p minio && cp server.pem minio/public.crt && cp server.key minio/private.key
    rm -f server.csr ext.cnf ca.srl
    chmod 600 ./*.key kafka-keystore.pem minio/private.key ) || die "could not make the TLS certificates"
  log "tls: private CA $TLS_DIR/ca.pem"
}

alive() { local f="$CD/run/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# healthy NAME TIMEOUT LOG CMD...: poll CMD; on timeout or exit print LOG's tail.
healthy() {
  local name=$1 timeout=$2 logf=$3; shift 3
  local start=$SECONDS
  while ! "$@" >/dev/null 2>&1; do
    alive "$name" || { log "$name exited during start-up; last lines of $logf:"; tail -n 30 "$logf" >&2 || true; exit 1; }
    (( SECONDS - start <= timeout )) || { log "$name not healthy after ${timeout}s; last lines of $logf:"; tail -n 30 "$logf" >&2 || true; exit 1; }
    sleep 0.5
  done
  log "$name healthy in $((SECONDS - start))s"
}

# launch NAME LOG CMD...: start CMD in the background with its pid file.
launch() {
  local name=$1 out=$2; shift 2
  nohup "$@" >"$out" 2>&1 &
  echo $! > "$CD/run/$name.pid"
}

start_zookeeper() {
  "$ROOT/deploy/local/install.sh" zookeeper
  if alive zookeeper; then return; fi
  local d="$CD/zookeeper"
  mkdir -p "$d/data"
  cat > "$d/zoo.cfg" <<CFG
tickTime=2000
dataDir=$d/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=200
admin.enableServer=false
4lw.commands.whitelist=ruok,stat,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
CFG
  cat > "$d/log4j.properties" <<L4J
log4j.rootLogger=INFO, F
log4j.appender.F=org.apache.log4j.FileAppender
log4j.appender.F.File=$CD/log/zookeeper.log
log4j.appender.F.layout=org.apache.log4j.PatternLayout
log4j.appender.F.layout.ConversionPattern=%d %p %c{1} %m%n
L4J
  launch zookeeper "$CD/log/zookeeper.stdout" java -Xms64m -Xmx128m -XX:+UseSerialGC \
    -Dlog4j.configuration="file:$d/log4j.properties" -Dzookeeper.jmx.log4j.disable=true \
    -cp "/usr/share/java/zookeeper.jar:/usr/share/java/log4j-1.2.jar:/usr/share/java/slf4j-log4j12.jar" \
    org.apache.zookeeper.server.ZooKeeperServerMain "$d/zoo.cfg"
  healthy zookeeper 60 "$CD/log/zookeeper.stdout" zk_ok
}

zk_ok() { [ "$(exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT && printf ruok >&3 && cat <&3)" = imok ]; }

start_kafka_node() {
  local i=$1 name=kafka-$1 dir="$TOOLS/kafka-$KAFKA_VERSION" d="$CD/kafka-$1"
  [ -f "$dir/.complete" ] || "$ROOT/deploy/local/install.sh" kafka
  if alive "$name"; then return; fi
  make_certs
  mkdir -p "$d"
  local voters="" n
  for n in "${KAFKA_NODES[@]}"; do voters+="${voters:+,}$n@127.0.0.1:$(kafka_ctl_port "$n")"; done
  cat > "$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$i"),SASL_SSL://127.0.0.1:$(kafka_sasl_port "$i"),CONTROLLER://127.0.0.1:$(kafka_ctl_port "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$i"),SASL_SSL://127.0.0.1:$(kafka_sasl_port "$i")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/kafka-keystore.pem
ssl.client.auth=none
log.dirs=$d/data
num.partitions=4
default.replication.factor=3
min.insync.replicas=2
auto.create.topics.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
# Three JVMs starting at once on two busy cores: a broker waits up to 5 min for
# the quorum (default 1 min, after which it exits: seen at load average 50).
initial.broker.registration.timeout.ms=300000
unclean.leader.election.enable=false
log.retention.hours=24
log.segment.bytes=268435456
message.max.bytes=16777216
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
PROPS
  cat > "$d/log4j2.properties" <<L4J
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $CD/log/$name.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = warn
L4J
  local jvm=(-Xms128m "-Xmx${CLUSTER_KAFKA_HEAP:-256m}" -XX:+UseSerialGC -XX:MaxMetaspaceSize=96m -Xss512k
             -Djava.awt.headless=true -Dlog4j2.configurationFile="$d/log4j2.properties")
  if [ ! -f "$d/data/meta.properties" ]; then
    java "${jvm[@]}" -cp "$dir/libs/*" kafka.tools.StorageTool format -t auditlineCluster0KRaft3 \
      -c "$d/server.properties" --add-scram "SCRAM-SHA-512=[name=$KAFKA_USER,password=$KAFKA_PASSWORD]" >"$CD/log/$name-format.log" 2>&1 \
      || { tail -20 "$CD/log/$name-format.log"; die "$name: storage format failed"; }
  fi
  : > "$CD/log/$name.log"
  launch "$name" "$CD/log/$name.stdout" java "${jvm[@]}" -cp "$dir/libs/*" kafka.Kafka "$d/server.properties"
}

kafka_started() { grep -q 'Kafka Server started' "$CD/log/kafka-$1.log"; }

start_kafka() {
  local n todo=()
  for n in "${KAFKA_NODES[@]}"; do alive "kafka-$n" || todo+=("$n"); done
  for n in "${todo[@]}"; do start_kafka_node "$n"; done
  # The quorum needs two voters before any node reports started: wait together.
  for n in "${todo[@]}"; do healthy "kafka-$n" "${CLUSTER_KAFKA_TIMEOUT:-300}" "$CD/log/kafka-$n.log" kafka_started "$n"; done
}

ch_shard() { echo "0$(( ($1 + 1) / 2 ))"; }
ch_replica() { echo "r$(( ($1 + 1) % 2 + 1 ))"; }

start_clickhouse_node() {
  local i=$1 name=clickhouse-$1 d="$CD/clickhouse-$1"
  command -v clickhouse-server >/dev/null || "$ROOT/deploy/local/install.sh" clickhouse
  if alive "$name"; then return; fi
  make_certs
  mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas"
  local shards="" s r
  for s in 1 2; do
    shards+="<shard><internal_replication>true</internal_replication>"
    for r in 1 2; do shards+="<replica><host>127.0.0.1</host><port>$(ch_tcp_port $(( (s - 1) * 2 + r )))</port></replica>"; done
    shards+="</shard>"
  done
  cat > "$d/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>1000000000</max_memory_usage>
      <load_balancing>in_order</load_balancing>
      <max_threads>2</max_threads>
    </default>
    <readonly><readonly>2</readonly></readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <!-- The stages' user (store.clickhouse.username), over the TLS port. -->
    <$CH_USER>
      <password_sha256_hex>$(printf %s "$CH_PASSWORD" | sha256sum | cut -d' ' -f1)</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </$CH_USER>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
  cat > "$d/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>$CD/log/$name.log</log>
    <errorlog>$CD/log/$name.err.log</errorlog>
    <size>50M</size>
    <count>2</count>
  </logger>
  <http_port>$(ch_http_port "$i")</http_port>
  <tcp_port>$(ch_tcp_port "$i")</tcp_port>
  <tcp_port_secure>$(ch_secure_port "$i")</tcp_port_secure>
  <openSSL><server>
    <certificateFile>$TLS_DIR/server.pem</certificateFile>
    <privateKeyFile>$TLS_DIR/server.key</privateKeyFile>
    <verificationMode>none</verificationMode>
    <loadDefaultCAFile>false</loadDefaultCAFile>
    <cacheSessions>true</cacheSessions>
    <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
    <preferServerCiphers>true</preferServerCiphers>
  </server></openSSL>
  <interserver_http_port>$(ch_inter_port "$i")</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>50</max_concurrent_queries>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <mark_cache_size>67108864</mark_cache_size>
  <background_pool_size>4</background_pool_size>
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
  <zookeeper><node><host>127.0.0.1</host><port>$ZK_PORT</port></node><session_timeout_ms>10000</session_timeout_ms></zookeeper>
  <macros><shard>$(ch_shard "$i")</shard><replica>$(ch_replica "$i")</replica></macros>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <remote_servers><$CLUSTER_NAME>$shards</$CLUSTER_NAME></remote_servers>
</yandex>
XML
  : > "$CD/log/$name.log"
  launch "$name" "$CD/log/$name.stdout" clickhouse-server --config-file="$d/config.xml"
}

ch_ok() { curl -fsS "http://127.0.0.1:$(ch_http_port "$1")/?query=SELECT%201"; }

start_clickhouse() {
  local n todo=()
  for n in "${CH_NODES[@]}"; do alive "clickhouse-$n" || todo+=("$n"); done
  for n in "${todo[@]}"; do start_clickhouse_node "$n"; done
  for n in "${todo[@]}"; do healthy "clickhouse-$n" 60 "$CD/log/clickhouse-$n.log" ch_ok "$n"; done
}

start_minio() {
  [ -x "$TOOLS/bin/minio" ] || "$ROOT/deploy/local/install.sh" minio
  if alive minio; then return; fi
  local d="$CD/minio"
  make_certs
  mkdir -p "$d"/drive{1..4}
  # Four drives in one erasure set: any two may fail (EC:2) without losing an object.
  # MINIO_CI_CD=on: the four folders share the root disk, which MinIO refuses
  # for a multi-drive set otherwise ("drive not found").
  MINIO_CI_CD=on MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
    launch minio "$CD/log/minio.log" "$TOOLS/bin/minio" server "$d/drive{1...4}" \
      --address "127.0.0.1:$MINIO_CLUSTER_PORT" --console-address "127.0.0.1:$MINIO_CLUSTER_CONSOLE" --certs-dir "$TLS_DIR/minio" --quiet
  healthy minio 90 "$CD/log/minio.log" curl -fsS --cacert "$TLS_DIR/ca.pem" "https://127.0.0.1:$MINIO_CLUSTER_PORT/minio/health/cluster"
  local url="https://127.0.0.1:$MINIO_CLUSTER_PORT/$CLUSTER_BUCKET"
  if ! curl -fsS --cacert "$TLS_DIR/ca.pem" -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$MINIO_USER:$MINIO_PASSWORD" -I "$url" 2>/dev/null; then
    curl -fsS --cacert "$TLS_DIR/ca.pem" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$MINIO_USER:$MINIO_PASSWORD" \
      -X PUT -H 'x-amz-bucket-object-lock-enabled: true' "$url" >/dev/null \
      || die "could not create bucket $CLUSTER_BUCKET with Object Lock"
    log "minio: created bucket $CLUSTER_BUCKET with Object Lock"
  fi
}

write_env() {
  local k="" ks="" c="" cs="" n
  for n in "${KAFKA_NODES[@]}"; do k+="${k:+,}127.0.0.1:$(kafka_port "$n")"; ks+="${ks:+,}127.0.0.1:$(kafka_sasl_port "$n")"; done
  for n in "${CH_NODES[@]}"; do c+="${c:+,}127.0.0.1:$(ch_tcp_port "$n")"; cs+="${cs:+,}127.0.0.1:$(ch_secure_port "$n")"; done
  cat > "$CD/env" <<ENV
export AUDITLINE_CLUSTER_KAFKA=$k
export AUDITLINE_CLUSTER_KAFKA_SASL_SSL=$ks
export AUDITLINE_CLUSTER_KAFKA_USER=$KAFKA_USER
export AUDITLINE_CLUSTER_KAFKA_PASSWORD=$KAFKA_PASSWORD
export AUDITLINE_CLUSTER_CLICKHOUSE=$c
export AUDITLINE_CLUSTER_CLICKHOUSE_SECURE=$cs
export AUDITLINE_CLUSTER_CLICKHOUSE_USER=$CH_USER
export AUDITLINE_CLUSTER_CLICKHOUSE_PASSWORD=$CH_PASSWORD
export AUDITLINE_CLUSTER_CLICKHOUSE_NAME=$CLUSTER_NAME
export AUDITLINE_CLUSTER_S3=https://$MINIO_USER:$MINIO_PASSWORD@127.0.0.1:$MINIO_CLUSTER_PORT
export AUDITLINE_CLUSTER_S3_BUCKET=$CLUSTER_BUCKET
export AUDITLINE_CLUSTER_CA=$TLS_DIR/ca.pem
export AUDITLINE_CLUSTER_DATA=$CD
ENV
}

stop_one() {
  local name=$1 f="$CD/run/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 20s; killing"; kill -9 "$pid" 2>/dev/null || true; }
    log "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

all_names() { echo minio; for n in "${CH_NODES[@]}"; do echo "clickhouse-$n"; done; for n in "${KAFKA_NODES[@]}"; do echo "kafka-$n"; done; echo zookeeper; }

status() {
  local name
  for name in $(all_names); do
    if alive "$name"; then
      printf '%-14s up   pid %-8s rss %s MiB\n' "$name" "$(cat "$CD/run/$name.pid")" \
        "$(( $(awk '/VmRSS/{print $2}' "/proc/$(cat "$CD/run/$name.pid")/status") / 1024 ))"
    else
      printf '%-14s down\n' "$name"
    fi
  done
}

cmd=${1:-}
what=${2:-all}
case "$cmd:$what" in
  start:all) t0=$SECONDS; start_zookeeper; start_clickhouse; start_minio; start_kafka; write_env
             log "cluster up in $((SECONDS - t0))s; source $CD/env" ;;
  start:zookeeper) start_zookeeper ;;
  start:minio) start_minio ;;
  start:kafka-[1-3]) start_kafka_node "${what#kafka-}"; healthy "$what" "${CLUSTER_KAFKA_TIMEOUT:-300}" "$CD/log/$what.log" kafka_started "${what#kafka-}" ;;
  start:clickhouse-[1-4]) start_clickhouse_node "${what#clickhouse-}"; healthy "$what" 60 "$CD/log/$what.log" ch_ok "${what#clickhouse-}" ;;
  stop:all) for n in $(all_names); do stop_one "$n"; done ;;
  stop:*) stop_one "$what" ;;
  status:*) status ;;
  wipe:*) for n in $(all_names); do stop_one "$n"; done; rm -rf "$CD"; log "removed $CD" ;;
  *) die "usage: scripts/cluster.sh start|stop|status|wipe [all|zookeeper|minio|kafka-1..3|clickhouse-1..4]" ;;
esac
