"""A montage PNG of one subject across contrasts: HR beside its aniso and iso LR versions.

Rows are contrasts picked from the subject's protocol (b=0 at long and short TI and near the
white-matter null, long TE, b=1000 and b=3000); columns are an axial and a coronal slice of the
HR, aniso LR and iso LR volumes, drawn at their physical size (mm) with nearest-neighbour pixels
so the LR blocks are visible. Each row has its own grey scale (intensities are quantitative and
differ by orders of magnitude between rows); the row label gives the scale's top.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssmoe.data.reader import MudiDataset, Subject

# (label, b s/mm^2, TI ms, TE ms) targets; the nearest available volume is shown and its
# actual b, TI, TE are printed beside the row.
CONTRASTS: tuple[tuple[str, float, float, float], ...] = (
    ("low b, long TI", 0, 7322.7, 80),
    ("low b, TI ~ WM null", 0, 550, 80),
    ("low b, short TI", 0, 20, 80),
    ("low b, long TE", 0, 4000, 130),
    ("b ~ 1000", 1000, 4000, 80),
    ("b ~ 3000", 3000, 4000, 80),
)


def pick_volumes(params: np.ndarray) -> list[tuple[str, int]]:
    """`(label, volume index)` per contrast target: the nearest distinct volume of `params`."""
    chosen: list[tuple[str, int]] = []
    used: set[int] = set()
    for label, b, ti, te in CONTRASTS:
        dist = (
            np.abs(params[:, 3] - b) / 250.0
            + np.abs(np.log(params[:, 4] / ti))
            + np.abs(params[:, 5] - te) / 25.0
        )
        dist[list(used)] = np.inf
        v = int(np.argmin(dist))
        used.add(v)
        chosen.append((label, v))
    return chosen


def _extent(shape2: tuple[int, int], zooms2: np.ndarray) -> list[float]:
    return [0, shape2[0] * zooms2[0], 0, shape2[1] * zooms2[1]]


def render_preview(dataset: MudiDataset, out: Path, subject: str | None = None) -> Path:
    """Write the montage of `subject` (default: the first) to `out` (PNG); returns `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subj: Subject = dataset[subject] if subject else next(iter(dataset))
    tasks = subj.tasks
    mask = subj.mask
    zc = int(np.round(np.flatnonzero(mask.any(axis=(0, 1))).mean()))
    yc = int(np.round(np.flatnonzero(mask.any(axis=(0, 2))).mean()))
    rows = pick_volumes(subj.params)
    cols = [("HR", None)] + [(f"{t} LR", t) for t in tasks]
    fig, axes = plt.subplots(
        len(rows), 2 * len(cols), figsize=(2.1 * 2 * len(cols), 2.3 * len(rows)), squeeze=False
    )
    for r, (label, v) in enumerate(rows):
        hr = subj.hr_volume(v)
        vmax = float(np.percentile(hr[mask], 99.5)) or 1.0
        b, ti, te = subj.params[v, 3:]
        for c, (name, task) in enumerate(cols):
            if task is None:
                vol, affine = hr, subj.hr_affine
            else:
                vol, affine = subj.lr_volume(task, v), subj.lr_affine(task)
            zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
            hr_zooms = np.sqrt((subj.hr_affine[:3, :3] ** 2).sum(axis=0))
            scale = np.round(zooms / hr_zooms).astype(int)
            axial = vol[:, :, zc // scale[2]]
            coronal = vol[:, yc // scale[1], :]
            for k, (img, ext) in enumerate(
                (
                    (axial, _extent(axial.shape, zooms[[0, 1]])),
                    (coronal, _extent(coronal.shape, zooms[[0, 2]])),
                )
            ):
                ax = axes[r, 2 * c + k]
                ax.imshow(
                    img.T, origin="lower", cmap="gray", vmin=0, vmax=vmax,
                    extent=ext, interpolation="nearest",
                )  # fmt: skip
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"{name} {'axial' if k == 0 else 'coronal'}", fontsize=9)
        axes[r, 0].set_ylabel(
            f"{label}\nv{v}: b={b:g} TI={ti:.0f}\nTE={te:g}  max {vmax:.3g}", fontsize=8
        )
    fig.suptitle(f"{subj.id} ({dataset.root.name}): {subj.n_volumes} volumes", fontsize=11)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
