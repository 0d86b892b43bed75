"""``ssmoe quickstart``: the whole comparison on the embedded simulator, quick preset, on a fresh
machine in minutes - data, MLflow store and report all under one work directory."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow

from ssmoe.study.cv import CVConfig, run_cv
from ssmoe.study.pipeline import PipelineConfig
from ssmoe.tracking.runs import step_run, tracking_uri

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
    root_run_id: str
    report: Path
    tracking_uri: str
    seconds: float


def run_quickstart(config: QuickstartConfig, *, experiment: str = "ssmoe") -> QuickstartResult:
    """Simulate, train and evaluate every method, then write ``<workdir>/report/index.html``."""
    from reports.build import build_report

    start = time.perf_counter()
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
        report = build_report(
            workdir / "report",
            experiment=experiment,
            root_run=root.info.run_id,
            log_to_run=root.info.run_id,
        )
        seconds = time.perf_counter() - start
        mlflow.log_metric("seconds", seconds)
        return QuickstartResult(root.info.run_id, report, tracking_uri(), seconds)
