"""SIGKILL a worker mid-trial, start it again: the study completes, the killed trial is failed
(heartbeat gone stale) and retried, and no MLflow run of it is left RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from tune_helpers import FAST_FLAGS, SSMOE, subprocess_env, write_space

from ssmoe.tuning.tracking import ATTR_PARENT_RUN, ATTR_TRIAL_RUN

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}) before {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_sigkilled_worker_restarts_and_completes(tmp_path: Path, tiny_dataset: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    env = subprocess_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    cmd = [
        *SSMOE,
        "tune",
        "--study", "killed",
        "--n-trials", "2",
        "--storage", storage,
        "--space", str(write_space(tmp_path / "space.json")),
        "--data", str(tiny_dataset),
        "--preset", "tiny",
        "--experiment", "tune-kill",
        "--heartbeat-interval", "1",
        "--grace-period", "4",
        "--no-final-test",
        *FAST_FLAGS,
    ]  # fmt: skip
    log = open(tmp_path / "worker1.log", "w")
    worker = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def running_trial():
            try:
                study = optuna.load_study(study_name="killed", storage=storage)
            except KeyError:  # not created yet
                return None
            for t in study.get_trials(states=(TrialState.RUNNING,)):
                if ATTR_TRIAL_RUN in t.user_attrs:
                    return t
            return None

        trial = wait_for(running_trial, 180, "a running trial", worker)
        time.sleep(3)  # inside the trial's pipeline
        assert worker.poll() is None, "the worker finished the trial before it could be killed"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    killed_run = trial.user_attrs[ATTR_TRIAL_RUN]
    assert client.get_run(killed_run).info.status == "RUNNING"  # what SIGKILL leaves behind

    with open(tmp_path / "worker2.log", "w") as log2:
        done = subprocess.run(
            cmd, cwd=tmp_path, env=env, stdout=log2, stderr=subprocess.STDOUT, timeout=400
        )
    assert done.returncode == 0, (tmp_path / "worker2.log").read_text()[-3000:]

    study = optuna.load_study(study_name="killed", storage=storage)
    trials = {t.number: t for t in study.get_trials()}
    finished = [t for t in trials.values() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 2
    assert trials[trial.number].state == TrialState.FAIL
    (retry,) = [t for t in trials.values() if t.system_attrs.get("failed_trial") == trial.number]
    assert retry.state == TrialState.COMPLETE and retry.params == trial.params
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))

    run = client.get_run(killed_run)
    assert run.info.status == "FAILED" and run.data.tags["ssmoe.trial_state"] == "FAIL"
    retry_run = client.get_run(retry.user_attrs[ATTR_TRIAL_RUN])
    assert retry_run.data.tags["ssmoe.retry_of"] == str(trial.number)
    assert retry_run.data.tags["ssmoe.trial_state"] == "COMPLETE"
    # Both workers shared one parent run; nothing but it is left RUNNING (no final test ran).
    exp = client.get_experiment_by_name("tune-kill")
    still_running = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
    assert [r.info.run_id for r in still_running] == [study.user_attrs[ATTR_PARENT_RUN]]
    tunes = client.search_runs([exp.experiment_id], "tags.`ssmoe.step` = 'tune'")
    assert len(tunes) == 1
    trial_runs = client.search_runs([exp.experiment_id], "tags.`ssmoe.step` = 'trial'")
    assert sorted(r.data.tags["ssmoe.trial_state"] for r in trial_runs) == [
        "COMPLETE",
        "COMPLETE",
        "FAIL",
    ]
