"""Starting values: a weighted log-linear fit profiled over a T1 grid (variable projection).

For fixed T1, `log S - log|IR(TI; T1)| = B theta_lin` is linear, and the weighted least-squares
fit with weights `y^2` (the delta-method inverse variance of log y under Gaussian noise) has
normal matrix `M = B^T W B` that does not depend on T1. So for every voxel M is formed once and
the residual sum of squares over a whole T1 grid costs a few matrix products:

    RSS(T1) = sum_v w_v (log y_v - l_v)^2 - r^T M^{-1} r,   r = B^T W (log y - l),  l = log|IR|

The grid minimum (log-spaced T1, refined by a parabola through its neighbours) handles the
magnitude inversion recovery: a voxel's null can sit between any two TIs, and |.| makes the
signed curve two-valued near it, which a local fit from a fixed start gets wrong. Samples with
y <= 0 get weight 0. The result seeds `lm.levenberg_marquardt`.
"""

from __future__ import annotations

import numpy as np

from ssmoe.maps.design import Design
from ssmoe.maps.model import EXP_CLIP, inversion_recovery

IR_FLOOR = 1e-6  # |IR| below this is clipped before the log (the null itself)
RIDGE = 1e-10  # relative ridge on M so a degenerate voxel never makes the solve fail
PROFILE_CHUNK = 4_000_000  # elements of the (voxels, grid, volumes) model evaluated at once


def t1_grid(t1_min: float, t1_max: float, n: int) -> np.ndarray:
    """`(n,)` log-spaced T1 values in ms."""
    return np.geomspace(t1_min, t1_max, n)


def _log_ir(ti: np.ndarray, t1: np.ndarray, tr: float) -> np.ndarray:
    return np.log(np.maximum(np.abs(inversion_recovery(ti, t1, tr)), IR_FLOOR))


def _normal(w: np.ndarray, a: np.ndarray) -> np.ndarray:
    """`(n, k, k)` weighted normal matrices `A^T W A` plus a small relative ridge."""
    n, k = len(w), a.shape[1]
    m = (w @ (a[:, :, None] * a[:, None, :]).reshape(len(a), -1)).reshape(n, k, k)
    m += (RIDGE * np.trace(m, axis1=1, axis2=2) / k)[:, None, None] * np.eye(k)
    return m


def _profile(
    y: np.ndarray, w: np.ndarray, logy: np.ndarray, a: np.ndarray, log_ir: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted log-linear fits at every grid T1: `(rss (n, G), beta (n, k, G))`.

    `rss` is the signal-domain residual of each grid fit: the log-domain residual with
    weights y^2 under-weights samples that a curve over-predicts, which with noise favours
    curves that have no null at all.
    """
    n, k = len(y), a.shape[1]
    m = _normal(w, a)
    c = (w * logy) @ a  # (n, k)
    # r_g = c - A^T W l_g: one (n, G) product per linear column.
    r = c[:, :, None] - np.stack([(w * a[:, j]) @ log_ir.T for j in range(k)], axis=1)
    beta = np.linalg.solve(m, r)  # (n, k, G)
    # Signal-domain residual in float32 chunks: the (n, G, V') model is the largest array.
    g, v = log_ir.shape
    rss = np.empty((n, g))
    a32 = a.T.astype(np.float32)
    step = max(1, PROFILE_CHUNK // (g * v))
    for s in range(0, n, step):
        b = beta[s : s + step].transpose(0, 2, 1).astype(np.float32)  # (c, G, k)
        log_model = (b.reshape(-1, k) @ a32).reshape(len(b), g, v) + log_ir.astype(np.float32)
        np.clip(log_model, -40.0, 40.0, out=log_model)  # float32 squares stay finite
        model = np.exp(log_model, out=log_model)
        model -= y[s : s + step, None, :].astype(np.float32)
        rss[s : s + step] = np.einsum("ngv,ngv->ng", model, model)
    return np.where(np.isfinite(rss), rss, np.inf), beta


def _second_minimum(rss: np.ndarray, best: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid index of each voxel's second-lowest local minimum of `rss` `(n, G)` and its rss
    (inf where there is none; edges count as minima when lower than their one neighbour)."""
    pad = np.pad(rss, ((0, 0), (1, 1)), constant_values=np.inf)
    is_min = (rss < pad[:, :-2]) & (rss <= pad[:, 2:])
    is_min[np.arange(len(rss)), best] = False
    masked = np.where(is_min, rss, np.inf)
    second = np.argmin(masked, axis=1)
    return second, masked[np.arange(len(rss)), second]


def _refine(rss: np.ndarray, at: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """log T1 `(n,)` at grid index `at`, moved to the vertex of the parabola through it and its
    neighbours (the log-T1 spacing is uniform) when it is an interior point."""
    log_t1 = np.log(grid)[at]
    idx = np.flatnonzero((at > 0) & (at < len(grid) - 1))
    if idx.size:
        lo, mid, hi = (rss[idx, at[idx] + o] for o in (-1, 0, 1))
        curv = lo - 2.0 * mid + hi
        ok = np.isfinite(curv) & (curv > 0)
        shift = np.where(ok, 0.5 * (lo - hi) / np.where(ok, curv, 1.0), 0.0)
        log_t1[idx] += np.log(grid[1] / grid[0]) * np.clip(shift, -1.0, 1.0)
    return log_t1


def initial_theta(
    y: np.ndarray, design: Design, grid: np.ndarray, passes: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starting parameters for signals `y` `(n, V')` (float64, at the design's rows).

    Args:
        y: magnitude signals of n voxels.
        design: the fit design.
        grid: `(G,)` T1 values in ms searched when the design fits T1 (ignored otherwise).
        passes: weighted fits over the grid; the first weights samples by y^2, each further
            one by the squared model signal of the previous pass's best grid point (iteratively
            reweighted least squares: the model is a less noisy estimate of the variance).

    Returns:
        `(theta (n, P), alternative (n, P), ratio (n,))`: the start at the profile's lowest
        minimum, one at its second-lowest local minimum (a null on the other side of a TI: the
        magnitude's sign ambiguity), and the ratio of their residuals (inf: no second one).
    """
    n = len(y)
    k = len(design.columns)
    scale = np.abs(design.b_matrix).max(axis=0)
    scale[scale == 0] = 1.0
    a = design.b_matrix / scale  # columns of comparable size keep A^T W A well conditioned
    pos = y > 0
    w = np.where(pos, y * y, 0.0)
    logy = np.where(pos, np.log(np.where(pos, y, 1.0)), 0.0)
    theta = np.empty((n, design.n_params))
    if not design.fit_t1:
        c = (w * logy) @ a
        theta[:, :k] = np.linalg.solve(_normal(w, a), c[:, :, None])[:, :, 0] / scale
        return theta, theta.copy(), np.full(n, np.inf)

    log_ir = _log_ir(design.ti[None, :], grid[:, None], design.tr)  # (G, V')
    rows = np.arange(n)
    for p in range(passes):
        rss, beta = _profile(y, w, logy, a, log_ir)
        best = np.argmin(rss, axis=1)
        if p + 1 < passes:
            log_model = beta[rows, :, best] @ a.T + log_ir[best]
            w = np.where(pos, np.exp(2.0 * np.clip(log_model, -EXP_CLIP / 2, EXP_CLIP / 2)), 0.0)
    m = _normal(w, a)
    second, rss_second = _second_minimum(rss, best)
    ratio = rss_second / np.maximum(rss[rows, best], np.finfo(float).tiny)
    starts = []
    for at in (best, second):
        log_t1 = _refine(rss, at, grid)
        l_t1 = _log_ir(design.ti[None, :], np.exp(log_t1)[:, None], design.tr)  # (n, V')
        r = (w * (logy - l_t1)) @ a
        start = np.empty((n, design.n_params))
        start[:, :k] = np.linalg.solve(m, r[:, :, None])[:, :, 0] / scale
        start[:, k] = log_t1
        starts.append(start)
    return starts[0], starts[1], ratio
