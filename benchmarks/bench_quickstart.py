"""Time `ssmoe quickstart` end to end on this machine, with the time of every step.

    python benchmarks/bench_quickstart.py [--workdir DIR] [--keep]

Runs the quick start in a fresh work directory (its own MLflow store), then reads the step runs
back from that store and prints wall time per step and in total, against the 10-minute budget
the quick start must meet on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("extra", nargs="*", help="extra arguments for ssmoe quickstart")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ssmoe-quickstart-"))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "ssmoe", "quickstart", "--workdir", str(workdir), *args.extra]
    subprocess.run(cmd, env=env, check=True)
    total = time.perf_counter() - start

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["ssmoe"], order_by=["attributes.start_time ASC"])
    print(f"\n{'step':12s} {'seconds':>8s}")
    for _, run in runs.iterrows():
        step = run.get("tags.ssmoe.step")
        seconds = (run.end_time - run.start_time).total_seconds()
        if step not in ("quickstart", "cv", "pipeline"):
            print(f"{step:12s} {seconds:8.1f}")
    print(
        f"{'total':12s} {total:8.1f}   ({total / BUDGET_S:.2f} of the {BUDGET_S:.0f} s budget,"
        f" {os.cpu_count()} CPU cores)"
    )
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if total <= BUDGET_S else 1)


if __name__ == "__main__":
    main()
