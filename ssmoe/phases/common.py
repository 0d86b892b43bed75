"""What every phase shares: its run (``phase_run``), folds, pair tensors, lineage look-ups,
per-epoch logging, the optimisation settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from ssmoe.data.patches import PatchIndex, PatchPairs, extract_pairs
from ssmoe.data.reader import MudiDataset, open_dataset
from ssmoe.tracking import load_frame, log_metrics, require_step, run_params, step_run
from ssmoe.training.loop import TrainConfig, pick_device

EpochHook = Callable[[str, int, dict[str, float]], None]
"""Called as hook(step, epoch, metrics) after every epoch of every phase (the tuner's pruner)."""


@dataclass(frozen=True)
class RunContext:
    """Where a phase's run goes: a child of ``parent_run_id`` (None: a top-level run, or the
    one ``mlflow run`` made) in ``experiment``; ``epoch_hook`` sees every epoch (the tuner)."""

    parent_run_id: str | None = None
    experiment: str = "ssmoe"
    epoch_hook: EpochHook | None = None


@contextmanager
def phase_run(
    step: str, params: Mapping[str, Any], seed: int, device: str, context: RunContext
) -> Iterator[tuple[str, torch.device]]:
    """The MLflow run of one phase (``ssmoe.tracking.step_run``) with torch seeded by ``seed``;
    yields (run id, the device ``device`` resolves to)."""
    with step_run(
        step, params=params, experiment=context.experiment, parent_run_id=context.parent_run_id
    ) as run:
        seeded(seed)
        yield run.info.run_id, pick_device(device)


def split_subjects(
    dataset: MudiDataset, test_subject: str | None, exclude: tuple[str, ...] = ()
) -> tuple[list[str], str]:
    """Leave-one-subject-out: (training subjects, held-out subject). Default: the last subject.

    ``exclude`` names subjects used neither for training nor testing (the tuner hides the
    fold's test subject this way and holds out a validation subject instead).
    """
    subjects = list(dataset.subjects)
    for name in (test_subject, *exclude):
        if name and name not in subjects:
            raise ValueError(f"subject {name!r} is not in {dataset.root} (subjects: {subjects})")
    test = test_subject or [s for s in subjects if s not in exclude][-1]
    train = [s for s in subjects if s != test and s not in exclude]
    if not train:
        raise ValueError(
            f"{dataset.root}: no training subject left (subjects {subjects}, "
            f"test {test!r}, excluded {list(exclude)})"
        )
    return train, test


def pair_tensors(pairs: PatchPairs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x LR, y HR, acq) tensors of a pair set, sample axis first."""
    return (torch.from_numpy(pairs.lr), torch.from_numpy(pairs.hr), torch.from_numpy(pairs.acq))


@dataclass
class Phase1Lineage:
    """What downstream phases read from a phase-1 run: the data, the fold, the pair table."""

    run_id: str
    data_dir: str
    task: str
    test_subject: str
    width: int
    preset: str
    scores: pd.DataFrame  # subject, volume, x, y, z, b, TI, TE, score, is_val

    def fold_params(self) -> dict[str, str]:
        """The fold every downstream run copies into its params (task, held-out subject, data)."""
        return {"task": self.task, "test_subject": self.test_subject, "data_dir": self.data_dir}

    @property
    def model_uri(self) -> str:
        return f"runs:/{self.run_id}/model"

    def dataset(self) -> MudiDataset:
        return open_dataset(self.data_dir)

    def pairs(self, rows: pd.DataFrame) -> PatchPairs:
        """Re-extract exactly the pairs listed in ``rows`` (a slice of the score table)."""
        index = PatchIndex.from_frame(rows[["subject", "volume", "x", "y", "z"]])
        return extract_pairs(self.dataset(), index, self.task)


def phase1_lineage(run_id: str) -> Phase1Lineage:
    run = require_step(run_id, "phase1")
    p = run_params(run)
    return Phase1Lineage(
        run_id=run_id,
        data_dir=p["data_dir"],
        task=p["task"],
        test_subject=p["test_subject"],
        width=int(p["width"]),
        preset=p.get("preset", "custom"),
        scores=load_frame(run_id, "scores/patch_scores.csv"),
    )


def epoch_logger(
    step: str, hook: EpochHook | None, prefix: str = ""
) -> Callable[[int, dict], None]:
    """Per-epoch callback: log metrics to the active MLflow run, then call the tuner's hook."""

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        log_metrics({f"{prefix}{k}": v for k, v in metrics.items()}, step=epoch)
        if hook is not None:
            hook(step, epoch, metrics)

    return on_epoch


@dataclass(frozen=True, kw_only=True)
class TrainingFields:
    """The optimisation settings every training phase shares (paper: Adam 1e-3, decay 1e-6,
    batch 64); keyword-only so each phase's own required fields come first.

    ``eval_batch_size`` is the number of pairs per forward pass without gradients (validation
    loss, phase-1 scores, encoder features, routes): a memory knob, 256 fits any preset.
    """

    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    decay: float = 1e-6
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 256

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            self.epochs, self.batch_size, self.lr, self.decay, self.seed, self.eval_batch_size
        )


def seeded(seed: int) -> None:
    """Seed torch's weight initialisation and dropout (data sampling takes explicit seeds)."""
    torch.manual_seed(seed)
