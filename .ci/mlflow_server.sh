#!/usr/bin/env bash
# Shared state for cluster jobs: an MLflow tracking server on PostgreSQL that serves the
# artifacts itself, plus a database for the Optuna storage (idempotent).
#
#   eval "$(.ci/postgres.sh)"          # PostgreSQL first (exports SSMOE_TEST_POSTGRES_URL)
#   eval "$(.ci/mlflow_server.sh)"     # exports MLFLOW_TRACKING_URI and SSMOE_OPTUNA_STORAGE
#   .ci/mlflow_server.sh stop          # stop the server (databases and artifacts are kept)
#
# - Databases $SSMOE_MLFLOW_DB (default ssmoe_mlflow) and $SSMOE_OPTUNA_DB (default
#   ssmoe_optuna) are created on the server of $SSMOE_TEST_POSTGRES_URL when missing.
# - `mlflow server` runs from the Python environment of `python` on PATH (or $SSMOE_PYTHON) on
#   $SSMOE_MLFLOW_HOST:$SSMOE_MLFLOW_PORT (default 127.0.0.1:55000) with
#   `--artifacts-destination $SSMOE_MLFLOW_DIR/artifacts` (default /tmp/ssmoe-mlflow): clients
#   upload and download artifacts through the server (mlflow-artifacts:/ URIs), so jobs need no
#   shared disk, only the server's address. Bind 0.0.0.0 for jobs on other nodes.
# - Log: $SSMOE_MLFLOW_DIR/server.log. Progress goes to stderr; stdout is the `export` lines.
set -euo pipefail

DIR="${SSMOE_MLFLOW_DIR:-/tmp/ssmoe-mlflow}"
HOST="${SSMOE_MLFLOW_HOST:-127.0.0.1}"
PORT="${SSMOE_MLFLOW_PORT:-55000}"
MLFLOW_DB="${SSMOE_MLFLOW_DB:-ssmoe_mlflow}"
OPTUNA_DB="${SSMOE_OPTUNA_DB:-ssmoe_optuna}"
PY="${SSMOE_PYTHON:-python}"
ACTION="${1:-start}"
PIDFILE="$DIR/server.pid"

log() { echo "mlflow_server.sh: $*" >&2; }

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "$ACTION" in
stop)
    if running; then
        pid="$(cat "$PIDFILE")"
        log "stopping mlflow server (process group $pid)"
        kill -- "-$pid" 2>/dev/null || kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    exit 0
    ;;
start) ;;
*) log "usage: $0 [start|stop]"; exit 2 ;;
esac

[[ -n "${SSMOE_TEST_POSTGRES_URL:-}" ]] || {
    log "SSMOE_TEST_POSTGRES_URL is not set: run eval \"\$(.ci/postgres.sh)\" first"
    exit 1
}

# Create the two databases (psycopg2 comes with ssmoe[postgres] and ssmoe[dev]) and print
# their SQLAlchemy URLs, driver spelled out (a bare postgresql:// means psycopg 3 to SQLAlchemy).
URLS="$("$PY" - "$SSMOE_TEST_POSTGRES_URL" "$MLFLOW_DB" "$OPTUNA_DB" <<'EOF'
import sys

import psycopg2
from sqlalchemy.engine import make_url

base = make_url(sys.argv[1])
conn = psycopg2.connect(
    host=base.host, port=base.port, user=base.username, password=base.password,
    dbname=base.database,
)
conn.autocommit = True
with conn.cursor() as cur:
    for name in sys.argv[2:]:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            print(f"mlflow_server.sh: creating database {name}", file=sys.stderr)
            cur.execute(f'CREATE DATABASE "{name}"')
        url = base.set(drivername="postgresql+psycopg2", database=name)
        print(url.render_as_string(hide_password=False))
EOF
)"
BACKEND_URL="$(sed -n 1p <<<"$URLS")"
OPTUNA_URL="$(sed -n 2p <<<"$URLS")"
URI="http://$HOST:$PORT"
[[ "$HOST" == 0.0.0.0 ]] && URI="http://$(hostname -f):$PORT"

healthy() { "$PY" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/health', timeout=2)" "$URI" 2>/dev/null; }

if ! running; then
    mkdir -p "$DIR/artifacts"
    log "starting mlflow server on $HOST:$PORT (store: database $MLFLOW_DB, artifacts: $DIR/artifacts)"
    # setsid: its own process group, so `stop` ends the server and its workers together.
    setsid "$PY" -m mlflow server --backend-store-uri "$BACKEND_URL" \
        --artifacts-destination "$DIR/artifacts" --serve-artifacts \
        --host "$HOST" --port "$PORT" --workers 2 \
        >"$DIR/server.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
fi
for _ in $(seq 120); do
    healthy && break
    running || { log "mlflow server exited:"; tail -n 30 "$DIR/server.log" >&2; exit 1; }
    sleep 1
done
healthy || { log "mlflow server not healthy after 120 s:"; tail -n 30 "$DIR/server.log" >&2; exit 1; }

log "ready: $URI"
echo "export MLFLOW_TRACKING_URI=$URI"
echo "export SSMOE_OPTUNA_STORAGE=$OPTUNA_URL"
