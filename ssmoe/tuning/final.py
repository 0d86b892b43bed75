"""After the study: the best trial, evaluated once on the fold's test subject.

The best parameters are retrained with a pipeline whose held-out subject is the fold's test
subject and nothing excluded (train + validation subjects train it). The parent ``tune`` run
gets params ``best_k``, ``best_segmenter``, ``best_lr``, ``best_trial`` and metrics
``best_objective``, ``best_val_{stat}``, ``test_{stat}_{method}`` (method: cubic, unet, ssmoe)
and the trial counts; the evaluation's pipeline run is a child of the parent run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from ssmoe.study.pipeline import run_pipeline
from ssmoe.tracking import TrackingError, TrackingStore
from ssmoe.tuning.config import Fold, TuneConfig
from ssmoe.tuning.objective import pipeline_config

log = logging.getLogger(__name__)

ATTR_FINAL = "final_test"  # study user attr: {"trial": number, "pipeline_run": id}


@dataclass
class FinalTest:
    best_trial: int
    params: dict[str, object]
    objective: float
    test_metrics: dict[str, float]  # test_{stat}_{method}
    pipeline_run: str | None  # None: reused an earlier evaluation of the same best trial


def _log_param_once(store: TrackingStore, run_id: str, key: str, value: object) -> None:
    """MLflow params are immutable: a best trial that changed (a continued study) goes to a
    ``best.<key>`` tag instead, which always holds the latest value."""
    store.set_tag(run_id, f"ssmoe.{key}", str(value))
    try:
        store.log_param(run_id, key, str(value))
    except TrackingError:
        log.info(
            "param %s already logged with another value; tag ssmoe.%s has the latest", key, key
        )


def trial_counts(study: optuna.Study) -> dict[str, int]:
    counts = {"n_complete": 0, "n_pruned": 0, "n_fail": 0}
    names = {
        TrialState.COMPLETE: "n_complete",
        TrialState.PRUNED: "n_pruned",
        TrialState.FAIL: "n_fail",
    }
    for trial in study.get_trials(deepcopy=False):
        if trial.state in names:
            counts[names[trial.state]] += 1
    return counts


def evaluate_best(
    study: optuna.Study, config: TuneConfig, fold: Fold, data_dir: str, parent_run_id: str
) -> FinalTest:
    """Evaluate the best trial on ``fold.test`` (once per best trial) and log the summary."""
    best = study.best_trial  # ValueError when no trial completed
    assert best.value is not None
    best_value = float(best.value)
    store = TrackingStore()
    done = study.user_attrs.get(ATTR_FINAL) or {}
    run_id: str | None = None
    if done.get("trial") == best.number and done.get("metrics"):
        log.info("best trial %d was already evaluated on %s", best.number, fold.test)
        test = dict(done["metrics"])
    else:
        log.info(
            "evaluating best trial %d %s on test subject %s", best.number, best.params, fold.test
        )
        result = run_pipeline(
            pipeline_config(config, data_dir, fold, best.params, test=True),
            experiment=config.experiment,
            parent_run_id=parent_run_id,
            run_name=f"final test (trial {best.number})",
        )
        run_id = result.parent_run_id
        metrics = store.metrics(result.evaluate_run)
        test = {f"test_{k}": v for k, v in metrics.items() if not k.startswith("n_weights")}
        study.set_user_attr(
            ATTR_FINAL, {"trial": best.number, "pipeline_run": run_id, "metrics": test}
        )
    for key, value in {
        "best_trial": best.number,
        **{f"best_{k}": v for k, v in best.params.items()},
    }.items():
        _log_param_once(store, parent_run_id, key, value)
    val = best.user_attrs.get("val", {})
    step = len(study.get_trials(deepcopy=False))
    metrics = {
        "best_objective": best_value,
        **{f"best_{k}": float(v) for k, v in val.items()},
        **{f"best_{k}": float(v) for k, v in best.params.items() if isinstance(v, (int, float))},
        **test,
        **trial_counts(study),
    }
    for key, value in metrics.items():
        store.log_metric(parent_run_id, key, float(value), step=step)
    return FinalTest(best.number, dict(best.params), best_value, test, run_id)
