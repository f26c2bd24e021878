#!/usr/bin/env bash
# Stop the local stack started by up.sh: worker, the S3 server, Kafka, Temporal and the
# project-owned PostgreSQL cluster. Data stays under .data/; `make up` resumes it.
# A PostgreSQL server that this project did not start is left alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

stop_postgres() {
  if pg_project_running; then
    log "stopping postgres (project cluster $PG_DATA)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
  fi
}

main() {
  stop_pid worker 15
  stop_pid s3 15
  stop_pid kafka 60 # SIGTERM = controlled shutdown, flushes the logs
  stop_pid temporal 30
  stop_postgres
  log "stack is down (data kept in $DATA)"
}

main "$@"
