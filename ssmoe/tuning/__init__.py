"""Optuna studies over K, segmenter and learning rate, every trial an MLflow run.

- ``space``: study definitions (search space, sampler, pruner) read from ``ssmoe/tuning/spaces/*.json``
- ``storage``: the Optuna storage (SQLite by default, PostgreSQL for many machines), heartbeats
- ``objective``: one trial = one pipeline; validation MSE of SS-MoE; phase-3 pruning
- ``tracking``: the shared parent ``tune`` run and the ``trial`` child runs
- ``worker``: the worker loop (``run_tune``); ``final``: the best trial on the test subject
"""

from ssmoe.tuning.config import Fold, TuneConfig, resolve_fold
from ssmoe.tuning.objective import Objective
from ssmoe.tuning.space import SearchSpace, load_space, parse_space
from ssmoe.tuning.storage import StorageConfig, default_url, make_storage
from ssmoe.tuning.worker import TuneResult, run_tune

__all__ = [
    "Fold",
    "Objective",
    "SearchSpace",
    "StorageConfig",
    "TuneConfig",
    "TuneResult",
    "default_url",
    "load_space",
    "make_storage",
    "parse_space",
    "resolve_fold",
    "run_tune",
]
