"""Figures logged by the phases (the report rebuilds its own from the logged tables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _log_bins(values: np.ndarray, n: int = 30) -> np.ndarray:
    positive = values[values > 0]
    lo, hi = (positive.min(), positive.max()) if positive.size else (1e-6, 1.0)
    if hi <= lo:
        hi = lo * 10
    return np.logspace(np.log10(lo), np.log10(hi), n + 1)


def score_histogram(
    scores: np.ndarray,
    thresholds: Sequence[float] | np.ndarray = (),
    title: str = "Phase-1 patch scores",
) -> Figure:
    """Log-scale histogram of per-patch MSE scores, with segmenter boundaries if given."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(scores, bins=_log_bins(np.asarray(scores)).tolist(), color="tab:blue", alpha=0.8)
    for t in thresholds:
        ax.axvline(t, color="tab:red", lw=1.5, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("per-patch MSE $e_i$")
    ax.set_ylabel("patches")
    ax.set_title(title + (f" ({len(thresholds) + 1} classes)" if len(thresholds) else ""))
    fig.tight_layout()
    return fig


def confusion_figure(matrix: np.ndarray, title: str = "Gater confusion") -> Figure:
    """Confusion matrix (rows: pseudo label, columns: gater prediction), row-normalised colour."""
    m = np.asarray(matrix, dtype=float)
    rows = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{int(m[i, j])}",
                ha="center",
                va="center",
                color="white" if rows[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("pseudo error label")
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def mse_distributions(per_volume: Mapping[str, np.ndarray]) -> Figure:
    """Per-volume MSE per method: log-scale histograms on one axis (paper Figs. 1 and S2)."""
    values = np.concatenate([np.asarray(v) for v in per_volume.values()])
    bins = _log_bins(values).tolist()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, v in per_volume.items():
        ax.hist(v, bins=bins, histtype="step", lw=1.8, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("per-volume MSE")
    ax.set_ylabel("volumes")
    ax.legend()
    fig.tight_layout()
    return fig
