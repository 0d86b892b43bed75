"""Shared fixtures: tiny simulated Super MUDI datasets.

`tiny_dataset` (session-scoped, read-only by convention): 3 subjects, the 15-volume "tiny"
protocol, a 32 x 32 x 24 HR grid, seed 0. Tests that modify files use `make_dataset`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ssmoe.data.simulate import SimulationConfig, simulate_dataset

TINY_SHAPE = (32, 32, 24)


def _simulate(
    root: Path,
    subjects: int = 3,
    protocol: str = "tiny",
    shape: tuple[int, int, int] = TINY_SHAPE,
    seed: int = 0,
) -> Path:
    simulate_dataset(
        SimulationConfig(
            out=root, n_subjects=subjects, protocol=protocol, seed=seed, shape=shape, progress=False
        )
    )
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path to a 3-subject tiny dataset (15 volumes, 32x32x24 HR grid, seed 0). Do not modify."""
    return _simulate(tmp_path_factory.mktemp("tiny_dataset"))


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Factory `make_dataset(root=None, subjects=3, protocol="tiny", shape=(32,32,24), seed=0)`.

    Writes a fresh dataset to `root` (default: a new directory under the test's tmp_path) and
    returns its path.
    """
    counter = iter(range(1_000_000))

    def factory(
        root: Path | None = None,
        subjects: int = 3,
        protocol: str = "tiny",
        shape: tuple[int, int, int] = TINY_SHAPE,
        seed: int = 0,
    ) -> Path:
        if root is None or Path(root) == tmp_path:
            root = tmp_path / f"dataset{next(counter)}"
        return _simulate(Path(root), subjects, protocol, shape, seed)

    return factory
