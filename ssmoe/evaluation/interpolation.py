"""Cubic spline interpolation baseline on the exact HR<->LR voxel geometry.

LR voxel j along an axis of scale s averages HR voxels s*j .. s*j+s-1, so its centre sits at HR
index s*j + (s-1)/2; HR voxel i therefore samples the LR grid at (i - (s-1)/2) / s.

The baseline is scipy's order-3 spline interpolation, ``map_coordinates(order=3,
mode="nearest")`` on the full HR grid (``cubic_spline_reference``). It is separable: scipy pads
every axis by edge replication, prefilters each axis, clamps each coordinate to the grid and
weighs the coefficients by a product of 1-D B-spline weights. Each axis is therefore one fixed
linear map, an (n_hr, n_lr) matrix (``spline_matrix``, built by running scipy itself on the unit
vectors), and the 3-D interpolation is three small matrix products: the same numbers (to float64
rounding) at a fraction of the cost. Axes of scale 1 sample the knots, where an interpolating
spline returns the data, so they are skipped.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage
from threadpoolctl import ThreadpoolController


def hr_coordinates(n_hr: int, scale: int) -> np.ndarray:
    """(n_hr,) LR coordinate sampled by each HR voxel of an axis of ``scale``."""
    return (np.arange(n_hr) - (scale - 1) / 2) / scale


@functools.lru_cache(maxsize=64)
def spline_matrix(n_hr: int, n_lr: int, scale: int) -> np.ndarray:
    """(n_hr, n_lr) float64 matrix of 1-D cubic B-spline interpolation along one axis.

    Column j is scipy's ``map_coordinates(order=3, mode="nearest")`` of the j-th unit vector at
    ``hr_coordinates(n_hr, scale)``, so ``M @ signal`` is that interpolation of ``signal``
    (beyond the edge the signal continues as its edge value). Read-only (cached).
    """
    if n_lr < 1 or n_hr < 1 or scale < 1:
        raise ValueError(f"need n_hr, n_lr, scale >= 1; got {n_hr}, {n_lr}, {scale}")
    coords = [hr_coordinates(n_hr, scale)]
    matrix = np.stack(
        [ndimage.map_coordinates(unit, coords, order=3, mode="nearest") for unit in np.eye(n_lr)],
        axis=1,
    )
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def cubic_spline_upsample(
    lr: np.ndarray, scale: tuple[int, int, int], hr_shape: tuple[int, int, int] | None = None
) -> np.ndarray:
    """(X', Y', Z') LR volume -> (X, Y, Z) HR volume by cubic B-spline interpolation, float32.

    Equal to ``cubic_spline_reference`` to float64 rounding (see the module docstring).
    """
    lr = np.asarray(lr)
    if lr.ndim != 3:
        raise ValueError(f"LR volume must be 3D, got shape {lr.shape}")
    hr_shape = hr_shape or tuple(n * s for n, s in zip(lr.shape, scale, strict=True))
    out = lr.astype(np.float64)
    # Small GEMMs: BLAS threads cost more than they gain and oversubscribe cores shared with
    # torch, so one thread (the reference, scipy, is single-threaded too).
    with _blas().limit(limits=1, user_api="blas"):
        for axis in (2, 1, 0):
            n_hr, n_lr, s = int(hr_shape[axis]), lr.shape[axis], int(scale[axis])
            if s == 1 and n_hr == n_lr:
                continue  # samples at the knots: the spline interpolates the data
            m = spline_matrix(n_hr, n_lr, s)
            if axis == 2:
                out = out @ m.T
            elif axis == 1:
                out = np.matmul(m, out)  # (n_hr, n_lr) @ (X, n_lr, Z), broadcast over X
            else:
                out = (m @ out.reshape(n_lr, -1)).reshape(n_hr, *out.shape[1:])
    return out.astype(np.float32)


def cubic_spline_reference(
    lr: np.ndarray, scale: tuple[int, int, int], hr_shape: tuple[int, int, int] | None = None
) -> np.ndarray:
    """The baseline's definition: scipy ``map_coordinates(order=3, mode="nearest")`` evaluated
    at every HR voxel (slow; kept for tests and ``benchmarks/bench_cubic.py``)."""
    hr_shape = hr_shape or tuple(n * s for n, s in zip(lr.shape, scale, strict=True))
    axes = [hr_coordinates(n, s) for n, s in zip(hr_shape, scale, strict=True)]
    coords = np.meshgrid(*axes, indexing="ij")
    out = ndimage.map_coordinates(lr.astype(np.float64), coords, order=3, mode="nearest")
    return out.astype(np.float32)
