"""The local executor: tasks as subprocesses with Slurm's state names, job variables, no
inherited MLFLOW_RUN_ID, at most max_parallel at once, failures and cancellation reported."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ssmoe.cluster import JobFailed, JobSpec, LocalExecutor


def test_array_tasks_get_their_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_RUN_ID", "the-submitters-run")
    monkeypatch.setenv("INHERITED", "yes")
    show = 'echo "$SSMOE_EXECUTOR|$SSMOE_JOB_ID|$SSMOE_TASK_INDEX|${MLFLOW_RUN_ID-unset}|$INHERITED|$EXTRA"'
    spec = JobSpec(commands=(show, show, ["echo", "argv form"]), name="arr", env={"EXTRA": "x"})
    job = LocalExecutor(log_dir=str(tmp_path), poll_interval=0.05).submit(spec)
    statuses = job.wait(timeout=60)
    assert [(s.index, s.state, s.exit_code) for s in statuses] == [
        (0, "COMPLETED", 0), (1, "COMPLETED", 0), (2, "COMPLETED", 0),
    ]  # fmt: skip
    assert job.job_id.startswith("local-") and statuses[1].job_id == f"{job.job_id}_1"
    for i in range(2):
        assert job.log_path(i) == tmp_path / f"arr-{job.job_id}_{i}.out"
        assert job.log_path(i).read_text().strip() == f"local|{job.job_id}_{i}|{i}|unset|yes|x"
    assert job.log_path(2).read_text() == "argv form\n"


def test_max_parallel_and_workdir(tmp_path: Path) -> None:
    # Each task records its start and end; with max_parallel=1 the intervals cannot overlap.
    cmd = "date +%s.%N > {0}.start; sleep 0.3; date +%s.%N > {0}.end"
    spec = JobSpec(commands=tuple(cmd.format(i) for i in range(3)), workdir=str(tmp_path))
    LocalExecutor(max_parallel=1, log_dir=str(tmp_path), poll_interval=0.05).submit(spec).wait(60)
    spans = [
        (float((tmp_path / f"{i}.start").read_text()), float((tmp_path / f"{i}.end").read_text()))
        for i in range(3)
    ]
    spans.sort()
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2)), spans
    # and all at once without the limit: the three start before the first ends
    LocalExecutor(log_dir=str(tmp_path), poll_interval=0.05).submit(spec).wait(60)
    starts = [float((tmp_path / f"{i}.start").read_text()) for i in range(3)]
    first_end = min(float((tmp_path / f"{i}.end").read_text()) for i in range(3))
    assert max(starts) < first_end


def test_failure_is_reported_with_logs(tmp_path: Path) -> None:
    spec = JobSpec(commands=("true", "echo boom >&2; exit 3"), name="f")
    job = LocalExecutor(log_dir=str(tmp_path), poll_interval=0.05).submit(spec)
    with pytest.raises(JobFailed) as err:
        job.wait(timeout=60)
    assert [(s.state, s.exit_code) for s in err.value.statuses] == [
        ("COMPLETED", 0), ("FAILED", 3),
    ]  # fmt: skip
    message = str(err.value)
    assert "1 of 2 task(s) failed" in message and str(job.log_path(1)) in message
    assert job.log_path(1).read_text() == "boom\n"
    assert [s.ok for s in job.wait(check=False)] == [True, False]


def test_cancel_and_timeout(tmp_path: Path) -> None:
    spec = JobSpec(commands=("sleep 30", "sleep 30", "sleep 30"), name="c")
    job = LocalExecutor(max_parallel=2, log_dir=str(tmp_path), poll_interval=0.05).submit(spec)
    with pytest.raises(TimeoutError, match="still running after 0.3 s"):
        job.wait(timeout=0.3)
    started = time.monotonic()
    job.cancel()
    statuses = job.wait(timeout=10, check=False)
    assert time.monotonic() - started < 5
    assert [s.state for s in statuses] == ["CANCELLED"] * 3
    assert [s.exit_code for s in statuses] == [143, 143, None]  # SIGTERM; the third never ran
