"""Shared fixtures: an isolated MQS cache directory and heavy-tailed positive scores."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _mqs_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Null simulations go to a per-session temporary cache, never to ~/.cache."""
    monkeypatch.setenv("SSMOE_CACHE", str(tmp_path_factory.getbasetemp() / "ssmoe-cache"))


@pytest.fixture
def scores() -> np.ndarray:
    """3000 positive scores: a lognormal mixture over ~3 decades, like per-patch MSEs."""
    rng = np.random.default_rng(7)
    return np.exp(
        np.concatenate(
            [rng.normal(-3, 0.5, 1800), rng.normal(0, 0.7, 900), rng.normal(3, 0.5, 300)]
        )
    )
