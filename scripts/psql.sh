#!/usr/bin/env bash
# Opens psql on the warehouse as the read-only analyst role.
set -euo pipefail
url="${DATABASE_URL:-postgres://nightshift:nightshift@127.0.0.1:5432/nightshift}"
analyst_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p._replace(netloc="analyst:analyst@" + p.netloc.rsplit("@", 1)[-1]).geturl())' "$url")
exec psql "$analyst_url" "$@"
