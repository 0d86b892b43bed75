"""Fixtures of the tuning tests: an isolated MLflow store, a small search space, fast trials.

Trials run the real pipeline on the `tiny` preset and the 3-subject tiny dataset (test subject
cdmri0013, validation cdmri0012, training cdmri0011), with fewer pairs and evaluated volumes so
that a trial takes seconds once the process is warm.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest


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
