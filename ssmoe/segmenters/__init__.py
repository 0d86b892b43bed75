"""Segmenters: per-patch error scores -> K-1 thresholds -> pseudo error labels (phase 2).

seg = get_segmenter("mqs", k=4, seed=0)
labels = seg.fit_predict(scores)      # (N,) int in 0..K-1, 0 = lowest error
seg.thresholds_, seg.describe()
"""

from __future__ import annotations

import inspect
from typing import Any

from ssmoe.segmenters.base import Segmenter, assign_labels, check_scores
from ssmoe.segmenters.empirical import EmpiricalSegmenter
from ssmoe.segmenters.io import read_scores
from ssmoe.segmenters.kmeans import KMeansSegmenter
from ssmoe.segmenters.mqs import MQSSegmenter, mqs
from ssmoe.segmenters.quantile import QuantileSegmenter

SEGMENTERS: tuple[str, ...] = ("mqs", "kmeans", "empirical", "quantile")
_CLASSES: dict[str, type[Segmenter]] = {
    "mqs": MQSSegmenter,
    "kmeans": KMeansSegmenter,
    "empirical": EmpiricalSegmenter,
    "quantile": QuantileSegmenter,
}


def get_segmenter(name: str, k: int, seed: int = 0, **options: Any) -> Segmenter:
    """Build the segmenter `name` (one of SEGMENTERS) with K classes and method options."""
    if name not in _CLASSES:
        raise ValueError(f"unknown segmenter {name!r}; choose one of {', '.join(SEGMENTERS)}")
    cls = _CLASSES[name]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "k", "seed"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for segmenter {name!r}; allowed: {sorted(allowed)}"
        )
    return cls(k, seed=seed, **options)


__all__ = [
    "SEGMENTERS",
    "assign_labels",
    "EmpiricalSegmenter",
    "KMeansSegmenter",
    "MQSSegmenter",
    "QuantileSegmenter",
    "Segmenter",
    "check_scores",
    "get_segmenter",
    "mqs",
    "read_scores",
]
