"""Jobs and executors: one interface whether a command runs here or on a Slurm cluster.

A :class:`JobSpec` holds one shell command per task: one command is a plain job, N commands
are a job array of N tasks (task i runs ``commands[i]``; on Slurm, one ``sbatch --array``). An
:class:`Executor` submits it and returns a :class:`Job`, which is polled until every task has
ended. Every task sees ``SSMOE_EXECUTOR`` (local|slurm), ``SSMOE_JOB_ID`` (its own id),
``SSMOE_TASK_INDEX`` and ``SSMOE_JOB_LOG`` (its output file) in its environment
(``ssmoe.cluster.tags`` turns the first two into MLflow run tags).
"""

from __future__ import annotations

import os
import shlex
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Command = str | Sequence[str]  # a shell line, or an argv list (quoted for the shell)

ACTIVE = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING",
     "STAGE_OUT", "SIGNALING", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
)  # fmt: skip
SUCCESS = "COMPLETED"


def shell_line(command: Command) -> str:
    """The command as one shell line (an argv list is quoted with ``shlex.join``)."""
    if isinstance(command, str):
        return command
    return shlex.join(str(c) for c in command)


@dataclass(frozen=True)
class JobSpec:
    """What to run. ``commands``: one per task (>= 1); ``name``: the job name (also names the
    log files); ``workdir``: the tasks' working directory (default: the submitting process's);
    ``env``: variables set in every task on top of the submitting environment (which jobs
    inherit, ``MLFLOW_TRACKING_URI`` included; ``MLFLOW_RUN_ID`` is never inherited, only set
    here on purpose)."""

    commands: tuple[Command, ...]
    name: str = "ssmoe"
    workdir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.commands:
            raise ValueError("a job needs at least one command")
        if not self.name or any(c.isspace() or c == "/" for c in self.name):
            raise ValueError(f"job name must be non-empty without spaces or '/', got {self.name!r}")

    @property
    def is_array(self) -> bool:
        return len(self.commands) > 1


@dataclass(frozen=True)
class TaskStatus:
    """One task's state: Slurm's state names (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED,
    TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, ...) for both executors; ``exit_code`` once ended."""

    index: int
    job_id: str  # the task's own id: "123" for a plain job, "123_4" for array task 4
    state: str
    exit_code: int | None = None

    @property
    def done(self) -> bool:
        return self.state not in ACTIVE

    @property
    def ok(self) -> bool:
        return self.state == SUCCESS and self.exit_code in (0, None)


class JobFailed(RuntimeError):
    """Some task of a job did not complete; ``statuses`` holds every task's end state."""

    def __init__(self, job: Job, statuses: list[TaskStatus]) -> None:
        self.statuses = statuses
        failed = [s for s in statuses if not s.ok]
        lines = [
            f"  task {s.index} ({s.job_id}): {s.state}, exit code {s.exit_code}, "
            f"log {job.log_path(s.index)}"
            for s in failed
        ]
        super().__init__(
            f"job {job.job_id} ({job.spec.name}): {len(failed)} of {len(statuses)} task(s) "
            "failed\n" + "\n".join(lines)
        )


class Job(ABC):
    """A submitted job: poll it, wait for it, cancel it."""

    def __init__(self, spec: JobSpec, job_id: str, log_dir: Path, poll_interval: float) -> None:
        self.spec = spec
        self.job_id = job_id
        self.log_dir = log_dir
        self.poll_interval = poll_interval

    @abstractmethod
    def poll(self) -> list[TaskStatus]:
        """Every task's current status, by task index."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop every task that has not ended (their state becomes CANCELLED)."""

    @abstractmethod
    def log_path(self, index: int) -> Path:
        """The file holding task ``index``'s stdout and stderr."""

    def wait(self, timeout: float | None = None, *, check: bool = True) -> list[TaskStatus]:
        """Poll until every task has ended; raise :class:`JobFailed` when one did not complete
        (unless ``check=False``) and ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            statuses = self.poll()
            if all(s.done for s in statuses):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {self.job_id} ({self.spec.name}) still running after {timeout} s: "
                    + ", ".join(f"{s.job_id} {s.state}" for s in statuses)
                )
            time.sleep(self.poll_interval)
        if check and not all(s.ok for s in statuses):
            raise JobFailed(self, statuses)
        return statuses


class Executor(ABC):
    """Submits a :class:`JobSpec`; ``kind`` is ``"local"`` or ``"slurm"``."""

    kind: str

    @abstractmethod
    def submit(self, spec: JobSpec) -> Job:
        """Start (or queue) every task of ``spec`` and return at once."""


def job_environment(spec: JobSpec) -> dict[str, str]:
    """The environment a task starts from: this process's, without an inherited
    ``MLFLOW_RUN_ID`` (the trap that makes a job adopt the submitter's run), plus ``spec.env``."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    env.update(spec.env)
    return env


def resolve_log_dir(log_dir: str | None) -> Path:
    """``log_dir`` (default ``./slurm-logs``) as an absolute path, created."""
    path = Path(log_dir or "slurm-logs").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
