"""The whole comparison for one fold and task: simulate (if needed) -> phase 1 -> phase 2 ->
phase 3 -> Hard MoE -> evaluate, each a child run of one parent ``pipeline`` run.

Every step is looked up in the store first (``ssmoe.study.cache``) and reused when a finished
run with the same parameters, code version and upstream runs exists; ``force`` re-runs a step
and, because their upstream run ids change, everything downstream of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow.tracking import MlflowClient

from ssmoe.data import layout
from ssmoe.data.simulate import SimulationConfig, simulate_dataset
from ssmoe.phases import (
    EvaluateConfig,
    HardMoEConfig,
    Phase1Config,
    Phase2Config,
    Phase3Config,
    run_evaluate,
    run_hardmoe,
    run_phase1,
    run_phase2,
    run_phase3,
)
from ssmoe.phases.common import EpochHook
from ssmoe.presets import get_preset
from ssmoe.study.cache import (
    TAG_CACHE_KEY,
    TAG_CODE_VERSION,
    cache_key,
    code_version,
    find_finished,
)
from ssmoe.tracking.runs import setup, step_run
from ssmoe.vocabulary import STEPS

log = logging.getLogger(__name__)

C = TypeVar("C")


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
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # step -> config fields

    def __post_init__(self) -> None:
        if self.force and self.force not in STEPS:
            raise ValueError(f"force must be one of {STEPS}, got {self.force!r}")


@dataclass
class PipelineResult:
    parent_run_id: str
    runs: dict[str, str]  # step -> run id
    reused: dict[str, bool]

    @property
    def evaluate_run(self) -> str:
        return self.runs["evaluate"]


def parse_overrides(items: tuple[str, ...] | list[str]) -> dict[str, dict[str, Any]]:
    """``["phase1.n_pairs=64", ...]`` -> ``{"phase1": {"n_pairs": 64}}`` (JSON values, else
    strings); the CLI's ``--set STEP.FIELD=VALUE``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        step, dot, name = key.partition(".")
        if not sep or not dot or step not in STEPS:
            raise ValueError(f"override {item!r}: expected STEP.FIELD=VALUE, STEP in {STEPS}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(step, {})[name] = value
    return out


def _override(config: C, step: str, overrides: dict[str, dict[str, Any]]) -> C:
    """``config`` with the fields ``overrides[step]`` names replaced (unknown names: an error)."""
    values = overrides.get(step, {})
    known = {f.name for f in fields(config)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"override {step}.{unknown[0]}: {type(config).__name__} has no such "
            f"field (fields: {sorted(known)})"
        )
    return replace(config, **values)  # type: ignore[type-var]


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
        params: dict[str, Any],
        upstream: dict[str, str],
        run: Callable[[], str],
        stale: bool = False,
    ) -> str:
        """Reuse or run step ``name``; ``stale`` forbids reuse of this step only."""
        # Forcing one step is enough: its dependants see a new upstream run id, so they miss.
        stale = stale or self.config.force == name
        key = cache_key(name, params, upstream)
        found = None if stale else find_finished(self.experiment_id, name, key)
        if found:
            log.info("%s: reusing finished run %s", name, found)
            run_id = found
        else:
            run_id = run()
            client = MlflowClient()
            client.set_tag(run_id, TAG_CACHE_KEY, key)
            client.set_tag(run_id, TAG_CODE_VERSION, code_version())
        self.result.runs[name] = run_id
        self.result.reused[name] = bool(found)
        # Written to the parent by id: the active run is not necessarily the parent.
        client = MlflowClient()
        client.log_param(self.parent, f"{name}_run", run_id)
        client.set_tag(self.parent, f"ssmoe.reused.{name}", str(bool(found)).lower())
        return run_id

    def kwargs(self) -> dict[str, Any]:
        return {"parent_run_id": self.parent, "experiment": self.experiment}


def _simulate(cfg: PipelineConfig, runner: _Runner) -> tuple[Path, str]:
    preset = get_preset(cfg.preset)
    if cfg.data_dir:
        path = Path(cfg.data_dir).resolve()
        if not path.is_dir():
            raise ValueError(f"data_dir {path} does not exist")
        return path, data_fingerprint(path)
    path = (Path(cfg.workdir) / "data").resolve()
    sim = SimulationConfig(
        out=path, n_subjects=cfg.subjects, protocol=preset.protocol, seed=cfg.seed
    )
    params = {
        "out": str(path),
        "subjects": cfg.subjects,
        "protocol": preset.protocol,
        "seed": cfg.seed,
    }
    # Never reuse the record of data that is gone or half written (the record is written last).
    complete = (path / layout.SIM_CONFIG).exists()

    def run() -> str:
        with step_run("simulate", params=params, **runner.kwargs()) as r:
            simulate_dataset(replace(sim, force=True))
            mlflow.log_artifact(str(path / layout.SIM_CONFIG), "simulation")
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
    p = get_preset(config.preset)
    ov = config.overrides
    with step_run(
        "pipeline",
        params={**asdict(config), "overrides": str(ov)},
        experiment=experiment,
        parent_run_id=parent_run_id,
        run_name=run_name or f"pipeline {config.task}",
    ) as parent:
        runner = _Runner(config, experiment, parent.info.run_id, epoch_hook)
        data_dir, fingerprint = _simulate(config, runner)
        lr = config.lr if config.lr is not None else p.lr

        c1 = _override(
            Phase1Config(
                data_dir=str(data_dir),
                task=config.task,
                test_subject=config.test_subject,
                exclude_subjects=config.exclude_subjects,
                width=p.width,
                residual=p.residual,
                n_pairs=p.n_pairs,
                epochs=p.epochs_phase1,
                batch_size=p.batch_size,
                lr=p.lr,
                decay=p.decay,
                seed=config.seed,
                device=config.device,
                preset=p.name,
            ),
            "phase1",
            ov,
        )
        r1 = runner.step(
            "phase1",
            asdict(c1),
            {"data": fingerprint},
            lambda: run_phase1(c1, epoch_hook=runner.hook, **runner.kwargs()),
        )

        c2 = _override(
            Phase2Config(
                phase1_run=r1,
                segmenter=config.segmenter or p.segmenter,
                k=config.k or p.k,
                epochs=p.epochs_phase2,
                batch_size=p.batch_size,
                lr=lr,
                decay=p.decay,
                seed=config.seed,
                device=config.device,
            ),
            "phase2",
            ov,
        )
        r2 = runner.step(
            "phase2",
            asdict(c2),
            {"phase1": r1},
            lambda: run_phase2(c2, epoch_hook=runner.hook, **runner.kwargs()),
        )

        c3 = _override(
            Phase3Config(
                phase2_run=r2,
                n_pairs=p.n_pairs_phase3,
                epochs=p.epochs_phase3,
                batch_size=p.batch_size,
                lr=lr,
                decay=p.decay,
                seed=config.seed,
                device=config.device,
            ),
            "phase3",
            ov,
        )
        r3 = runner.step(
            "phase3",
            asdict(c3),
            {"phase2": r2},
            lambda: run_phase3(c3, epoch_hook=runner.hook, **runner.kwargs()),
        )

        rh = None
        if config.baselines:
            ch = _override(
                HardMoEConfig(
                    phase1_run=r1,
                    k=c2.k,
                    n_pairs=c3.n_pairs,
                    epochs=c3.epochs,
                    batch_size=c3.batch_size,
                    lr=c3.lr,
                    decay=c3.decay,
                    seed=config.seed,
                    device=config.device,
                ),
                "hardmoe",
                ov,
            )
            rh = runner.step(
                "hardmoe",
                asdict(ch),
                {"phase1": r1},
                lambda: run_hardmoe(ch, epoch_hook=runner.hook, **runner.kwargs()),
            )

        ce = _override(
            EvaluateConfig(
                phase3_run=r3,
                hardmoe_run=rh,
                stride=p.eval_stride,
                max_volumes=config.max_volumes,
                seed=config.seed,
                device=config.device,
            ),
            "evaluate",
            ov,
        )
        re_ = runner.step(
            "evaluate",
            asdict(ce),
            {"phase3": r3, "hardmoe": rh or ""},
            lambda: run_evaluate(ce, **runner.kwargs()),
        )
        _copy_metrics(re_)
        return runner.result


def _copy_metrics(evaluate_run: str) -> None:
    """Show the evaluation's statistics on the parent run too (one glance in the UI)."""
    metrics = MlflowClient().get_run(evaluate_run).data.metrics
    mlflow.log_metrics({k: v for k, v in metrics.items() if not k.startswith("n_weights")})
