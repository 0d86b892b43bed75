"""A quick text summary of a dataset (`ssmoe info`): geometry per subject, intensities per b-shell.

Intensities are sampled, not exhaustive: a few HR volumes per b-shell of each subject, voxels in
the brain mask, so the summary of a full-protocol dataset takes seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ssmoe.data.reader import MudiDataset, Subject


def geometry_table(dataset: MudiDataset) -> pd.DataFrame:
    """One row per subject: volumes, HR/LR shapes and voxel sizes (mm), mask voxels."""
    rows = []
    for s in dataset:
        row = {
            "subject": s.id,
            "volumes": s.n_volumes,
            "hr_shape": "x".join(map(str, s.hr_shape)),
            "hr_voxel_mm": _voxel(s.hr_affine),
        }
        for task in ("aniso", "iso"):
            if task in s.tasks:
                row[f"{task}_shape"] = "x".join(map(str, s.lr_shape(task)))
                row[f"{task}_voxel_mm"] = _voxel(s.lr_affine(task))
            else:
                row[f"{task}_shape"] = row[f"{task}_voxel_mm"] = "missing"
        row["mask_voxels"] = int(s.mask.sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _voxel(affine: np.ndarray) -> str:
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return "x".join(f"{z:g}" for z in zooms)


def shell_intensities(subject: Subject, per_shell: int = 3, seed: int = 0) -> pd.DataFrame:
    """Masked HR intensity statistics per b-shell from `per_shell` sampled volumes.

    Columns: b (rounded to 100 s/mm^2), volumes (in the shell), sampled, min, p01, median, p99,
    max, mean_min / mean_max (range of the sampled volumes' mean intensity).
    """
    rng = np.random.default_rng(seed)
    b = np.round(subject.params[:, 3], -2)
    mask = subject.mask
    rows = []
    for shell in np.unique(b):
        vols = np.flatnonzero(b == shell)
        pick = np.sort(rng.choice(vols, size=min(per_shell, len(vols)), replace=False))
        values = [subject.hr_volume(int(v))[mask] for v in pick]
        allv = np.concatenate(values)
        means = [float(v.mean()) for v in values]
        q = np.percentile(allv, [0, 1, 50, 99, 100])
        rows.append(
            {
                "b": int(shell),
                "volumes": len(vols),
                "sampled": len(pick),
                "min": q[0],
                "p01": q[1],
                "median": q[2],
                "p99": q[3],
                "max": q[4],
                "mean_min": min(means),
                "mean_max": max(means),
            }
        )
    return pd.DataFrame(rows)


def describe(dataset: MudiDataset, per_shell: int = 3, subjects: int | None = 1) -> str:
    """Text report: geometry of every subject, intensities per b-shell of the first `subjects`."""
    lines = [f"dataset {dataset.root}: {len(dataset)} subjects"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        lines.append(geometry_table(dataset).to_string(index=False))
        for s in list(dataset)[: subjects or len(dataset)]:
            lines.append("")
            lines.append(f"{s.id}: masked HR intensities per b-shell ({per_shell} volumes/shell)")
            table = shell_intensities(s, per_shell)
            lines.append(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return "\n".join(lines)
