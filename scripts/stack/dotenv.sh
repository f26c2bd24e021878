# load_dotenv FILE: exports the KEY=value lines of FILE (Node's .env syntax, one line per value) for every KEY
# the environment does not set already (an empty value is skipped): the environment wins over the file, as in lib/config.ts. The values are
# data: nothing in the file is executed, substituted or expanded.
# shellcheck shell=bash
load_dotenv() {
  local file="$1" line key value
  [[ -f "$file" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%$'\r'}"
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*(.*)$ ]] || continue
    key="${BASH_REMATCH[2]}"
    value="${BASH_REMATCH[3]}"
    if [[ "$value" =~ ^\"([^\"]*)\" ]]; then
      value="${BASH_REMATCH[1]}"
      value="${value//\\n/$'\n'}"
    elif [[ "$value" =~ ^\'([^\']*)\' || "$value" =~ ^\`([^\`]*)\` ]]; then
      value="${BASH_REMATCH[1]}"
    else
      value="${value%%#*}"
      value="${value%"${value##*[![:space:]]}"}"
    fi
    [[ -n "${!key+x}" ]] && continue
    # an empty value means unset, as for the application: exported empty, some tools (the temporal CLI reads
    # TEMPORAL_TLS_*) would take it as a setting
    [[ -z "$value" ]] && continue
    export "$key=$value"
  done <"$file"
}
