"""Cubic spline interpolation baseline on the exact HR<->LR voxel geometry.

LR voxel j along an axis of scale s averages HR voxels s*j .. s*j+s-1, so its centre sits at HR
index s*j + (s-1)/2; HR voxel i therefore samples the LR grid at (i - (s-1)/2) / s.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def cubic_spline_upsample(
    lr: np.ndarray, scale: tuple[int, int, int], hr_shape: tuple[int, int, int] | None = None
) -> np.ndarray:
    """(X', Y', Z') LR volume -> (X, Y, Z) HR volume by cubic B-spline interpolation, float32."""
    hr_shape = hr_shape or tuple(n * s for n, s in zip(lr.shape, scale, strict=True))
    axes = [(np.arange(n) - (s - 1) / 2) / s for n, s in zip(hr_shape, scale, strict=True)]
    coords = np.meshgrid(*axes, indexing="ij")
    out = ndimage.map_coordinates(lr.astype(np.float64), coords, order=3, mode="nearest")
    return out.astype(np.float32)
