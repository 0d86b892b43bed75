"""Job-id tags: from Slurm's or the local executor's variables, onto runs started inside a job
(MLflow run-context plugin), and the epilogue that closes a run its command left open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.plugins import get_entry_points

from ssmoe.cluster import job_tags
from ssmoe.cluster.epilogue import close_run, main


def test_job_tags_from_the_environment() -> None:
    assert job_tags({}) == {}
    assert job_tags({"SLURM_JOB_ID": "17", "SLURMD_NODENAME": "gpu03"}) == {
        "ssmoe.executor": "slurm", "ssmoe.job_id": "17", "ssmoe.job_node": "gpu03",
    }  # fmt: skip
    array = {"SLURM_JOB_ID": "21", "SLURM_ARRAY_JOB_ID": "20", "SLURM_ARRAY_TASK_ID": "1"}
    assert job_tags(array) == {"ssmoe.executor": "slurm", "ssmoe.job_id": "20_1"}
    local = {"SSMOE_EXECUTOR": "local", "SSMOE_JOB_ID": "local-ab12_0"}
    assert job_tags(local) == {"ssmoe.executor": "local", "ssmoe.job_id": "local-ab12_0"}
    pod = {"SSMOE_EXECUTOR": "kubernetes", "SSMOE_JOB_ID": "ssmoe-2026-x7k2p"}  # job template
    assert job_tags(pod)["ssmoe.executor"] == "kubernetes"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowClient]:
    """One SQLite store for the module (creating one takes seconds)."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SSMOE_JOB_ID", "MLFLOW_RUN_ID"):
            mp.delenv(name, raising=False)
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        # artifacts beside the store, not in ./mlruns of the working directory
        client.create_experiment("e", artifact_location=(root / "artifacts").as_uri())
        yield client


def test_runs_started_in_a_job_carry_its_tags(store: MlflowClient, monkeypatch) -> None:
    names = [e.name for e in get_entry_points("mlflow.run_context_provider")]
    assert "ssmoe_job" in names, "ssmoe's MLflow plugins are not registered: pip install -e ."
    exp = store.get_experiment_by_name("e").experiment_id
    with mlflow.start_run(experiment_id=exp) as outside:
        pass
    monkeypatch.setenv("SLURM_JOB_ID", "99")
    monkeypatch.setenv("SLURMD_NODENAME", "node7")
    with mlflow.start_run(experiment_id=exp) as inside:
        pass
    assert "ssmoe.job_id" not in store.get_run(outside.info.run_id).data.tags
    tags = store.get_run(inside.info.run_id).data.tags
    assert (tags["ssmoe.executor"], tags["ssmoe.job_id"], tags["ssmoe.job_node"]) == (
        "slurm", "99", "node7",
    )  # fmt: skip


def test_epilogue_closes_only_open_runs(store: MlflowClient, tmp_path: Path, capsys) -> None:
    exp = store.get_experiment_by_name("e").experiment_id
    log_file = tmp_path / "mlflow-phase1-5.out"
    log_file.write_text("Error: Invalid value for '--width'\n")
    open_run = store.create_run(exp).info.run_id
    assert close_run(open_run, 2, str(log_file)) == "FAILED"
    assert store.get_run(open_run).info.status == "FAILED"
    assert [a.path for a in store.list_artifacts(open_run, "slurm")] == [
        "slurm/mlflow-phase1-5.out"
    ]
    ok_run = store.create_run(exp).info.run_id
    assert main([ok_run, "0"]) == 0
    assert store.get_run(ok_run).info.status == "FINISHED"
    assert f"epilogue: run {ok_run}, exit code 0: RUNNING -> FINISHED" in capsys.readouterr().err
    done_run = store.create_run(exp).info.run_id
    store.set_terminated(done_run, "FINISHED")  # the step closed it: the exit code is not used
    assert close_run(done_run, 1) == "FINISHED"
    assert main(["only-one-arg"]) == 2
