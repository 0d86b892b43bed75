"""Test phase and comparison: cubic spline, SR U-Net, Hard MoE and SS-MoE on every volume of the
held-out subject, with per-volume MSE distributions, statistics and pairwise Wilcoxon tests.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import nibabel as nib
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ssmoe.data.degrade import SCALES
from ssmoe.data.patches import GridTiler, extract_pairs, sample_index
from ssmoe.evaluation.figures import confusion_figure, log_figure, mse_distributions
from ssmoe.evaluation.interpolation import cubic_spline_upsample
from ssmoe.evaluation.metrics import STATISTICS, summary_table, volume_mse, wilcoxon_table
from ssmoe.evaluation.reconstruct import reconstruct
from ssmoe.models.unet import count_weights
from ssmoe.phases.common import phase1_lineage
from ssmoe.phases.phase1 import score_pairs
from ssmoe.phases.phase2 import confusion
from ssmoe.tracking.artifacts import load_json, load_model, log_frame
from ssmoe.tracking.runs import require_step, step_run
from ssmoe.training.loop import pick_device

log = logging.getLogger(__name__)

METHODS = ("cubic", "unet", "hardmoe", "ssmoe")
METHOD_NAMES = {
    "cubic": "Cubic spline",
    "unet": "SR U-Net",
    "hardmoe": "Hard MoE",
    "ssmoe": "SS-MoE",
}


@dataclass(frozen=True)
class EvaluateConfig:
    """Which models to compare and how to tile whole volumes."""

    phase3_run: str
    hardmoe_run: str | None = None  # None: compare without the Hard MoE (e.g. tuning)
    stride: int = 16  # HR tiling stride; < 16 averages overlapping tiles
    batch_size: int = 256
    max_volumes: int | None = None  # None: every volume of the held-out subject
    figure_volume: int = 118  # the paper's Fig. 3 shows the 119th volume
    n_confusion_pairs: int = 2000
    seed: int = 0
    device: str = "auto"


def run_evaluate(
    config: EvaluateConfig, *, parent_run_id: str | None = None, experiment: str = "ssmoe"
) -> str:
    phase3 = require_step(config.phase3_run, "phase3")
    p3 = phase3.data.params
    lineage = phase1_lineage(p3["phase1_run"])
    hardmoe = require_step(config.hardmoe_run, "hardmoe") if config.hardmoe_run else None
    if hardmoe is not None and hardmoe.data.params["phase1_run"] != lineage.run_id:
        raise ValueError(
            f"hardmoe run {config.hardmoe_run} uses phase-1 run "
            f"{hardmoe.data.params['phase1_run']}, phase-3 run {config.phase3_run} "
            f"uses {lineage.run_id}: compare models of the same baseline"
        )
    params = {
        **asdict(config),
        "phase1_run": lineage.run_id,
        "phase2_run": p3["phase2_run"],
        "task": lineage.task,
        "test_subject": lineage.test_subject,
        "k": p3["k"],
        "segmenter": p3["segmenter"],
        "data_dir": lineage.data_dir,
        "preset": lineage_preset(lineage.run_id),
    }
    with step_run(
        "evaluate", params=params, experiment=experiment, parent_run_id=parent_run_id
    ) as run:
        device = pick_device(config.device)
        models = {"unet": load_model(lineage.model_uri, device)}
        if config.hardmoe_run:
            models["hardmoe"] = load_model(f"runs:/{config.hardmoe_run}/model", device)
        models["ssmoe"] = load_model(f"runs:/{config.phase3_run}/model", device)
        methods = ["cubic", *models]
        for name, model in models.items():
            mlflow.log_metric(f"n_weights_{name}", count_weights(model))
        dataset = lineage.dataset()
        subject = dataset[lineage.test_subject]
        task = lineage.task
        tiler = GridTiler(subject.hr_shape, task, stride=config.stride)
        n_volumes = (
            subject.n_volumes
            if config.max_volumes is None
            else min(config.max_volumes, subject.n_volumes)
        )
        fig_volume = min(config.figure_volume, n_volumes - 1)
        mask = subject.mask
        y_slice = int(np.round(np.nonzero(mask)[1].mean()))
        coronal: dict[str, np.ndarray] = {}
        rows = []
        for v in tqdm(
            range(n_volumes),
            desc=f"evaluate {lineage.test_subject}",
            disable=not sys.stderr.isatty(),
        ):
            hr, lr, acq = subject.hr_volume(v), subject.lr_volume(task, v), subject.params[v]
            preds = {"cubic": cubic_spline_upsample(lr, SCALES[task], subject.hr_shape)}
            for name, model in models.items():
                preds[name] = reconstruct(model, lr, acq, tiler, device, config.batch_size).volume
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
        log_frame(per_volume, "evaluation/per_volume_mse.csv")
        log_frame(summary, "evaluation/summary.csv")
        log_frame(wilcoxon, "evaluation/wilcoxon.csv")
        mlflow.log_metrics(
            {
                f"{stat}_{m}": float(r[stat])
                for _, r in summary.iterrows()
                for m in [r["method"]]
                for stat in STATISTICS
            }
        )
        log_figure(
            mse_distributions({METHOD_NAMES[m]: values[m] for m in methods}),
            "figures/per_volume_mse.png",
        )
        _log_coronal(coronal, fig_volume, y_slice, subject, task)
        matrix = _test_confusion(config, lineage, models, p3["phase2_run"], device)
        log_frame(
            pd.DataFrame(matrix, columns=[f"pred_{j}" for j in range(len(matrix))])
            .rename_axis("label")
            .reset_index(),
            "evaluation/confusion.csv",
        )
        log_figure(
            confusion_figure(matrix, "Gater confusion (held-out subject)"),
            "figures/gater_confusion_test.png",
        )
        mlflow.log_metric("gater_accuracy_test", float(np.trace(matrix) / max(matrix.sum(), 1)))
        log.info("evaluate run %s:\n%s", run.info.run_id, summary.to_string(index=False))
        return run.info.run_id


def lineage_preset(phase1_run: str) -> str:
    return require_step(phase1_run, "phase1").data.params.get("preset", "custom")


def _log_coronal(coronal: dict[str, np.ndarray], volume: int, y: int, subject, task: str) -> None:
    """One coronal slice per method + LR + HR of one volume: the data of the paper's Fig. 3."""
    zooms = {
        "hr_zooms": nib.affines.voxel_sizes(subject.hr_affine),
        "lr_zooms": nib.affines.voxel_sizes(subject.lr_affine(task)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "coronal.npz"
        np.savez_compressed(path, **coronal, volume=volume, slice=y, **zooms)
        mlflow.log_artifact(str(path), "evaluation")


def _test_confusion(config, lineage, models, phase2_run: str, device) -> np.ndarray:
    """Gater confusion on patch pairs of the held-out subject: pseudo labels from the baseline's
    errors and the phase-2 thresholds (computable here because HR is known) vs the gater."""
    segmenter = load_json(phase2_run, "segmenter/segmenter.json")
    thresholds = np.asarray(segmenter["thresholds"], dtype=float)
    dataset = lineage.dataset()
    index = sample_index(
        dataset, [lineage.test_subject], lineage.task, config.n_confusion_pairs, seed=config.seed
    )
    pairs = extract_pairs(dataset, index, lineage.task)
    x, y, acq = (torch.from_numpy(a) for a in (pairs.lr, pairs.hr, pairs.acq))
    scores = score_pairs(models["unet"], (x, y, acq), device)
    labels = np.searchsorted(thresholds, scores, side="right")
    with torch.no_grad():
        routes = torch.cat(
            [
                models["ssmoe"].route(x[i : i + 256].to(device), acq[i : i + 256].to(device)).cpu()
                for i in range(0, len(x), 256)
            ]
        ).numpy()
    return confusion(labels, routes, len(thresholds) + 1)
