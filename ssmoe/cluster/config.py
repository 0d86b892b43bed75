"""What a Slurm job asks for: partition, time, memory, CPUs, GPUs, and the shell set-up that
runs before the command. Read from a JSON file (``mlproject/cluster/slurm.json`` is the example),
the same file for ``mlflow run --backend slurm --backend-config`` and for ssmoe's executor.

Keys follow ``sbatch`` option names with ``_`` for ``-`` (``gpus_per_node`` is
``--gpus-per-node``), and the ones of the ``mlflow-slurm`` plugin where it has them (partition,
account, time, mem, gpus_per_node, gres, exclusive, modules, environment), so a configuration
written for that plugin keeps working for those keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

_STR = ("partition", "account", "qos", "time", "mem", "gres", "constraint", "log_dir")
_INT = ("cpus_per_task", "gpus_per_node", "max_parallel")
_LIST = ("modules", "setup", "environment", "sbatch_args")


@dataclass(frozen=True)
class SlurmConfig:
    """Resources and set-up of every job (and every array task) an executor submits.

    time: ``sbatch --time`` (``MM``, ``HH:MM:SS``, ``D-HH:MM:SS``); mem: per node, with unit
    (``"8G"``); gpus_per_node / gres: GPU request (``--gpus-per-node=1`` or ``--gres=gpu:1``,
    whichever your site uses); modules: ``module load`` lines; setup: shell lines run before
    the command (e.g. ``source /path/venv/bin/activate``); environment: ``"NAME=value"``
    exported in the job; sbatch_args: any further ``sbatch`` options, verbatim; log_dir: where
    job output goes (default ``./slurm-logs`` of the submitting directory); max_parallel: at
    most this many tasks of an array at once (``--array=0-N%max_parallel``); poll_interval:
    seconds between status checks while waiting.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None
    mem: str | None = None
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    gres: str | None = None
    constraint: str | None = None
    exclusive: bool = False
    modules: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    environment: tuple[str, ...] = ()
    sbatch_args: tuple[str, ...] = ()
    log_dir: str | None = None
    max_parallel: int | None = None
    poll_interval: float = 10.0

    def __post_init__(self) -> None:
        for name in ("cpus_per_task", "gpus_per_node", "max_parallel"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "gpus_per_node" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {self.poll_interval!r}")
        for item in self.environment:
            if "=" not in item or not item.split("=", 1)[0].isidentifier():
                raise ValueError(f"environment entries are 'NAME=value', got {item!r}")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "slurm config") -> SlurmConfig:
        """Validate a parsed JSON object; errors name ``source``, the key and the bad value."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        values: dict[str, Any] = {}
        for key, value in doc.items():
            values[key] = _check(source, key, value)
        try:
            return cls(**values)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None

    @classmethod
    def load(cls, path: str | Path) -> SlurmConfig:
        """Read a JSON file (see the module docstring for its keys)."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except OSError as err:
            raise ValueError(f"cannot read Slurm config {path}: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a JSON object, got {type(doc).__name__}")
        return cls.from_dict(doc, source=str(path))


def _check(source: str, key: str, value: Any) -> Any:
    def bad(expected: str) -> ValueError:
        return ValueError(f"{source}: field {key!r}: expected {expected}, got {value!r}")

    if key in _STR:
        if value is not None and not isinstance(value, str):
            raise bad("a string")
        return value
    if key in _INT:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad("an integer")
        return value
    if key in _LIST:
        if isinstance(value, str) or not isinstance(value, list):
            raise bad("a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    if key == "exclusive":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key == "poll_interval":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number of seconds")
        return float(value)
    raise AssertionError(f"unhandled key {key}")
