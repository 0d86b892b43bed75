"""Slurm executor: a job is one ``sbatch`` script (``--array`` for several tasks), its state is
read with ``scontrol show job`` and, once Slurm has purged the job (``MinJobAge``), ``sacct``.

Plain ``sbatch`` rather than ``submitit``: our tasks are command lines (the MLproject entry
points and ``ssmoe`` commands), not pickled Python callables, and submitit reads job states
from ``sacct`` only, so on a cluster without accounting (like the test cluster of
``.ci/slurm.sh``) a task killed before writing its result is never seen to end.

The job inherits the submitting environment (``--export=ALL``: ``PATH``, the virtual
environment, ``MLFLOW_TRACKING_URI``), so submit from the environment the job should run in
or add ``setup`` lines to the configuration.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
from pathlib import Path

from ssmoe.cluster.config import SlurmConfig
from ssmoe.cluster.jobs import (
    Executor,
    Job,
    JobSpec,
    TaskStatus,
    job_environment,
    resolve_log_dir,
    shell_line,
)

log = logging.getLogger(__name__)


class SlurmError(RuntimeError):
    """A Slurm command failed (its stderr is in the message)."""


def _slurm(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            args, input=stdin, capture_output=True, text=True, env=env, check=False, timeout=120
        )
    except FileNotFoundError:
        raise SlurmError(f"{args[0]} not found: is this a Slurm submit host?") from None
    if done.returncode != 0:
        raise SlurmError(f"{shlex.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def render_script(spec: JobSpec, config: SlurmConfig, log_dir: Path) -> str:
    """The ``sbatch`` script of ``spec``: directives from ``config``, then the set-up lines,
    then the task's command (a ``case`` on ``SLURM_ARRAY_TASK_ID`` for an array)."""
    out = "%x-%A_%a.out" if spec.is_array else "%x-%j.out"
    directives = [
        f"--job-name={spec.name}",
        f"--output={log_dir / out}",
        "--export=ALL",
    ]
    if spec.is_array:
        last = len(spec.commands) - 1
        limit = f"%{config.max_parallel}" if config.max_parallel else ""
        directives.append(f"--array=0-{last}{limit}")
    if spec.workdir:
        directives.append(f"--chdir={Path(spec.workdir).resolve()}")
    for key in ("partition", "account", "qos", "time", "mem", "gres", "constraint"):
        value = getattr(config, key)
        if value:
            directives.append(f"--{key}={value}")
    if config.cpus_per_task:
        directives.append(f"--cpus-per-task={config.cpus_per_task}")
    if config.gpus_per_node:
        directives.append(f"--gpus-per-node={config.gpus_per_node}")
    if config.exclusive:
        directives.append("--exclusive")
    directives += config.sbatch_args
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives), ""]
    lines += [f"module load {shlex.quote(m)}" for m in config.modules]
    for item in config.environment:
        name, value = item.split("=", 1)
        lines.append(f"export {name}={shlex.quote(value)}")
    lines += list(config.setup)
    lines += [
        "# One thread per allocated CPU unless the environment says otherwise.",
        'if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then',
        '    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$SLURM_CPUS_PER_TASK}"',
        "fi",
        "export SSMOE_EXECUTOR=slurm",
    ]
    if spec.is_array:
        lines += [
            'export SSMOE_JOB_ID="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
            'export SSMOE_TASK_INDEX="$SLURM_ARRAY_TASK_ID"',
            f'export SSMOE_JOB_LOG={shlex.quote(f"{log_dir / spec.name}-")}"$SSMOE_JOB_ID.out"',
            'case "$SLURM_ARRAY_TASK_ID" in',
        ]
        for i, command in enumerate(spec.commands):
            lines += [f"{i})", f"    {shell_line(command)}", "    ;;"]
        lines += ['*) echo "no command for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;']
        lines += ["esac"]
    else:
        lines += [
            'export SSMOE_JOB_ID="$SLURM_JOB_ID"',
            "export SSMOE_TASK_INDEX=0",
            f'export SSMOE_JOB_LOG={shlex.quote(f"{log_dir / spec.name}-")}"$SSMOE_JOB_ID.out"',
            shell_line(spec.commands[0]),
        ]
    return "\n".join(lines) + "\n"


def _parse_records(text: str) -> list[dict[str, str]]:
    """``scontrol show job -o`` output: one line per job or array task, ``Key=Value`` fields."""
    records = []
    for line in text.splitlines():
        record: dict[str, str] = {}
        for token in line.split():
            key, sep, value = token.partition("=")
            if sep and key not in record:
                record[key] = value
        if "JobId" in record:
            records.append(record)
    return records


def _exit_code(text: str | None) -> int | None:
    """Slurm's ``ExitCode=status:signal`` -> the status (128 + signal when killed)."""
    if not text:
        return None
    status, _, signal = text.partition(":")
    if signal and signal != "0":
        return 128 + int(signal)
    return int(status)


def _task_range(text: str) -> list[int]:
    """``ArrayTaskId`` of a pending array record: ``3``, ``2-5``, ``1,3-4%2``."""
    out: list[int] = []
    for part in text.split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


class SlurmJob(Job):
    def poll(self) -> list[TaskStatus]:
        n = len(self.spec.commands)
        found = self._scontrol()
        if found is None:
            found = self._sacct()
        statuses = []
        for i in range(n):
            state, code = found.get(i, ("UNKNOWN", None))
            task_id = f"{self.job_id}_{i}" if self.spec.is_array else self.job_id
            statuses.append(TaskStatus(i, task_id, state, code))
        return statuses

    def _scontrol(self) -> dict[int, tuple[str, int | None]] | None:
        """Task index -> (state, exit code); None when Slurm no longer knows the job."""
        try:
            text = _slurm("scontrol", "show", "job", "-o", self.job_id)
        except SlurmError as err:
            if "Invalid job id" in str(err):
                return None
            raise
        found: dict[int, tuple[str, int | None]] = {}
        for record in _parse_records(text):
            state = record.get("JobState", "UNKNOWN")
            code = _exit_code(record.get("ExitCode")) if state not in ("PENDING",) else None
            if not self.spec.is_array:
                found[0] = (state, code)
            elif "ArrayTaskId" in record:
                for i in _task_range(record["ArrayTaskId"]):
                    found[i] = (state, code)
        return found

    def _sacct(self) -> dict[int, tuple[str, int | None]]:
        """Purged jobs: from accounting (needs slurmdbd); raises when there is none."""
        text = _slurm("sacct", "-X", "-n", "-P", "-j", self.job_id, "-o", "JobID,State,ExitCode")
        found: dict[int, tuple[str, int | None]] = {}
        for line in text.splitlines():
            job_id, state, code = line.split("|")
            state = state.split()[0]  # "CANCELLED by 0" -> "CANCELLED"
            match = re.fullmatch(rf"{self.job_id}_(\d+)", job_id)
            if self.spec.is_array and match:
                found[int(match.group(1))] = (state, _exit_code(code))
            elif not self.spec.is_array and job_id == self.job_id:
                found[0] = (state, _exit_code(code))
        return found

    def cancel(self) -> None:
        _slurm("scancel", self.job_id)

    def log_path(self, index: int) -> Path:
        if self.spec.is_array:
            return self.log_dir / f"{self.spec.name}-{self.job_id}_{index}.out"
        return self.log_dir / f"{self.spec.name}-{self.job_id}.out"


class SlurmExecutor(Executor):
    """Submits with ``sbatch``; the batch script is kept beside the logs
    (``<log_dir>/<name>-<job id>.sbatch``) for inspection and resubmission."""

    kind = "slurm"

    def __init__(self, config: SlurmConfig | None = None) -> None:
        self.config = config or SlurmConfig()

    def submit(self, spec: JobSpec) -> SlurmJob:
        log_dir = resolve_log_dir(self.config.log_dir)
        script = render_script(spec, self.config, log_dir)
        out = _slurm("sbatch", "--parsable", env=job_environment(spec), stdin=script)
        job_id = out.strip().split(";")[0]  # "id" or "id;cluster"
        if not job_id.isdigit():
            raise SlurmError(f"sbatch printed no job id: {out!r}")
        (log_dir / f"{spec.name}-{job_id}.sbatch").write_text(script)
        log.info("submitted %s as Slurm job %s (%d task(s))", spec.name, job_id, len(spec.commands))
        return SlurmJob(spec, job_id, log_dir, self.config.poll_interval)
