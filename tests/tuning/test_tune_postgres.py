"""Two `ssmoe tune` workers in parallel on one study, Optuna on PostgreSQL and an MLflow
tracking server on PostgreSQL, all on loopback: every trial finishes or is pruned exactly once
and appears as exactly one MLflow child run of the one parent run.

Needs ``SSMOE_TEST_POSTGRES_URL`` (``eval "$(.ci/postgres.sh)"`` starts a server and sets it);
the test creates and drops two throwaway databases on that server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from tune_helpers import FAST_FLAGS, SSMOE, subprocess_env, write_space

from ssmoe.tuning.tracking import ATTR_PARENT_RUN, ATTR_TRIAL_RUN

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
N_TRIALS = 4


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """(optuna URL, mlflow URL): two fresh databases on the test server, dropped afterwards."""
    url = os.environ.get("SSMOE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("SSMOE_TEST_POSTGRES_URL is not set (see .ci/postgres.sh)")
    import psycopg2

    base = make_url(url)
    names = [f"ssmoe_test_{uuid.uuid4().hex[:8]}_{kind}" for kind in ("optuna", "mlflow")]
    admin = psycopg2.connect(
        host=base.host, port=base.port, user=base.username, password=base.password,
        dbname=base.database,
    )  # fmt: skip
    admin.autocommit = True
    with admin.cursor() as cur:
        for name in names:
            cur.execute(f'CREATE DATABASE "{name}"')
    optuna_url = base.set(drivername="postgresql+psycopg2", database=names[0])
    # postgresql+psycopg2: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, not installed.
    mlflow_url = base.set(drivername="postgresql+psycopg2", database=names[1])
    yield (
        optuna_url.render_as_string(hide_password=False),
        mlflow_url.render_as_string(hide_password=False),
    )
    with admin.cursor() as cur:
        for name in names:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(databases, tmp_path: Path) -> Iterator[str]:
    """An MLflow tracking server on the PostgreSQL database, artifacts proxied to tmp_path."""
    port = free_port()
    log = open(tmp_path / "mlflow-server.log", "w")
    server = subprocess.Popen(
        [
            "mlflow",
            "server",
            "--backend-store-uri",
            databases[1],
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],  # fmt: skip
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "mlflow server did not start:\n"
                        + (tmp_path / "mlflow-server.log").read_text()[-3000:]
                    ) from None
                time.sleep(1)
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_two_workers_share_one_study(
    databases, mlflow_server: str, tmp_path: Path, tiny_dataset: Path
) -> None:
    storage = databases[0]
    env = subprocess_env(MLFLOW_TRACKING_URI=mlflow_server)
    cmd = [
        *SSMOE,
        "tune",
        "--study", "parallel",
        "--n-trials", str(N_TRIALS),
        "--storage", storage,
        "--space", str(write_space(tmp_path / "space.json")),
        "--data", str(tiny_dataset),
        "--preset", "tiny",
        "--experiment", "tune-pg",
        "--heartbeat-interval", "2",
        "--grace-period", "20",
        *FAST_FLAGS,
    ]  # fmt: skip
    workers = []
    for i, extra in enumerate(([], ["--no-final-test"])):
        log = open(tmp_path / f"worker{i}.log", "w")
        workers.append(
            subprocess.Popen(
                cmd + extra, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        )
    try:
        for i, w in enumerate(workers):
            assert w.wait(480) == 0, (tmp_path / f"worker{i}.log").read_text()[-4000:]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    ran = [int(log.split(" trial(s) run by this worker")[0].rsplit("; ", 1)[1]) for log in logs]
    assert all(n >= 1 for n in ran), f"both workers should have run trials, got {ran}"

    study = optuna.load_study(study_name="parallel", storage=storage)
    trials = study.get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert sum(ran) == len(trials)  # every trial was run by exactly one of the two workers
    # N finished; at most one extra when both workers took the last slot at the same moment.
    assert N_TRIALS <= len(finished) <= N_TRIALS + 1
    assert all(t.state != TrialState.RUNNING for t in trials)
    assert len({t.number for t in trials}) == len(trials)

    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("tune-pg")
    (tune,) = client.search_runs([exp.experiment_id], "tags.`ssmoe.step` = 'tune'")
    assert tune.info.run_id == study.user_attrs[ATTR_PARENT_RUN]
    assert tune.info.status == "FINISHED" and "test_average_ssmoe" in tune.data.metrics
    trial_runs = client.search_runs(
        [exp.experiment_id], "tags.`ssmoe.step` = 'trial'", max_results=1000
    )
    per_number = Counter(int(r.data.params["trial_number"]) for r in trial_runs)
    assert per_number == Counter(t.number for t in trials)  # one run per trial, no duplicate
    by_id = {r.info.run_id: r for r in trial_runs}
    for t in trials:
        run = by_id[t.user_attrs[ATTR_TRIAL_RUN]]
        assert run.data.tags["mlflow.parentRunId"] == tune.info.run_id
        assert run.data.tags["ssmoe.trial_state"] == t.state.name
        assert int(run.data.params["trial_number"]) == t.number
        if t.state == TrialState.COMPLETE:
            assert run.data.metrics["objective"] == pytest.approx(t.value)
    # The joining worker waited for the first trial's phase 1: one phase-1 run for all trials.
    trial_ids = set(by_id)
    pipelines = client.search_runs([exp.experiment_id], "tags.`ssmoe.step` = 'pipeline'")
    phase1 = {
        p.data.params["phase1_run"]
        for p in pipelines
        if p.data.tags["mlflow.parentRunId"] in trial_ids
    }
    assert len(phase1) == 1
    running = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
    assert running == []
