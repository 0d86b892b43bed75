"""Phase two: pseudo error labels c_i = J(e_i) and the gater G([E^O(x), a]) (paper eqs. 4-5).

The encoder is frozen (and in eval mode), so E^O(x_i) is computed once per pair and the gater is
trained on those cached features - the same optimisation as running E every step, far cheaper.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ssmoe import tracking
from ssmoe.evaluation.figures import confusion_matrix, score_histogram
from ssmoe.evaluation.metrics import confusion
from ssmoe.models.gater import AcquisitionNorm, Gater, GaterConfig
from ssmoe.models.moe import GatedEncoder, UNetSR, freeze
from ssmoe.phases.common import RunContext, TrainingFields, epoch_logger, phase1_lineage, phase_run
from ssmoe.segmenters import get_segmenter
from ssmoe.training.loop import predict_batches, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase2Config(TrainingFields):
    """Phase-two settings: the phase-1 run, the segmenter, K and the gater's training."""

    phase1_run: str
    segmenter: str = "mqs"
    k: int = 4
    gater_batch_size: int = 1024  # cached features per gater forward pass (predictions only)


def run_phase2(config: Phase2Config, context: RunContext = RunContext()) -> str:
    """Segment the phase-1 scores, train the gater; returns the MLflow run id."""
    lineage = phase1_lineage(config.phase1_run)
    params = {
        **asdict(config),
        **lineage.fold_params(),
    }
    with phase_run("phase2", params, config.seed, config.device, context) as (run_id, device):
        table = lineage.scores
        is_val = table["is_val"].to_numpy(bool)
        segmenter = get_segmenter(config.segmenter, config.k, seed=config.seed)
        segmenter.fit(table.loc[~is_val, "score"].to_numpy())
        thresholds = segmenter.thresholds_
        assert thresholds is not None
        labels = segmenter.predict(table["score"].to_numpy())
        described = segmenter.describe()
        tracking.log_json(described, "segmenter/segmenter.json")
        tracking.log_params({f"threshold_{i}": f"{t:.6g}" for i, t in enumerate(thresholds)})
        counts = np.bincount(labels[~is_val], minlength=config.k)
        tracking.log_metrics({f"class_count_{i}": int(c) for i, c in enumerate(counts)})
        for key in ("n_levels_at_alpha", "n_levels"):
            if isinstance(described.get(key), (int, float)):
                tracking.log_metrics({f"segmenter_{key}": described[key]})
        tracking.log_figure(
            score_histogram(
                table["score"].to_numpy(),
                thresholds,
                title=f"Pseudo error labels ({config.segmenter})",
            ),
            "figures/label_histogram.png",
        )
        tracking.log_frame(
            table.assign(label=labels)[
                ["subject", "volume", "x", "y", "z", "score", "label", "is_val"]
            ],
            "labels/pseudo_labels.csv",
        )

        baseline = freeze(tracking.load_model(lineage.model_uri, kind=UNetSR))
        pairs = lineage.pairs(table)
        x, acq = torch.from_numpy(pairs.lr), torch.from_numpy(pairs.acq)
        baseline.to(device)
        features = predict_batches(baseline.features, (x,), config.eval_batch_size, device)
        # z-scored over the protocol (the parameter table of a training subject).
        dataset = lineage.dataset()
        protocol_subject = next(s for s in dataset.subjects if s != lineage.test_subject)
        acq_norm = AcquisitionNorm.from_table(
            torch.from_numpy(dataset[protocol_subject].params).float()
        )
        acq_z = acq_norm(acq)
        y = torch.from_numpy(labels).long()
        val = torch.from_numpy(is_val)

        gater = Gater(GaterConfig(in_features=features.shape[1], k=config.k))
        ce = nn.CrossEntropyLoss()

        def loss_fn(model: nn.Module, batch) -> torch.Tensor:
            f, a, c = batch
            return ce(model(f, a), c)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            batch = config.gater_batch_size
            pred = predict_batches(gater, (features[val], acq_z[val]), batch, device).argmax(1)
            metrics["val_accuracy"] = float((pred == y[val]).float().mean()) if val.any() else 0.0
            epoch_logger("phase2", context.epoch_hook)(epoch, metrics)

        train(
            gater,
            trainable=gater,
            loss_fn=loss_fn,
            train_data=(features[~val], acq_z[~val], y[~val]),
            val_data=(features[val], acq_z[val], y[val]),
            config=config.train_config(),
            device=device,
            on_epoch=on_epoch,
            desc="phase2",
        )
        predicted = (
            predict_batches(gater, (features, acq_z), config.gater_batch_size, device)
            .argmax(1)
            .numpy()
        )
        for name, mask in (("train", ~is_val), ("val", is_val)):
            if mask.any():
                matrix = confusion(labels[mask], predicted[mask], config.k)
                tracking.log_metrics({f"{name}_accuracy": float(np.trace(matrix) / matrix.sum())})
        matrix = (
            confusion(labels[is_val], predicted[is_val], config.k)
            if is_val.any()
            else confusion(labels, predicted, config.k)
        )
        tracking.log_frame(
            pd.DataFrame(matrix, columns=[f"pred_{j}" for j in range(config.k)])
            .rename_axis("label")
            .reset_index(),
            "gater/confusion.csv",
        )
        tracking.log_figure(
            confusion_matrix({"Gater confusion (validation pairs)": pd.DataFrame(matrix)}),
            "figures/gater_confusion.png",
        )
        tracking.log_model(GatedEncoder(baseline, gater, acq_norm), "gater")
        log.info(
            "phase2 run %s: thresholds %s, counts %s",
            run_id,
            np.round(thresholds, 5).tolist(),
            counts.tolist(),
        )
        return run_id
