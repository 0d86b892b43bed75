#!/usr/bin/env bash
# Start a throwaway PostgreSQL on loopback for the tuning tests (idempotent).
#
#   eval "$(.ci/postgres.sh)"          # exports SSMOE_TEST_POSTGRES_URL
#   .ci/postgres.sh stop               # stop it (the data directory is kept)
#   .ci/postgres.sh destroy            # stop it and delete the data directory
#
# Installs the Debian `postgresql` package when no server binaries are found (needs root and the
# Debian mirror), then runs its own cluster - not the distribution's `main` cluster - in
# $SSMOE_PG_DIR (default /tmp/ssmoe-pg) on 127.0.0.1:$SSMOE_PG_PORT (default 55432), owned by
# the `postgres` user when run as root (PostgreSQL refuses to run as root). Authentication is
# `trust` on loopback only: a CI throwaway, never a production setup. Creates database
# $SSMOE_PG_DB (default ssmoe). Logs go to stderr; stdout is exactly one `export` line.
set -euo pipefail

DIR="${SSMOE_PG_DIR:-/tmp/ssmoe-pg}"
PORT="${SSMOE_PG_PORT:-55432}"
DB="${SSMOE_PG_DB:-ssmoe}"
ACTION="${1:-start}"

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

BIN="$(find_bin)"
if [[ -z "$BIN" || ! -x "$BIN/initdb" ]]; then
    if [[ "$ACTION" != start ]]; then log "no PostgreSQL installed"; exit 0; fi
    [[ "$(id -u)" == 0 ]] || { log "PostgreSQL is not installed and we are not root"; exit 1; }
    log "installing postgresql (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    BIN="$(find_bin)"
fi

# Run a server binary as the cluster owner: `postgres` when we are root, else ourselves.
if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    as_owner() { "$@"; }
fi

case "$ACTION" in
stop | destroy)
    if [[ -f "$DIR/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
        as_owner "$BIN/pg_ctl" -D "$DIR" -m fast -w stop >&2
    fi
    if [[ "$ACTION" == destroy ]]; then rm -rf "$DIR"; fi
    exit 0
    ;;
start) ;;
*) log "usage: $0 [start|stop|destroy]"; exit 2 ;;
esac

if [[ ! -f "$DIR/PG_VERSION" ]]; then
    log "initdb $DIR"
    mkdir -p "$DIR"
    [[ "$(id -u)" == 0 ]] && chown postgres: "$DIR"
    chmod 700 "$DIR"
    as_owner "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >&2
fi

if ! as_owner "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
    log "starting on 127.0.0.1:$PORT"
    # Unix socket in the data directory: no clash with a system cluster in /var/run/postgresql.
    as_owner "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200 -c fsync=off" \
        start >&2
fi

PSQL=("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
if [[ "$("${PSQL[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
    log "creating database $DB"
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE \"$DB\"" >&2
fi

URL="postgresql+psycopg2://postgres@127.0.0.1:$PORT/$DB"
log "ready: $URL"
echo "export SSMOE_TEST_POSTGRES_URL=$URL"
