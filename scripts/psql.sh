#!/usr/bin/env bash
# Opens psql on the warehouse as the read-only analyst role: DATABASE_URL's server, database and TLS settings
# (sslmode, sslrootcert), the user analyst, and ANALYST_PASSWORD handed to psql through PGPASSWORD (never on its
# command line, never printed). Both come from the environment or .env. Arguments go to psql.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/stack/dotenv.sh
source "$root/scripts/stack/dotenv.sh"
load_dotenv "$root/.env"
if [[ -z "${ANALYST_PASSWORD:-}" ]]; then
  echo "psql: ANALYST_PASSWORD is not set: set it in .env (see .env.example), then run \`make migrate\`" >&2
  exit 2
fi
url="${DATABASE_URL:-postgres://nightshift:nightshift@127.0.0.1:5432/nightshift}"
analyst_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p._replace(netloc="analyst@" + p.netloc.rsplit("@", 1)[-1]).geturl())' "$url")
PGPASSWORD="$ANALYST_PASSWORD" exec psql "$analyst_url" "$@"
