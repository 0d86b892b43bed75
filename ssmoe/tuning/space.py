"""Study definitions: a JSON file naming the search space, the sampler and the pruner.

The files live in ``ssmoe/tuning/spaces/`` (``default.json``: TPE + median pruner;
``ablation_grid.json``: the full K x segmenter grid). Format::

    {"params": {"k": {"type": "categorical", "choices": [2, 4, 8]},
                "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": true,
                       "grid": [1e-3]}},            # grid values: only read by the grid sampler
     "sampler": {"name": "tpe", "seed": 0, ...},     # other keys: the sampler's keyword arguments
     "pruner": {"name": "median", ...}}              # idem for the pruner

Parameters the objective understands: ``k``, ``segmenter``, ``lr``; one left out takes the
preset's value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from ssmoe.tuning.storage import quiet

SPACES_DIR = Path(__file__).parent / "spaces"  # package data
DEFAULT_SPACE = SPACES_DIR / "default.json"
PARAM_NAMES = ("k", "segmenter", "lr")
PARAM_TYPES = ("categorical", "int", "float")

SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
}
PRUNERS: dict[str, type[optuna.pruners.BasePruner]] = {
    "nop": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "threshold": optuna.pruners.ThresholdPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
}


@dataclass(frozen=True)
class Param:
    """One dimension of the search space."""

    name: str
    type: str  # categorical | int | float
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    grid: tuple[Any, ...] = ()  # values the grid sampler visits (default: choices)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def grid_values(self) -> tuple[Any, ...]:
        return self.grid or self.choices


@dataclass(frozen=True)
class SearchSpace:
    """A parsed study definition. ``source`` names the file (for messages and the parent run)."""

    params: tuple[Param, ...]
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median"})
    source: str = "<inline>"
    description: str = ""

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ask the trial for every parameter: {name: value}."""
        return {p.name: p.suggest(trial) for p in self.params}

    def grid(self) -> dict[str, list[Any]]:
        """The grid sampler's search space; every parameter needs choices or grid values."""
        missing = [p.name for p in self.params if not p.grid_values()]
        if missing:
            raise ValueError(
                f"{self.source}: the grid sampler needs 'grid' values for params {missing}"
            )
        return {p.name: list(p.grid_values()) for p in self.params}

    def grid_size(self) -> int:
        size = 1
        for values in self.grid().values():
            size *= len(values)
        return size

    def make_sampler(
        self, name: str | None = None, *, seed: int | None = None
    ) -> optuna.samplers.BaseSampler:
        """The sampler of the file, or ``name`` (its keyword arguments kept only if it is the
        file's sampler); ``seed`` replaces the file's seed."""
        spec = dict(self.sampler)
        own = spec.pop("name", "tpe")
        chosen = name or own
        if chosen != own:  # another sampler's keyword arguments would not fit
            spec = {"seed": spec["seed"]} if "seed" in spec else {}
        if seed is not None:
            spec["seed"] = seed
        if chosen not in SAMPLERS:
            raise ValueError(f"{self.source}: sampler.name {chosen!r} not in {sorted(SAMPLERS)}")
        try:
            if chosen == "grid":
                return optuna.samplers.GridSampler(self.grid(), seed=spec.get("seed"))
            with quiet():  # TPE's multivariate/group are marked experimental
                return SAMPLERS[chosen](**spec)
        except TypeError as err:
            raise ValueError(f"{self.source}: sampler {chosen!r}: {err}") from err

    def make_pruner(self) -> optuna.pruners.BasePruner:
        spec = dict(self.pruner)
        chosen = spec.pop("name", "median")
        if chosen not in PRUNERS:
            raise ValueError(f"{self.source}: pruner.name {chosen!r} not in {sorted(PRUNERS)}")
        try:
            return PRUNERS[chosen](**spec)
        except TypeError as err:
            raise ValueError(f"{self.source}: pruner {chosen!r}: {err}") from err


def _param(source: str, name: str, spec: dict[str, Any]) -> Param:
    where = f"{source}: params.{name}"
    if name not in PARAM_NAMES:
        raise ValueError(f"{where}: unknown parameter {name!r} (known: {list(PARAM_NAMES)})")
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        raise ValueError(f"{where}.type: {kind!r} is not one of {list(PARAM_TYPES)}")
    unknown = set(spec) - {"type", "choices", "low", "high", "log", "grid"}
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    if kind == "categorical":
        choices = tuple(spec.get("choices") or ())
        if not choices:
            raise ValueError(f"{where}.choices: a categorical parameter needs choices")
        return Param(name, kind, choices=choices, grid=tuple(spec.get("grid") or ()))
    low, high = spec.get("low"), spec.get("high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or low > high:
        raise ValueError(f"{where}: needs numbers low <= high, got low={low!r} high={high!r}")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ValueError(f"{where}.low: a log-uniform parameter needs low > 0, got {low!r}")
    grid = tuple(spec.get("grid") or ())
    outside = [v for v in grid if not low <= v <= high]
    if outside:
        raise ValueError(f"{where}.grid: values {outside} outside [{low}, {high}]")
    return Param(name, kind, low=low, high=high, log=log, grid=grid)


def parse_space(doc: dict[str, Any], source: str = "<inline>") -> SearchSpace:
    """A :class:`SearchSpace` from the JSON document ``doc`` (errors name ``source``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("params"), dict) or not doc["params"]:
        raise ValueError(f"{source}: expected an object with a non-empty 'params' object")
    unknown = set(doc) - {"params", "sampler", "pruner", "description"}
    if unknown:
        raise ValueError(f"{source}: unknown top-level fields {sorted(unknown)}")
    params = tuple(_param(source, name, spec) for name, spec in doc["params"].items())
    space = SearchSpace(
        params=params,
        sampler=dict(doc.get("sampler") or {"name": "tpe"}),
        pruner=dict(doc.get("pruner") or {"name": "median"}),
        source=source,
        description=str(doc.get("description", "")),
    )
    space.make_sampler()  # fail now, not in the middle of a study
    space.make_pruner()
    return space


def load_space(path: str | Path | None = None) -> SearchSpace:
    """Read a study definition; ``None`` = ``ssmoe/tuning/spaces/default.json``; a bare name such as
    ``ablation_grid`` = ``ssmoe/tuning/spaces/<name>.json``."""
    if path is None:
        file = DEFAULT_SPACE
    else:
        file = Path(path)
        if not file.exists() and (SPACES_DIR / f"{path}.json").exists():
            file = SPACES_DIR / f"{path}.json"
    if not file.is_file():
        raise ValueError(f"search space file {file} does not exist")
    try:
        doc = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file}: not valid JSON ({err})") from err
    return parse_space(doc, str(file))
