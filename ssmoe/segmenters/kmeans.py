"""1-D K-means on log-scores (one of the paper's alternative segmenters)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import KMeans

from ssmoe.segmenters.base import Segmenter
from ssmoe.typing import FloatArray


class KMeansSegmenter(Segmenter):
    """K-means with K clusters on log(scores); thresholds are midpoints of sorted centres.

    scikit-learn's KMeans (k-means++ init, `n_init` restarts, `random_state=seed`) is
    deterministic given the seed. In 1-D the clusters are intervals, so the midpoints between
    consecutive centres are exactly the cluster boundaries (in log units; exp back to scores).
    """

    name = "kmeans"

    def __init__(self, k: int, seed: int = 0, n_init: int = 10, max_iter: int = 300) -> None:
        super().__init__(k, seed)
        if int(n_init) < 1 or int(max_iter) < 1:
            raise ValueError(f"n_init and max_iter must be >= 1, got {n_init!r}, {max_iter!r}")
        self.n_init, self.max_iter = int(n_init), int(max_iter)
        self._centres: FloatArray | None = None

    def options(self) -> dict[str, Any]:
        return {"n_init": self.n_init, "max_iter": self.max_iter}

    def extras(self) -> dict[str, Any]:
        if self._centres is None:
            return {}
        return {"centres": [float(c) for c in np.exp(self._centres)]}

    def _fit_log_thresholds(self, log_scores: FloatArray) -> FloatArray:
        if len(np.unique(log_scores)) < self.k:
            raise ValueError(
                f"kmeans needs at least k={self.k} distinct scores, "
                f"got {len(np.unique(log_scores))}"
            )
        model = KMeans(
            n_clusters=self.k, n_init=self.n_init, max_iter=self.max_iter, random_state=self.seed
        )
        model.fit(log_scores[:, None])
        centres = np.sort(model.cluster_centers_[:, 0])
        self._centres = centres
        return 0.5 * (centres[:-1] + centres[1:])
