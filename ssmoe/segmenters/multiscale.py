"""The multiscale statistic of Multiscale Quantile Segmentation (Jula Vanegas, Behr & Munk 2021).

For data Y_1..Y_n, a candidate beta-quantile theta and an interval I of length l, let
p_I = #{i in I: Y_i <= theta} / l. The local statistic is the scaled KL divergence

    f(beta, p) = p log(p / beta) + (1 - p) log((1 - p) / (1 - beta)),

and the multiscale statistic, with the scale penalty of Frick, Munk & Sieling (2014), is

    T = max_I [ sqrt(2 l f(beta, p_I)) - sqrt(2 + 2 log(n / l)) ].

T <= q holds iff on every interval x_lo(l) <= p_I <= x_hi(l), where x_lo < beta < x_hi solve
f(beta, x) = a_l with a_l = (q + sqrt(2 + 2 log(n / l)))^2 / (2 l)  (`kl_bounds`).

Interval system. The full system has O(n^2) intervals. Like the sparse systems used for large n
by SMUCE/essHist (Walther 2010, Rivera & Walther 2013), we keep dyadic lengths l = 1, 2, 4, ...
<= n and, for each length, start positions on a grid of step max(1, l // density)
(`IntervalSystem`). The critical value is simulated with the same system, so the level is exact
for it. With density = 8 this is ~8n intervals per length, i.e. O(n log n) in all.

Critical value. Under the null (one segment, true quantile theta), the indicators Y_i <= theta are
iid Bernoulli(beta) whatever the distribution of Y (continuous case). `null_distribution`
simulates T on such sequences (seeded) and caches the sorted sample per
(n, beta, density, nsim, seed) in memory and on disk (`$SSMOE_CACHE/mqs` or ~/.cache/ssmoe/mqs);
`critical_value` reads the (1 - alpha)-quantile from it, so every alpha shares one simulation.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ssmoe.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

CACHE_VERSION = 1
_MEMORY_CACHE: dict[tuple, FloatArray] = {}


def kl_divergence(beta: float, p: FloatArray | float) -> FloatArray:
    """f(beta, p): KL divergence of Bernoulli(p) from Bernoulli(beta), with 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / beta), 0.0)
        right = np.where(p < 1, (1 - p) * np.log((1 - p) / (1 - beta)), 0.0)
    return left + right


def penalty(n: int, lengths: IntArray | FloatArray) -> FloatArray:
    """Scale penalty sqrt(2 + 2 log(n / l)) for interval lengths l (array)."""
    return np.sqrt(2.0 + 2.0 * np.log(n / np.asarray(lengths, dtype=np.float64)))


def local_levels(q: float, n: int, lengths: IntArray) -> FloatArray:
    """a_l = (q + penalty)^2 / (2 l); NaN where q + penalty <= 0 (no p can satisfy T_I <= q)."""
    lengths = np.asarray(lengths, dtype=np.float64)
    s = q + penalty(n, lengths)
    return np.where(s > 0, s * s / (2.0 * lengths), np.nan)


def kl_bounds(beta: float, a: FloatArray | float, iters: int = 64) -> tuple[FloatArray, FloatArray]:
    """Solve f(beta, x) = a for x_lo in [0, beta] and x_hi in [beta, 1], vectorised bisection.

    Where a >= f(beta, 0) (resp. f(beta, 1)) there is no root and the bound is 0 (resp. 1):
    the constraint is void on that side. Accuracy ~ 2**-iters.
    """
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must be in (0, 1), got {beta!r}")
    a = np.atleast_1d(np.asarray(a, dtype=np.float64))
    # lower root: f decreases on [0, beta]
    lo, hi = np.zeros_like(a), np.full_like(a, beta)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = kl_divergence(beta, mid) > a
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    x_lo = np.where(a >= kl_divergence(beta, 0.0), 0.0, 0.5 * (lo + hi))
    # upper root: f increases on [beta, 1]
    lo, hi = np.full_like(a, beta), np.ones_like(a)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = kl_divergence(beta, mid) > a
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    x_hi = np.where(a >= kl_divergence(beta, 1.0), 1.0, 0.5 * (lo + hi))
    return x_lo, x_hi


@dataclass(frozen=True)
class IntervalSystem:
    """Dyadic lengths, starts on a grid of step max(1, l // density), for sequences of length n."""

    n: int
    density: int = 8

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"sequence length must be >= 1, got {self.n!r}")
        if self.density < 1:
            raise ValueError(f"density must be >= 1, got {self.density!r}")

    @cached_property
    def lengths(self) -> IntArray:
        """(J,) dyadic interval lengths 1, 2, 4, ... <= n."""
        return 2 ** np.arange(int(np.floor(np.log2(self.n))) + 1)

    def step(self, length: int) -> int:
        """Grid step of the start positions of intervals of this length."""
        return max(1, int(length) // self.density)

    def starts(self, length: int) -> IntArray:
        """Start positions (0-based) of intervals [start, start + length)."""
        return np.arange(0, self.n - int(length) + 1, self.step(length))

    @property
    def size(self) -> int:
        """Total number of intervals."""
        return int(sum(len(self.starts(n_)) for n_ in self.lengths))


def multiscale_statistic(y: FloatArray, theta: float, beta: float, system: IntervalSystem) -> float:
    """T(theta) on data y (n,) for the constant candidate quantile theta."""
    y = np.asarray(y, dtype=np.float64)
    assert y.shape == (system.n,)
    return float(_statistic_from_indicators((y <= theta)[None, :], beta, system)[0])


def _statistic_from_indicators(ind: np.ndarray, beta: float, system: IntervalSystem) -> FloatArray:
    """T for a batch of indicator sequences ind (B, n) -> (B,). f is convex with minimum at beta,
    so per length only the smallest and largest p_I matter."""
    n = system.n
    cs = np.zeros((ind.shape[0], n + 1), dtype=np.int32)
    np.cumsum(ind, axis=1, out=cs[:, 1:])
    best = np.full(ind.shape[0], -np.inf)
    pens = penalty(n, system.lengths)
    for length, pen in zip(system.lengths, pens, strict=True):
        st = system.starts(length)
        counts = cs[:, st + length] - cs[:, st]
        f = np.maximum(
            kl_divergence(beta, counts.min(axis=1) / length),
            kl_divergence(beta, counts.max(axis=1) / length),
        )
        best = np.maximum(best, np.sqrt(2.0 * length * f) - pen)
    return best


def default_cache_dir() -> Path:
    """$SSMOE_CACHE/mqs if set, else ~/.cache/ssmoe/mqs."""
    root = os.environ.get("SSMOE_CACHE")
    return Path(root) / "mqs" if root else Path.home() / ".cache" / "ssmoe" / "mqs"


def null_distribution(
    n: int,
    beta: float,
    density: int = 8,
    nsim: int = 1000,
    seed: int = 0,
    cache_dir: Path | str | None = None,
    use_disk: bool = True,
) -> FloatArray:
    """Sorted (nsim,) sample of T under the null (iid Bernoulli(beta) indicators), cached."""
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must be in (0, 1), got {beta!r}")
    if nsim < 20:
        raise ValueError(f"nsim must be >= 20, got {nsim!r}")
    key = (CACHE_VERSION, int(n), float(beta), int(density), int(nsim), int(seed))
    if key in _MEMORY_CACHE:
        return _MEMORY_CACHE[key]
    path = None
    if use_disk:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = folder / f"null_v{key[0]}_n{n}_beta{beta:.6g}_d{density}_sim{nsim}_seed{seed}.npy"
        if path.exists():
            try:
                sample = np.load(path)
                if sample.shape == (nsim,):
                    _MEMORY_CACHE[key] = sample
                    return sample
            except (OSError, ValueError):
                log.warning("ignoring unreadable MQS cache file %s", path)
    sample = _simulate_null(n, beta, IntervalSystem(n, density), nsim, seed)
    _MEMORY_CACHE[key] = sample
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, sample)
            os.replace(tmp, path)
        except OSError as err:  # a read-only home must not break segmentation
            log.debug("could not write MQS cache %s: %s", path, err)
    return sample


def _simulate_null(n: int, beta: float, system: IntervalSystem, nsim: int, seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    batch = max(1, min(nsim, 4_000_000 // max(n, 1)))
    out = []
    for start in range(0, nsim, batch):
        b = min(batch, nsim - start)
        out.append(_statistic_from_indicators(rng.random((b, n)) < beta, beta, system))
    return np.sort(np.concatenate(out))


def critical_value(null: FloatArray, alpha: float) -> float:
    """q = empirical (1 - alpha)-quantile of the sorted null sample: P(T > q) <= alpha."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    idx = min(len(null) - 1, int(np.ceil((1.0 - alpha) * len(null))) - 1)
    return float(null[max(idx, 0)])


def tail_probability(null: FloatArray, q: float) -> float:
    """Monte-Carlo estimate of P(T > q) under the null: the alpha that q corresponds to."""
    return float((len(null) - np.searchsorted(null, q, side="right")) / len(null))
