"""Per-volume MSE, its summary statistics and pairwise Wilcoxon tests - one definition for all
methods.

Per-volume MSE (our definition, identical for every method): the mean over the voxels of the
subject's brain mask of (HR - prediction)^2, in squared scanner units. The released code divided
the foreground squared error by *all* voxels of the padded grid, which makes the number depend on
the padding; ours does not. Statistics are over all volumes of the held-out subject.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats


def volume_mse(hr: np.ndarray, prediction: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error over ``mask`` voxels; arrays (X, Y, Z), mask bool."""
    if hr.shape != prediction.shape or hr.shape != mask.shape:
        raise ValueError(
            f"shape mismatch: hr {hr.shape}, prediction {prediction.shape}, mask {mask.shape}"
        )
    diff = hr[mask].astype(np.float64) - prediction[mask].astype(np.float64)
    return float(np.mean(diff**2))


def summarize(values: np.ndarray) -> dict[str, float]:
    """``ssmoe.vocabulary.STATISTICS`` of per-volume MSEs: average, variance (unbiased, ddof=1),
    min, Q1, median, Q3, max."""
    v = np.asarray(values, dtype=np.float64)
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return {
        "average": float(v.mean()),
        "variance": float(v.var(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()),
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "max": float(v.max()),
    }


def confusion(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """(K, K) counts of ``labels`` (N,) against ``predicted`` (N,), both ints in 0..K-1: rows
    pseudo error label, columns the gater's prediction."""
    return np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)


def summary_table(per_volume: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Methods x statistics."""
    return pd.DataFrame([{"method": m, **summarize(v)} for m, v in per_volume.items()])


def wilcoxon_table(per_volume: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank test between every pair of methods (paired by volume).

    ``median_diff`` is the median of (a - b): negative means method a has lower errors.
    """
    rows = []
    for a, b in itertools.combinations(per_volume, 2):
        x, y = np.asarray(per_volume[a]), np.asarray(per_volume[b])
        if np.allclose(x, y, rtol=0, atol=0):
            stat, p = 0.0, 1.0  # identical predictions: no evidence of a difference
        else:
            res = stats.wilcoxon(x, y, alternative="two-sided")
            stat, p = float(res.statistic), float(res.pvalue)
        rows.append(
            {
                "method_a": a,
                "method_b": b,
                "statistic": stat,
                "p_value": p,
                "median_diff": float(np.median(x - y)),
                "n": int(x.size),
            }
        )
    return pd.DataFrame(rows)
