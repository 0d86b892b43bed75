"""Constrained segmentation for MQS: the multiscale constraint and the dynamic programme.

A segment [s, r) of serial data y with constant beta-quantile theta is *feasible* at critical
value q if T <= q on every interval I of the system inside it, i.e. (`multiscale.kl_bounds`)

    #{i in I: y_i <= theta} >= k_lo(l) = ceil(l x_lo(l))   <=>  theta >= y_I[(k_lo)]    (LO_I)
    #{i in I: y_i <= theta} <= k_hi(l) = floor(l x_hi(l))  <=>  theta <  y_I[(k_hi + 1)] (HI_I)

with y_I[(j)] the j-th smallest value in I. So [s, r) is feasible iff max LO_I < min HI_I over
the intervals inside it, and the feasible values form [max LO, min HI).

Dynamic programme (SMUCE style). Feasibility is monotone: a sub-segment of a feasible segment is
feasible. Hence for every right end r the feasible starts are a range [s_min(r), r), with s_min
non-decreasing; the minimal number of segments covering [0, r) is K(r) = K(s_min(r)) + 1, and
symmetrically for suffixes with e_max(s). s_min and e_max are found for all r at once by a
vectorised binary search; range maxima/minima of LO/HI over grid positions use sparse tables, so a
whole pass is O(n log^2 n) numpy work.

Among the segmentations with a given number of segments, boundary j can only sit where the prefix
needs <= j segments and the suffix <= S - j (SMUCE's confidence sets for change points). Within
those sets we pick the segmentation of least cost by a second DP (`cost` gives the cost of
segments [s, c) as arrays, O(1) each from cumulative sums).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ssmoe.segmenters.multiscale import IntervalSystem, kl_bounds, local_levels
from ssmoe.typing import FloatArray, IntArray

# Boundary candidates evaluated per vectorised block of the dynamic programme: bounds the
# temporary (block x candidates) cost matrices; any value gives the same segmentation.
_BLOCK = 256

CostFn = Callable[[IntArray, IntArray], FloatArray]


class _RangeExtreme:
    """Sparse table for vectorised range max (or min) queries over a fixed array."""

    def __init__(self, values: FloatArray, take_max: bool) -> None:
        self.op = np.maximum if take_max else np.minimum
        self.empty = -np.inf if take_max else np.inf
        rows = [np.asarray(values, dtype=np.float64)]
        width = 1
        while 2 * width <= len(values):
            prev = rows[-1]
            rows.append(self.op(prev[:-width], prev[width:]))
            width *= 2
        table = np.full((len(rows), len(values)), self.empty)
        for i, row in enumerate(rows):
            table[i, : len(row)] = row
        self.table = table

    def query(self, i: IntArray, j: IntArray) -> FloatArray:
        """Extreme of values[i..j] (inclusive) elementwise; the identity where i > j."""
        valid = i <= j
        length = np.where(valid, j - i + 1, 1)
        p = np.floor(np.log2(length)).astype(np.int64)
        ii = np.where(valid, i, 0)
        jj = np.where(valid, j - (1 << p) + 1, 0)
        out = self.op(self.table[p, ii], self.table[p, jj])
        return np.where(valid, out, self.empty)


class Constraints:
    """Sorted windows of y on the interval system; `at(q)` gives the LO/HI bounds for one q."""

    def __init__(self, y: FloatArray, beta: float, system: IntervalSystem) -> None:
        y = np.asarray(y, dtype=np.float64)
        assert y.shape == (system.n,), (y.shape, system.n)
        self.y, self.beta, self.system = y, float(beta), system
        self.n = system.n
        windows = np.lib.stride_tricks.sliding_window_view
        self.sorted = [
            np.sort(windows(y, int(length))[system.starts(length)], axis=1)
            for length in system.lengths
        ]
        self._q: float | None = None

    def at(self, q: float) -> Constraints:
        """Prepare range tables of LO/HI for critical value q (no-op if already at q)."""
        if self._q == q:
            return self
        lengths = self.system.lengths
        a = local_levels(q, self.n, lengths)
        x_lo, x_hi = kl_bounds(self.beta, np.nan_to_num(a, nan=0.0))
        self.levels = []
        for idx, length in enumerate(lengths):
            srt = self.sorted[idx]
            if np.isnan(a[idx]):  # no p satisfies the local test: any interval here is infeasible
                lo, hi = np.full(len(srt), np.inf), np.full(len(srt), -np.inf)
            else:
                k_lo = int(np.ceil(length * x_lo[idx] - 1e-9))
                k_hi = int(np.floor(length * x_hi[idx] + 1e-9))
                if k_lo <= 0 and k_hi >= length:
                    continue  # void constraint at this length
                lo = srt[:, k_lo - 1] if k_lo > 0 else np.full(len(srt), -np.inf)
                hi = srt[:, k_hi] if k_hi < length else np.full(len(srt), np.inf)
            step = self.system.step(length)
            self.levels.append(
                (int(length), step, len(srt), _RangeExtreme(lo, True), _RangeExtreme(hi, False))
            )
        self._q = q
        return self

    def bounds(self, s: IntArray, r: IntArray) -> tuple[FloatArray, FloatArray]:
        """(max LO, min HI) over the system's intervals inside [s, r), elementwise."""
        s, r = np.asarray(s, dtype=np.int64), np.asarray(r, dtype=np.int64)
        lo = np.full(s.shape, -np.inf)
        hi = np.full(s.shape, np.inf)
        for length, step, count, lo_tab, hi_tab in self.levels:
            i = -(-s // step)  # first grid start >= s
            j = np.minimum((r - length) // step, count - 1)  # last start with start + l <= r
            lo = np.maximum(lo, lo_tab.query(i, j))
            hi = np.minimum(hi, hi_tab.query(i, j))
        return lo, hi

    def feasible(self, s: IntArray, r: IntArray) -> np.ndarray:
        """Whether [s, r) can carry one beta-quantile under the constraint (length-1: always)."""
        lo, hi = self.bounds(s, r)
        return (lo < hi) | (np.asarray(r) - np.asarray(s) <= 1)

    def leftmost_starts(self) -> IntArray:
        """s_min(r) for r = 0..n (entry 0 unused = 0)."""
        r = np.arange(1, self.n + 1)
        lo, hi = np.zeros_like(r), r - 1
        while np.any(lo < hi):
            mid = (lo + hi) // 2
            ok = self.feasible(mid, r)
            hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid + 1)
        return np.concatenate([[0], lo])

    def rightmost_ends(self) -> IntArray:
        """e_max(s) for s = 0..n-1, and n at index n."""
        s = np.arange(self.n)
        lo, hi = s + 1, np.full_like(s, self.n)
        while np.any(lo < hi):
            mid = (lo + hi + 1) // 2
            ok = self.feasible(s, mid)
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid - 1)
        return np.concatenate([lo, [self.n]])

    def min_segments(self) -> int:
        """Minimal number of feasible segments covering the whole sequence."""
        return int(_prefix_counts(self.leftmost_starts())[-1])


def _prefix_counts(s_min: IntArray) -> IntArray:
    """K(r) = K(s_min(r)) + 1, K(0) = 0: minimal segments covering [0, r)."""
    counts = np.zeros(len(s_min), dtype=np.int64)
    for r in range(1, len(s_min)):
        counts[r] = counts[s_min[r]] + 1
    return counts


def _suffix_counts(e_max: IntArray) -> IntArray:
    """Minimal segments covering [s, n); entry n is 0."""
    n = len(e_max) - 1
    counts = np.zeros(n + 1, dtype=np.int64)
    for s in range(n - 1, -1, -1):
        counts[s] = counts[e_max[s]] + 1
    return counts


@dataclass
class Segmentation:
    """A constrained segmentation of a sequence of length n.

    boundaries: (S+1,) with 0 = b_0 < ... < b_S = n; segment j is [b_j, b_{j+1}).
    values: (S,) segment beta-quantiles, clipped into [lower, upper] (the feasible range).
    min_segments: the minimal number of segments at this q (S >= min_segments).
    """

    boundaries: IntArray
    values: FloatArray
    lower: FloatArray
    upper: FloatArray
    q: float
    min_segments: int

    @property
    def n_segments(self) -> int:
        return len(self.boundaries) - 1

    @property
    def change_points(self) -> IntArray:
        """(S-1,) first index of every segment but the first."""
        return self.boundaries[1:-1]


def constrained_segmentation(
    cons: Constraints, q: float, cost: CostFn, n_segments: int | None = None
) -> Segmentation:
    """Least-cost segmentation with `n_segments` feasible segments (default: the minimal number).

    Raises ValueError if fewer feasible segments than requested are impossible to avoid
    (n_segments < minimal) or the sequence is too short.
    """
    cons.at(q)
    n = cons.n
    s_min = cons.leftmost_starts()
    pre = _prefix_counts(s_min)
    suf = _suffix_counts(cons.rightmost_ends())
    s_total = int(pre[-1])
    k = s_total if n_segments is None else int(n_segments)
    if not s_total <= k <= n:
        raise ValueError(f"{k} segments impossible: need between {s_total} and {n} at q={q:.4g}")
    pos = np.arange(n + 1)
    # candidate positions of boundary j: prefix coverable by j segments, suffix by k - j
    cand = [
        pos[(pre <= j) & (suf <= k - j) & (pos >= j) & (n - pos >= k - j)] for j in range(k + 1)
    ]
    cand[0], cand[k] = np.array([0]), np.array([n])
    best = [np.zeros(1)]
    back: list[IntArray] = [np.zeros(1, dtype=np.int64)]
    for j in range(1, k + 1):
        prev, cur = cand[j - 1], cand[j]
        vals, args = np.full(len(cur), np.inf), np.zeros(len(cur), dtype=np.int64)
        for a in range(0, len(cur), _BLOCK):
            c = cur[a : a + _BLOCK]
            i0 = np.searchsorted(prev, s_min[c[0]], side="left")
            i1 = np.searchsorted(prev, c[-1], side="left")
            if i1 <= i0:
                continue
            s = prev[i0:i1][None, :]
            cc = c[:, None]
            ok = (s >= s_min[cc]) & (s < cc)
            total = np.where(
                ok,
                best[-1][None, i0:i1]
                + cost(np.broadcast_to(s, ok.shape), np.broadcast_to(cc, ok.shape)),
                np.inf,
            )
            arg = np.argmin(total, axis=1)
            vals[a : a + _BLOCK] = total[np.arange(len(c)), arg]
            args[a : a + _BLOCK] = i0 + arg
        best.append(vals)
        back.append(args)
    assert np.isfinite(best[-1][0]), "no feasible segmentation found"
    idx = [0]
    for j in range(k, 0, -1):
        idx.append(int(back[j][idx[-1]]))
    boundaries = np.array([cand[j][i] for j, i in zip(range(k, -1, -1), idx, strict=True)])[::-1]
    lower, upper = cons.bounds(boundaries[:-1], boundaries[1:])
    values = np.array(
        [
            np.quantile(cons.y[b0:b1], cons.beta, method="inverted_cdf")
            for b0, b1 in zip(boundaries[:-1], boundaries[1:], strict=True)
        ]
    )
    upper_closed = np.nextafter(upper, -np.inf)
    values = np.clip(values, np.maximum(lower, -np.inf), upper_closed)
    return Segmentation(boundaries.astype(np.int64), values, lower, upper, float(q), s_total)


def rank_cost(y: FloatArray) -> CostFn:
    """Squared error of global ranks (scaled to [0, 1]) about the segment mean: a robust, O(1)
    per segment surrogate for the quantile check loss, used to place boundaries."""
    ranks = np.argsort(np.argsort(y, kind="stable"), kind="stable") / max(len(y) - 1, 1)
    c1 = np.concatenate([[0.0], np.cumsum(ranks)])
    c2 = np.concatenate([[0.0], np.cumsum(ranks**2)])

    def cost(s: IntArray, c: IntArray) -> FloatArray:
        m = np.maximum(c - s, 1)  # s == c only in masked-out cells
        return (c2[c] - c2[s]) - (c1[c] - c1[s]) ** 2 / m

    return cost
