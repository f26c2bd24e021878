#!/usr/bin/env bash
# Start the local stack (Temporal dev server, PostgreSQL, Kafka, the S3 server, the worker),
# idempotently: a healthy service is left alone. Logs in .data/logs/<service>.log,
# pid files in .data/run/. On failure: names the service and its log, exits 1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

TEMPORAL_TIMEOUT=90
POSTGRES_TIMEOUT=60
KAFKA_TIMEOUT=90
S3_TIMEOUT=30
KAFKA_DIR="$DATA/kafka"
KAFKA_LOG_DIR="$KAFKA_DIR/data"
KAFKA_TLS_DIR="$KAFKA_DIR/tls"

failed() { die "$1 did not become healthy${2:+ ($2)}; read $LOGS/$1.log"; }

# wait_service NAME SECONDS CHECK...: until CHECK passes; fail early if our process died
wait_service() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [[ -f "$RUN/$name.pid" ]] && ! pid_alive "$name" && failed "$name" "the process exited"
    ((SECONDS < deadline)) || failed "$name" "timeout ${timeout}s"
    sleep 0.5
  done
}

# --- Temporal ----------------------------------------------------------------

start_temporal() {
  if temporal_healthy; then
    log "temporal: already healthy at $TEMPORAL_ADDRESS, skipping"
    return
  fi
  if pid_alive temporal; then
    log "temporal: still starting (pid $(pid_of temporal)), waiting"
    return
  fi
  port_open "$TEMPORAL_HOST" "$TEMPORAL_PORT" &&
    failed temporal "port $TEMPORAL_PORT is taken by a process that is not a healthy Temporal"
  log "temporal: starting on $TEMPORAL_ADDRESS (UI $TEMPORAL_UI_URL)"
  mkdir -p "$DATA/temporal"
  local sa=() a
  for a in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do sa+=(--search-attribute "$a"); done
  start_bg temporal "$TEMPORAL" server start-dev \
    --ip "$TEMPORAL_HOST" --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
    --db-filename "$DATA/temporal/temporal.db" --namespace "$TEMPORAL_NAMESPACE" \
    "${sa[@]}" --ui-disable-news-fetch --log-level warn
}

# start-dev registers them on every start; this also covers a server we did not start
ensure_search_attributes() {
  local have a name
  have="$("$TEMPORAL" operator search-attribute list --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE")"
  for a in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do
    name="${a%%=*}"
    grep -qw "$name" <<<"$have" && continue
    log "temporal: registering search attribute $a"
    "$TEMPORAL" operator search-attribute create --address "$TEMPORAL_ADDRESS" \
      --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type "${a#*=}" >/dev/null
  done
}

wait_temporal() {
  wait_service temporal "$TEMPORAL_TIMEOUT" temporal_healthy
  ensure_search_attributes || failed temporal "could not register search attributes"
}

# --- PostgreSQL --------------------------------------------------------------

# the postgres system user must traverse every parent of .data (CI clones anywhere)
make_traversable() {
  [[ "$(id -u)" == 0 ]] || return 0
  local d="$1"
  while [[ "$d" != / ]]; do
    if ! runuser -u postgres -- test -x "$d"; then
      log "postgres: chmod o+x $d (so the postgres user can reach .data/postgres)"
      chmod o+x "$d"
    fi
    d="$(dirname "$d")"
  done
}

init_postgres() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && return
  [[ -x "$PG_BIN/initdb" ]] || failed postgres "PostgreSQL is not installed: make install"
  log "postgres: creating the project cluster in $PG_DATA"
  mkdir -p "$PG_DATA"
  make_traversable "$DATA"
  chown "$(pg_owner)": "$PG_DATA"
  chmod 700 "$PG_DATA"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >>"$LOGS/postgres.log" 2>&1 || failed postgres "initdb failed"
  echo "include_if_exists = 'nightshift.conf'" >>"$PG_DATA/postgresql.conf"
}

start_postgres() {
  log "postgres: starting the project cluster on 127.0.0.1:$PG_PORT"
  make_traversable "$DATA"
  install -o "$(pg_owner)" -m 600 "$STACK_DIR/postgresql.conf" "$PG_DATA/nightshift.conf"
  mkdir -p "$PG_SOCKET_DIR"
  chown "$(pg_owner)": "$PG_SOCKET_DIR" "$LOGS/postgres.log"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t "$POSTGRES_TIMEOUT" \
    -o "-p $PG_PORT -k $PG_SOCKET_DIR -c listen_addresses=127.0.0.1" start >/dev/null ||
    failed postgres "pg_ctl start failed"
}

sql_literal() { printf "'%s'" "${1//\'/\'\'}"; }

# role and database of DATABASE_URL, via the superuser (idempotent)
ensure_role_db() {
  [[ "$PG_USER" =~ ^[a-z_][a-z0-9_]*$ && "$PG_DB" =~ ^[a-z_][a-z0-9_]*$ ]] ||
    failed postgres "role/database names in DATABASE_URL must be plain lower-case identifiers"
  local attrs
  attrs="LOGIN PASSWORD $(sql_literal "$PG_PASSWORD") CREATEDB CREATEROLE NOSUPERUSER"
  if [[ -z "$(pg_super -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" ]]; then
    log "postgres: creating role $PG_USER"
    pg_super -c "CREATE ROLE $PG_USER $attrs"
  fi
  # `nightshift bench` settles the machine with a CHECKPOINT before each measured path (PostgreSQL 15+); granted
  # once, so a later run has no "already a member" notice to print
  if [[ -n "$(pg_super -c "SELECT 1 FROM pg_roles WHERE rolname = 'pg_checkpoint'
                           AND NOT pg_has_role('$PG_USER', 'pg_checkpoint', 'member')")" ]]; then
    pg_super -c "GRANT pg_checkpoint TO $PG_USER" >/dev/null
  fi
  if [[ -z "$(pg_super -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]]; then
    log "postgres: creating database $PG_DB owned by $PG_USER"
    pg_super -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
  fi
  # btree_gist is a trusted extension (PG13+): the database owner may create it
  [[ -n "$(pg_super -c "SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist'")" ]] ||
    failed postgres "extension btree_gist is not available (package postgresql-contrib)"
}

up_postgres() {
  mkdir -p "$LOGS" && touch "$LOGS/postgres.log"
  if port_open "$PG_HOST" "$PG_PORT"; then
    if pg_app_ok; then
      log "postgres: already healthy at $PG_HOST:$PG_PORT, skipping"
      return
    fi
    log "postgres: $PG_HOST:$PG_PORT answers but $PG_USER cannot log in; creating role/database"
  else
    [[ "$PG_HOST" == 127.0.0.1 || "$PG_HOST" == localhost ]] ||
      failed postgres "DATABASE_URL points at $PG_HOST:$PG_PORT, which does not answer"
    init_postgres
    start_postgres
  fi
  ensure_role_db || failed postgres "could not create role/database"
  pg_app_ok || failed postgres "cannot log in with DATABASE_URL"
}

# --- Kafka -------------------------------------------------------------------

# a self-signed certificate for the SASL_SSL listener, made once; clients trust tls/ca.pem (KAFKA_SSL_CA)
make_kafka_certificate() {
  [[ -s "$KAFKA_TLS_DIR/broker.p12" && -s "$KAFKA_TLS_DIR/ca.pem" ]] && return
  command -v keytool >/dev/null || failed kafka "keytool (Java 17) is needed to make the TLS certificate"
  mkdir -p "$KAFKA_TLS_DIR" && chmod 700 "$KAFKA_TLS_DIR"
  rm -f "$KAFKA_TLS_DIR/broker.p12" "$KAFKA_TLS_DIR/ca.pem"
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$KAFKA_TLS_DIR/password"
  log "kafka: making the TLS certificate of the SASL_SSL listener in $KAFKA_TLS_DIR"
  keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 -dname "CN=$KAFKA_HOST" \
    -ext "SAN=IP:127.0.0.1,DNS:localhost" -ext "BC:c=ca:true" -storetype PKCS12 \
    -keystore "$KAFKA_TLS_DIR/broker.p12" -storepass "$(cat "$KAFKA_TLS_DIR/password")" \
    >>"$LOGS/kafka.log" 2>&1 || failed kafka "keytool -genkeypair failed"
  keytool -exportcert -rfc -alias broker -keystore "$KAFKA_TLS_DIR/broker.p12" \
    -storepass "$(cat "$KAFKA_TLS_DIR/password")" -file "$KAFKA_TLS_DIR/ca.pem" \
    >>"$LOGS/kafka.log" 2>&1 || failed kafka "keytool -exportcert failed"
}

write_kafka_config() {
  mkdir -p "$KAFKA_LOG_DIR"
  make_kafka_certificate
  sed -e "s|@HOST@|$KAFKA_HOST|g" -e "s|@PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" -e "s|@SASL_SSL_PORT@|$KAFKA_SASL_SSL_PORT|g" \
    -e "s|@TLS_DIR@|$KAFKA_TLS_DIR|g" -e "s|@TLS_PASSWORD@|$(cat "$KAFKA_TLS_DIR/password")|g" \
    -e "s|@SASL_USER@|$KAFKA_LOCAL_SASL_USER|g" -e "s|@SASL_PASSWORD@|$KAFKA_LOCAL_SASL_PASSWORD|g" \
    -e "s|@LOG_DIRS@|$KAFKA_LOG_DIR|g" -e "s|@TOPIC@|$KAFKA_TOPIC|g" \
    "$STACK_DIR/kafka-server.properties.template" >"$KAFKA_DIR/server.properties"
}

format_kafka_storage() {
  [[ -f "$KAFKA_LOG_DIR/meta.properties" ]] && return
  [[ -s "$KAFKA_DIR/cluster-id" ]] ||
    "${KAFKA_TOOL[@]}" kafka.tools.StorageTool random-uuid >"$KAFKA_DIR/cluster-id"
  log "kafka: formatting storage in $KAFKA_LOG_DIR"
  "${KAFKA_TOOL[@]}" kafka.tools.StorageTool format --standalone \
    -t "$(cat "$KAFKA_DIR/cluster-id")" -c "$KAFKA_DIR/server.properties" --ignore-formatted \
    --add-scram "SCRAM-SHA-256=[name=$KAFKA_LOCAL_SASL_USER,password=$KAFKA_LOCAL_SASL_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_LOCAL_SASL_USER,password=$KAFKA_LOCAL_SASL_PASSWORD]" \
    >>"$LOGS/kafka.log" 2>&1 || failed kafka "storage format failed"
  touch "$KAFKA_DIR/scram-user"
}

start_kafka() {
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    log "kafka: already answering at $KAFKA_HOST:$KAFKA_PORT, skipping"
    return
  fi
  if pid_alive kafka; then
    log "kafka: still starting (pid $(pid_of kafka)), waiting"
    return
  fi
  [[ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] || failed kafka "Kafka jars missing: make install"
  mkdir -p "$LOGS"
  write_kafka_config
  format_kafka_storage
  log "kafka: starting on $KAFKA_HOST:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
  start_bg kafka "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_DIR/server.properties"
}

ensure_topic() {
  # our own broker: a partition directory means the topic exists (saves a JVM start)
  [[ -d "$KAFKA_LOG_DIR/$KAFKA_TOPIC-0" ]] && pid_alive kafka && return
  log "kafka: ensuring topic $KAFKA_TOPIC ($KAFKA_PARTITIONS partitions)"
  "${KAFKA_TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
    --create --if-not-exists --topic "$KAFKA_TOPIC" --partitions "$KAFKA_PARTITIONS" \
    --replication-factor 1 >>"$LOGS/kafka.log" 2>&1
}

# storage formatted before the SASL_SSL listener existed: create its SCRAM user once, on the running broker
ensure_scram_user() {
  [[ -f "$KAFKA_DIR/scram-user" ]] && return
  log "kafka: creating the SCRAM user $KAFKA_LOCAL_SASL_USER"
  # one request per mechanism: a broker refuses two alterations of one user in a single request
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    "${KAFKA_TOOL[@]}" kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BROKERS" --alter \
      --add-config "$mechanism=[password=$KAFKA_LOCAL_SASL_PASSWORD]" \
      --entity-type users --entity-name "$KAFKA_LOCAL_SASL_USER" >>"$LOGS/kafka.log" 2>&1 || return 1
  done
  touch "$KAFKA_DIR/scram-user"
}

wait_kafka() {
  wait_service kafka "$KAFKA_TIMEOUT" port_open "$KAFKA_HOST" "$KAFKA_PORT"
  ensure_topic || failed kafka "could not create topic $KAFKA_TOPIC"
  ensure_scram_user || failed kafka "could not create the SCRAM user $KAFKA_LOCAL_SASL_USER"
}

# --- S3-compatible object store (versitygw, POSIX backend over .data/s3) --------

start_s3() {
  if s3_healthy; then
    log "s3: already healthy at $S3_ADDRESS, skipping"
    return
  fi
  if pid_alive s3; then
    log "s3: still starting (pid $(pid_of s3)), waiting"
    return
  fi
  port_open "$S3_HOST" "$S3_PORT" && failed s3 "port $S3_PORT is taken by a process that is not a healthy S3 server (S3_ADDRESS)"
  [[ -x "$VERSITYGW" ]] || failed s3 "versitygw is not installed: make install"
  log "s3: starting versitygw on $S3_ADDRESS over $DATA/s3"
  mkdir -p "$DATA/s3"
  ROOT_ACCESS_KEY="$S3_LOCAL_ACCESS_KEY" ROOT_SECRET_KEY="$S3_LOCAL_SECRET_KEY" \
    start_bg s3 "$VERSITYGW" --port "$S3_ADDRESS" --health /health --quiet posix "$DATA/s3"
}

# the bucket: with the POSIX backend a top-level folder is a bucket (owned by the root account); a server that is
# not ours (S3_ADDRESS elsewhere) must have it already
ensure_bucket() {
  [[ "$S3_BUCKET" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || failed s3 "S3_BUCKET=$S3_BUCKET is not a valid bucket name"
  if pid_alive s3 || [[ -d "$DATA/s3" ]]; then
    [[ -d "$DATA/s3/$S3_BUCKET" ]] || log "s3: creating bucket $S3_BUCKET"
    mkdir -p "$DATA/s3/$S3_BUCKET"
  fi
}

wait_s3() {
  wait_service s3 "$S3_TIMEOUT" s3_healthy
  ensure_bucket
}

# --- worker ------------------------------------------------------------------

# a worker already running from this checkout (started by us or by hand; an older one may run the TypeScript)
find_worker() {
  local p
  pid_alive worker && { pid_of worker; return; }
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -Eq 'scripts/worker\.(js|ts)|nightshift\.js worker' &&
      ours "${p#/proc/}" && { echo "${p#/proc/}"; return; }
  done
  return 1
}

# the worker runs dist/: changed when a build finished after it started (its pid file is written at its start),
# or when it runs something else (an older checkout's TypeScript worker)
worker_code_changed() {
  local pid="$1"
  # a changed .env (read at start) restarts it too
  [[ "$ROOT/.env" -nt "$RUN/worker.pid" ]] && return 0
  [[ dist/.built -nt "$RUN/worker.pid" ]] && return 0
  ! tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q 'dist/scripts/worker\.js'
}

up_worker() {
  bash "$ROOT/scripts/build.sh" --if-changed || failed worker "the build failed (make build shows why)"
  local pid
  if pid="$(find_worker)"; then
    [[ "$(pid_of worker)" == "$pid" ]] || echo "$pid" >"$RUN/worker.pid"
    if ! worker_code_changed "$pid"; then
      log "worker: already running (pid $pid), skipping"
      return
    fi
    log "worker: code changed since it started, restarting"
    stop_pid worker 15
  fi
  log "worker: starting (task queue $TEMPORAL_TASK_QUEUE)"
  start_bg worker node dist/scripts/worker.js
  sleep 2
  pid_alive worker || failed worker "exited within 2 s"
}

main() {
  require_database_url
  cd "$ROOT"
  mkdir -p "$LOGS" "$RUN"
  # the JVM and the Temporal server boot in the background while PostgreSQL starts
  start_temporal
  start_kafka
  start_s3
  up_postgres
  wait_temporal
  wait_kafka
  wait_s3
  up_worker
  log "stack is up: Temporal $TEMPORAL_ADDRESS (UI $TEMPORAL_UI_URL), PostgreSQL $PG_HOST:$PG_PORT/$PG_DB, Kafka $KAFKA_BROKERS topic $KAFKA_TOPIC, S3 http://$S3_ADDRESS bucket $S3_BUCKET"
}

main "$@"
