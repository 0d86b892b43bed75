"""HR -> LR degradation and the exact voxel correspondence between the grids.

Physical model: block (box-car) averaging. An LR voxel records the mean of the magnetisation
inside its larger volume, i.e. an ideal rectangular slice profile through-plane (thick slices,
task "aniso": 2.5 x 2.5 x 5 mm from 2.5 mm) and, for task "iso", an ideal box point-spread
function in-plane as well (5 mm from 2.5 mm). It is applied to the noisy magnitude HR data, as
when the challenge's LR data were derived from the HR acquisition, so LR noise is the HR noise
averaged over 2 or 8 voxels (its standard deviation drops by sqrt(2) or sqrt(8)).

Geometry: LR voxel `j` (per axis) averages HR voxels `s*j .. s*j + s - 1` (s = the scale), so
its centre is the mean of their centres, at HR index `s*j + (s - 1)/2`. Trailing HR voxels that
do not fill a whole LR voxel (odd sizes) are dropped. The LR affine is
`A_lr = A_hr @ [[diag(s), (s - 1)/2], [0, 1]]`.
"""

from __future__ import annotations

import numpy as np

from ssmoe.typing import TASKS

SCALES: dict[str, tuple[int, int, int]] = {"aniso": (1, 1, 2), "iso": (2, 2, 2)}
HR_PATCH = 16


def check_task(task: str) -> tuple[int, int, int]:
    """The integer scale per axis of `task`; ValueError for an unknown task."""
    if task not in SCALES:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return SCALES[task]


def lr_shape(hr_shape: tuple[int, ...], task: str) -> tuple[int, ...]:
    """LR grid shape for an HR shape `(X, Y, Z[, V])`: `hr // scale` per spatial axis."""
    s = check_task(task)
    spatial = tuple(int(n) // k for n, k in zip(hr_shape[:3], s, strict=True))
    return spatial + tuple(int(n) for n in hr_shape[3:])


def lr_patch_shape(task: str, hr_patch: int = HR_PATCH) -> tuple[int, int, int]:
    """LR patch shape paired with an `hr_patch`^3 HR patch: iso (8, 8, 8), aniso (16, 16, 8)."""
    s = check_task(task)
    return tuple(hr_patch // k for k in s)  # type: ignore[return-value]


def degrade(hr: np.ndarray, task: str) -> np.ndarray:
    """Block-average HR data `(X, Y, Z[, V])` to the LR grid of `task`, as float32.

    Accumulates in float64, so the result is a deterministic function of the float32 input
    (re-degrading an HR file reproduces its LR file bit for bit).
    """
    sx, sy, sz = check_task(task)
    if hr.ndim not in (3, 4):
        raise ValueError(f"degrade expects 3D or 4D data, got shape {hr.shape}")
    nx, ny, nz = lr_shape(hr.shape[:3], task)
    if min(nx, ny, nz) < 1:
        raise ValueError(f"HR shape {hr.shape[:3]} is smaller than the {task} scale")
    rest = hr.shape[3:]
    crop = np.asarray(hr[: nx * sx, : ny * sy, : nz * sz], dtype=np.float64)
    blocks = crop.reshape(nx, sx, ny, sy, nz, sz, *rest)
    return blocks.mean(axis=(1, 3, 5)).astype(np.float32)


def lr_affine(hr_affine: np.ndarray, task: str) -> np.ndarray:
    """LR voxel-to-world affine `(4, 4)`: each LR centre is the mean of its HR voxel centres."""
    s = np.asarray(check_task(task), dtype=np.float64)
    to_hr = np.eye(4)
    to_hr[:3, :3] = np.diag(s)
    to_hr[:3, 3] = (s - 1.0) / 2.0
    return np.asarray(hr_affine, dtype=np.float64) @ to_hr


def hr_to_lr_index(hr_index: np.ndarray, task: str) -> np.ndarray:
    """LR voxel `(..., 3)` int that contains HR voxel `hr_index` `(..., 3)`."""
    return np.asarray(hr_index) // np.asarray(check_task(task))


def lr_to_hr_index(lr_index: np.ndarray, task: str) -> np.ndarray:
    """First (lowest-index) HR voxel `(..., 3)` of the block averaged into LR voxel `lr_index`."""
    return np.asarray(lr_index) * np.asarray(check_task(task))


def lr_to_hr_coord(lr_index: np.ndarray, task: str) -> np.ndarray:
    """Continuous HR index `(..., 3)` float of the centre of LR voxel `lr_index`."""
    s = np.asarray(check_task(task), dtype=np.float64)
    return np.asarray(lr_index) * s + (s - 1.0) / 2.0
