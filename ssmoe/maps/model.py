"""The fitted signal model and its derivatives, vectorised over voxels.

theta per voxel is `(linear..., log T1)`: the linear parameters of `Design.columns`, then log T1
(ms) when the design fits T1. The signal is `S = exp(B theta_lin) |IR(TI; T1)|` (see design.py).
Everything is float64: noise-free recovery to 1e-6 needs it.
"""

from __future__ import annotations

import numpy as np

from ssmoe.maps.design import Design

EXP_CLIP = 700.0  # keeps exp() finite while a fit wanders; such trial steps are rejected


def inversion_recovery(ti: np.ndarray, t1: np.ndarray, tr: float) -> np.ndarray:
    """Signed IR factor `1 - 2 exp(-TI/T1) + exp(-TR/T1)`; broadcasts `ti`, `t1` (ms)."""
    return 1.0 - 2.0 * np.exp(-ti / t1) + np.exp(-tr / t1)


def evaluate(theta: np.ndarray, design: Design) -> tuple[np.ndarray, np.ndarray | None]:
    """Model signal `(n, V')` and, when T1 is fitted, dS/dlogT1 `(n, V')`.

    Args:
        theta: `(n, P)` parameters, P = `design.n_params`.
        design: the fit design.
    """
    k = len(design.columns)
    log_e = np.clip(theta[:, :k] @ design.b_matrix.T, -EXP_CLIP, EXP_CLIP)
    e = np.exp(log_e)
    if not design.fit_t1:
        return e, None
    t1 = np.exp(np.clip(theta[:, k : k + 1], -EXP_CLIP, EXP_CLIP))
    e_ti = np.exp(-design.ti[None, :] / t1)  # (n, V')
    e_tr = np.exp(-design.tr / t1)  # (n, 1)
    ir = 1.0 - 2.0 * e_ti + e_tr
    d_ir = (design.tr * e_tr - 2.0 * design.ti[None, :] * e_ti) / t1
    s = e * np.abs(ir)
    return s, np.copysign(e, ir) * d_ir


def normal_equations(
    s: np.ndarray, ds_du: np.ndarray | None, y: np.ndarray, design: Design, bb: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Newton pieces of `0.5 ||S - y||^2` for a batch of voxels, from `evaluate`'s output.

    Uses the structure dS/dtheta_lin = S B, so J^T J needs one matrix product with the
    precomputed `bb = (B_v B_v^T)` rows `(V', k*k)` instead of a product per voxel.

    Returns:
        `(jtj (n, P, P), grad (n, P), cost (n,))`.
    """
    n = len(s)
    k = len(design.columns)
    res = s - y
    p = design.n_params
    jtj = np.empty((n, p, p))
    grad = np.empty((n, p))
    jtj[:, :k, :k] = ((s * s) @ bb).reshape(n, k, k)
    grad[:, :k] = (s * res) @ design.b_matrix
    if ds_du is not None:
        cross = (s * ds_du) @ design.b_matrix
        jtj[:, :k, k] = cross
        jtj[:, k, :k] = cross
        jtj[:, k, k] = (ds_du * ds_du).sum(axis=1)
        grad[:, k] = (ds_du * res).sum(axis=1)
    return jtj, grad, 0.5 * (res * res).sum(axis=1)


def outer_rows(b_matrix: np.ndarray) -> np.ndarray:
    """`(V', k*k)` rows of `B_v B_v^T`, flattened (for `normal_equations`)."""
    return (b_matrix[:, :, None] * b_matrix[:, None, :]).reshape(len(b_matrix), -1)
