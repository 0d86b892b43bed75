"""The segmenter interface: per-patch error scores -> K-1 thresholds -> pseudo error labels.

Every segmenter works on the natural log of the scores (errors span orders of magnitude) and
overrides one hook, `_fit_log_thresholds`, which returns K-1 ascending thresholds in log units.
The base class validates inputs, converts thresholds back to score units and assigns labels.

Label semantics: ``label = np.searchsorted(thresholds_, score, side="right")``, i.e. the number of
thresholds that are <= the score. Label 0 is the lowest error class, K-1 the highest; a score
equal to a threshold goes to the class above it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ssmoe.typing import FloatArray, IntArray


def assign_labels(thresholds: Any, scores: Any) -> IntArray:
    """Labels of ``scores`` under sorted ``thresholds`` (the rule above): the number of
    thresholds <= score, so 0 is the lowest-error class. Also for thresholds read back from a
    logged ``segmenter.json``."""
    return np.searchsorted(np.asarray(thresholds), np.asarray(scores), side="right").astype(
        np.int64
    )


def check_scores(scores: Any, k: int) -> FloatArray:
    """Validate per-patch scores for fitting and return them as a float64 (N,) array.

    Raises ValueError for a wrong number of dimensions, fewer than `k` scores, NaN/Inf,
    non-positive scores (logs are taken) and all-equal scores.
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"scores must be a 1-D array, got shape {arr.shape}")
    if arr.size < k:
        raise ValueError(f"need at least k={k} scores to make {k} classes, got {arr.size}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"scores must be finite: {int(bad.sum())} NaN/Inf, first at index {i}")
    if (arr <= 0).any():
        i = int(np.flatnonzero(arr <= 0)[0])
        raise ValueError(f"scores must be positive (their logs are taken): score[{i}] = {arr[i]!r}")
    if arr.min() == arr.max():
        raise ValueError(f"all {arr.size} scores are equal ({arr[0]!r}); nothing to segment")
    return arr


class Segmenter(ABC):
    """Abstract segmenter. Subclasses set `name` and implement `_fit_log_thresholds`.

    Args:
        k: number of classes K (>= 2).
        seed: seed of any randomness (subsampling, initialisation); output is deterministic
            given the seed.
    """

    name: str = "abstract"

    def __init__(self, k: int, seed: int = 0) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ValueError(f"k must be an integer >= 2, got {k!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.k = int(k)
        self.seed = int(seed)
        self.thresholds_: FloatArray | None = None
        self.counts_: IntArray | None = None
        self.n_fit_: int = 0

    # -- the one hook -----------------------------------------------------------------------
    @abstractmethod
    def _fit_log_thresholds(self, log_scores: FloatArray) -> FloatArray:
        """Return K-1 ascending thresholds in log-score units for validated (N,) log-scores."""

    def options(self) -> dict[str, Any]:
        """Method options (JSON-serialisable) for `describe()`; override to add more."""
        return {}

    def extras(self) -> dict[str, Any]:
        """Method-specific fit results (JSON-serialisable) for `describe()`."""
        return {}

    # -- public API -------------------------------------------------------------------------
    def fit(self, scores: Any) -> Segmenter:
        """Fit thresholds on (N,) positive scores; sets `thresholds_` (K-1,) ascending."""
        arr = check_scores(scores, self.k)
        log_thr = np.asarray(self._fit_log_thresholds(np.log(arr)), dtype=np.float64)
        assert log_thr.shape == (self.k - 1,), log_thr.shape
        thr = np.exp(log_thr)
        if not np.all(np.diff(thr) > 0):
            raise ValueError(
                f"{self.name}: the scores do not support {self.k} distinct classes "
                f"(thresholds {thr.tolist()} are not strictly increasing; too many ties?)"
            )
        self.thresholds_ = thr
        self.n_fit_ = int(arr.size)
        self.counts_ = np.bincount(self._labels(arr), minlength=self.k)
        return self

    def predict(self, scores: Any) -> IntArray:
        """Labels (N,) int64 in 0..K-1 (0 = lowest error) for (N,) finite scores."""
        if self.thresholds_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(scores) first")
        arr = np.asarray(scores, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"scores must be a 1-D array, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError("scores must be finite (found NaN/Inf)")
        return self._labels(arr)

    def fit_predict(self, scores: Any) -> IntArray:
        """`fit(scores)` then `predict(scores)`."""
        return self.fit(scores).predict(scores)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary for logging: method, k, thresholds, counts, options, extras."""
        if self.thresholds_ is None or self.counts_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(scores) first")
        return {
            "method": self.name,
            "k": self.k,
            "seed": self.seed,
            "thresholds": [float(t) for t in self.thresholds_],
            "counts": [int(c) for c in self.counts_],
            "n_scores": self.n_fit_,
            "label_rule": "label = number of thresholds <= score (0 = lowest error)",
            "options": self.options(),
            **self.extras(),
        }

    def _labels(self, arr: FloatArray) -> IntArray:
        assert self.thresholds_ is not None
        return assign_labels(self.thresholds_, arr)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}(k={self.k}, seed={self.seed}{', ' if opts else ''}{opts})"
