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
   density (a histogram block), and block ends are candidate class boundaries. (MQS on the sorted log-scores
   *themselves* is degenerate: a monotone sequence violates any constant quantile on long
   intervals, so the segment count just grows with n whatever the data; see docs/segmenters.md.)
3. The minimal-block segmentation at q (best fit by the histogram likelihood
   sum_b m_b log(width_b / m_b)) is the MQS density histogram. At q_alpha (alpha = 0.05) its
   number of blocks is `n_levels_at_alpha` (density levels the data support) and its number of
   modes (blocks denser than both neighbours) is `n_modes_at_alpha` (populations of scores).
4. Classes are modes of that one histogram. If it has M >= K modes, the shallowest valleys are
   merged (persistence: lower neighbouring peak minus valley, in log density) until K modes
   remain; each threshold is the centre, in log units, of the least dense block between two
   consecutive modes, back in score units.
5. If M < K, the data support fewer populations than classes asked for: the M - 1 valley cuts
   are kept and the K - M missing cuts are equal-count splits inside the valley classes, given
   one at a time to the class with the most scores per piece (D'Hondt); `extra_splits` counts
   them. Two rejected alternatives: lowering q until K modes appear (such modes are not
   significant and thresholds jumped by factors ~10 between subsamples), and moving q up until
   exactly K modes remain (same cuts as persistence merging here, but loose constraints make the
   best-fit DP quadratic: 20-50 s instead of ~1 s).

Why modes, not K blocks: K blocks of a histogram are density levels, not populations; with two
well-separated populations and K = 2 the best two-block histogram cuts inside the larger mode
(the gap needs a block of its own). A valley between modes is where a class boundary belongs.
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
        max_n: subsample size for large inputs (50000; None = never subsample).
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
        max_n: int | None = 50000,
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
        n_modes = len(peaks(at_alpha.log_density))
        low = valleys(at_alpha.log_density, self.k)
        # threshold at the centre (in log units) of each valley block
        centres = 0.5 * (x[at_alpha.edges[low]] + x[at_alpha.edges[low + 1]])
        thr, n_split = _split_classes(x, np.sort(centres), self.k)
        self._extras = {
            "sequence": "spacings of the sorted log-scores (MQS density histogram)",
            "subsample_size": len(x),
            "alpha": self.alpha,
            "q_alpha": q_alpha,
            "n_levels_at_alpha": len(at_alpha.log_density),
            "n_modes_at_alpha": n_modes,
            "q_used": q_alpha,
            "alpha_used": self.alpha,
            "alpha_mc": tail_probability(null, q_alpha),
            "n_modes_merged": max(0, n_modes - self.k),
            "extra_splits": n_split,
            "histogram_edges": [float(np.exp(v)) for v in x[at_alpha.edges]],
            "histogram_log_density": [float(v) for v in at_alpha.log_density],
        }
        return thr


def _split_classes(x: FloatArray, thr: FloatArray, k: int) -> tuple[FloatArray, int]:
    """Complete thresholds thr (log units, sorted) to k-1 with equal-count splits of the classes
    they make in sorted x; cuts go one at a time to the class with most scores per piece."""
    n_missing = k - 1 - len(thr)
    if n_missing <= 0:
        return thr, 0
    bounds = np.r_[0, np.searchsorted(x, thr, side="left"), len(x)]
    sizes = np.diff(bounds)
    cuts = np.zeros(len(sizes), dtype=np.int64)
    for _ in range(n_missing):
        cuts[int(np.argmax(sizes / (cuts + 1)))] += 1
    new = []
    for a, b, c in zip(bounds[:-1], bounds[1:], cuts, strict=True):
        for i in range(1, c + 1):
            r = a + (b - a) * i // (c + 1)
            new.append(0.5 * (x[r - 1] + x[r]))
    return np.sort(np.r_[thr, new]), n_missing
