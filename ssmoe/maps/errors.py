"""Map errors against ground truth, per tissue class, and paired tests between methods.

Tissue classes come from the ground-truth volume fractions `(X, Y, Z, 3)` (WM, GM, CSF order,
as the simulator's `truth/fractions.nii.gz`): a voxel of the mask is *pure* WM, GM or CSF when
that tissue's fraction is >= `PURE_FRACTION` (0.9: at most 10 % of the signal volume from other
tissues; in a mixed voxel a single-compartment fit and a fraction-weighted truth map measure
different things, see docs/maps.md), and a *boundary* voxel otherwise. `all` is the whole mask.

Errors are absolute, `|fitted - truth|`, in the map's units (T1, T2star ms; MD mm^2/s; FA 1).
Voxels where the fitted map is NaN are left out of the statistics and counted (`n_nan`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

TISSUE_ORDER: tuple[str, ...] = ("WM", "GM", "CSF")
CLASSES: tuple[str, ...] = ("WM", "GM", "CSF", "boundary", "all")
PURE_FRACTION = 0.9
# Maps compared by default. PD is not: the fit's PD is PD exp(-TEmin/T2) x receive field (T2 is
# not separable from PD with one spin echo), the truth's is receive x PD.
DEFAULT_MAPS: tuple[str, ...] = ("T1", "T2star", "MD", "FA")


@dataclass(frozen=True)
class ErrorStats:
    """Absolute-error distribution of one map in one tissue class.

    `n` voxels with a finite fit, `n_nan` with a NaN fit; `median`, `q1`, `q3` of |fit - truth|
    (map units); `median_relative` of |fit - truth| / |truth| over voxels with truth != 0.
    """

    n: int
    n_nan: int
    median: float
    q1: float
    q3: float
    median_relative: float


@dataclass(frozen=True)
class PairedTest:
    """Two-sided paired Wilcoxon signed-rank test of voxelwise absolute errors, A vs B.

    `median_difference` is the median of |err_A| - |err_B| (negative: A is closer to the truth);
    `n` voxels where both fits are finite, `n_excluded` where either is NaN.
    """

    n: int
    n_excluded: int
    statistic: float
    pvalue: float
    median_difference: float


def tissue_classes(
    fractions: np.ndarray, mask: np.ndarray, threshold: float = PURE_FRACTION
) -> dict[str, np.ndarray]:
    """`(X, Y, Z)` bool masks of `CLASSES` from fractions `(X, Y, Z, 3)` (WM, GM, CSF)."""
    mask = np.asarray(mask, dtype=bool)
    if fractions.ndim != 4 or fractions.shape[3] != len(TISSUE_ORDER):
        raise ValueError(
            f"fractions must be (X, Y, Z, 3) in WM, GM, CSF order, got {fractions.shape}"
        )
    if fractions.shape[:3] != mask.shape:
        raise ValueError(f"fractions grid {fractions.shape[:3]} != mask grid {mask.shape}")
    if not 0.5 < threshold <= 1.0:
        raise ValueError(f"purity threshold must be in (0.5, 1], got {threshold}")
    out = {name: mask & (fractions[..., i] >= threshold) for i, name in enumerate(TISSUE_ORDER)}
    out["boundary"] = mask & ~(out["WM"] | out["GM"] | out["CSF"])
    out["all"] = mask
    return out


def absolute_errors(fitted: np.ndarray, truth: np.ndarray, region: np.ndarray) -> np.ndarray:
    """`(N,)` float64 |fitted - truth| over the True voxels of `region` (NaN where the fit is)."""
    if fitted.shape != truth.shape or fitted.shape != region.shape:
        raise ValueError(
            f"fitted {fitted.shape}, truth {truth.shape} and region {region.shape} differ"
        )
    return np.abs(fitted[region].astype(np.float64) - truth[region].astype(np.float64))


def error_stats(fitted: np.ndarray, truth: np.ndarray, region: np.ndarray) -> ErrorStats:
    """`ErrorStats` of one map over one region (NaN statistics when no voxel is finite)."""
    err = absolute_errors(fitted, truth, region)
    finite = np.isfinite(err)
    e = err[finite]
    ref = np.abs(truth[region].astype(np.float64))[finite]
    rel = e[ref > 0] / ref[ref > 0]
    if e.size == 0:
        q1 = med = q3 = np.nan
    else:
        q1, med, q3 = np.percentile(e, [25, 50, 75])
    return ErrorStats(
        n=int(e.size),
        n_nan=int((~finite).sum()),
        median=float(med),
        q1=float(q1),
        q3=float(q3),
        median_relative=float(np.median(rel)) if rel.size else float("nan"),
    )


def map_errors(
    fitted: Mapping[str, np.ndarray],
    truth: Mapping[str, np.ndarray],
    fractions: np.ndarray,
    mask: np.ndarray,
    names: Sequence[str] = DEFAULT_MAPS,
    threshold: float = PURE_FRACTION,
) -> dict[str, dict[str, ErrorStats]]:
    """Per map and tissue class, the absolute-error distribution of `fitted` against `truth`.

    Args:
        fitted: map name -> `(X, Y, Z)` fitted map (e.g. `MapFit.maps`).
        truth: map name -> `(X, Y, Z)` ground truth in the same units.
        fractions: `(X, Y, Z, 3)` WM, GM, CSF volume fractions.
        mask: `(X, Y, Z)` voxels to evaluate (the brain mask).
        names: maps to compare; each must be in both `fitted` and `truth`.
        threshold: purity threshold of the WM/GM/CSF classes.

    Returns:
        `result[map][class]` for class in `CLASSES`.
    """
    missing = [n for n in names if n not in fitted or n not in truth]
    if missing:
        raise ValueError(
            f"maps {missing} missing (fitted has {sorted(fitted)}, truth has {sorted(truth)})"
        )
    classes = tissue_classes(fractions, mask, threshold)
    return {
        name: {c: error_stats(fitted[name], truth[name], region) for c, region in classes.items()}
        for name in names
    }


def paired_wilcoxon(
    fitted_a: np.ndarray, fitted_b: np.ndarray, truth: np.ndarray, region: np.ndarray
) -> PairedTest:
    """Paired Wilcoxon signed-rank test (scipy.stats.wilcoxon, two-sided) of the voxelwise
    absolute errors of two fits of one map over `region`; voxels where either fit is NaN are
    excluded and counted."""
    ea = absolute_errors(fitted_a, truth, region)
    eb = absolute_errors(fitted_b, truth, region)
    both = np.isfinite(ea) & np.isfinite(eb)
    d = ea[both] - eb[both]
    if d.size == 0 or not np.any(d != 0):
        stat, p = np.nan, 1.0 if d.size else np.nan
    else:
        res = stats.wilcoxon(ea[both], eb[both])
        stat, p = float(res.statistic), float(res.pvalue)
    return PairedTest(
        n=int(both.sum()),
        n_excluded=int((~both).sum()),
        statistic=float(stat),
        pvalue=float(p),
        median_difference=float(np.median(d)) if d.size else float("nan"),
    )


def as_metrics(
    errors: Mapping[str, Mapping[str, ErrorStats]], prefix: str = ""
) -> dict[str, float]:
    """Flat `{prefix}{map}_{class}_{stat}` -> value, e.g. for `mlflow.log_metrics`."""
    return {
        f"{prefix}{name}_{cls}_{key}": float(value)
        for name, per_class in errors.items()
        for cls, st in per_class.items()
        for key, value in asdict(st).items()
    }
