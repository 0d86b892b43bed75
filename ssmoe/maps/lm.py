"""Levenberg-Marquardt on magnitude signals, every voxel of a batch stepping at once.

Each voxel keeps its own damping lambda (Marquardt scaling by diag(J^T J)): a step that lowers
the voxel's cost is taken and lambda shrinks (x 1/3), otherwise lambda grows (x 10). A voxel
stops when an accepted step lowers its cost by less than `ftol` relative, when its step is below
`xtol` relative to the parameters (plus a typical scale, so parameters near 0 converge), when its
residual is at machine precision, or when lambda exceeds 1e16 (no descent left). Voxels still
running after `max_iter` keep their best parameters and are reported as not converged.
Least squares on the magnitude is the Gaussian maximum likelihood: efficient where SNR >~ 3,
biased by the Rician floor below that (docs/maps.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssmoe.maps.design import Design
from ssmoe.maps.model import evaluate, normal_equations, outer_rows

LAMBDA_START = 1e-3
LAMBDA_MAX = 1e16
EXACT_COST = 1e-26  # cost / sum(y^2) below which a voxel is fitted to machine precision

# Typical magnitude of each parameter (added to |theta| in the step test).
TYPICAL_SCALE = {"logPD": 1.0, "R2star": 1e-3, "logT1": 1.0}
TENSOR_SCALE = 1e-5  # mm^2/s


@dataclass
class LMResult:
    """Per-voxel outcome: `theta (n, P)`, `cost (n,)`, `converged (n,)`, `iterations (n,)`."""

    theta: np.ndarray
    cost: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray


def _typical(design: Design) -> np.ndarray:
    names = list(design.columns) + (["logT1"] if design.fit_t1 else [])
    return np.array([TYPICAL_SCALE.get(c, TENSOR_SCALE) for c in names])


def levenberg_marquardt(
    theta0: np.ndarray,
    y: np.ndarray,
    design: Design,
    max_iter: int = 100,
    ftol: float = 1e-10,
    xtol: float = 1e-9,
) -> LMResult:
    """Minimise `0.5 ||S(theta) - y||^2` per voxel from `theta0` `(n, P)`; `y` is `(n, V')`."""
    n, p = theta0.shape
    bb = outer_rows(design.b_matrix)
    typical = _typical(design)
    exact = EXACT_COST * (y * y).sum(axis=1)
    theta = theta0.copy()
    jtj, grad, f = normal_equations(*evaluate(theta, design), y, design, bb)
    lam = np.full(n, LAMBDA_START)
    active = np.isfinite(f) & np.isfinite(jtj).all(axis=(1, 2)) & np.isfinite(grad).all(axis=1)
    converged = np.zeros(n, dtype=bool)
    iterations = np.zeros(n, dtype=np.int64)
    diag = np.arange(p)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        a = jtj[idx]
        d = a[:, diag, diag]
        d = np.maximum(d, 1e-12 * d.max(axis=1, keepdims=True) + 1e-300)
        a[:, diag, diag] += lam[idx, None] * d
        delta = -np.linalg.solve(a, grad[idx][:, :, None])[:, :, 0]
        trial = theta[idx] + delta
        s, ds_du = evaluate(trial, design)
        res = s - y[idx]
        f_new = 0.5 * (res * res).sum(axis=1)
        ok = np.isfinite(f_new) & (f_new <= f[idx]) & np.isfinite(delta).all(axis=1)
        small = (np.abs(delta) <= xtol * (np.abs(theta[idx]) + typical)).all(axis=1)
        flat = (f[idx] - f_new) <= ftol * f[idx]
        done = (ok & (flat | small | (f_new <= exact[idx]))) | (~ok & small)
        iterations[idx] += 1

        acc = idx[ok]
        theta[acc] = trial[ok]
        f[acc] = f_new[ok]
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-15)
        lam[idx[~ok]] *= 10.0
        done |= lam[idx] > LAMBDA_MAX
        converged[idx[done]] = True
        active[idx[done]] = False
        more = ok & ~done  # accepted and still running: new normal equations at the trial
        if more.any():
            jtj[idx[more]], grad[idx[more]], _ = normal_equations(
                s[more], None if ds_du is None else ds_du[more], y[idx[more]], design, bb
            )
    return LMResult(theta=theta, cost=f, converged=converged, iterations=iterations)
