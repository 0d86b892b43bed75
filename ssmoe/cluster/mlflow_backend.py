"""``mlflow run ... --backend slurm``: an MLflow Projects backend that submits the entry point
as a Slurm job through :class:`~ssmoe.cluster.slurm.SlurmExecutor`.

Registered under the entry point ``mlflow.project_backend`` as ``slurm``. It replaces the
``mlflow-slurm`` plugin (1.0.6, the latest release), which fails with MLflow 3: it builds a
virtualenv for every ``python_env`` project whatever ``--env-manager`` says (pyenv then tries
to download Python), and calls MLflow 2's ``_create_virtualenv`` signature, which raises
``AttributeError: 'PosixPath' object has no attribute 'python'`` in MLflow 3.17 (details in
docs/cluster.md). Do not install both: they register the same backend name.

The job runs the entry point's command in the submitting environment (``--env-manager local``
is the only manager; jobs inherit ``PATH`` and the virtual environment), in the project
directory, with ``MLFLOW_RUN_ID`` of the run this backend creates (the ssmoe step adopts it)
and ``MLFLOW_TRACKING_URI`` of the submitting side. The run is tagged ``ssmoe.executor=slurm``
and ``ssmoe.job_id=<Slurm job id>`` at submission. The ``mlflow run`` command returns once the
job is queued (MLflow's CLI waits for its ``local`` and ``kubernetes`` backends only; follow the
job with ``squeue``); the job itself ends with :mod:`ssmoe.cluster.epilogue`, which logs its
output on the run (``slurm/<name>-<job id>.out``) and closes the run if the command left it open.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from mlflow.entities import RunStatus
from mlflow.exceptions import ExecutionException
from mlflow.projects.backend.abstract_backend import AbstractBackend
from mlflow.projects.submitted_run import SubmittedRun
from mlflow.projects.utils import (
    MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG,
    PROJECT_BUILD_IMAGE,
    PROJECT_DOCKER_ARGS,
    PROJECT_DOCKER_AUTH,
    PROJECT_ENV_MANAGER,
    PROJECT_STORAGE_DIR,
    PROJECT_SYNCHRONOUS,
    fetch_and_validate_project,
    get_entry_point_command,
    get_or_create_run,
    get_run_env_vars,
    load_project,
)
from mlflow.tracking import MlflowClient

from ssmoe.cluster.config import SlurmConfig
from ssmoe.cluster.jobs import JobSpec, TaskStatus
from ssmoe.cluster.slurm import SlurmExecutor, SlurmJob
from ssmoe.cluster.tags import TAG_EXECUTOR, TAG_JOB_ID

# Under "mlflow" so that `mlflow run` prints it beside its own messages (it configures that logger).
log = logging.getLogger("mlflow.projects.slurm")

# Keys MLflow adds to every backend config (mlflow.projects._run); not ours to validate.
_MLFLOW_KEYS = {
    PROJECT_ENV_MANAGER,
    PROJECT_SYNCHRONOUS,
    PROJECT_DOCKER_ARGS,
    PROJECT_STORAGE_DIR,
    PROJECT_BUILD_IMAGE,
    PROJECT_DOCKER_AUTH,
    MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG,
}


def absolute_tracking_uri(uri: str) -> str:
    """A relative ``sqlite:///x.db`` made absolute (the job runs in the project directory)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def with_epilogue(command: str) -> str:
    """``command``, then :mod:`ssmoe.cluster.epilogue` with its exit code. The TERM trap keeps
    the job shell alive when Slurm cancels the job or its time runs out (Slurm sends SIGTERM to
    every process of the job, then SIGKILL after ``KillWait``), so the run is closed FAILED."""
    return "\n".join(
        [
            "trap 'echo \"ssmoe: SIGTERM (job cancelled or out of time)\" >&2' TERM",
            command,
            "rc=$?",
            f'{shlex.quote(sys.executable)} -m ssmoe.cluster.epilogue "$MLFLOW_RUN_ID" "$rc" '
            '"$SSMOE_JOB_LOG"',
            "exit $rc",
        ]
    )


class SlurmSubmittedRun(SubmittedRun):
    def __init__(self, run_id: str, job: SlurmJob) -> None:
        super().__init__()
        self._run_id = run_id
        self.job = job

    @property
    def run_id(self) -> str:
        return self._run_id

    def wait(self) -> bool:
        """Used by ``mlflow.projects.run(..., synchronous=True)`` (the CLI does not wait)."""
        (status,) = self.job.wait(check=False)
        log.info("Slurm job %s: %s, exit code %s", status.job_id, status.state, status.exit_code)
        return status.ok

    def get_status(self) -> str:
        (status,) = self.job.poll()
        return RunStatus.to_string(_run_status(status))

    def cancel(self) -> None:
        self.job.cancel()


def _run_status(status: TaskStatus) -> int:
    if not status.done:
        return RunStatus.SCHEDULED if status.state == "PENDING" else RunStatus.RUNNING
    return RunStatus.FINISHED if status.ok else RunStatus.FAILED


class SlurmBackend(AbstractBackend):
    def run(
        self,
        project_uri: str,
        entry_point: str,
        params: dict[str, Any],
        version: str | None,
        backend_config: dict[str, Any],
        tracking_uri: str,
        experiment_id: str,
    ) -> SlurmSubmittedRun:
        env_manager = backend_config.get(PROJECT_ENV_MANAGER)
        if env_manager not in (None, "local"):
            raise ExecutionException(
                f"--backend slurm runs the job in the submitting environment: use "
                f"--env-manager local (got {env_manager!r})"
            )
        config = SlurmConfig.from_dict(
            {k: v for k, v in backend_config.items() if k not in _MLFLOW_KEYS},
            source="--backend-config",
        )
        work_dir = fetch_and_validate_project(project_uri, version, entry_point, params)
        project = load_project(work_dir)
        run = get_or_create_run(
            None, project_uri, experiment_id, work_dir, version, entry_point, params
        )
        run_id = run.info.run_id
        command = " ".join(
            get_entry_point_command(
                project, entry_point, params, backend_config.get(PROJECT_STORAGE_DIR)
            )
        )
        env = {
            **get_run_env_vars(run_id=run_id, experiment_id=experiment_id),
            "MLFLOW_TRACKING_URI": absolute_tracking_uri(tracking_uri),
        }
        spec = JobSpec(
            commands=(with_epilogue(command),),
            name=f"mlflow-{entry_point}",
            workdir=work_dir,
            env=env,
        )
        client = MlflowClient()
        try:
            job = SlurmExecutor(config).submit(spec)
        except Exception:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_tag(run_id, TAG_EXECUTOR, "slurm")
        client.set_tag(run_id, TAG_JOB_ID, job.job_id)
        log.info("run %s submitted as Slurm job %s: %s", run_id, job.job_id, command)
        return SlurmSubmittedRun(run_id, job)


def slurm_backend() -> SlurmBackend:
    """Entry point ``mlflow.project_backend: slurm``."""
    return SlurmBackend()
