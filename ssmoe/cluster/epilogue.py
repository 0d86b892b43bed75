"""The end of a job that ``mlflow run --backend slurm`` submitted: log the job's output on the
run (``slurm/<file>``) and close the run if the entry point left it open - FINISHED when the
command exited 0, FAILED otherwise, as MLflow's local backend does.

``mlflow run`` returns as soon as a plugin backend has submitted (it waits for the ``local`` and
``kubernetes`` backends only), so nobody on the submitting side is left to close a run whose
command failed before the ssmoe step adopted it (a bad parameter, ``ssmoe`` not on ``PATH``):
the job closes it itself. Invoked by the job script as
``python -m ssmoe.cluster.epilogue RUN_ID EXIT_CODE [LOG_FILE]``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from mlflow.tracking import MlflowClient


def close_run(
    run_id: str,
    exit_code: int,
    log_file: str | None = None,
    announce: Callable[[str], object] | None = None,
) -> str:
    """Returns the run's status afterwards; ``announce`` gets one line saying what is done,
    before the log is uploaded (so that the uploaded log ends with it)."""
    client = MlflowClient()
    current = client.get_run(run_id).info.status
    status = current
    if current == "RUNNING":
        status = "FINISHED" if exit_code == 0 else "FAILED"
    if announce is not None:
        announce(f"epilogue: run {run_id}, exit code {exit_code}: {current} -> {status}")
    if log_file and Path(log_file).is_file():
        client.log_artifact(run_id, log_file, artifact_path="slurm")
    if status != current:
        client.set_terminated(run_id, status=status)
    return status


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3) or not args[1].lstrip("-").isdigit():
        print(
            "usage: python -m ssmoe.cluster.epilogue RUN_ID EXIT_CODE [LOG_FILE]", file=sys.stderr
        )
        return 2

    def announce(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    close_run(args[0], int(args[1]), args[2] if len(args) == 3 else None, announce)
    return 0


if __name__ == "__main__":
    sys.exit(main())
