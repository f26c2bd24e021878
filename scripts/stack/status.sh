#!/usr/bin/env bash
# One line per service: address, healthy/down, pid, log file. Exits 1 if any is down.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

DOWN=0

row() { printf '%-10s %-32s %-8s %-8s %s\n' "$@"; }

report() { # NAME ADDRESS PID CHECK...
  local name="$1" address="$2" pid="$3" state=healthy; shift 3
  "$@" >/dev/null 2>&1 || { state=down; DOWN=1; }
  row "$name" "$address" "$state" "${pid:--}" ".data/logs/$name.log"
}


postgres_pid() {
  if pg_project_running; then
    head -n 1 "$PG_DATA/postmaster.pid"
  elif [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    echo external # DATABASE_URL served by a server this project did not create
  fi
}

# healthy, and the bucket is there (an unsigned HEAD of a bucket: 403 when it exists, 404 when it does not)
s3_bucket_ok() {
  s3_healthy || return 1
  local code
  code="$(curl -sS -o /dev/null -w '%{http_code}' -I --max-time 3 "http://$S3_ADDRESS/$S3_BUCKET")"
  [[ "$code" != 404 ]]
}

main() {
  require_database_url
  row SERVICE ADDRESS STATE PID LOG
  report temporal "$TEMPORAL_ADDRESS ui:$TEMPORAL_UI_PORT" "$(pid_of temporal)" temporal_healthy
  report postgres "$PG_HOST:$PG_PORT/$PG_DB" "$(postgres_pid)" pg_app_ok
  report kafka "$KAFKA_BROKERS" "$(pid_of kafka)" port_open "$KAFKA_HOST" "$KAFKA_PORT"
  report s3 "$S3_ADDRESS/$S3_BUCKET" "$(pid_of s3)" s3_bucket_ok
  if [[ -f "$ROOT/scripts/worker.ts" ]]; then
    report worker "queue:$TEMPORAL_TASK_QUEUE" "$(pid_of worker)" pid_alive worker
  else
    row worker "queue:$TEMPORAL_TASK_QUEUE" absent - "(scripts/worker.ts not written yet)"
  fi
  # the pipeline itself: newest loaded date, last run, Kafka lag (says so when the database does not answer)
  echo
  node --disable-warning=TimeoutNegativeWarning --import tsx "$ROOT/scripts/pipeline-status.ts" || true
  return "$DOWN"
}

main "$@"
