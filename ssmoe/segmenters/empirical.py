"""The paper's "empirical rule": class boundaries on an equispaced grid of the log-scores.

Footnote 6 of the paper: "The rule empirically selects an equispaced grid along a power-law
distribution as class boundaries". A power law is a straight line in log scale, so the grid is
equispaced in log(score). Its ends are robust quantiles of the log-scores (default the 1% and
99% quantiles, so a few extreme patches do not stretch the grid): with lo, hi those quantiles the
K bins [lo, hi] split into K equal log-widths, and the K-1 inner edges are the thresholds
(the lowest and highest classes extend to 0 and infinity).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ssmoe.segmenters.base import Segmenter
from ssmoe.typing import FloatArray


class EmpiricalSegmenter(Segmenter):
    """Log-equispaced thresholds between the `lower` and `upper` quantiles of the scores."""

    name = "empirical"

    def __init__(self, k: int, seed: int = 0, lower: float = 0.01, upper: float = 0.99) -> None:
        super().__init__(k, seed)
        if not 0.0 <= float(lower) < float(upper) <= 1.0:
            raise ValueError(f"need 0 <= lower < upper <= 1, got lower={lower!r}, upper={upper!r}")
        self.lower, self.upper = float(lower), float(upper)
        self._range: tuple[float, float] | None = None

    def options(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper}

    def extras(self) -> dict[str, Any]:
        if self._range is None:
            return {}
        return {"grid_range": [float(np.exp(v)) for v in self._range]}

    def _fit_log_thresholds(self, log_scores: FloatArray) -> FloatArray:
        lo, hi = np.quantile(log_scores, [self.lower, self.upper])
        if not hi > lo:
            raise ValueError(
                f"empirical: the {self.lower:g} and {self.upper:g} quantiles of the scores are "
                f"equal ({np.exp(lo)!r}); widen lower/upper"
            )
        self._range = (float(lo), float(hi))
        return lo + (hi - lo) * np.arange(1, self.k) / self.k
