"""Test phase and comparison: cubic spline, SR U-Net, Hard MoE and SS-MoE on every volume of the
held-out subject, with per-volume MSE distributions, statistics and pairwise Wilcoxon tests.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from ssmoe import tracking
from ssmoe.data.degrade import SCALES
from ssmoe.data.patches import GridTiler
from ssmoe.data.protocol import get_protocol
from ssmoe.evaluation.figures import confusion_matrix, mse_distributions
from ssmoe.evaluation.interpolation import cubic_spline_upsample
from ssmoe.evaluation.metrics import confusion, summary_table, volume_mse, wilcoxon_table
from ssmoe.evaluation.reconstruct import reconstruct
from ssmoe.models.unet import count_weights
from ssmoe.phases.common import RunContext, phase1_lineage, phase_run
from ssmoe.segmenters import assign_labels
from ssmoe.vocabulary import STATISTICS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateConfig:
    """Which models to compare and how to tile whole volumes."""

    phase3_run: str
    hardmoe_run: str | None = None  # None: compare without the Hard MoE (e.g. tuning)
    stride: int = 16  # HR tiling stride; < 16 averages overlapping tiles
    batch_size: int = 256
    max_volumes: int | None = None  # None: every volume of the held-out subject
    figure_volume: int = 118  # row of the full protocol shown in Fig. 3 (the paper: the 119th)
    seed: int = 0
    device: str = "auto"


def run_evaluate(config: EvaluateConfig, context: RunContext = RunContext()) -> str:
    phase3 = tracking.require_step(config.phase3_run, "phase3")
    p3 = tracking.run_params(phase3)
    lineage = phase1_lineage(p3["phase1_run"])
    hardmoe = tracking.require_step(config.hardmoe_run, "hardmoe") if config.hardmoe_run else None
    if hardmoe is not None and tracking.run_params(hardmoe)["phase1_run"] != lineage.run_id:
        raise ValueError(
            f"hardmoe run {config.hardmoe_run} uses phase-1 run "
            f"{tracking.run_params(hardmoe)['phase1_run']}, phase-3 run {config.phase3_run} "
            f"uses {lineage.run_id}: compare models of the same baseline"
        )
    params = {
        **asdict(config),
        "phase1_run": lineage.run_id,
        "phase2_run": p3["phase2_run"],
        **lineage.fold_params(),
        "k": p3["k"],
        "segmenter": p3["segmenter"],
        "preset": lineage.preset,
    }
    with phase_run("evaluate", params, config.seed, config.device, context) as (run_id, device):
        models: dict[str, nn.Module] = {"unet": tracking.load_model(lineage.model_uri, device)}
        if config.hardmoe_run:
            models["hardmoe"] = tracking.load_model(f"runs:/{config.hardmoe_run}/model", device)
        models["ssmoe"] = tracking.load_model(f"runs:/{config.phase3_run}/model", device)
        methods = ["cubic", *models]
        for name, model in models.items():
            tracking.log_metrics({f"n_weights_{name}": count_weights(model)})
        dataset = lineage.dataset()
        subject = dataset[lineage.test_subject]
        task = lineage.task
        tiler = GridTiler(subject.hr_shape, task, stride=config.stride)
        n_volumes = (
            subject.n_volumes
            if config.max_volumes is None
            else min(config.max_volumes, subject.n_volumes)
        )
        fig_volume = min(figure_volume(subject.params, config.figure_volume), n_volumes - 1)
        mask = subject.mask
        y_slice = int(np.round(np.nonzero(mask)[1].mean()))
        coronal: dict[str, np.ndarray] = {}
        rows = []
        # Gater confusion on the held-out subject: tiles that pass the training foreground rule,
        # pseudo label = the U-Net tile error against the phase-2 thresholds (HR is known here).
        thresholds = np.asarray(
            tracking.load_json(p3["phase2_run"], "segmenter/segmenter.json")["thresholds"],
            dtype=float,
        )
        k = len(thresholds) + 1
        matrix = np.zeros((k, k), dtype=np.int64)
        foreground = tiler.hr_patches(mask.astype(np.float32)).reshape(len(tiler), -1).mean(1) > 0.5
        for v in tqdm(
            range(n_volumes),
            desc=f"evaluate {lineage.test_subject}",
            disable=not sys.stderr.isatty(),
        ):
            hr, lr, acq = subject.hr_volume(v), subject.lr_volume(task, v), subject.params[v]
            preds = {"cubic": cubic_spline_upsample(lr, SCALES[task], subject.hr_shape)}
            recs = {
                name: reconstruct(model, lr, acq, tiler, device, config.batch_size)
                for name, model in models.items()
            }
            preds.update({name: rec.volume for name, rec in recs.items()})
            hr_tiles = tiler.hr_patches(hr)[foreground]
            tile_err = ((recs["unet"].tiles[foreground] - hr_tiles) ** 2).reshape(len(hr_tiles), -1)
            labels = assign_labels(thresholds, tile_err.mean(1))
            ssmoe_routes = recs["ssmoe"].routes
            assert ssmoe_routes is not None, "an SS-MoE reconstruction reports its routes"
            matrix += confusion(labels, ssmoe_routes[foreground], k)
            rows.append(
                {
                    "volume": v,
                    "b": acq[3],
                    "TI": acq[4],
                    "TE": acq[5],
                    **{m: volume_mse(hr, preds[m], mask) for m in methods},
                }
            )
            if v == fig_volume:
                coronal = {m: preds[m][:, y_slice, :] for m in methods}
                coronal["hr"] = hr[:, y_slice, :]
                coronal["lr"] = lr[:, y_slice // SCALES[task][1], :]
            if (v + 1) % max(1, n_volumes // 10) == 0:
                log.info("evaluated %d/%d volumes", v + 1, n_volumes)
        per_volume = pd.DataFrame(rows)
        values = {m: per_volume[m].to_numpy() for m in methods}
        summary = summary_table(values)
        wilcoxon = wilcoxon_table(values)
        tracking.log_frame(per_volume, "evaluation/per_volume_mse.csv")
        tracking.log_frame(summary, "evaluation/summary.csv")
        tracking.log_frame(wilcoxon, "evaluation/wilcoxon.csv")
        tracking.log_metrics(
            {
                f"{stat}_{m}": float(r[stat])
                for _, r in summary.iterrows()
                for m in [r["method"]]
                for stat in STATISTICS
            }
        )
        tracking.log_figure(
            mse_distributions({f"{task} task, test subject {lineage.test_subject}": per_volume}),
            "figures/per_volume_mse.png",
        )
        _log_coronal(coronal, fig_volume, y_slice, subject, task)
        tracking.log_frame(
            pd.DataFrame(matrix, columns=[f"pred_{j}" for j in range(len(matrix))])
            .rename_axis("label")
            .reset_index(),
            "evaluation/confusion.csv",
        )
        tracking.log_figure(
            confusion_matrix({"Gater confusion (held-out subject)": pd.DataFrame(matrix)}),
            "figures/gater_confusion_test.png",
        )
        tracking.log_metrics(
            {"gater_accuracy_test": float(np.trace(matrix) / max(matrix.sum(), 1))}
        )
        log.info("evaluate run %s:\n%s", run_id, summary.to_string(index=False))
        return run_id


def figure_volume(params: np.ndarray, full_row: int) -> int:
    """The volume acquired like row ``full_row`` of the full Super MUDI protocol (the paper's
    Fig. 3 volume), or the closest acquisition (b, TE, TI, direction) in a sub-protocol."""
    target = get_protocol("full")[full_row]
    scale = np.array([1.0, 1.0, 1.0, 1000.0, 1000.0, 25.0])
    return int(np.abs((params - target) / scale).sum(axis=1).argmin())


def _log_coronal(coronal: dict[str, np.ndarray], volume: int, y: int, subject, task: str) -> None:
    """One coronal slice per method + LR + HR of one volume: the data of the paper's Fig. 3."""
    zooms = {
        "hr_zooms": nib.affines.voxel_sizes(subject.hr_affine),
        "lr_zooms": nib.affines.voxel_sizes(subject.lr_affine(task)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "coronal.npz"
        arrays: dict[str, Any] = {**coronal, "volume": volume, "slice": y, **zooms}
        np.savez_compressed(path, **arrays)
        tracking.log_artifact(path, "evaluation")
