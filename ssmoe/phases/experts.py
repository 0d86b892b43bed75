"""The expert-training path shared by phase 3 (SS-MoE) and the Hard MoE baseline.

Both draw the same pairs from the phase-1 table (``expert_pairs``), route them into K subsets
and train K expert decoders from the baseline decoder with the encoder frozen
(``fit_routed_experts``); they differ only in how the routes are made: the gater's predicted
pseudo error class (phase 3) or the nearest K-means centroid of the baseline's features
(Hard MoE).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ssmoe import tracking
from ssmoe.models.moe import UNetSR, freeze
from ssmoe.models.unet import Decoder, count_weights
from ssmoe.phases.common import EpochHook, Phase1Lineage, TrainingFields, epoch_logger, pair_tensors
from ssmoe.training.experts import train_experts

log = logging.getLogger(__name__)


def expert_rows(table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Rows of the phase-1 pair table that train experts: at most ``n`` training pairs drawn
    uniformly at random (paper: 100k random pairs for phase three), then all validation pairs."""
    train_rows = table[table.is_val == 0]
    if len(train_rows) > n:
        keep = np.sort(np.random.default_rng(seed).choice(len(train_rows), size=n, replace=False))
        train_rows = train_rows.iloc[keep]
    return pd.concat([train_rows, table[table.is_val == 1]])


@dataclass
class ExpertPairs:
    """The pairs experts train on: table rows, (x LR, y HR, acq) tensors, validation mask (N,)."""

    rows: pd.DataFrame
    x: torch.Tensor
    y: torch.Tensor
    acq: torch.Tensor
    val: torch.Tensor


def expert_pairs(lineage: Phase1Lineage, table: pd.DataFrame, n: int, seed: int) -> ExpertPairs:
    """Draw the rows (``expert_rows``) and re-extract their pairs from the phase-1 dataset."""
    rows = expert_rows(table, n, seed)
    x, y, acq = pair_tensors(lineage.pairs(rows))
    return ExpertPairs(rows, x, y, acq, torch.from_numpy(rows["is_val"].to_numpy(bool)))


def load_baseline(lineage: Phase1Lineage, device: torch.device) -> UNetSR:
    """The phase-1 SR U-Net, frozen, on ``device``: its encoder and decoder start the experts."""
    return freeze(tracking.load_model(lineage.model_uri, kind=UNetSR)).to(device)


def fit_routed_experts(
    step: str,
    baseline: UNetSR,
    pairs: ExpertPairs,
    routes: torch.Tensor,
    k: int,
    config: TrainingFields,
    device: torch.device,
    epoch_hook: EpochHook | None,
    size_metric: str,
) -> list[Decoder]:
    """Train K experts, expert j on the pairs whose route (N,) is j; logs the training subset
    sizes as ``{size_metric}_{j}`` and the per-epoch losses of ``step``."""
    val = pairs.val
    counts = np.bincount(routes[~val].numpy(), minlength=k)
    tracking.log_metrics({f"{size_metric}_{i}": int(c) for i, c in enumerate(counts)})
    log.info("%s: %s %s", step, size_metric, counts.tolist())
    return train_experts(
        baseline.config,
        baseline.encoder,
        baseline.decoder,
        k,
        train_data=(pairs.x[~val], pairs.y[~val], routes[~val]),
        val_data=(pairs.x[val], pairs.y[val], routes[val]),
        config=config.train_config(),
        device=device,
        on_epoch=epoch_logger(step, epoch_hook),
        desc=step,
    )


def log_mixture(model: torch.nn.Module) -> None:
    """Log the assembled mixture as the step's ``model`` with its number of weights."""
    tracking.log_metrics({"n_weights": count_weights(model)})
    tracking.log_model(model, "model")
