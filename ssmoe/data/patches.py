"""LR-HR patch pairs: foreground-valid origins, uniform sampling, extraction and grid tiling.

An HR patch is 16^3 voxels at HR origin `o`; `o` is a multiple of the task scale on every axis,
so the LR patch at `o // scale` (16 // scale voxels per axis) covers exactly the same field of
view (see `degrade.py` for the voxel correspondence). A patch is valid when its foreground
(brain-mask) fraction is strictly above `min_foreground` (0.5: "non-background voxels account
for over 50% of the patch", paper section 2.1).

Valid origins are computed once per (subject, task) from the mask with a summed-area table (one
vectorised inclusion-exclusion over all candidate origins). Sampling is uniform over the triples
(subject, volume, valid origin), without replacement while enough triples exist.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from ssmoe.data.degrade import HR_PATCH, check_task, lr_patch_shape
from ssmoe.data.reader import MudiDataset, Subject

_ORIGIN_CACHE: weakref.WeakKeyDictionary[Subject, dict] = weakref.WeakKeyDictionary()


@dataclass
class PatchIndex:
    """Where pairs come from: `subject (N,)` str ids, `volume (N,)` int, `origin (N, 3)` int."""

    subject: np.ndarray
    volume: np.ndarray
    origin: np.ndarray

    def __post_init__(self) -> None:
        self.subject = np.asarray(self.subject, dtype=str)
        self.volume = np.asarray(self.volume, dtype=np.int64)
        self.origin = np.asarray(self.origin, dtype=np.int64).reshape(-1, 3)
        if not len(self.subject) == len(self.volume) == len(self.origin):
            raise ValueError(
                f"PatchIndex lengths differ: subject {len(self.subject)}, "
                f"volume {len(self.volume)}, origin {len(self.origin)}"
            )

    def __len__(self) -> int:
        return len(self.volume)

    def __getitem__(self, sel) -> PatchIndex:
        """Subset by slice, integer array or boolean mask."""
        return PatchIndex(self.subject[sel], self.volume[sel], self.origin[sel])

    def to_frame(self) -> pd.DataFrame:
        """Columns subject, volume, x, y, z (HR voxel corner)."""
        return pd.DataFrame(
            {
                "subject": self.subject,
                "volume": self.volume,
                "x": self.origin[:, 0],
                "y": self.origin[:, 1],
                "z": self.origin[:, 2],
            }
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> PatchIndex:
        missing = {"subject", "volume", "x", "y", "z"} - set(df.columns)
        if missing:
            raise ValueError(f"patch index table lacks columns {sorted(missing)}")
        origin = df[["x", "y", "z"]].to_numpy(dtype=np.int64)
        return cls(df["subject"].astype(str).to_numpy(), df["volume"].to_numpy(), origin)


@dataclass
class PatchPairs:
    """Extracted pairs, aligned with `index`: lr `(N, 1, *lr_patch)`, hr `(N, 1, 16, 16, 16)`,
    acq `(N, 6)` raw acquisition vectors; all float32."""

    index: PatchIndex
    lr: np.ndarray
    hr: np.ndarray
    acq: np.ndarray

    def __len__(self) -> int:
        return len(self.index)


def foreground_fraction(mask: np.ndarray, origins: np.ndarray, patch: int = HR_PATCH) -> np.ndarray:
    """Mask fraction `(K,)` of the `patch`^3 boxes at `origins` `(K, 3)` (direct, for checks)."""
    win = sliding_window_view(np.asarray(mask, dtype=np.float64), (patch,) * 3)
    o = np.asarray(origins, dtype=np.int64).reshape(-1, 3)
    return win[o[:, 0], o[:, 1], o[:, 2]].mean(axis=(1, 2, 3))


def valid_origins(
    mask: np.ndarray, task: str, min_foreground: float = 0.5, patch: int = HR_PATCH
) -> np.ndarray:
    """HR origins `(K, 3)` int64, multiples of the task scale, whose patch foreground > threshold.

    Uses a summed-area table: box sums for every candidate origin by inclusion-exclusion of the
    8 corners, no loop over origins.
    """
    scale = check_task(task)
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3 or min(mask.shape) < patch:
        raise ValueError(f"mask shape {mask.shape} must be 3D and at least {patch} per axis")
    sat = np.zeros(tuple(s + 1 for s in mask.shape), dtype=np.int64)
    sat[1:, 1:, 1:] = mask.cumsum(0, dtype=np.int64).cumsum(1).cumsum(2)
    lo = [np.arange(0, n - patch + 1, s) for n, s in zip(mask.shape, scale, strict=True)]
    hi = [a + patch for a in lo]
    box = np.zeros(tuple(len(a) for a in lo), dtype=np.int64)
    for cx, ax in ((1, hi[0]), (-1, lo[0])):
        for cy, ay in ((1, hi[1]), (-1, lo[1])):
            for cz, az in ((1, hi[2]), (-1, lo[2])):
                box += cx * cy * cz * sat[np.ix_(ax, ay, az)]
    keep = box > min_foreground * patch**3  # strict: exactly 50% is rejected
    i, j, k = np.nonzero(keep)
    return np.stack([lo[0][i], lo[1][j], lo[2][k]], axis=1)


def subject_origins(subject: Subject, task: str, min_foreground: float = 0.5) -> np.ndarray:
    """`valid_origins` of a subject's mask, cached per (subject, task, threshold)."""
    cache = _ORIGIN_CACHE.setdefault(subject, {})
    key = (task, float(min_foreground))
    if key not in cache:
        cache[key] = valid_origins(subject.mask, task, min_foreground)
    return cache[key]


def sample_index(
    dataset: MudiDataset,
    subjects: list[str] | tuple[str, ...],
    task: str,
    n: int,
    seed: int,
    min_foreground: float = 0.5,
    replace: bool | None = None,
) -> PatchIndex:
    """Draw `n` pairs uniformly over (subject, volume, valid origin), reproducibly by `seed`.

    Without replacement unless `replace=True`; `replace=None` switches to with-replacement only
    when fewer than `n` distinct triples exist. Returned sorted by (subject, volume, origin) so
    that extraction reads each volume once.
    """
    check_task(task)
    subjects = list(subjects)
    if not subjects or n < 1:
        raise ValueError(f"need at least one subject and n >= 1, got {subjects}, n={n}")
    n_origins, n_vols, origins = [], [], []
    for sid in subjects:
        subj = dataset[sid]
        o = subject_origins(subj, task, min_foreground)
        origins.append(o)
        n_origins.append(len(o))
        n_vols.append(subj.n_volumes)
    counts = np.asarray(n_origins, dtype=np.int64) * np.asarray(n_vols, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        raise ValueError(f"no patch in subjects {subjects} has foreground > {min_foreground}")
    if replace is None:
        replace = n > total
    if not replace and n > total:
        raise ValueError(f"asked for {n} distinct pairs but only {total} exist; pass replace=True")
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(total, size=n, replace=replace))
    starts = np.concatenate([[0], np.cumsum(counts)])
    which = np.searchsorted(starts, flat, side="right") - 1
    local = flat - starts[which]
    n_o = np.asarray(n_origins, dtype=np.int64)[which]
    volume = local // np.maximum(n_o, 1)
    origin = np.empty((n, 3), dtype=np.int64)
    for s, o in enumerate(origins):
        sel = which == s
        origin[sel] = o[local[sel] % max(len(o), 1)]
    return PatchIndex(np.asarray(subjects)[which], volume, origin)


def _groups(index: PatchIndex):
    """Yield (subject id, volume, row indices) for each distinct (subject, volume) of `index`."""
    ids, code = np.unique(index.subject, return_inverse=True)
    key = code.astype(np.int64) * (int(index.volume.max()) + 1) + index.volume
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for rows in np.split(order, bounds):
        yield str(ids[code[rows[0]]]), int(index.volume[rows[0]]), rows


def extract_pairs(dataset: MudiDataset, index: PatchIndex, task: str) -> PatchPairs:
    """Gather the LR-HR pairs of `index`, reading each needed (subject, volume) once.

    Patches are taken with fancy indexing into a sliding-window view of the volume.
    """
    scale = np.asarray(check_task(task))
    lr_p = lr_patch_shape(task)
    n = len(index)
    hr = np.empty((n, 1, HR_PATCH, HR_PATCH, HR_PATCH), dtype=np.float32)
    lr = np.empty((n, 1, *lr_p), dtype=np.float32)
    acq = np.empty((n, 6), dtype=np.float32)
    if n == 0:
        return PatchPairs(index, lr, hr, acq)
    if (index.origin % scale).any():
        raise ValueError(f"patch origins must be multiples of the {task} scale {tuple(scale)}")
    for sid, v, rows in _groups(index):
        subj = dataset[sid]
        o = index.origin[rows]
        if (o < 0).any() or (o + HR_PATCH > np.asarray(subj.hr_shape)).any():
            raise ValueError(f"{sid}: patch origin out of the HR grid {subj.hr_shape}")
        hr_win = sliding_window_view(subj.hr_volume(v), (HR_PATCH,) * 3)
        hr[rows, 0] = hr_win[o[:, 0], o[:, 1], o[:, 2]]
        lo = o // scale
        lr_win = sliding_window_view(subj.lr_volume(task, v), lr_p)
        lr[rows, 0] = lr_win[lo[:, 0], lo[:, 1], lo[:, 2]]
        acq[rows] = subj.params[v]
    return PatchPairs(index, lr, hr, acq)


def sample_pairs(
    dataset: MudiDataset,
    subjects: list[str] | tuple[str, ...],
    task: str,
    n: int,
    seed: int,
    min_foreground: float = 0.5,
    replace: bool | None = None,
) -> PatchPairs:
    """`extract_pairs(sample_index(...))`."""
    index = sample_index(dataset, subjects, task, n, seed, min_foreground, replace)
    return extract_pairs(dataset, index, task)


class GridTiler:
    """Regular tiling of a whole HR volume into 16^3 patches, and reassembly by averaging.

    Origins lie on a `stride` grid per axis, plus a last tile flush with the far edge, so every
    voxel is covered; `stride` and the HR shape must be multiples of the task scale so that
    every HR tile has its LR tile at `origin // scale`. The windows and their order (C order
    over the per-axis origins) are those of MONAI's `dense_patch_slices` at interval `stride`.
    """

    def __init__(self, hr_shape: tuple[int, int, int], task: str, stride: int = 8) -> None:
        self.task = task
        self.scale = np.asarray(check_task(task))
        self.hr_shape = tuple(int(s) for s in hr_shape)
        self.lr_patch = lr_patch_shape(task)
        if len(self.hr_shape) != 3 or min(self.hr_shape) < HR_PATCH:
            raise ValueError(f"HR shape {hr_shape} must be 3D and >= {HR_PATCH} per axis")
        if any(n % s for n, s in zip(self.hr_shape, self.scale, strict=True)):
            raise ValueError(f"HR shape {hr_shape} must be a multiple of the {task} scale")
        if stride < 1 or any(stride % s for s in self.scale):
            raise ValueError(f"stride {stride} must be a positive multiple of the {task} scale")
        self.stride = int(stride)
        axes = []
        for n in self.hr_shape:
            o = list(range(0, n - HR_PATCH + 1, stride))
            if o[-1] != n - HR_PATCH:
                o.append(n - HR_PATCH)
            axes.append(np.asarray(o))
        grid = np.meshgrid(*axes, indexing="ij")
        self.origins = np.stack([g.ravel() for g in grid], axis=1).astype(np.int64)
        self._count = self._accumulate(np.ones((len(self.origins), 1) + (HR_PATCH,) * 3))

    @property
    def lr_shape(self) -> tuple[int, int, int]:
        return tuple(int(n // s) for n, s in zip(self.hr_shape, self.scale, strict=True))  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.origins)

    def lr_patches(self, lr_volume: np.ndarray) -> np.ndarray:
        """`(M, 1, *lr_patch)` float32 tiles of an LR volume, aligned with `origins // scale`."""
        if tuple(lr_volume.shape) != self.lr_shape:
            raise ValueError(f"LR volume shape {lr_volume.shape} != expected {self.lr_shape}")
        lo = self.origins // self.scale
        win = sliding_window_view(np.asarray(lr_volume, dtype=np.float32), self.lr_patch)
        return win[lo[:, 0], lo[:, 1], lo[:, 2]][:, None].copy()

    def hr_patches(self, hr_volume: np.ndarray) -> np.ndarray:
        """`(M, 1, 16, 16, 16)` float32 tiles of an HR volume at `origins`."""
        if tuple(hr_volume.shape) != self.hr_shape:
            raise ValueError(f"HR volume shape {hr_volume.shape} != expected {self.hr_shape}")
        win = sliding_window_view(np.asarray(hr_volume, dtype=np.float32), (HR_PATCH,) * 3)
        o = self.origins
        return win[o[:, 0], o[:, 1], o[:, 2]][:, None].copy()

    def _accumulate(self, patches: np.ndarray) -> np.ndarray:
        out = np.zeros(self.hr_shape, dtype=np.float64)
        # One slice-add per tile; measured faster than a separable or fancy-indexed scatter
        # (benchmarks/bench_reconstruct.py: assembly is ~1% of a reconstruction).
        for (x, y, z), p in zip(self.origins.tolist(), patches[:, 0], strict=True):
            out[x : x + HR_PATCH, y : y + HR_PATCH, z : z + HR_PATCH] += p
        return out

    def assemble(self, hr_patches: np.ndarray) -> np.ndarray:
        """Average overlapping HR tiles `(M, 1, 16, 16, 16)` back into a volume `(X, Y, Z)`."""
        expected = (len(self.origins), 1) + (HR_PATCH,) * 3
        if tuple(hr_patches.shape) != expected:
            raise ValueError(f"patches shape {hr_patches.shape} != expected {expected}")
        return (self._accumulate(np.asarray(hr_patches)) / self._count).astype(np.float32)
