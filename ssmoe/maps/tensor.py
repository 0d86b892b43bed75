"""Scalar maps of a diffusion tensor: MD, FA, axial and radial diffusivity."""

from __future__ import annotations

import numpy as np


def tensor_matrix(elements: np.ndarray) -> np.ndarray:
    """`(n, 3, 3)` symmetric tensors from `(n, 6)` elements `(Dxx, Dyy, Dzz, Dxy, Dxz, Dyz)`."""
    xx, yy, zz, xy, xz, yz = elements.T
    return np.stack(
        [np.stack([xx, xy, xz], -1), np.stack([xy, yy, yz], -1), np.stack([xz, yz, zz], -1)],
        axis=-2,
    )


def tensor_scalars(elements: np.ndarray) -> dict[str, np.ndarray]:
    """MD, FA, AD, RD and the smallest eigenvalue Lmin, `(n,)` each, of `(n, 6)` elements.

    Units: mm^2/s (FA unitless).

    MD = mean eigenvalue; FA = sqrt(3/2) |lambda - MD| / |lambda|; AD = largest eigenvalue;
    RD = mean of the other two. For an axially symmetric tensor (the simulator's zeppelin)
    AD = Dpar and RD = Dperp. A tensor with a negative eigenvalue can give FA > 1: left to the
    caller to flag. Non-finite elements give NaN.
    """
    n = len(elements)
    out = {name: np.full(n, np.nan) for name in ("MD", "FA", "AD", "RD", "Lmin")}
    ok = np.isfinite(elements).all(axis=1)
    if not ok.any():
        return out
    lam = np.linalg.eigvalsh(tensor_matrix(elements[ok]))  # ascending
    md = lam.mean(axis=1)
    norm = np.sqrt((lam * lam).sum(axis=1))
    dev = np.sqrt(((lam - md[:, None]) ** 2).sum(axis=1))
    out["MD"][ok] = md
    out["FA"][ok] = np.sqrt(1.5) * dev / np.where(norm > 0, norm, 1.0)
    out["AD"][ok] = lam[:, 2]
    out["RD"][ok] = lam[:, :2].mean(axis=1)
    out["Lmin"][ok] = lam[:, 0]
    return out
