"""The whole comparison for one fold and task: simulate (if needed) -> phase 1 -> phase 2 ->
phase 3 -> Hard MoE -> evaluate, each a child run of one parent ``pipeline`` run.

Every step is looked up in the store first (``ssmoe.study.cache``) and reused when a finished
run with the same parameters, code version and upstream runs exists; ``force`` re-runs a step
and, because their upstream run ids change, everything downstream of it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ssmoe import phases
from ssmoe.configs import Overrides, StudySettings, check_overrides, simulation
from ssmoe.data import layout
from ssmoe.data.simulate import simulate_dataset
from ssmoe.phases.common import EpochHook
from ssmoe.study.cache import (
    TAG_CACHE_KEY,
    TAG_CODE_VERSION,
    cache_key,
    code_version,
    find_finished,
)
from ssmoe.tracking import TrackingStore, log_artifact, log_metrics, setup, step_run
from ssmoe.vocabulary import STEPS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """One fold of one task. Unset hyper-parameters come from the preset."""

    workdir: str = "runs/pipeline"
    data_dir: str | None = None  # None: simulate into <workdir>/data (reused when present)
    task: str = "aniso"
    test_subject: str | None = None
    exclude_subjects: tuple[str, ...] = ()
    preset: str = "quick"
    subjects: int = 5  # simulated subjects
    grid: tuple[int, int, int] | None = None  # HR grid of simulated data (None: the release's)
    segmenter: str | None = None
    k: int | None = None
    lr: float | None = None  # learning rate of phases 2-3 (the tuner's knob)
    seed: int = 0
    device: str = "auto"
    baselines: bool = True  # train and evaluate the Hard MoE (off while tuning)
    max_volumes: int | None = None
    force: str | None = None  # re-run this step and, through lineage, everything it feeds
    overrides: Overrides = field(default_factory=dict)  # step -> config fields (ssmoe.configs)

    def __post_init__(self) -> None:
        if self.force and self.force not in STEPS:
            raise ValueError(f"force must be one of {STEPS}, got {self.force!r}")
        object.__setattr__(self, "overrides", check_overrides(self.overrides))

    def settings(self, data_dir: Path) -> StudySettings:
        """What the steps' configs are built from (``ssmoe.configs``), with the resolved data."""
        return StudySettings(
            preset=self.preset,
            data_dir=str(data_dir),
            task=self.task,
            test_subject=self.test_subject,
            exclude_subjects=self.exclude_subjects,
            segmenter=self.segmenter,
            k=self.k,
            lr=self.lr,
            seed=self.seed,
            device=self.device,
            max_volumes=self.max_volumes,
            overrides=self.overrides,
        )


@dataclass
class PipelineResult:
    parent_run_id: str
    runs: dict[str, str]  # step -> run id
    reused: dict[str, bool]

    @property
    def evaluate_run(self) -> str:
        return self.runs["evaluate"]


def data_fingerprint(data_dir: Path) -> str:
    """Cheap identity of a dataset: relative paths, sizes and modification times of its files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        st = path.stat()
        digest.update(f"{path.relative_to(data_dir)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class _Runner:
    """Runs or reuses steps under one parent run."""

    def __init__(
        self,
        config: PipelineConfig,
        experiment: str,
        parent_run_id: str,
        epoch_hook: EpochHook | None,
    ) -> None:
        self.config = config
        self.experiment_id = setup(experiment)
        self.experiment = experiment
        self.parent = parent_run_id
        self.hook = epoch_hook
        self.result = PipelineResult(parent_run_id, {}, {})

    def step(
        self,
        name: str,
        params: Any,
        upstream: dict[str, str],
        run: Callable[[], str],
        stale: bool = False,
    ) -> str:
        """Reuse or run step ``name`` of ``params`` (its config, or a dict of parameters);
        ``stale`` forbids reuse of this step only."""
        # Forcing one step is enough: its dependants see a new upstream run id, so they miss.
        stale = stale or self.config.force == name
        key = cache_key(name, params if isinstance(params, dict) else asdict(params), upstream)
        found = None if stale else find_finished(self.experiment_id, name, key)
        if found:
            log.info("%s: reusing finished run %s", name, found)
            run_id = found
        else:
            run_id = run()
            store = TrackingStore()
            store.set_tag(run_id, TAG_CACHE_KEY, key)
            store.set_tag(run_id, TAG_CODE_VERSION, code_version())
        self.result.runs[name] = run_id
        self.result.reused[name] = bool(found)
        # Written to the parent by id: the active run is not necessarily the parent.
        store = TrackingStore()
        store.log_param(self.parent, f"{name}_run", run_id)
        store.set_tag(self.parent, f"ssmoe.reused.{name}", str(bool(found)).lower())
        return run_id

    def context(self) -> phases.RunContext:
        """Where the phases' runs go: children of the parent run, with the epoch hook."""
        return phases.RunContext(self.parent, self.experiment, self.hook)


def _simulate(cfg: PipelineConfig, runner: _Runner) -> tuple[Path, str]:
    if cfg.data_dir:
        path = Path(cfg.data_dir).resolve()
        if not path.is_dir():
            raise ValueError(f"data_dir {path} does not exist")
        return path, data_fingerprint(path)
    path = (Path(cfg.workdir) / "data").resolve()
    sim = simulation(cfg.preset, path, cfg.subjects, cfg.seed, cfg.grid)
    params: dict[str, Any] = {
        "out": str(path),
        "subjects": cfg.subjects,
        "protocol": sim.protocol,
        "seed": cfg.seed,
    }
    if cfg.grid is not None:  # the release's grid by default: the key stays as it was
        params["grid"] = cfg.grid
    # Never reuse the record of data that is gone or half written (the record is written last).
    complete = (path / layout.SIM_CONFIG).exists()

    def run() -> str:
        with step_run(
            "simulate", params=params, experiment=runner.experiment, parent_run_id=runner.parent
        ) as r:
            simulate_dataset(sim)
            log_artifact(path / layout.SIM_CONFIG, "simulation")
            return r.info.run_id

    runner.step("simulate", params, {}, run, stale=not complete)
    return path, data_fingerprint(path)


def ensure_data(config: PipelineConfig, *, experiment: str, parent_run_id: str) -> Path:
    """The dataset of a study: ``data_dir`` as given, or simulated (reused when complete),
    the simulation being a child run of ``parent_run_id`` (the active run)."""
    runner = _Runner(config, experiment, parent_run_id, None)
    return _simulate(config, runner)[0]


def run_pipeline(
    config: PipelineConfig,
    *,
    experiment: str = "ssmoe",
    parent_run_id: str | None = None,
    epoch_hook: EpochHook | None = None,
    run_name: str | None = None,
) -> PipelineResult:
    """Run (or reuse) every step of one fold; returns the run ids."""
    with step_run(
        "pipeline",
        params={**asdict(config), "overrides": str(config.overrides)},
        experiment=experiment,
        parent_run_id=parent_run_id,
        run_name=run_name or f"pipeline {config.task}",
    ) as parent:
        runner = _Runner(config, experiment, parent.info.run_id, epoch_hook)
        data_dir, fingerprint = _simulate(config, runner)
        configs = config.settings(data_dir)
        context = runner.context()

        c1 = configs.phase1()
        r1 = runner.step(
            "phase1", c1, {"data": fingerprint}, lambda: phases.run_phase1(c1, context)
        )
        c2 = configs.phase2(r1)
        r2 = runner.step("phase2", c2, {"phase1": r1}, lambda: phases.run_phase2(c2, context))
        c3 = configs.phase3(r2)
        r3 = runner.step("phase3", c3, {"phase2": r2}, lambda: phases.run_phase3(c3, context))
        rh = None
        if config.baselines:
            ch = configs.hardmoe(r1)
            rh = runner.step("hardmoe", ch, {"phase1": r1}, lambda: phases.run_hardmoe(ch, context))
        ce = configs.evaluate(r3, rh)
        upstream = {"phase3": r3, "hardmoe": rh or ""}
        re_ = runner.step("evaluate", ce, upstream, lambda: phases.run_evaluate(ce, context))
        _copy_metrics(re_)
        return runner.result


def _copy_metrics(evaluate_run: str) -> None:
    """Show the evaluation's statistics on the parent run too (one glance in the UI)."""
    metrics = TrackingStore().metrics(evaluate_run)
    log_metrics({k: v for k, v in metrics.items() if not k.startswith("n_weights")})
