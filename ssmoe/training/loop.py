"""The one training loop of ssmoe: every phase, the Hard MoE, the pipeline and the tuner use it.

Flat on purpose (nanoGPT style): shuffle, step, evaluate, report. What differs between phases
is only *what* is trained (``trainable``, a sub-module of ``model``; the rest stays frozen in
eval mode so BN statistics of a frozen encoder never move) and the loss on a batch.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

Batch = Sequence[torch.Tensor]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (paper: Adam, lr 1e-3, Keras-style decay 1e-6, batch 64);
    ``eval_batch_size``: pairs per forward pass of the validation loss (memory only)."""

    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    decay: float = 1e-6
    seed: int = 0
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs!r}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(
                f"batch sizes must be >= 1, got {self.batch_size!r} and {self.eval_batch_size!r}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.decay < 0:
            raise ValueError(f"decay must be >= 0, got {self.decay!r}")


def learning_rate(base_lr: float, decay: float, step: int) -> float:
    """Keras' time-based decay, as in the paper: lr_t = lr_0 / (1 + decay * t), t = step."""
    return base_lr / (1.0 + decay * step)


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _batches(tensors: Batch, batch_size: int, order: torch.Tensor | None) -> list[Batch]:
    n = tensors[0].shape[0]
    idx = order if order is not None else torch.arange(n)
    return [tuple(t[idx[i : i + batch_size]] for t in tensors) for i in range(0, n, batch_size)]


def epoch_batches(
    n: int, batch_size: int, generator: torch.Generator, groups: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Index batches of one epoch: a random permutation cut into batches or, with ``groups``,
    batches that each hold one group only (in random order) - so K experts trained in one
    loop each see full batches of their own subset, as if trained one after another."""
    if groups is None:
        return list(torch.randperm(n, generator=generator).split(batch_size))
    chunks: list[torch.Tensor] = []
    for g in torch.unique(groups):
        members = torch.nonzero(groups == g, as_tuple=True)[0]
        chunks += members[torch.randperm(len(members), generator=generator)].split(batch_size)
    return [chunks[i] for i in torch.randperm(len(chunks), generator=generator)]


def _progress(total: int, desc: str) -> tqdm:
    # A bar on a terminal; in logs (CI, mlflow run) no bar, one line per epoch instead.
    return tqdm(total=total, desc=desc, leave=False, disable=not sys.stderr.isatty())


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, data: Batch, loss_fn: LossFn, batch_size: int, device: torch.device
) -> float:
    """Mean loss over ``data`` in eval mode (restores the previous mode)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in _batches(data, batch_size, None):
        batch = tuple(t.to(device, non_blocking=True) for t in batch)
        total += float(loss_fn(model, batch)) * batch[0].shape[0]
        count += batch[0].shape[0]
    model.train(was_training)
    return total / max(count, 1)


def train(
    model: nn.Module,
    *,
    trainable: nn.Module,
    loss_fn: LossFn,
    train_data: Batch,
    val_data: Batch | None,
    config: TrainConfig,
    device: torch.device | None = None,
    on_epoch: EpochCallback | None = None,
    desc: str = "train",
    groups: torch.Tensor | None = None,
) -> list[dict[str, float]]:
    """Train ``trainable`` (part of ``model``) on in-memory tensors; returns per-epoch metrics.

    ``train_data``/``val_data`` are tuples of CPU tensors with the sample axis first; each batch
    (moved to ``device``) goes to ``loss_fn(model, batch)``. ``on_epoch(epoch, metrics)`` is
    called after every epoch with ``train_loss``, ``val_loss`` (if val data), ``lr`` and
    ``seconds``; it may raise (e.g. ``optuna.TrialPruned``) to stop training. ``groups`` (N,)
    makes every batch homogeneous in group (see ``epoch_batches``).
    """
    if train_data[0].shape[0] == 0:
        raise ValueError("no training samples")
    device = device or pick_device()
    model.to(device)
    params = [p for p in trainable.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate(1.0, config.decay, step)
    )
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    n = train_data[0].shape[0]
    for epoch in range(config.epochs):
        start = time.perf_counter()
        model.eval()  # frozen parts stay in eval mode ...
        trainable.train()  # ... only the trained part updates BN statistics
        total = 0.0
        with _progress(n, f"{desc} {epoch + 1}/{config.epochs}") as bar:
            for idx in epoch_batches(n, config.batch_size, generator, groups):
                batch = tuple(t[idx].to(device, non_blocking=True) for t in train_data)
                loss = loss_fn(model, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{desc}: loss became {float(loss)} in epoch {epoch}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * batch[0].shape[0]
                bar.update(batch[0].shape[0])
        metrics = {"train_loss": total / n, "lr": optimizer.param_groups[0]["lr"]}
        if val_data is not None and val_data[0].shape[0]:
            metrics["val_loss"] = evaluate_loss(
                model, val_data, loss_fn, config.eval_batch_size, device
            )
        metrics["seconds"] = time.perf_counter() - start
        history.append(metrics)
        log.info(
            "%s epoch %d/%d: %s",
            desc,
            epoch + 1,
            config.epochs,
            ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()),
        )
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    model.eval()
    return history


def mse_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """MSE between model(x, acq) and y; batch = (x, y, acq)."""
    x, y, acq = batch
    return nn.functional.mse_loss(model(x, acq), y)


@torch.no_grad()
def predict_batches(
    fn: Callable[..., torch.Tensor], data: Batch, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Apply ``fn`` to ``data`` in batches on ``device``; returns the CPU concatenation."""
    outs = [fn(*(t.to(device) for t in batch)).cpu() for batch in _batches(data, batch_size, None)]
    return torch.cat(outs) if outs else torch.empty(0)
