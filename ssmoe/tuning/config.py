"""What a tuning worker is told: the study, the fold, the budget, the storage."""

from __future__ import annotations

from dataclasses import dataclass, field

from ssmoe.configs import Overrides, check_overrides
from ssmoe.data.reader import open_dataset
from ssmoe.presets import get_preset
from ssmoe.tuning.storage import StorageConfig
from ssmoe.vocabulary import TASKS


@dataclass(frozen=True)
class TuneConfig:
    """One worker of study ``study``.

    ``n_trials`` is the number of finished (COMPLETE + PRUNED) trials the *study* should reach,
    counted over every worker, so a restarted worker completes the study instead of adding
    ``n_trials`` more. The fold: ``test_subject`` (default: the last subject) is hidden from
    every trial; trials validate on ``val_subject`` (default: the last remaining subject).
    """

    study: str
    n_trials: int
    space: str | None = None  # study definition file (None: ssmoe/tuning/spaces/default.json)
    sampler: str | None = None  # override the file's sampler (tpe | grid | random)
    storage: StorageConfig = field(default_factory=StorageConfig)
    data_dir: str | None = None  # None: simulate into <workdir>/data
    workdir: str = "runs/tune"
    subjects: int = 5  # simulated subjects when data_dir is None
    task: str = "aniso"
    test_subject: str | None = None
    val_subject: str | None = None
    preset: str = "quick"
    seed: int = 0
    device: str = "auto"
    max_volumes: int | None = None  # evaluate only the first N volumes of a subject
    experiment: str = "ssmoe"
    final_test: bool = True  # evaluate the best trial on the test subject (one worker only)
    overrides: Overrides = field(default_factory=dict)  # step -> config fields (ssmoe.configs)

    def __post_init__(self) -> None:
        if not self.study or "/" in self.study:
            raise ValueError(f"study name must be non-empty without '/', got {self.study!r}")
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {self.n_trials}")
        if self.task not in TASKS:
            raise ValueError(f"task must be 'aniso' or 'iso', got {self.task!r}")
        get_preset(self.preset)
        object.__setattr__(self, "overrides", check_overrides(self.overrides))


@dataclass(frozen=True)
class Fold:
    """The subjects of a study: trials train on ``train``, validate on ``val``; ``test`` is
    seen once, by the final evaluation of the best trial."""

    test: str
    val: str
    train: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"test_subject": self.test, "val_subject": self.val, "train_subjects": self.train}


def resolve_fold(data_dir: str, test_subject: str | None, val_subject: str | None) -> Fold:
    """Pick and check the fold's subjects in the dataset at ``data_dir``."""
    subjects = list(open_dataset(data_dir).subjects)
    for role, name in (("test_subject", test_subject), ("val_subject", val_subject)):
        if name is not None and name not in subjects:
            raise ValueError(f"{role} {name!r} is not in {data_dir} (subjects: {subjects})")
    test = test_subject or subjects[-1]
    rest = [s for s in subjects if s != test]
    val = val_subject or (rest[-1] if rest else None)
    if val is None or val == test:
        raise ValueError(f"val_subject must differ from test_subject {test!r}")
    train = tuple(s for s in rest if s != val)
    if not train:
        raise ValueError(
            f"{data_dir}: tuning needs at least 3 subjects (train, validation, test), "
            f"got {subjects}"
        )
    return Fold(test=test, val=val, train=train)
