"""Phase three: route training pairs by the gater's *prediction* into K subsets and train one
expert decoder per subset with the encoder frozen (paper eq. 6); log the assembled SS-MoE.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from ssmoe import tracking
from ssmoe.models.moe import GatedEncoder, SSMoE, freeze
from ssmoe.phases.common import RunContext, TrainingFields, phase1_lineage, phase_run
from ssmoe.phases.experts import expert_pairs, fit_routed_experts, load_baseline, log_mixture
from ssmoe.training.loop import predict_batches


@dataclass(frozen=True)
class Phase3Config(TrainingFields):
    """Phase-three settings: the phase-2 run and the experts' fine-tuning budget."""

    phase2_run: str
    n_pairs: int = 6000


def run_phase3(config: Phase3Config, context: RunContext = RunContext()) -> str:
    """Train the K experts; returns the MLflow run id (model artifact ``model`` = SSMoE)."""
    p2 = tracking.run_params(tracking.require_step(config.phase2_run, "phase2"))
    lineage = phase1_lineage(p2["phase1_run"])
    k = int(p2["k"])
    params = {
        **asdict(config),
        "phase1_run": lineage.run_id,
        "k": k,
        "segmenter": p2["segmenter"],
        **lineage.fold_params(),
    }
    with phase_run("phase3", params, config.seed, config.device, context) as (run_id, device):
        gated = freeze(
            tracking.load_model(f"runs:/{config.phase2_run}/gater", kind=GatedEncoder)
        ).to(device)
        baseline = load_baseline(lineage, device)
        labels = tracking.load_frame(config.phase2_run, "labels/pseudo_labels.csv")[
            "label"
        ].to_numpy()
        pairs = expert_pairs(
            lineage, lineage.scores.assign(label=labels), config.n_pairs, config.seed
        )
        routes = predict_batches(gated, (pairs.x, pairs.acq), config.eval_batch_size, device)
        routes = routes.argmax(1)
        tracking.log_frame(
            pd.crosstab(
                pairs.rows["label"].to_numpy(),
                routes.numpy(),
                rownames=["label"],
                colnames=["routed"],
            ).reset_index(),
            "routing/routing.csv",
        )
        experts = fit_routed_experts(
            "phase3", baseline, pairs, routes, k, config, device, context.epoch_hook, "subset_size"
        )
        log_mixture(SSMoE(baseline.config, baseline.encoder, gated.gater, gated.acq_norm, experts))
        return run_id
