"""Leave-one-subject-out cross-validation: one pipeline per (task, held-out subject), grouped
under one parent ``cv`` run, with mean +/- std over folds of every statistic per method
(the paper's Table 1)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace

import pandas as pd

from ssmoe.data.reader import open_dataset
from ssmoe.study.pipeline import PipelineConfig, ensure_data, run_pipeline
from ssmoe.tracking import load_frame, log_frame, log_metrics, step_run
from ssmoe.vocabulary import PAPER_STATISTICS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CVConfig:
    pipeline: PipelineConfig
    tasks: tuple[str, ...] = ("aniso",)
    folds: tuple[str, ...] = ()  # held-out subjects; () = every subject


def fold_table(evaluate_runs: dict[tuple[str, str], str]) -> pd.DataFrame:
    """Long table: task, test_subject, method, statistic columns (one row per fold x method)."""
    frames = []
    for (task, subject), run_id in evaluate_runs.items():
        summary = load_frame(run_id, "evaluation/summary.csv")
        frames.append(summary.assign(task=task, test_subject=subject, evaluate_run=run_id))
    return pd.concat(frames, ignore_index=True)


def aggregate(folds: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over folds of every statistic, per task and method."""
    stats = [
        c for c in folds.columns if c not in ("task", "test_subject", "method", "evaluate_run")
    ]
    grouped = folds.groupby(["task", "method"], sort=False)[stats]
    mean = grouped.mean().add_suffix("_mean")
    std = grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    out = pd.concat([mean, std], axis=1).reset_index()
    out["n_folds"] = grouped.size().to_numpy()
    return out


def run_cv(config: CVConfig, *, experiment: str = "ssmoe", parent_run_id: str | None = None) -> str:
    """Run every fold; returns the ``cv`` run id."""
    params = {**asdict(config.pipeline), "tasks": config.tasks, "folds": config.folds}
    with step_run(
        "cv",
        params=params,
        experiment=experiment,
        parent_run_id=parent_run_id,
        run_name=f"cv {'+'.join(config.tasks)}",
    ) as cv:
        data_dir = ensure_data(config.pipeline, experiment=experiment, parent_run_id=cv.info.run_id)
        subjects = list(config.folds) or open_dataset(data_dir).subjects
        evaluate_runs = {}
        for task in config.tasks:
            for i, subject in enumerate(subjects):
                log.info("cv %s: fold %d/%d (held out: %s)", task, i + 1, len(subjects), subject)
                fold = replace(
                    config.pipeline, data_dir=str(data_dir), task=task, test_subject=subject
                )
                result = run_pipeline(
                    fold,
                    experiment=experiment,
                    parent_run_id=cv.info.run_id,
                    run_name=f"fold {subject} {task}",
                )
                evaluate_runs[(task, subject)] = result.evaluate_run
        folds = fold_table(evaluate_runs)
        summary = aggregate(folds)
        log_frame(folds, "cv/folds.csv")
        log_frame(summary, "cv/summary.csv")
        for _, row in summary.iterrows():
            log_metrics(
                {
                    f"{row['task']}_{stat}_{row['method']}_{kind}": float(row[f"{stat}_{kind}"])
                    for stat in PAPER_STATISTICS
                    for kind in ("mean", "std")
                }
            )
        log.info("cv summary:\n%s", summary.to_string(index=False))
        return cv.info.run_id
