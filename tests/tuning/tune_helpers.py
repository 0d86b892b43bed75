"""Helpers of the tuning tests (a uniquely named module: several test folders have a
`conftest.py`, so importing helpers from one by that name is ambiguous)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Overrides that keep a trial to seconds (the pipeline's step -> config fields).
FAST = {"phase1": {"n_pairs": 96}, "phase3": {"n_pairs": 64}}
FAST_FLAGS = ["--set", "phase1.n_pairs=96", "--set", "phase3.n_pairs=64", "--max-volumes", "3"]
SSMOE = [str(Path(sys.executable).parent / "ssmoe")]  # the console script of this venv


def write_space(path: Path, *, pruner: dict | None = None, lr=(1e-4, 1e-2)) -> Path:
    """A study definition over K in {2, 4}, two fast segmenters and a log-uniform lr."""
    doc = {
        "params": {
            "k": {"type": "categorical", "choices": [2, 4]},
            "segmenter": {"type": "categorical", "choices": ["quantile", "kmeans"]},
            "lr": {"type": "float", "low": lr[0], "high": lr[1], "log": True},
        },
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 2},
        "pruner": pruner or {"name": "nop"},
    }
    path.write_text(json.dumps(doc))
    return path


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment of a worker subprocess: no inherited run id, one torch thread."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra})
    return env
