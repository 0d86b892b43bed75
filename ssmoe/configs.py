"""From a preset, a study's settings and ``STEP.FIELD=VALUE`` overrides to the config of every
step: the one mapping used by the phase commands (and the MLproject entry points, which call
them), the pipeline, cross-validation, the quick start and tuning.

Precedence, lowest first:

1. the preset (``ssmoe.presets``): widths, budgets, epochs, optimiser, K, segmenter, stride;
2. the study's settings (``StudySettings``): data, task, fold, seed, device, evaluated volumes and
   the tuner's knobs ``segmenter``, ``k`` and ``lr`` (the learning rate of phases 2-3);
3. overrides of single fields (``--set phase1.n_pairs=20000``; a phase command's own flags are
   overrides of its step, applied before its ``--set`` items).

The Hard MoE baseline takes K from phase 2 and its budget (pairs, epochs, batch size, learning
rate, decay, and ``eval_batch_size`` when phase 3 overrides it) from phase 3, so that it differs
from SS-MoE in routing only; its own overrides come last. Override values are parsed and checked against the type of the config field they
set; a bad one is a ``ValueError`` naming ``step.field`` and the value.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from ssmoe.data.simulate import SimulationConfig
from ssmoe.phases import (
    EvaluateConfig,
    HardMoEConfig,
    Phase1Config,
    Phase2Config,
    Phase3Config,
)
from ssmoe.presets import Preset, get_preset

Overrides = dict[str, dict[str, Any]]
"""step -> {field name: value}, e.g. ``{"phase1": {"n_pairs": 20000}}``."""

CONFIG_CLASSES: dict[str, type] = {
    "phase1": Phase1Config,
    "phase2": Phase2Config,
    "phase3": Phase3Config,
    "hardmoe": HardMoEConfig,
    "evaluate": EvaluateConfig,
}
OVERRIDABLE: tuple[str, ...] = tuple(CONFIG_CLASSES)  # every step but ``simulate``
# The steps whose overrides reach a step's config (the Hard MoE copies phases 2 and 3).
INPUTS: dict[str, tuple[str, ...]] = {
    **{step: (step,) for step in OVERRIDABLE},
    "hardmoe": ("phase2", "phase3", "hardmoe"),
}
_TRUE = ("true", "1")
_FALSE = ("false", "0")
_NONE = ("none", "null", "")


@cache
def field_types(step: str) -> dict[str, Any]:
    """Field name -> resolved type of the config class of ``step``."""
    return typing.get_type_hints(CONFIG_CLASSES[step])


def convert(value: Any, kind: Any, where: str) -> Any:
    """``value`` (a string from the command line, or already typed) as a value of type ``kind``.

    bool accepts true/false/1/0 (any case); optional types accept none/null/'' as None; tuples
    accept a JSON list or comma-separated items; a string may be JSON-quoted. Raises
    ``ValueError`` naming ``where`` (``step.field``) and the value.
    """
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or _is_none_text(value)):
            return None
        for inner in (a for a in args if a is not type(None)):
            try:
                return convert(value, inner, where)
            except ValueError:
                pass
        raise _bad(where, value, kind)
    if typing.get_origin(kind) is tuple:
        return _convert_tuple(value, args, where)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
    elif kind in (int, float) and not isinstance(value, bool):
        if isinstance(value, int) or (kind is float and isinstance(value, float)):
            return value
        if isinstance(value, str):
            try:
                return kind(value.strip())
            except ValueError:
                pass
    elif kind is str and isinstance(value, str):
        return _unquote(value)
    raise _bad(where, value, kind)


def _convert_tuple(value: Any, args: tuple[Any, ...], where: str) -> tuple[Any, ...]:
    items = value
    if isinstance(value, str):
        text = value.strip()
        items = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v]
    kinds = [args[0]] * len(items) if len(args) == 2 and args[1] is Ellipsis else list(args)
    if not isinstance(items, (list, tuple)) or len(kinds) != len(items):
        raise _bad(where, value, tuple[tuple(args)])  # type: ignore[misc]
    return tuple(convert(v, k, where) for v, k in zip(items, kinds, strict=True))


def _is_none_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in _NONE


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return str(json.loads(text))
        except json.JSONDecodeError:
            pass
    return text


_EXPECTED = {bool: "true, false, 1 or 0", int: "an integer", float: "a number", str: "a string"}


def _expected(kind: Any) -> str:
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple:
        n = "items" if len(args) == 2 and args[1] is Ellipsis else f"{len(args)} items"
        return f"a comma-separated list of {n}"
    if args:  # an optional type
        return " or ".join(_expected(a) for a in args if a is not type(None)) + " or none"
    return _EXPECTED.get(kind, str(kind))


def _bad(where: str, value: Any, kind: Any) -> ValueError:
    return ValueError(f"override {where}={value!r}: expected {_expected(kind)}")


def parse_overrides(items: tuple[str, ...] | list[str]) -> Overrides:
    """``["phase1.n_pairs=64", ...]`` -> ``{"phase1": {"n_pairs": 64}}``: the command line's
    ``--set STEP.FIELD=VALUE``, each value typed by its field (see ``convert``). A field the
    step's config lacks is kept as text here and refused by ``check_overrides``."""
    out: Overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        step, dot, name = (part.strip() for part in key.partition("."))
        if not sep or not dot or step not in OVERRIDABLE:
            raise ValueError(f"override {item!r}: expected STEP.FIELD=VALUE, STEP in {OVERRIDABLE}")
        kind = field_types(step).get(name)
        out.setdefault(step, {})[name] = raw if kind is None else convert(raw, kind, key.strip())
    return out


def check_overrides(overrides: Overrides) -> Overrides:
    """``overrides`` with every value converted to its field's type; unknown steps or fields and
    values of the wrong type are a ``ValueError`` naming ``step.field``."""
    checked: Overrides = {}
    for step, values in overrides.items():
        if step not in OVERRIDABLE:
            raise ValueError(f"override {step}.*: STEP must be one of {OVERRIDABLE}")
        known = field_types(step)
        for name, value in values.items():
            if name not in known:
                raise ValueError(
                    f"override {step}.{name}: {CONFIG_CLASSES[step].__name__} has no such "
                    f"field (fields: {sorted(known)})"
                )
            checked.setdefault(step, {})[name] = convert(value, known[name], f"{step}.{name}")
    return checked


def merge_overrides(*layers: Overrides) -> Overrides:
    """Later layers win field by field."""
    out: Overrides = {}
    for layer in layers:
        for step, values in layer.items():
            out.setdefault(step, {}).update(values)
    return out


def simulation(
    preset: str, out: Path, subjects: int, seed: int, grid: tuple[int, int, int] | None = None
) -> SimulationConfig:
    """The dataset a study simulates when it is given none: ``subjects`` subjects acquired with
    the preset's protocol on HR grid ``grid`` (None: the release's), written to ``out``
    (replacing what a crashed run left there)."""
    config = SimulationConfig(
        out=out, n_subjects=subjects, protocol=get_preset(preset).protocol, seed=seed, force=True
    )
    return config if grid is None else replace(config, shape=grid)


@dataclass(frozen=True)
class StudySettings:
    """What a study decides beyond its preset; None = the preset's value. Builds the configs."""

    preset: str = "quick"
    data_dir: str = ""
    task: str = "aniso"
    test_subject: str | None = None
    exclude_subjects: tuple[str, ...] = ()
    segmenter: str | None = None
    k: int | None = None
    lr: float | None = None  # learning rate of phases 2-3 and the Hard MoE (the tuner's knob)
    seed: int = 0
    device: str = "auto"
    max_volumes: int | None = None
    overrides: Overrides = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_preset(self.preset)  # an unknown preset is an error now, not when a step is built
        object.__setattr__(self, "overrides", check_overrides(self.overrides))

    def _preset(self) -> Preset:
        return get_preset(self.preset)

    def _training(self, epochs: int, lr: float) -> dict[str, Any]:
        p = self._preset()
        return {
            "epochs": epochs,
            "batch_size": p.batch_size,
            "lr": lr,
            "decay": p.decay,
            "seed": self.seed,
            "device": self.device,
        }

    def _lr(self) -> float:
        return self.lr if self.lr is not None else self._preset().lr

    def _fields(self, step: str) -> dict[str, Any]:
        """The fields of ``step`` (upstream run ids aside) after preset, settings, overrides."""
        p = self._preset()
        if step == "phase1":
            base = {
                "data_dir": self.data_dir,
                "task": self.task,
                "test_subject": self.test_subject,
                "exclude_subjects": self.exclude_subjects,
                "width": p.width,
                "residual": p.residual,
                "n_pairs": p.n_pairs,
                **self._training(p.epochs_phase1, p.lr),
                "preset": p.name,
            }
        elif step == "phase2":
            base = {
                "segmenter": self.segmenter or p.segmenter,
                "k": self.k or p.k,
                **self._training(p.epochs_phase2, self._lr()),
            }
        elif step == "phase3":
            base = {"n_pairs": p.n_pairs_phase3, **self._training(p.epochs_phase3, self._lr())}
        elif step == "hardmoe":
            phase3 = self._fields("phase3")
            budget = ("n_pairs", "epochs", "batch_size", "lr", "decay", "eval_batch_size")
            base = {
                "k": self._fields("phase2")["k"],
                **{name: phase3[name] for name in budget if name in phase3},
                "seed": self.seed,
                "device": self.device,
            }
        else:
            assert step == "evaluate", step
            base = {
                "stride": p.eval_stride,
                "max_volumes": self.max_volumes,
                "seed": self.seed,
                "device": self.device,
            }
        return {**base, **self.overrides.get(step, {})}

    def phase1(self) -> Phase1Config:
        return Phase1Config(**self._fields("phase1"))

    def phase2(self, phase1_run: str) -> Phase2Config:
        return Phase2Config(**{"phase1_run": phase1_run, **self._fields("phase2")})

    def phase3(self, phase2_run: str) -> Phase3Config:
        return Phase3Config(**{"phase2_run": phase2_run, **self._fields("phase3")})

    def hardmoe(self, phase1_run: str) -> HardMoEConfig:
        return HardMoEConfig(**{"phase1_run": phase1_run, **self._fields("hardmoe")})

    def evaluate(self, phase3_run: str, hardmoe_run: str | None) -> EvaluateConfig:
        lineage = {"phase3_run": phase3_run, "hardmoe_run": hardmoe_run}
        return EvaluateConfig(**{**lineage, **self._fields("evaluate")})
