"""Voxelwise quantitative maps from a ZEBRA 4D acquisition: one joint fit per voxel.

Per voxel, all volumes are fitted at once to the model of `design.py` (apparent PD, T1, T2*,
diffusion tensor): a log-linear fit profiled over a T1 grid gives the start (`init.py`), then
Levenberg-Marquardt on the magnitudes refines it (`lm.py`). Work is vectorised over voxels in
batches of about `FitConfig.batch_elements` samples; there is no Python loop over voxels.

Maps (`MAP_NAMES`, units): PD (apparent, PD x exp(-TEref/T2) in the data's intensity units),
T1 (ms), T2star (ms), MD, AD, RD (mm^2/s), FA, residual (RMS of the fit residual, intensity
units). A map is NaN where the table cannot determine it (`MapFit.unsupported`: the reason,
every voxel counted) or where a voxel's fit fails (`MapFit.reasons`: reason -> count).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ssmoe.maps.design import DIFFUSION_MAPS, MAP_NAMES, TE_REF_MS, Design, make_design
from ssmoe.maps.init import initial_theta, t1_grid
from ssmoe.maps.lm import levenberg_marquardt
from ssmoe.maps.tensor import tensor_scalars

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """Settings of the voxelwise fit (defaults: docs/maps.md gives the reasons)."""

    t1_grid_ms: tuple[float, float] = (50.0, 10000.0)  # T1 search range of the starting grid
    t1_grid_points: int = 32  # log-spaced: 18.6 % steps, refined by a parabola then LM
    t1_valid_ms: tuple[float, float] = (10.0, 20000.0)  # fitted T1 outside -> NaN
    te_ref_ms: float = TE_REF_MS  # PD' is referred to this echo (the spin echo, TEmin)
    # Also run LM from the T1 profile's second local minimum when its residual is within this
    # factor of the best one's (0: never). 2 catches the sign-ambiguity cases seen in tests.
    second_start_ratio: float = 2.0
    max_iter: int = 100
    ftol: float = 1e-10
    xtol: float = 1e-9
    batch_elements: int = 2_000_000  # voxels x volumes per batch (~16 MB per float64 array)

    def __post_init__(self) -> None:
        lo, hi = self.t1_grid_ms
        if not 0 < lo < hi:
            raise ValueError(f"t1_grid_ms must satisfy 0 < min < max, got {self.t1_grid_ms}")
        if self.t1_grid_points < 3:
            raise ValueError(f"t1_grid_points must be >= 3, got {self.t1_grid_points}")
        if self.max_iter < 1 or self.batch_elements < 1:
            raise ValueError("max_iter and batch_elements must be >= 1")


@dataclass
class VoxelFit:
    """Maps of N voxels: `values[name]` is `(N,)` float64, NaN where not determined.

    `reasons[name]` maps each cause of NaN in that map to its voxel count; `unsupported[name]`
    says why the table cannot determine a map at all. `not_converged` voxels keep their best
    (lowest-cost) parameters. `seconds` has the time of each stage.
    """

    values: dict[str, np.ndarray]
    reasons: dict[str, dict[str, int]]
    unsupported: dict[str, str]
    not_converged: int
    iterations_median: float
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def nan_counts(self) -> dict[str, int]:
        return {k: int(np.isnan(v).sum()) for k, v in self.values.items()}


@dataclass
class MapFit:
    """Maps on the image grid: `maps[name]` is `(X, Y, Z)` float32, NaN outside the mask."""

    maps: dict[str, np.ndarray]
    mask: np.ndarray
    voxels: VoxelFit

    @property
    def nan_counts(self) -> dict[str, int]:
        """NaN voxels per map inside the mask."""
        return self.voxels.nan_counts


def _add(reasons: dict[str, dict[str, int]], names, why: str, count: int) -> None:
    if count:
        for name in names:
            reasons[name][why] = reasons[name].get(why, 0) + int(count)


def _fit_batch(y: np.ndarray, design: Design, cfg: FitConfig, seconds: dict[str, float]):
    """LM from the profile's best start, and from its second local minimum where that one is
    nearly as good; each voxel keeps the lower-cost result."""
    t0 = time.perf_counter()
    theta0, alt, ratio = initial_theta(y, design, t1_grid(*cfg.t1_grid_ms, cfg.t1_grid_points))
    t1 = time.perf_counter()
    res = levenberg_marquardt(theta0, y, design, cfg.max_iter, cfg.ftol, cfg.xtol)
    idx = np.flatnonzero(ratio <= cfg.second_start_ratio)
    if idx.size:
        res2 = levenberg_marquardt(alt[idx], y[idx], design, cfg.max_iter, cfg.ftol, cfg.xtol)
        better = res2.cost < res.cost[idx]
        for name in ("theta", "cost", "converged", "iterations"):
            getattr(res, name)[idx[better]] = getattr(res2, name)[better]
    seconds["init"] += t1 - t0
    seconds["lm"] += time.perf_counter() - t1
    return res


def fit_voxels(
    signals: np.ndarray, params: np.ndarray, config: FitConfig | None = None
) -> VoxelFit:
    """Fit the maps of N voxels.

    Args:
        signals: `(N, V)` magnitude signals (any float dtype; copied to float64 per batch).
        params: `(V, 6)` acquisition table `gx gy gz b TI TE` (s/mm^2, ms).
        config: fit settings.

    Returns:
        A `VoxelFit` with `(N,)` maps `MAP_NAMES`.
    """
    cfg = config or FitConfig()
    if signals.ndim != 2 or signals.shape[1] != len(params):
        raise ValueError(
            f"signals of shape {signals.shape} do not match a parameter table of "
            f"{len(params)} rows (expected (N, {len(params)}))"
        )
    design = make_design(params, te_ref=cfg.te_ref_ms)
    n = len(signals)
    values = {name: np.full(n, np.nan) for name in MAP_NAMES}
    reasons: dict[str, dict[str, int]] = {name: {} for name in MAP_NAMES}
    for name, why in design.unsupported.items():
        reasons[name][f"not determined by the table: {why}"] = n
        log.warning("map %s not fitted: %s", name, why)
    seconds = {"init": 0.0, "lm": 0.0, "derive": 0.0}
    if all(name in design.unsupported for name in MAP_NAMES) or n == 0:
        return VoxelFit(values, reasons, design.unsupported, 0, 0.0, seconds)

    fitted = [m for m in MAP_NAMES if m not in design.unsupported]
    batch = max(1, cfg.batch_elements // len(design.rows))
    not_converged = 0
    iters: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for start in range(0, n, batch):
            sl = slice(start, min(start + batch, n))
            y = np.asarray(signals[sl][:, design.rows], dtype=np.float64)
            finite = np.isfinite(y).all(axis=1)
            signal = finite & ((y > 0).sum(axis=1) > design.n_params)
            _add(reasons, fitted, "non-finite input", (~finite).sum())
            _add(reasons, fitted, "no signal (too few samples > 0)", (finite & ~signal).sum())
            if not signal.any():
                continue
            res = _fit_batch(y[signal], design, cfg, seconds)
            t0 = time.perf_counter()
            ok = np.isfinite(res.theta).all(axis=1) & np.isfinite(res.cost)
            _add(reasons, fitted, "fit diverged", (~ok).sum())
            not_converged += int((ok & ~res.converged).sum())
            iters.append(res.iterations)
            idx = np.arange(sl.start, sl.stop)[signal][ok]
            theta = res.theta[ok]
            out = _derive(theta, res.cost[ok], design, cfg, reasons)
            for name in fitted:
                values[name][idx] = out[name]
            seconds["derive"] += time.perf_counter() - t0
    for name in fitted:
        if reasons[name]:
            log.info(
                "%s: NaN in %d of %d voxels %s", name, sum(reasons[name].values()), n, reasons[name]
            )
    if not_converged:
        log.info("%d of %d voxels stopped at max_iter=%d", not_converged, n, cfg.max_iter)
    all_iters = np.concatenate(iters) if iters else np.zeros(1)
    return VoxelFit(
        values, reasons, design.unsupported, not_converged, float(np.median(all_iters)), seconds
    )


def _derive(
    theta: np.ndarray,
    cost: np.ndarray,
    design: Design,
    cfg: FitConfig,
    reasons: dict[str, dict[str, int]],
) -> dict[str, np.ndarray]:
    """Maps `(n,)` from parameters, NaN-ing implausible values and counting why."""
    cols = list(design.columns)
    out: dict[str, np.ndarray] = {
        "PD": np.exp(theta[:, 0]),
        "residual": np.sqrt(2.0 * cost / len(design.rows)),
    }
    if design.fit_t1:
        t1 = np.exp(theta[:, len(cols)])
        lo, hi = cfg.t1_valid_ms
        bad = ~((t1 >= lo) & (t1 <= hi))
        _add(reasons, ["T1"], f"T1 outside [{lo:g}, {hi:g}] ms", bad.sum())
        out["T1"] = np.where(bad, np.nan, t1)
    if "R2star" in cols:
        r2 = theta[:, cols.index("R2star")]
        bad = ~(r2 > 0)
        _add(reasons, ["T2star"], "R2* <= 0 (no decay across echoes)", bad.sum())
        out["T2star"] = np.where(bad, np.nan, 1.0 / np.where(bad, 1.0, r2))
    if "Dxx" in cols:
        j = cols.index("Dxx")
        scal = tensor_scalars(theta[:, j : j + 6])
        bad_md = ~(scal["MD"] > 0)
        not_pd = ~bad_md & ~(scal["Lmin"] >= 0)
        _add(reasons, DIFFUSION_MAPS, "MD <= 0", bad_md.sum())
        _add(reasons, ["FA", "AD", "RD"], "tensor has a negative eigenvalue", not_pd.sum())
        out["MD"] = np.where(bad_md, np.nan, scal["MD"])
        for name in ("FA", "AD", "RD"):
            out[name] = np.where(bad_md | not_pd, np.nan, scal[name])
    return out


def fit_masked(
    signals: np.ndarray, mask: np.ndarray, params: np.ndarray, config: FitConfig | None = None
) -> MapFit:
    """Maps on the grid of `mask` `(X, Y, Z)` from `signals` `(N, V)` of its True voxels (C order)."""
    mask = np.asarray(mask, dtype=bool)
    if signals.shape[0] != int(mask.sum()):
        raise ValueError(f"{signals.shape[0]} signal rows for a mask of {int(mask.sum())} voxels")
    vox = fit_voxels(signals, params, config)
    maps = {}
    for name, v in vox.values.items():
        grid = np.full(mask.shape, np.nan, dtype=np.float32)
        grid[mask] = v
        maps[name] = grid
    return MapFit(maps=maps, mask=mask, voxels=vox)


def fit_maps(
    data: np.ndarray,
    params: np.ndarray,
    mask: np.ndarray | None = None,
    config: FitConfig | None = None,
) -> MapFit:
    """Fit maps of a 4D acquisition.

    Args:
        data: `(X, Y, Z, V)` magnitude volumes (e.g. HR data or a method's reconstruction).
        params: `(V, 6)` table `gx gy gz b TI TE` (s/mm^2, ms).
        mask: `(X, Y, Z)` voxels to fit; default: voxels with any non-zero volume.
        config: fit settings.

    Returns:
        `MapFit` with `(X, Y, Z)` float32 maps (NaN outside the mask) and per-map NaN counts.
    """
    if data.ndim != 4 or data.shape[3] != len(params):
        raise ValueError(
            f"data of shape {data.shape} does not match a parameter table of {len(params)} "
            f"rows (expected (X, Y, Z, {len(params)}))"
        )
    if mask is None:
        mask = (data != 0).any(axis=3)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != data.shape[:3]:
        raise ValueError(f"mask shape {mask.shape} does not match data shape {data.shape[:3]}")
    return fit_masked(data[mask], mask, params, config)
