"""The phases of SS-MoE, each one MLflow run: phase1 (baseline + scores), phase2 (pseudo labels +
gater), phase3 (experts), hardmoe (baseline mixture), evaluate (test phase) and predict."""

from ssmoe.phases.common import RunContext
from ssmoe.phases.evaluate import EvaluateConfig, run_evaluate
from ssmoe.phases.hardmoe import HardMoEConfig, run_hardmoe
from ssmoe.phases.phase1 import Phase1Config, run_phase1
from ssmoe.phases.phase2 import Phase2Config, run_phase2
from ssmoe.phases.phase3 import Phase3Config, run_phase3
from ssmoe.phases.predict import PredictConfig, run_predict

__all__ = [
    "EvaluateConfig",
    "HardMoEConfig",
    "Phase1Config",
    "Phase2Config",
    "Phase3Config",
    "PredictConfig",
    "RunContext",
    "run_evaluate",
    "run_hardmoe",
    "run_phase1",
    "run_phase2",
    "run_phase3",
    "run_predict",
]
