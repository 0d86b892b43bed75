"""Hard MoE baseline after Gross et al. (CVPR 2017): K-means clusters of the generalist's
(phase-1 baseline's) E^O features, one expert decoder per cluster, nearest-centroid assignment.

Same backbone, same frozen encoder, same expert initialisation and budget as SS-MoE's phase
three (``ssmoe.phases.experts``): the only difference is the routing (feature clusters instead of
predicted error classes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from sklearn.cluster import KMeans

from ssmoe.models.moe import HardMoE
from ssmoe.phases.common import RunContext, TrainingFields, phase1_lineage, phase_run
from ssmoe.phases.experts import expert_pairs, fit_routed_experts, load_baseline, log_mixture
from ssmoe.training.loop import predict_batches


@dataclass(frozen=True)
class HardMoEConfig(TrainingFields):
    phase1_run: str
    k: int = 4
    n_pairs: int = 6000
    kmeans_restarts: int = 10  # K-means initialisations, the best kept (scikit-learn's n_init)

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError(f"k must be >= 2, got {self.k!r}")


def run_hardmoe(config: HardMoEConfig, context: RunContext = RunContext()) -> str:
    """Cluster, train the K experts; returns the MLflow run id (model ``model`` = HardMoE)."""
    lineage = phase1_lineage(config.phase1_run)
    params = {**asdict(config), **lineage.fold_params()}
    with phase_run("hardmoe", params, config.seed, config.device, context) as (run_id, device):
        baseline = load_baseline(lineage, device)
        pairs = expert_pairs(lineage, lineage.scores, config.n_pairs, config.seed)
        val = pairs.val
        features = predict_batches(baseline.features, (pairs.x,), config.eval_batch_size, device)
        mean, std = features[~val].mean(0), features[~val].std(0).clamp_min(1e-8)
        z = ((features - mean) / std).numpy()
        kmeans = KMeans(config.k, n_init=config.kmeans_restarts, random_state=config.seed)
        centroids = torch.from_numpy(kmeans.fit(z[~val.numpy()]).cluster_centers_).float()
        routes = torch.cdist(torch.from_numpy(z).float(), centroids).argmin(1)
        experts = fit_routed_experts(
            "hardmoe",
            baseline,
            pairs,
            routes,
            config.k,
            config,
            device,
            context.epoch_hook,
            "cluster_size",
        )
        log_mixture(HardMoE(baseline.config, baseline.encoder, centroids, mean, std, experts))
        return run_id
