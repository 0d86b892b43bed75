"""Local executor: every task is a ``bash -c`` subprocess on this machine, at most
``max_parallel`` at once (default: all), with Slurm's state names so that callers handle both
executors alike. Its job id is ``local-<8 hex>``; array task i is ``local-<hex>_i``."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path

from ssmoe.cluster.jobs import (
    Executor,
    Job,
    JobSpec,
    TaskStatus,
    job_environment,
    resolve_log_dir,
    shell_line,
)


class LocalJob(Job):
    def __init__(
        self, spec: JobSpec, job_id: str, log_dir: Path, poll_interval: float, max_parallel: int
    ) -> None:
        super().__init__(spec, job_id, log_dir, poll_interval)
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_parallel)
        self._launcher = threading.Thread(target=self._launch_all, daemon=True)
        self._launcher.start()

    def _task_id(self, index: int) -> str:
        return f"{self.job_id}_{index}" if self.spec.is_array else self.job_id

    def _launch_all(self) -> None:
        for i, command in enumerate(self.spec.commands):
            self._slots.acquire()
            with self._lock:
                if i in self._cancelled:
                    self._slots.release()
                    continue
                env = job_environment(self.spec)
                env.update(
                    SSMOE_EXECUTOR="local",
                    SSMOE_JOB_ID=self._task_id(i),
                    SSMOE_TASK_INDEX=str(i),
                    SSMOE_JOB_LOG=str(self.log_path(i)),
                )
                with open(self.log_path(i), "wb") as out:
                    proc = subprocess.Popen(
                        ["bash", "-c", shell_line(command)],
                        cwd=self.spec.workdir,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # cancel() signals the task's whole group
                    )
                self._procs[i] = proc
            threading.Thread(target=self._release_on_exit, args=(proc,), daemon=True).start()

    def _release_on_exit(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        self._slots.release()

    def poll(self) -> list[TaskStatus]:
        statuses = []
        with self._lock:
            for i in range(len(self.spec.commands)):
                proc = self._procs.get(i)
                if proc is None:
                    state, code = ("CANCELLED", None) if i in self._cancelled else ("PENDING", None)
                elif (rc := proc.poll()) is None:
                    state, code = "RUNNING", None
                elif i in self._cancelled:
                    state, code = "CANCELLED", rc if rc >= 0 else 128 - rc
                else:
                    state = "COMPLETED" if rc == 0 else "FAILED"
                    code = rc if rc >= 0 else 128 - rc  # killed by signal s: 128 + s
                statuses.append(TaskStatus(i, self._task_id(i), state, code))
        return statuses

    def cancel(self) -> None:
        with self._lock:
            for i in range(len(self.spec.commands)):
                proc = self._procs.get(i)
                if proc is None or proc.poll() is None:
                    self._cancelled.add(i)
                if proc is not None and proc.poll() is None:
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass

    def log_path(self, index: int) -> Path:
        return self.log_dir / f"{self.spec.name}-{self._task_id(index)}.out"


class LocalExecutor(Executor):
    """Runs tasks as subprocesses here; logs in ``log_dir`` (default ``./slurm-logs``)."""

    kind = "local"

    def __init__(
        self, max_parallel: int | None = None, log_dir: str | None = None, poll_interval=1.0
    ) -> None:
        if max_parallel is not None and max_parallel < 1:
            raise ValueError(f"max_parallel must be >= 1, got {max_parallel}")
        self.max_parallel = max_parallel
        self.log_dir = log_dir
        self.poll_interval = float(poll_interval)

    def submit(self, spec: JobSpec) -> LocalJob:
        job_id = f"local-{uuid.uuid4().hex[:8]}"
        return LocalJob(
            spec,
            job_id,
            resolve_log_dir(self.log_dir),
            self.poll_interval,
            self.max_parallel or len(spec.commands),
        )
