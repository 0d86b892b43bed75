"""Multiscale Quantile Segmentation (MQS; Jula Vanegas, Behr & Munk, JASA 2021) as a segmenter.

`mqs(y)` is MQS itself for serial data y with a piecewise-constant beta-quantile: the critical
value q is the (1 - alpha)-quantile of the multiscale statistic under the null, the number of
segments is the smallest one compatible with T <= q, and the boundaries are the least-cost ones
among those (see `segmentation.py`).

`MQSSegmenter` turns unordered per-patch scores into exactly K classes:

1. Take x = log(scores) and, for n > max_n, a seeded uniform subsample of max_n of them; sort.
2. Apply MQS (beta = 0.5) to the *spacings* d_i = x_(i+1) - x_(i) of the sorted log-scores.
   For an iid sample the normalised spacings n g(x_(i)) d_i are asymptotically iid Exp(1) (Pyke
   1965), g the density of the log-scores, so a piecewise-constant median of d is exactly a
   piecewise-constant density of log-scores: an MQS segment is a run of sorted scores of constant
   density (a histogram block), and its ends are class boundaries. (MQS on the sorted log-scores
   *themselves* is degenerate: a monotone sequence violates any constant quantile on long
   intervals, so the segment count just grows with n whatever the data; see docs/segmenters.md.)
3. At q_alpha (alpha = 0.05) the minimal number of segments is the number of density levels the
   data support: reported as `n_levels_at_alpha`.
4. For the requested K, q is moved by bisection to q_K = the smallest q whose minimal number of
   segments is <= K; at q_K the least-cost K-segment constrained segmentation is taken, the cost
   being the histogram negative log-likelihood sum_b m_b log(width_b / m_b). Thresholds are the
   K-1 boundaries, as sorted log-scores, back in score units. `alpha_used` = P_null(T > q_K).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ssmoe.segmenters.base import Segmenter
from ssmoe.segmenters.multiscale import (
    IntervalSystem,
    critical_value,
    null_distribution,
    tail_probability,
)
from ssmoe.segmenters.segmentation import (
    Constraints,
    CostFn,
    Segmentation,
    constrained_segmentation,
    rank_cost,
)
from ssmoe.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

Q_FLOOR = 1e-6 - np.sqrt(2.0)  # below this some lengths admit no p at all


def mqs(
    y: Any,
    beta: float = 0.5,
    alpha: float = 0.05,
    *,
    q: float | None = None,
    density: int = 8,
    nsim: int = 1000,
    seed: int = 0,
    cache_dir: Path | str | None = None,
) -> Segmentation:
    """MQS of serial data y (n,): piecewise-constant beta-quantile, minimal number of segments.

    q defaults to the simulated (1 - alpha)-quantile of the null statistic for n = len(y).
    Boundaries among minimal segmentations minimise the squared error of global ranks.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or len(y) < 2 or not np.isfinite(y).all():
        raise ValueError(f"y must be a finite 1-D array of length >= 2, got shape {y.shape}")
    system = IntervalSystem(len(y), density)
    if q is None:
        q = critical_value(null_distribution(len(y), beta, density, nsim, seed, cache_dir), alpha)
    return constrained_segmentation(Constraints(y, beta, system), q, rank_cost(y))


def histogram_cost(x_sorted: FloatArray) -> CostFn:
    """Negative log-likelihood (up to constants) of a histogram block holding the spacings
    [s, c) of sorted values x: m log(width / m) with m = c - s, width = x[c] - x[s]."""
    eps = 1e-12 * float(x_sorted[-1] - x_sorted[0]) + 1e-300

    def cost(s: IntArray, c: IntArray) -> FloatArray:
        m = (c - s).astype(np.float64)
        return m * np.log(np.maximum(x_sorted[c] - x_sorted[s], eps) / m)

    return cost


class MQSSegmenter(Segmenter):
    """K classes from MQS on the spacings of the sorted log-scores (see module docstring).

    Args:
        k, seed: see `Segmenter`; seed drives the subsample.
        alpha: level at which the supported number of levels is reported (0.05).
        beta: quantile level of the spacings (0.5: median).
        max_n: subsample size for large inputs (20000; None = never subsample).
        density: interval-system grid density (starts every l // density).
        nsim, null_seed: Monte-Carlo size and seed of the null simulation for q.
        cache_dir: where null samples are cached (default $SSMOE_CACHE/mqs or ~/.cache/ssmoe/mqs).
    """

    name = "mqs"

    def __init__(
        self,
        k: int,
        seed: int = 0,
        alpha: float = 0.05,
        beta: float = 0.5,
        max_n: int | None = 20000,
        density: int = 8,
        nsim: int = 1000,
        null_seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(k, seed)
        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if not 0.0 < float(beta) < 1.0:
            raise ValueError(f"beta must be in (0, 1), got {beta!r}")
        if max_n is not None and int(max_n) < 2 * k + 2:
            raise ValueError(f"max_n must be None or >= 2k+2 = {2 * k + 2}, got {max_n!r}")
        if int(density) < 1 or int(nsim) < 20:
            raise ValueError(f"need density >= 1 and nsim >= 20, got {density!r}, {nsim!r}")
        self.alpha, self.beta = float(alpha), float(beta)
        self.max_n = None if max_n is None else int(max_n)
        self.density, self.nsim, self.null_seed = int(density), int(nsim), int(null_seed)
        self.cache_dir = cache_dir
        self._extras: dict[str, Any] = {}

    def options(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "max_n": self.max_n,
            "density": self.density,
            "nsim": self.nsim,
            "null_seed": self.null_seed,
        }

    def extras(self) -> dict[str, Any]:
        return dict(self._extras)

    def _fit_log_thresholds(self, log_scores: FloatArray) -> FloatArray:
        n = len(log_scores)
        if n < self.k + 2:
            raise ValueError(f"mqs needs at least k+2 = {self.k + 2} scores, got {n}")
        x = log_scores
        if self.max_n is not None and n > self.max_n:
            rng = np.random.default_rng(self.seed)
            x = x[rng.choice(n, self.max_n, replace=False)]
        x = np.sort(x)
        spacings = np.diff(x)
        m = len(spacings)
        system = IntervalSystem(m, self.density)
        null = null_distribution(
            m, self.beta, self.density, self.nsim, self.null_seed, self.cache_dir
        )
        cons = Constraints(spacings, self.beta, system)
        q_alpha = critical_value(null, self.alpha)
        n_levels = cons.at(q_alpha).min_segments()
        q_k, s_k = self._search_q(cons, q_alpha, n_levels)
        seg = constrained_segmentation(cons, q_k, histogram_cost(x), n_segments=self.k)
        self._extras = {
            "sequence": "spacings of the sorted log-scores (constant-density blocks)",
            "subsample_size": len(x),
            "n_levels_at_alpha": n_levels,
            "alpha": self.alpha,
            "q_alpha": q_alpha,
            "q_used": q_k,
            "alpha_used": tail_probability(null, q_k),
            "min_segments_at_q_used": s_k,
            "boundary_ranks": [int(b) for b in seg.change_points],
        }
        return x[seg.change_points]

    def _search_q(self, cons: Constraints, q_alpha: float, s_alpha: int) -> tuple[float, int]:
        """Smallest q (to 1e-4) whose minimal number of segments is <= k, and that number."""
        k = self.k

        def count(q: float) -> int:
            return cons.at(q).min_segments()

        if s_alpha <= k:
            hi, s_hi = q_alpha, s_alpha
            lo = q_alpha - 1.0
            while (s_lo := count(lo)) <= k and lo > Q_FLOOR:
                hi, s_hi, lo = lo, s_lo, max(Q_FLOOR, lo - 2.0 * (hi - lo))
            if s_lo <= k:  # even the tightest constraint allows <= k segments
                return lo, s_lo
        else:
            lo, hi = q_alpha, q_alpha + 1.0
            while (s_hi := count(hi)) > k:
                lo, hi = hi, hi + 2.0 * (hi - lo)
        while hi - lo > 1e-4:
            mid = 0.5 * (lo + hi)
            s_mid = count(mid)
            if s_mid <= k:
                hi, s_hi = mid, s_mid
            else:
                lo = mid
        return hi, s_hi
