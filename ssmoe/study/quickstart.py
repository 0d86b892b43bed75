"""``ssmoe quickstart``: the whole comparison on the embedded simulator, quick preset, on a fresh
machine in minutes - data and MLflow store under one work directory. The command then builds
the report from the root run (the report depends on the library, not the reverse)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ssmoe.study.cv import CVConfig, run_cv
from ssmoe.study.pipeline import PipelineConfig
from ssmoe.tracking import step_run, tracking_uri

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickstartConfig:
    workdir: str = "runs/quickstart"
    tasks: tuple[str, ...] = ("aniso",)
    folds: tuple[str, ...] = ("cdmri0015",)  # the paper's Fig. 1/3 subject; () = all five
    preset: str = "quick"
    seed: int = 0
    device: str = "auto"


@dataclass
class QuickstartResult:
    root_run_id: str  # the ``quickstart`` run every step of the study hangs under
    workdir: Path  # data/ (and mlflow.db unless MLFLOW_TRACKING_URI is set); report/ goes here
    tracking_uri: str


def run_quickstart(config: QuickstartConfig, *, experiment: str = "ssmoe") -> QuickstartResult:
    """Simulate, train and evaluate every method under one ``quickstart`` run."""
    workdir = Path(config.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
    pipeline = PipelineConfig(
        workdir=str(workdir), preset=config.preset, seed=config.seed, device=config.device
    )
    cv = CVConfig(pipeline=pipeline, tasks=config.tasks, folds=config.folds)
    with step_run(
        "quickstart",
        params={
            "workdir": str(workdir),
            "tasks": config.tasks,
            "folds": config.folds,
            "preset": config.preset,
        },
        experiment=experiment,
        run_name="quickstart",
    ) as root:
        run_cv(cv, experiment=experiment, parent_run_id=root.info.run_id)
        return QuickstartResult(root.info.run_id, workdir, tracking_uri())
