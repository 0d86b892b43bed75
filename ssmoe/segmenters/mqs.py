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
from dataclasses import dataclass
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
        m = np.maximum(c - s, 1).astype(np.float64)  # s == c only in masked-out cells
        return m * np.log(np.maximum(x_sorted[c] - x_sorted[s], eps) / m)

    return cost


@dataclass
class Histogram:
    """MQS density histogram of sorted log-scores x: block j holds x[edges[j]] .. x[edges[j+1]]."""

    edges: IntArray  # (S+1,) ranks into x
    log_density: FloatArray  # (S,) log(points per log-unit)
    q: float


def mqs_histogram(cons: Constraints, x_sorted: FloatArray, q: float) -> Histogram:
    """Minimal-block MQS segmentation of the spacings of x at q, best fit by likelihood."""
    seg = constrained_segmentation(cons, q, histogram_cost(x_sorted))
    edges = seg.boundaries
    width = np.maximum(np.diff(x_sorted[edges]), 1e-300)
    return Histogram(edges, np.log(np.diff(edges) / width), float(q))


def peaks(log_density: FloatArray) -> IntArray:
    """Indices of the modes: blocks denser than both neighbours (the ends count as -inf)."""
    g = np.asarray(log_density)
    left = np.r_[-np.inf, g[:-1]]
    right = np.r_[g[1:], -np.inf]
    return np.flatnonzero((g > left) & (g > right))


def valleys(log_density: FloatArray, k: int) -> IntArray:
    """Blocks of least density between consecutive modes, after merging the shallowest valleys
    (depth = lower neighbouring peak minus valley, in log density) until <= k modes remain."""
    g = np.asarray(log_density)
    top = list(peaks(g))
    low = [i + int(np.argmin(g[i:j])) for i, j in zip(top[:-1], top[1:], strict=True)]
    while len(top) > k:
        depth = [min(g[top[i]], g[top[i + 1]]) - g[v] for i, v in enumerate(low)]
        i = int(np.argmin(depth))
        keep = top[i] if g[top[i]] >= g[top[i + 1]] else top[i + 1]
        top[i : i + 2] = [keep]
        del low[i]
    return np.array(low, dtype=np.int64)


class MQSSegmenter(Segmenter):
    """K classes from the modes of the MQS density histogram of log-scores (module docstring).

    Args:
        k, seed: see `Segmenter`; seed drives the subsample.
        alpha: level at which the supported numbers of levels and modes are reported (0.05).
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
        m = len(x) - 1
        null = null_distribution(
            m, self.beta, self.density, self.nsim, self.null_seed, self.cache_dir
        )
        cons = Constraints(np.diff(x), self.beta, IntervalSystem(m, self.density))
        q_alpha = critical_value(null, self.alpha)
        at_alpha = mqs_histogram(cons, x, q_alpha)
        hist = self._search_q(cons, x, at_alpha)
        low = valleys(hist.log_density, self.k)
        # threshold at the centre (in log units) of each valley block
        thr = 0.5 * (x[hist.edges[low]] + x[hist.edges[low + 1]])
        thr, n_fallback = _fill_by_splitting(x, hist.edges, np.sort(thr), self.k)
        self._extras = {
            "sequence": "spacings of the sorted log-scores (MQS density histogram)",
            "subsample_size": len(x),
            "alpha": self.alpha,
            "q_alpha": q_alpha,
            "n_levels_at_alpha": len(at_alpha.log_density),
            "n_modes_at_alpha": len(peaks(at_alpha.log_density)),
            "q_used": hist.q,
            "alpha_used": tail_probability(null, hist.q),
            "n_levels_at_q_used": len(hist.log_density),
            "n_modes_at_q_used": len(peaks(hist.log_density)),
            "fallback_splits": n_fallback,
            "histogram_edges": [float(np.exp(v)) for v in x[hist.edges]],
            "histogram_log_density": [float(v) for v in hist.log_density],
        }
        return thr

    def _search_q(self, cons: Constraints, x: FloatArray, at_alpha: Histogram) -> Histogram:
        """Histogram at the largest q (to ~1e-2) with >= k modes; at the tightest q if none."""
        k = self.k

        def hist(q: float) -> Histogram:
            return mqs_histogram(cons, x, q)

        def ok(h: Histogram) -> bool:
            return len(peaks(h.log_density)) >= k

        if ok(at_alpha):  # walk up (looser) until fewer than k modes
            good, step = at_alpha, 1.0
            while ok(bad := hist(good.q + step)):
                good, step = bad, 2.0 * step
        else:  # walk down (tighter) until k modes, or the floor
            bad, step = at_alpha, 0.5
            while not ok(good := hist(max(Q_FLOOR, bad.q - step))):
                if good.q <= Q_FLOOR:
                    return good
                bad, step = good, 2.0 * step
        while bad.q - good.q > 1e-2:
            mid = hist(0.5 * (good.q + bad.q))
            good, bad = (mid, bad) if ok(mid) else (good, mid)
        return good


def _fill_by_splitting(
    x: FloatArray, edges: IntArray, thr: FloatArray, k: int
) -> tuple[FloatArray, int]:
    """Fallback when the histogram has fewer than k modes even at the tightest q: split the most
    populous class at its histogram edge nearest to its median rank (or at the median)."""
    thr = list(thr)
    added = 0
    while len(thr) < k - 1:
        cuts = np.searchsorted(x, thr, side="left")
        bounds = np.r_[0, cuts, len(x)]
        j = int(np.argmax(np.diff(bounds)))
        a, b = bounds[j], bounds[j + 1]
        inner = edges[(edges > a) & (edges < b)]
        mid = (a + b) // 2
        cut = int(inner[np.argmin(np.abs(inner - mid))]) if len(inner) else mid
        thr = sorted([*thr, 0.5 * (x[cut - 1] + x[cut])])
        added += 1
    return np.asarray(thr), added
