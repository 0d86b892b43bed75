"""Fixtures of the tuning tests: an isolated MLflow store, a small search space, fast trials.

Trials run the real pipeline on the `tiny` preset and the 3-subject tiny dataset (test subject
cdmri0013, validation cdmri0012, training cdmri0011), with fewer pairs and evaluated volumes so
that a trial takes seconds once the process is warm.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

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


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No inherited run id; MQS null simulations in a temporary cache."""
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("SSMOE_CACHE", str(tmp_path_factory.getbasetemp() / "ssmoe-cache"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh working directory with its own MLflow SQLite store (and default optuna.db)."""
    root = tmp_path_factory.mktemp("tune-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
        yield root
    while mlflow.active_run():
        mlflow.end_run()


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment of a worker subprocess: no inherited run id, one torch thread."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra})
    return env
