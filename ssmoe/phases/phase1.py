"""Phase one: train the baseline SR U-Net y = D(E(x)) and score every training pair (paper eq. 3).

Logs the model, per-epoch losses and the per-patch score distribution e_i = MSE(y_i, D(E(x_i)))
as ``scores/patch_scores.csv`` - the named artifact phase two segments into pseudo error labels.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from ssmoe import tracking
from ssmoe.data.patches import extract_pairs, sample_index
from ssmoe.data.reader import open_dataset
from ssmoe.evaluation.figures import score_histogram
from ssmoe.models.moe import UNetSR
from ssmoe.models.unet import UNetConfig, count_weights, glorot_normal_
from ssmoe.phases.common import (
    RunContext,
    TrainingFields,
    epoch_logger,
    pair_tensors,
    phase_run,
    split_subjects,
)
from ssmoe.training.loop import mse_loss, predict_batches, train
from ssmoe.vocabulary import TASKS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase1Config(TrainingFields):
    """Phase-one settings. A fold is defined by its held-out ``test_subject``."""

    data_dir: str
    task: str = "aniso"
    test_subject: str | None = None
    exclude_subjects: tuple[str, ...] = ()
    width: int = 8
    residual: bool = False
    n_pairs: int = 6000
    val_fraction: float = 0.1
    preset: str = "custom"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.n_pairs < 2:
            raise ValueError(f"n_pairs must be >= 2, got {self.n_pairs!r}")


def patch_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-patch MSE over all 16^3 voxels: (N, 1, 16, 16, 16) x2 -> (N,)."""
    return ((pred - target) ** 2).flatten(1).mean(dim=1)


def score_pairs(
    model: torch.nn.Module, data, device: torch.device, batch_size: int = 256
) -> np.ndarray:
    """e_i for every pair of ``data`` = (x, y, acq) tensors, ``batch_size`` pairs at a time."""

    def score(x: torch.Tensor, y: torch.Tensor, acq: torch.Tensor) -> torch.Tensor:
        return patch_mse(model(x, acq), y)

    return predict_batches(score, data, batch_size, device).numpy().astype(np.float64)


def run_phase1(config: Phase1Config, context: RunContext = RunContext()) -> str:
    """Train and score; returns the MLflow run id."""
    dataset = open_dataset(config.data_dir)
    train_subjects, test_subject = split_subjects(
        dataset, config.test_subject, config.exclude_subjects
    )
    params = {
        **asdict(config),
        "test_subject": test_subject,
        "train_subjects": train_subjects,
        "data_dir": str(dataset.root),
    }
    with phase_run("phase1", params, config.seed, config.device, context) as (run_id, device):
        index = sample_index(dataset, train_subjects, config.task, config.n_pairs, seed=config.seed)
        pairs = extract_pairs(dataset, index, config.task)
        n_val = int(round(config.val_fraction * len(pairs.acq)))
        is_val = np.zeros(len(pairs.acq), dtype=bool)
        is_val[np.random.default_rng(config.seed).permutation(len(is_val))[:n_val]] = True
        data = pair_tensors(pairs)
        train_data = tuple(t[~torch.from_numpy(is_val)] for t in data)
        val_data = tuple(t[torch.from_numpy(is_val)] for t in data)

        model = UNetSR(UNetConfig(config.task, config.width, config.residual))
        glorot_normal_(model)
        tracking.log_params(
            {
                "n_weights": count_weights(model),
                "n_train": len(train_data[0]),
                "n_val": n_val,
                "resolved_device": str(device),
            }
        )
        train(
            model,
            trainable=model,
            loss_fn=mse_loss,
            train_data=train_data,
            val_data=val_data,
            config=config.train_config(),
            device=device,
            on_epoch=epoch_logger("phase1", context.epoch_hook),
            desc="phase1",
        )
        scores = score_pairs(model, data, device, config.eval_batch_size)
        table = pd.concat(
            [index.to_frame(), pd.DataFrame(pairs.acq[:, 3:], columns=["b", "TI", "TE"])], axis=1
        )
        table["score"] = scores
        table["is_val"] = is_val.astype(int)
        tracking.log_frame(table, "scores/patch_scores.csv")
        tracking.log_metrics(
            {
                "score_mean": float(scores.mean()),
                "score_median": float(np.median(scores)),
                "score_max": float(scores.max()),
            }
        )
        tracking.log_figure(
            score_histogram(scores, title="Phase-1 patch scores"), "figures/score_histogram.png"
        )
        tracking.log_model(model, "model")
        log.info(
            "phase1 run %s: %d pairs, median score %.4g",
            run_id,
            len(scores),
            np.median(scores),
        )
        return run_id
