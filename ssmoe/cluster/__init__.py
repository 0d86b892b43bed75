"""Running ssmoe commands as cluster jobs: executors (``local`` | ``slurm``), the Slurm
configuration file, job-id tags on MLflow runs, the ``mlflow run --backend slurm`` backend and
the Kubernetes project variant. See docs/cluster.md.

Typical use (a fan-out of ssmoe commands, one array task each)::

    executor = make_executor("slurm", "mlproject/cluster/slurm.json")
    job = executor.submit(JobSpec(commands=tuple(ssmoe_command("tune", ...) for _ in range(4)),
                                  name="ssmoe-tune"))
    statuses = job.wait()          # raises JobFailed naming each failed task and its log
"""

from __future__ import annotations

import sys
from pathlib import Path

from ssmoe.cluster.config import SlurmConfig
from ssmoe.cluster.jobs import Executor, Job, JobFailed, JobSpec, TaskStatus
from ssmoe.cluster.local import LocalExecutor
from ssmoe.cluster.slurm import SlurmError, SlurmExecutor
from ssmoe.cluster.tags import TAG_EXECUTOR, TAG_JOB_ID, TAG_JOB_NODE, job_tags

EXECUTORS = ("local", "slurm")


def make_executor(kind: str, slurm_config: str | Path | None = None) -> Executor:
    """``"local"`` or ``"slurm"``; ``slurm_config`` is a JSON file of :class:`SlurmConfig`
    (for ``local`` only its ``max_parallel`` and ``log_dir`` are used)."""
    if kind not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {kind!r}")
    config = SlurmConfig.load(slurm_config) if slurm_config else SlurmConfig()
    if kind == "slurm":
        return SlurmExecutor(config)
    return LocalExecutor(max_parallel=config.max_parallel, log_dir=config.log_dir)


def ssmoe_command(*args: str) -> list[str]:
    """argv running ``ssmoe ARGS`` with this interpreter (``python -m ssmoe``): a job finds the
    same installation without relying on ``PATH`` (the path must exist on the compute node)."""
    return [sys.executable, "-m", "ssmoe", *args]


__all__ = [
    "EXECUTORS",
    "TAG_EXECUTOR",
    "TAG_JOB_ID",
    "TAG_JOB_NODE",
    "Executor",
    "Job",
    "JobFailed",
    "JobSpec",
    "LocalExecutor",
    "SlurmConfig",
    "SlurmError",
    "SlurmExecutor",
    "TaskStatus",
    "job_tags",
    "make_executor",
    "ssmoe_command",
]
