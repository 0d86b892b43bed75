"""Phase three: route training pairs by the gater's *prediction* into K subsets and train one
expert decoder per subset with the encoder frozen (paper eq. 6); log the assembled SS-MoE.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from ssmoe.models.moe import GatedEncoder, SSMoE, UNetSR, freeze
from ssmoe.models.unet import count_weights
from ssmoe.phases.common import (
    EpochHook,
    TrainingFields,
    epoch_logger,
    expert_rows,
    pair_tensors,
    phase1_lineage,
    seeded,
)
from ssmoe.tracking import (
    load_frame,
    load_model,
    log_frame,
    log_metrics,
    log_model,
    require_step,
    run_params,
    step_run,
)
from ssmoe.training.experts import train_experts
from ssmoe.training.loop import pick_device, predict_batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase3Config(TrainingFields):
    """Phase-three settings: the phase-2 run and the experts' fine-tuning budget."""

    phase2_run: str
    n_pairs: int = 6000


def run_phase3(
    config: Phase3Config,
    *,
    parent_run_id: str | None = None,
    experiment: str = "ssmoe",
    epoch_hook: EpochHook | None = None,
) -> str:
    """Train the K experts; returns the MLflow run id (model artifact ``model`` = SSMoE)."""
    phase2 = require_step(config.phase2_run, "phase2")
    p2 = run_params(phase2)
    phase1_run = p2["phase1_run"]
    lineage = phase1_lineage(phase1_run)
    k = int(p2["k"])
    params = {
        **asdict(config),
        "phase1_run": phase1_run,
        "k": k,
        "segmenter": p2["segmenter"],
        **lineage.fold_params(),
    }
    with step_run(
        "phase3", params=params, experiment=experiment, parent_run_id=parent_run_id
    ) as run:
        seeded(config.seed)
        device = pick_device(config.device)
        gated = freeze(load_model(f"runs:/{config.phase2_run}/gater", kind=GatedEncoder)).to(device)
        baseline = freeze(load_model(lineage.model_uri, kind=UNetSR))
        labels = load_frame(config.phase2_run, "labels/pseudo_labels.csv")["label"].to_numpy()
        table = lineage.scores.assign(label=labels)
        rows = expert_rows(table, config.n_pairs, config.seed)
        x, y, acq = pair_tensors(lineage.pairs(rows))
        routes = predict_batches(gated, (x, acq), 256, device).argmax(1)
        val = torch.from_numpy(rows["is_val"].to_numpy(bool))
        counts = np.bincount(routes[~val].numpy(), minlength=k)
        log_metrics({f"subset_size_{i}": int(c) for i, c in enumerate(counts)})
        log_frame(
            pd.crosstab(
                rows["label"].to_numpy(), routes.numpy(), rownames=["label"], colnames=["routed"]
            ).reset_index(),
            "routing/routing.csv",
        )

        experts = train_experts(
            baseline.config,
            baseline.encoder,
            baseline.decoder,
            k,
            train_data=(x[~val], y[~val], routes[~val]),
            val_data=(x[val], y[val], routes[val]),
            config=config.train_config(),
            device=device,
            on_epoch=epoch_logger("phase3", epoch_hook),
            desc="phase3",
        )
        model = SSMoE(baseline.config, baseline.encoder, gated.gater, gated.acq_norm, experts)
        log_metrics({"n_weights": count_weights(model)})
        log_model(model, "model")
        log.info("phase3 run %s: subset sizes %s", run.info.run_id, counts.tolist())
        return run.info.run_id
