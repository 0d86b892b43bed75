"""On the real scheduler (the one-node cluster of ``.ci/slurm.sh``), against an MLflow tracking
server on PostgreSQL: a job array, a tiny ``ssmoe phase1`` submitted through the executor and
through ``mlflow run --backend slurm``, and a cancelled job whose run is closed FAILED.
Every run must land exactly once, in the shared server, tagged with its Slurm job id."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from ssmoe.cluster import JobFailed, JobSpec, SlurmConfig, SlurmExecutor, ssmoe_command

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
shared = pytest.mark.postgres  # the tracking server of `shared_state` runs on PostgreSQL
ROOT = Path(__file__).resolve().parents[2]
MLFLOW = str(Path(sys.executable).parent / "mlflow")
FAST = ["--preset", "tiny", "--n-pairs", "96"]  # phase 1 in seconds once Python is up


def executor(tmp_path: Path) -> SlurmExecutor:
    return SlurmExecutor(SlurmConfig(log_dir=str(tmp_path / "logs"), poll_interval=1, mem="2G"))


def test_array_job_runs_each_task_once(slurm_cluster: str, tmp_path: Path) -> None:
    show = 'echo "$SLURM_ARRAY_TASK_ID $SSMOE_JOB_ID $SSMOE_TASK_INDEX {}"; sleep 2'
    spec = JobSpec(commands=(show.format("a"), show.format("b")), name="arr")
    job = executor(tmp_path).submit(spec)
    statuses = job.wait(timeout=120)
    assert [(s.job_id, s.state, s.exit_code) for s in statuses] == [
        (f"{job.job_id}_0", "COMPLETED", 0), (f"{job.job_id}_1", "COMPLETED", 0),
    ]  # fmt: skip
    for i, letter in enumerate("ab"):
        out = job.log_path(i).read_text().split()
        assert out == [str(i), f"{job.job_id}_{i}", str(i), letter]
    assert (tmp_path / "logs" / f"arr-{job.job_id}.sbatch").read_text().startswith("#!/bin/bash")

    failing = executor(tmp_path).submit(JobSpec(commands=("true", "exit 4"), name="bad"))
    with pytest.raises(JobFailed) as err:
        failing.wait(timeout=120)
    assert [(s.state, s.exit_code) for s in err.value.statuses] == [
        ("COMPLETED", 0), ("FAILED", 4),
    ]  # fmt: skip


def only_run(client: MlflowClient, experiment: str) -> Run:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment} on the tracking server"
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [(r.info.run_id, r.info.status) for r in runs]
    return runs[0]


@shared
def test_phase1_as_slurm_job(
    slurm_cluster: str, shared_state, job_env: dict[str, str], tiny_dataset: Path, tmp_path: Path
) -> None:
    experiment = f"slurm-{uuid.uuid4().hex[:6]}"
    command = ssmoe_command(
        "phase1", "--data", str(tiny_dataset), *FAST, "--experiment", experiment
    )
    job = executor(tmp_path).submit(JobSpec(commands=(command,), name="phase1", env=job_env))
    (status,) = job.wait(timeout=600)
    assert status.ok, job.log_path(0).read_text()[-3000:]

    client = MlflowClient(shared_state.tracking_uri)
    run = only_run(client, experiment)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["ssmoe.step"] == "phase1"
    assert (tags["ssmoe.executor"], tags["ssmoe.job_id"]) == ("slurm", job.job_id)
    assert tags["ssmoe.job_node"] == socket.gethostname().split(".")[0]
    # Artifacts went through the server into its --artifacts-destination.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = shared_state.artifacts / run.info.experiment_id / run.info.run_id / "artifacts"
    assert (stored / "scores" / "patch_scores.csv").is_file()


def mlflow_run(params: list[str], experiment: str, env: dict[str, str], cwd: Path) -> str:
    """``mlflow run mlproject -e phase1 --backend slurm`` with the example configuration;
    returns its output (it returns once the job is queued)."""
    cmd = [
        MLFLOW, "run", str(ROOT / "mlproject"), "-e", "phase1",
        "--backend", "slurm", "--backend-config", str(ROOT / "mlproject/cluster/slurm.json"),
        "--env-manager", "local", "--experiment-name", experiment,
    ]  # fmt: skip
    for p in params:
        cmd += ["-P", p]
    done = subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def wait_closed(client: MlflowClient, experiment: str, timeout: float = 600) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        run = only_run(client, experiment)
        if run.info.status not in ("RUNNING", "SCHEDULED") and any(
            a.path == "slurm" for a in client.list_artifacts(run.info.run_id)
        ):
            return run  # closed, and the epilogue has logged the job output
        assert time.monotonic() < deadline, f"run still {run.info.status} after {timeout} s"
        time.sleep(2)


@shared
def test_mlflow_run_backend_slurm(
    slurm_cluster: str, shared_state, job_env: dict[str, str], tiny_dataset: Path, tmp_path: Path
) -> None:
    experiment = f"mlflow-run-{uuid.uuid4().hex[:6]}"
    params = [f"data_dir={tiny_dataset}", "preset=tiny", "n_pairs=96"]
    out = mlflow_run(params, experiment, job_env, tmp_path)
    client = MlflowClient(shared_state.tracking_uri)
    run = wait_closed(client, experiment)
    job_id = run.data.tags["ssmoe.job_id"]
    assert f"submitted as Slurm job {job_id}" in out
    log = client.download_artifacts(
        run.info.run_id, f"slurm/mlflow-phase1-{job_id}.out", str(tmp_path)
    )
    assert run.info.status == "FINISHED", Path(log).read_text()[-3000:]
    tags = run.data.tags
    assert tags["ssmoe.step"] == "phase1" and tags["mlflow.project.backend"] == "slurm"
    assert tags["ssmoe.executor"] == "slurm" and job_id.isdigit()
    assert run.data.params["n_pairs"] == "96"  # the entry point's parameter, adopted by phase 1
    # phase 1 closed its run itself; the epilogue found it so and only logged the output
    assert (
        f"epilogue: run {run.info.run_id}, exit code 0: FINISHED -> FINISHED"
        in Path(log).read_text()
    )
    assert (tmp_path / "slurm-logs" / f"mlflow-phase1-{job_id}.sbatch").is_file()


@shared
def test_cancelled_job_closes_its_run_failed(
    slurm_cluster: str, shared_state, job_env: dict[str, str], tiny_dataset: Path, tmp_path: Path
) -> None:
    experiment = f"cancel-{uuid.uuid4().hex[:6]}"
    params = [f"data_dir={tiny_dataset}", "preset=tiny", "epochs=500"]  # far longer than we wait
    mlflow_run(params, experiment, job_env, tmp_path)
    client = MlflowClient(shared_state.tracking_uri)
    deadline = time.monotonic() + 300
    while "ssmoe.step" not in (run := only_run(client, experiment)).data.tags:
        assert time.monotonic() < deadline, "phase 1 never adopted the run"
        time.sleep(1)
    job_id = run.data.tags["ssmoe.job_id"]
    subprocess.run(["scancel", job_id], check=True)  # what a time limit or a drained node does
    run = wait_closed(client, experiment, timeout=120)
    assert run.info.status == "FAILED"
    log = client.download_artifacts(
        run.info.run_id, f"slurm/mlflow-phase1-{job_id}.out", str(tmp_path)
    )
    text = Path(log).read_text()
    assert "SIGTERM (job cancelled or out of time)" in text
    assert f"epilogue: run {run.info.run_id}, exit code 143: RUNNING -> FAILED" in text
