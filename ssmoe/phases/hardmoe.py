"""Hard MoE baseline after Gross et al. (CVPR 2017): K-means clusters of the generalist's
(phase-1 baseline's) E^O features, one expert decoder per cluster, nearest-centroid assignment.

Same backbone, same frozen encoder, same expert initialisation and budget as SS-MoE's phase
three: the only difference is the routing (feature clusters instead of predicted error classes).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans

from ssmoe.models.moe import HardMoE, UNetSR, freeze
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
from ssmoe.tracking import load_model, log_metrics, log_model, step_run
from ssmoe.training.experts import train_experts
from ssmoe.training.loop import pick_device, predict_batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HardMoEConfig(TrainingFields):
    phase1_run: str
    k: int = 4
    n_pairs: int = 6000

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError(f"k must be >= 2, got {self.k!r}")


def run_hardmoe(
    config: HardMoEConfig,
    *,
    parent_run_id: str | None = None,
    experiment: str = "ssmoe",
    epoch_hook: EpochHook | None = None,
) -> str:
    lineage = phase1_lineage(config.phase1_run)
    params = {
        **asdict(config),
        **lineage.fold_params(),
    }
    with step_run(
        "hardmoe", params=params, experiment=experiment, parent_run_id=parent_run_id
    ) as run:
        seeded(config.seed)
        device = pick_device(config.device)
        baseline = freeze(load_model(lineage.model_uri, kind=UNetSR)).to(device)
        rows = expert_rows(lineage.scores, config.n_pairs, config.seed)
        x, y, acq = pair_tensors(lineage.pairs(rows))
        val = torch.from_numpy(rows["is_val"].to_numpy(bool))
        features = predict_batches(baseline.features, (x,), 256, device)
        mean, std = features[~val].mean(0), features[~val].std(0).clamp_min(1e-8)
        z = ((features - mean) / std).numpy()
        kmeans = KMeans(n_clusters=config.k, n_init=10, random_state=config.seed).fit(
            z[~val.numpy()]
        )
        centroids = torch.from_numpy(kmeans.cluster_centers_).float()
        routes = torch.cdist(torch.from_numpy(z).float(), centroids).argmin(1)
        counts = np.bincount(routes[~val].numpy(), minlength=config.k)
        log_metrics({f"cluster_size_{i}": int(c) for i, c in enumerate(counts)})
        experts = train_experts(
            baseline.config,
            baseline.encoder,
            baseline.decoder,
            config.k,
            train_data=(x[~val], y[~val], routes[~val]),
            val_data=(x[val], y[val], routes[val]),
            config=config.train_config(),
            device=device,
            on_epoch=epoch_logger("hardmoe", epoch_hook),
            desc="hardmoe",
        )
        model = HardMoE(baseline.config, baseline.encoder, centroids, mean, std, experts)
        log_metrics({"n_weights": count_weights(model)})
        log_model(model, "model")
        log.info("hardmoe run %s: cluster sizes %s", run.info.run_id, counts.tolist())
        return run.info.run_id
