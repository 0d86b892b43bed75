"""The objective of a trial: SS-MoE mean per-volume MSE on the fold's validation subject.

One trial = one ``run_pipeline`` (the same phase code and training loop as every other study,
no second loop) with the trial's K, segmenter and learning rate, the validation subject as the
pipeline's held-out subject and the fold's test subject excluded. Phase 1 does not depend on
the trial's parameters (the learning rate only drives phases 2-3), so the pipeline's reuse
trains it once for the whole study. Phase 3's per-epoch validation loss feeds the pruner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import optuna

from ssmoe.phases.common import EpochHook
from ssmoe.study.pipeline import PipelineConfig, run_pipeline
from ssmoe.tracking import TrackingStore
from ssmoe.tuning.config import Fold, TuneConfig
from ssmoe.tuning.space import SearchSpace
from ssmoe.tuning.tracking import trial_run
from ssmoe.vocabulary import STATISTICS

log = logging.getLogger(__name__)

PRUNED_STEP = "phase3"  # the phase whose validation loss is reported to the pruner


def pruning_hook(trial: optuna.Trial, run_id: str) -> EpochHook:
    """Epoch hook: report phase 3's ``val_loss`` per epoch; raise ``TrialPruned`` through the
    training loop when the pruner says so (the phase and pipeline runs then end FAILED)."""
    store = TrackingStore()

    def hook(step: str, epoch: int, metrics: dict[str, float]) -> None:
        if step != PRUNED_STEP or "val_loss" not in metrics:
            return
        value = float(metrics["val_loss"])
        trial.report(value, epoch)
        store.log_metric(run_id, "phase3_val_loss", value, step=epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"phase 3 epoch {epoch}: val_loss {value:.4g}")

    return hook


def pipeline_config(
    config: TuneConfig, data_dir: str, fold: Fold, params: dict[str, Any], *, test: bool = False
) -> PipelineConfig:
    """The pipeline of a trial (``test=False``: validate on ``fold.val``, ``fold.test`` hidden)
    or of the final evaluation (``test=True``: train on train + val, evaluate on ``fold.test``)."""
    return PipelineConfig(
        workdir=config.workdir,
        data_dir=data_dir,
        task=config.task,
        test_subject=fold.test if test else fold.val,
        exclude_subjects=() if test else (fold.test,),
        preset=config.preset,
        segmenter=params.get("segmenter"),
        k=params.get("k"),
        lr=params.get("lr"),
        seed=config.seed,
        device=config.device,
        baselines=False,  # Hard MoE is a baseline, not a tuned model
        max_volumes=config.max_volumes,
        overrides=config.overrides,
    )


@dataclass
class Objective:
    """``objective(trial) -> float`` for ``study.optimize``; every trial is an MLflow child run
    of ``parent_run_id`` with params study/trial_number/k/segmenter/lr and metrics
    ``objective`` and ``val_{stat}``."""

    config: TuneConfig
    space: SearchSpace
    fold: Fold
    data_dir: str
    parent_run_id: str

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial)
        with trial_run(self.parent_run_id, trial, params) as run_id:
            result = run_pipeline(
                pipeline_config(self.config, self.data_dir, self.fold, params),
                experiment=self.config.experiment,
                parent_run_id=run_id,
                epoch_hook=pruning_hook(trial, run_id),
                run_name=f"trial {trial.number} pipeline",
            )
            store = TrackingStore()
            metrics = store.metrics(result.evaluate_run)
            val = {f"val_{s}": metrics[f"{s}_ssmoe"] for s in STATISTICS}
            objective = val["val_average"]
            for key, value in {"objective": objective, **val}.items():
                store.log_metric(run_id, key, value)
            store.set_tag(run_id, "ssmoe.reused.phase1", str(result.reused["phase1"]).lower())
            trial.set_user_attr("val", val)
            trial.set_user_attr("evaluate_run", result.evaluate_run)
            log.info("trial %d %s: objective %.6g", trial.number, params, objective)
            return objective
