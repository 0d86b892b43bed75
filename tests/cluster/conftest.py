"""Fixtures of the cluster tests: the local Slurm cluster and the shared state its jobs use.

- ``slurm_cluster``: the cluster of ``.ci/slurm.sh`` (``SLURM_CONF``); skipped when it is not
  up, except under ``CI=true``, where a missing cluster is an error.
- ``shared_state``: an MLflow tracking server on a fresh PostgreSQL database (artifacts served
  by the server) and a fresh PostgreSQL database for Optuna, started by
  ``.ci/mlflow_server.sh`` on a free port; both databases are dropped afterwards. Needs
  ``SSMOE_TEST_POSTGRES_URL`` (``.ci/postgres.sh``), with the same skip rule.
- ``job_env``: what a job needs on top of the inherited environment to write to that state.

Session-scoped: the server takes tens of seconds to start on an empty database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # this venv's console scripts (ssmoe, mlflow)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required under CI=true; scripts/test.sh starts it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The partition's name; the cluster answers ``sinfo``."""
    if not os.environ.get("SLURM_CONF") or shutil.which("sbatch") is None:
        _unavailable('no local Slurm cluster (eval "$(.ci/slurm.sh)" starts one)')
    done = subprocess.run(
        ["sinfo", "-h", "-o", "%R %T"], capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0 or not done.stdout.strip():
        _unavailable(f"Slurm does not answer: {done.stderr.strip()}")
    partition, state = done.stdout.split()[:2]
    if not state.startswith(("idle", "mixed", "alloc", "completing")):
        _unavailable(f"Slurm node is {state}")
    return partition


@dataclass(frozen=True)
class SharedState:
    tracking_uri: str  # http://127.0.0.1:<port>
    optuna_url: str  # postgresql+psycopg2://.../<db>
    artifacts: Path  # the server's --artifacts-destination


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def shared_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedState]:
    url = os.environ.get("SSMOE_TEST_POSTGRES_URL")
    if not url:
        _unavailable('SSMOE_TEST_POSTGRES_URL is not set (eval "$(.ci/postgres.sh)")')
    import psycopg2

    folder = tmp_path_factory.mktemp("mlflow-server")
    tag = uuid.uuid4().hex[:8]
    names = (f"ssmoe_test_{tag}_mlflow", f"ssmoe_test_{tag}_optuna")
    env = {
        **os.environ,
        "SSMOE_MLFLOW_DIR": str(folder),
        "SSMOE_MLFLOW_PORT": str(_free_port()),
        "SSMOE_MLFLOW_DB": names[0],
        "SSMOE_OPTUNA_DB": names[1],
        "SSMOE_PYTHON": sys.executable,
    }
    script = str(ROOT / ".ci" / "mlflow_server.sh")
    done = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"mlflow_server.sh failed:\n{done.stderr[-3000:]}"
    exports = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
    try:
        yield SharedState(
            exports["MLFLOW_TRACKING_URI"], exports["SSMOE_OPTUNA_STORAGE"], folder / "artifacts"
        )
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, timeout=60)
        base = make_url(url)
        admin = psycopg2.connect(
            host=base.host, port=base.port, user=base.username, password=base.password,
            dbname=base.database,
        )  # fmt: skip
        admin.autocommit = True
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def job_env(shared_state: SharedState, tmp_path: Path) -> dict[str, str]:
    """Variables a job needs to use the shared state: the tracking server, this venv first on
    PATH (the MLproject's commands call ``ssmoe``), one thread, a private MQS cache."""
    return {
        "MLFLOW_TRACKING_URI": shared_state.tracking_uri,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "SSMOE_CACHE": str(tmp_path / "ssmoe-cache"),
    }
