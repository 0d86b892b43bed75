"""Every figure of ssmoe, as matplotlib ``Figure`` objects built from plain arrays and frames:
the phases log them (``ssmoe.tracking.log_figure``), the report saves them (``save_figure``).

The paper's Fig. 1 (``mse_histogram``), Fig. 3 (``coronal_view``), Fig. S2
(``mse_distributions``), Fig. S3 (``confusion_matrix``), the phase-1 score distribution with the
segmenter's thresholds (``score_histogram``) and the tuning figures (``tuning_history``,
``importance_bars``). None of them touches MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)
from scipy.stats import gaussian_kde  # noqa: E402

from ssmoe.vocabulary import METHOD_NAMES, METHODS  # noqa: E402

DPI = 110
COLORS = {"cubic": "#7f7f7f", "unet": "#1f77b4", "hardmoe": "#ff7f0e", "ssmoe": "#2ca02c"}


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders made), free it, return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _positive(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values) & (values > 0)]


def _pow10(x: float, _pos: int) -> str:
    return f"$10^{{{x:g}}}$"


def _log_x(ax: plt.Axes, values: np.ndarray) -> None:
    """Log x axis whose labels never overlap: decades, or 1-2-5 steps over < 2 decades."""
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    if np.log10(values.max() / values.min()) < 2:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))


def mse_histogram(mse_by_panel: Mapping[str, np.ndarray], bins: int = 30) -> Figure:
    """Fig. 1: histogram of per-volume MSE in `bins` log-spaced bins, with a density line.

    The density is a Gaussian KDE of log10(MSE), scaled to counts per bin (N x log10 bin width)
    so it sits on the bars. One panel per entry of `mse_by_panel` (title -> (V,) MSE values).
    """
    n = len(mse_by_panel)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 3.6), squeeze=False)
    for ax, (title, values) in zip(axes[0], mse_by_panel.items(), strict=True):
        mse = _positive(values)
        logs = np.log10(mse)
        lo, hi = logs.min(), logs.max()
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.logspace(lo, hi, bins + 1)
        ax.hist(mse, bins=edges, color="#4c72b0", edgecolor="white", linewidth=0.5, label="volumes")
        if len(mse) > 1 and np.ptp(logs) > 0:
            grid = np.linspace(lo, hi, 256)
            width = (hi - lo) / bins
            density = gaussian_kde(logs)(grid) * len(mse) * width
            ax.plot(10**grid, density, color="#d62728", linewidth=2, label="density")
        _log_x(ax, mse)
        ax.set_xlabel("per-volume MSE (log scale)")
        ax.set_ylabel("number of volumes")
        ax.set_title(title, fontsize=10)
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def mse_distributions(frames: Mapping[str, pd.DataFrame], seed: int = 0) -> Figure:
    """Fig. S2: per-method per-volume MSE distributions (violin + box + jittered points, log10).

    `frames`: panel title -> `evaluation/per_volume_mse.csv` (one column per method).
    """
    rng = np.random.default_rng(seed)
    n = len(frames)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.0), squeeze=False)
    for ax, (title, df) in zip(axes[0], frames.items(), strict=True):
        methods = [m for m in METHODS if m in df.columns]
        data = [np.log10(_positive(df[m].to_numpy())) for m in methods]
        pos = np.arange(1, len(methods) + 1)
        keep = [i for i, d in enumerate(data) if len(d) > 1 and np.ptp(d) > 0]
        if keep:
            parts = ax.violinplot(
                [data[i] for i in keep], positions=pos[keep], widths=0.8, showextrema=False
            )
            for body, i in zip(parts["bodies"], keep, strict=True):
                body.set_facecolor(COLORS.get(methods[i], "#999999"))
                body.set_alpha(0.35)
        ax.boxplot(data, positions=pos, widths=0.18, showfliers=False, medianprops={"color": "k"})
        for p, d, m in zip(pos, data, methods, strict=True):
            jitter = rng.uniform(-0.22, 0.22, len(d))
            ax.scatter(p + jitter, d, s=4, alpha=0.45, color=COLORS.get(m, "#555555"), lw=0)
        ax.set_xticks(pos, [METHOD_NAMES.get(m, m) for m in methods])
        span = max((np.ptp(d) for d in data if len(d)), default=0.0)
        if span > 2:  # whole decades only, as on a log axis
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(_pow10))
        ax.set_ylabel("per-volume MSE (log scale)")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _extent(shape: tuple[int, ...], zooms: Sequence[float] | np.ndarray) -> list[float]:
    """imshow extent in mm of a coronal (x, z) slice displayed with z upwards."""
    zx, zz = float(zooms[0]), float(zooms[-1])
    return [0.0, shape[0] * zx, 0.0, shape[1] * zz]


def _zoom_box(err: np.ndarray, frac: float = 0.3) -> tuple[int, int, int, int]:
    """(x0, z0, wx, wz) voxel box of size `frac` of the slice around the largest smoothed error."""
    wx, wz = max(2, int(err.shape[0] * frac)), max(2, int(err.shape[1] * frac))
    csum = np.cumsum(np.cumsum(np.pad(err, ((1, 0), (1, 0))), 0), 1)
    window = csum[wx:, wz:] - csum[:-wx, wz:] - csum[wx:, :-wz] + csum[:-wx, :-wz]
    x0, z0 = np.unravel_index(int(np.argmax(window)), window.shape)
    return int(x0), int(z0), wx, wz


def coronal_view(data: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """Fig. 3: coronal slices (LR, Interp., SR U-Net, Hard MoE, SS-MoE, HR), error maps, zoom.

    `data` is `evaluation/coronal.npz`: 2-D (x, z) slices `lr` (LR grid), `cubic`, `unet`,
    `hardmoe`, `ssmoe`, `hr` (HR grid); `hr_zooms`, `lr_zooms` voxel sizes in mm. Slices are
    drawn with z upwards and true physical aspect. Error maps are (pred - HR)^2 divided by the
    largest squared error over all methods (one colour scale, 0..1). The zoomed region (box) is
    the window with the largest interpolation error; row 3 enlarges it.
    """
    hr = np.asarray(data["hr"], dtype=float)
    hr_zooms = np.atleast_1d(data.get("hr_zooms", np.ones(3)))
    lr_zooms = np.atleast_1d(data.get("lr_zooms", hr_zooms))
    panels = [("lr", "LR"), ("cubic", "Interp."), ("unet", "SR U-Net")]
    panels += [("hardmoe", "Hard MoE"), ("ssmoe", "SS-MoE"), ("hr", "HR")]
    panels = [(k, label) for k, label in panels if k in data]
    preds = [k for k, _ in panels if k in METHODS]
    sq = {k: (np.asarray(data[k], dtype=float) - hr) ** 2 for k in preds}
    scale = max((float(e.max()) for e in sq.values()), default=1.0) or 1.0
    err = {k: e / scale for k, e in sq.items()}
    box = _zoom_box(err.get("cubic", next(iter(err.values()), hr)))
    vmin, vmax = np.percentile(hr, [0.5, 99.5])
    hr_ext = _extent(hr.shape, hr_zooms)

    ncol = len(panels)
    aspect = (hr_ext[3] - hr_ext[2]) / (hr_ext[1] - hr_ext[0])  # height / width in mm
    fig, axes = plt.subplots(
        3, ncol, figsize=(2.3 * ncol, 3 * (2.1 * aspect + 0.45) + 0.4), squeeze=False
    )
    err_img = None
    for col, (key, label) in enumerate(panels):
        img = np.asarray(data[key], dtype=float)
        ext = _extent(img.shape, lr_zooms if key == "lr" else hr_zooms)
        top, mid, bot = axes[0, col], axes[1, col], axes[2, col]
        top.imshow(img.T, origin="lower", cmap="gray", vmin=vmin, vmax=vmax, extent=ext)
        top.set_title(f"({'abcdef'[col]}) {label}", fontsize=9)
        x0, z0, wx, wz = box
        zx, zz = float(hr_zooms[0]), float(hr_zooms[-1])
        rect = (x0 * zx, z0 * zz), wx * zx, wz * zz
        top.add_patch(Rectangle(*rect, fill=False, edgecolor="yellow", linewidth=1))
        if key in err:
            err_img = mid.imshow(
                err[key].T, origin="lower", cmap="inferno", vmin=0, vmax=1, extent=hr_ext
            )
            mid.add_patch(Rectangle(*rect, fill=False, edgecolor="cyan", linewidth=1))
            crop = err[key][x0 : x0 + wx, z0 : z0 + wz]
            bot.imshow(
                crop.T,
                origin="lower",
                cmap="inferno",
                vmin=0,
                vmax=float(max(e[x0 : x0 + wx, z0 : z0 + wz].max() for e in err.values()) or 1),
                extent=[0, wx * zx, 0, wz * zz],
            )
            bot.set_title(f"zoom, mean {crop.mean():.2e}", fontsize=8)
        for ax in (top, mid, bot):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
        if key not in err:  # LR (other grid) and HR (the reference) have no error map
            mid.axis("off")
            bot.axis("off")
    first = next(i for i, (k, _) in enumerate(panels) if k in err) if err else 0
    axes[0, 0].set_ylabel("image", fontsize=9)
    axes[1, first].set_ylabel("normalised sq. error", fontsize=9)
    axes[2, first].set_ylabel("zoomed error", fontsize=9)
    if err_img is not None:
        fig.colorbar(err_img, ax=axes[1, :].tolist(), fraction=0.015, pad=0.01)
    if title:
        fig.suptitle(title, fontsize=10, y=0.995)
    fig.subplots_adjust(hspace=0.25, wspace=0.08, top=0.9)
    return fig


def confusion_matrix(matrices: Mapping[str, pd.DataFrame]) -> Figure:
    """Fig. S3: gater confusion matrices (rows true pseudo label, columns predicted; counts).

    Colours are row-normalised (recall per true class); cells show counts and row fraction.
    """
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 3.9), squeeze=False)
    for ax, (title, cm) in zip(axes[0], matrices.items(), strict=True):
        counts = cm.to_numpy(dtype=float)
        rows = counts.sum(axis=1, keepdims=True)
        frac = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
        im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        for (i, j), c in np.ndenumerate(counts):
            color = "white" if frac[i, j] > 0.55 else "black"
            ax.text(j, i, f"{int(c)}\n{frac[i, j]:.2f}", ha="center", va="center",
                    fontsize=max(6, 13 - counts.shape[0]), color=color)  # fmt: skip
        ax.set_xticks(range(counts.shape[1]), [str(c) for c in cm.columns])
        ax.set_yticks(range(counts.shape[0]), [str(i) for i in cm.index])
        ax.set_xlabel("predicted pseudo label (gater)")
        ax.set_ylabel("true pseudo label")
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="row fraction")
    fig.tight_layout()
    return fig


def score_histogram(
    scores: np.ndarray, thresholds: Sequence[float] | np.ndarray = (), title: str = ""
) -> Figure:
    """Phase-1 patch scores (log-spaced bins) with the segmenter's class thresholds."""
    s = _positive(scores)
    edges = np.logspace(np.log10(s.min()), np.log10(s.max()) + 1e-9, 41).tolist()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.hist(s, bins=edges, color="#8172b2", edgecolor="white", linewidth=0.5)
    for i, t in enumerate(thresholds):
        ax.axvline(float(t), color="#d62728", linestyle="--", linewidth=1.2,
                   label="thresholds" if i == 0 else None)  # fmt: skip
    _log_x(ax, s)
    ax.set_xlabel("phase-1 patch score (MSE, log scale)")
    ax.set_ylabel("patches")
    ax.set_title(title, fontsize=10)
    if len(thresholds):
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def tuning_history(frame: pd.DataFrame) -> Figure | None:
    """Objective of every complete trial (by K and segmenter), pruned trials (x) and the best so
    far; ``frame`` is one row per trial (number, state, k, segmenter, objective). None when no
    trial completed."""
    done = frame[frame.state == "COMPLETE"].dropna(subset=["objective"])
    if not len(done):
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for (k, seg), grp in done.groupby(["k", "segmenter"]):
        ax.scatter(grp.number, grp.objective, s=22, label=f"K={k}, {seg}", zorder=3)
    pruned = frame[frame.state == "PRUNED"]
    if len(pruned):
        y = pruned.objective.fillna(done.objective.max())
        ax.scatter(pruned.number, y, marker="x", color="#999999", label="pruned", zorder=2)
    ax.step(
        done.number, done.objective.cummin(), where="post", color="#d62728", label="best so far"
    )
    ax.set_xlabel("trial number")
    ax.set_ylabel("objective (val. mean per-volume MSE)")
    ax.set_yscale("log" if (done.objective > 0).all() else "linear")
    ax.legend(fontsize=7, frameon=False, bbox_to_anchor=(1.02, 1), loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title("Optimisation history", fontsize=10)
    return fig


def importance_bars(importances: Mapping[str, float]) -> Figure:
    """Horizontal bars of parameter importances (normalised, e.g. fANOVA)."""
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(5.2, 0.5 + 0.55 * len(names)))
    ax.barh(names, [importances[n] for n in names], color="#4c72b0")
    for i, n in enumerate(names):
        ax.text(importances[n], i, f" {importances[n]:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("importance (fANOVA, normalised)")
    ax.set_title("Parameter importance", fontsize=10)
    return fig
