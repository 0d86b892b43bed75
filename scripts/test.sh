#!/usr/bin/env bash
# Install ssmoe with its test tools into ./.venv and run the whole test suite.
#
#   bash scripts/test.sh [pytest args...]
#
# - torch: the CPU build 2.13.0 is installed first when no torch is present; an unpinned torch
#   would pull the newest CUDA build (several GB). On a GPU machine install your CUDA build of
#   torch into the venv before running this script: it is kept.
# - PostgreSQL: the multi-worker tuning test needs a real server; .ci/postgres.sh installs and
#   starts a throwaway one on 127.0.0.1 (Debian package, needs root). Where that is impossible
#   the test is skipped, except under CI=true, where it is an error.
# - Slurm: the cluster tests need a scheduler; .ci/slurm.sh installs Debian's slurm-wlm and
#   munge packages and starts a one-node cluster on localhost (root). Same skip rule. Their
#   MLflow tracking server on PostgreSQL is started by the tests themselves
#   (.ci/mlflow_server.sh, see docs/cluster.md).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    [[ -d .venv ]] || python3 -m venv .venv
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[dev]"

if [[ -z "${SSMOE_TEST_POSTGRES_URL:-}" ]]; then
    if out="$(bash .ci/postgres.sh)"; then
        eval "$out"
    elif [[ "${CI:-}" == "true" ]]; then
        echo "test.sh: could not start PostgreSQL for the tuning tests" >&2
        exit 1
    else
        echo "test.sh: no PostgreSQL; the multi-worker tuning test will be skipped" >&2
    fi
fi

if [[ -z "${SLURM_CONF:-}" ]]; then
    if out="$(bash .ci/slurm.sh)"; then
        eval "$out"
    elif [[ "${CI:-}" == "true" ]]; then
        echo "test.sh: could not start the local Slurm cluster for the cluster tests" >&2
        exit 1
    else
        echo "test.sh: no Slurm; the cluster tests will be skipped" >&2
    fi
fi

python -m pytest "$@"
