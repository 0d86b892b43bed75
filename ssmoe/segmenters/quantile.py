"""K-quantile thresholds: the released code's quartiles, generalised to K classes."""

from __future__ import annotations

import numpy as np

from ssmoe.segmenters.base import Segmenter
from ssmoe.typing import FloatArray


class QuantileSegmenter(Segmenter):
    """Thresholds at the j/K quantiles (j = 1..K-1): K classes of (nearly) equal size.

    Quantiles are taken of the log-scores with linear interpolation, i.e. geometric
    interpolation between neighbouring scores; for K = 4 these are the quartiles.
    """

    name = "quantile"

    def _fit_log_thresholds(self, log_scores: FloatArray) -> FloatArray:
        return np.quantile(log_scores, np.arange(1, self.k) / self.k)
