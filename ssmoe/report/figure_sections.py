"""The figure sections: Fig. 1, Fig. S2, Fig. 3, Fig. S3 and the phase-1 scores with the
segmenter's thresholds, each drawn by ``ssmoe.evaluation.figures`` from logged artifacts."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ssmoe.evaluation import figures
from ssmoe.report.context import Context, Section, missing, panel_title
from ssmoe.tracking import Run
from ssmoe.vocabulary import TASK_NAMES

PER_VOLUME = "evaluation/per_volume_mse.csv"


def _per_volume(ctx: Context) -> dict[str, tuple[str, pd.DataFrame]]:
    out = {}
    for task in ctx.tasks:
        hit = ctx.figure_run(task, PER_VOLUME)
        if hit is not None:
            subject, run = hit
            out[task] = (subject, ctx.store.csv(run, PER_VOLUME))
    return out


# The sections that show one figure: id -> (heading, file under figures/, caption).
_ONE_FIGURE = {
    "fig1": (
        "Fig. 1 — distribution of interpolation errors",
        "fig1_mse_histogram.png",
        "Fig. 1. Histogram of per-volume MSE between cubic-spline-interpolated LR volumes and "
        "HR volumes, 30 log-spaced bins (blue), with the density of log10 MSE scaled to "
        "counts (red).",
    ),
    "fig_s2": (
        "Fig. S2 — per-volume MSE distribution of each method",
        "fig_s2_distributions.png",
        "Fig. S2. Per-volume MSE of every method (violin, box: quartiles, points: volumes), "
        "log scale.",
    ),
    "fig_s3": (
        "Fig. S3 — gater confusion matrix",
        "fig_s3_confusion.png",
        "Fig. S3. Confusion matrix of the gater: rows are the true pseudo error labels, "
        "columns the predicted ones; counts, colours normalised per row.",
    ),
}


def _one_figure(ctx: Context, section: str, figure: Figure | None, artifact: str) -> Section:
    """Section ``section`` showing ``figure`` (None: no panel had the artifact's data)."""
    title, name, caption = _ONE_FIGURE[section]
    sec = Section(section, title)
    if figure is None:
        sec.missing = ctx.missing_artifact(artifact)
    else:
        sec.add_figure(ctx, figure, name, caption)
    return sec


def section_fig1(ctx: Context) -> Section:
    data = {
        panel_title(task, subject): df["cubic"].to_numpy()
        for task, (subject, df) in _per_volume(ctx).items()
        if "cubic" in df.columns
    }
    figure = figures.mse_histogram(data) if data else None
    return _one_figure(ctx, "fig1", figure, "per_volume_mse.csv")


def section_fig_s2(ctx: Context) -> Section:
    data = {panel_title(t, s): df for t, (s, df) in _per_volume(ctx).items()}
    figure = figures.mse_distributions(data) if data else None
    return _one_figure(ctx, "fig_s2", figure, "per_volume_mse.csv")


def section_fig3(ctx: Context) -> Section:
    sec = Section("fig3", "Fig. 3 — coronal view with error maps")
    path = "evaluation/coronal.npz"
    for task in ctx.tasks:
        hit = ctx.figure_run(task, path)
        if hit is None:
            continue
        subject, run = hit
        data = ctx.store.npz(run, path)
        assert data is not None  # figure_run checked that the artifact exists
        volume = int(data["volume"]) if "volume" in data else "?"
        slice_ = int(data["slice"]) if "slice" in data else "?"
        title = f"{panel_title(task, subject)}, volume {volume}, coronal slice {slice_}"
        sec.add_figure(
            ctx,
            figures.coronal_view(data, title=title),
            f"fig3_coronal_{task}.png",
            f"Fig. 3 ({TASK_NAMES.get(task, task)}). Coronal views of volume {volume} "
            f"(slice {slice_}) of test subject {subject}: (a) LR, (b) cubic interpolation, "
            "(c) SR U-Net, (d) Hard MoE, (e) SS-MoE, (f) HR. Row 2: squared difference to HR "
            "normalised by the largest over all methods; row 3: the boxed region enlarged.",
        )
    if not sec.figures:
        sec.missing = ctx.missing_artifact(path)
    return sec


def _confusion_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`confusion.csv` as a square count matrix (first column taken as labels when present)."""
    if df.shape[1] == df.shape[0] + 1:
        df = df.set_index(df.columns[0])
    df.index = [str(i) for i in df.index]
    df.columns = [str(c).removeprefix("pred_") for c in df.columns]  # evaluate logs pred_<j>
    return df


def section_fig_s3(ctx: Context) -> Section:
    path = "evaluation/confusion.csv"
    data = {}
    for task in ctx.tasks:
        hit = ctx.figure_run(task, path)
        if hit is not None:
            subject, run = hit
            data[panel_title(task, subject)] = _confusion_frame(ctx.store.csv(run, path))
    figure = figures.confusion_matrix(data) if data else None
    return _one_figure(ctx, "fig_s3", figure, path)


def _phase2_runs(ctx: Context) -> list[tuple[str, Run]]:
    """The phase-2 run behind each task's figure fold, else the latest phase-2 run."""
    pairs: list[tuple[str, Run]] = []
    for task in ctx.tasks:
        hit = next(reversed(ctx.folds[task].items()), None)
        phase2 = ctx.store.upstream(hit[1], "phase2") if hit else None
        if phase2 is not None:
            pairs.append((TASK_NAMES.get(task, task), phase2))
    if not pairs and ctx.store.by_step("phase2"):
        pairs.append(("latest phase-2 run", ctx.store.by_step("phase2")[-1]))
    return pairs


def section_scores(ctx: Context) -> Section:
    sec = Section("scores", "Pseudo error labels — phase-1 scores and segmenter thresholds")
    for label, phase2 in _phase2_runs(ctx):
        seg = ctx.store.json(phase2, "segmenter/segmenter.json") or {}
        phase1 = ctx.store.upstream(phase2, "phase1")
        if phase1 is None and ctx.store.by_step("phase1"):
            phase1 = ctx.store.by_step("phase1")[-1]
        scores = ctx.store.csv(phase1, "scores/patch_scores.csv") if phase1 else None
        if phase1 is None or scores is None or "score" not in scores.columns:
            continue
        method, k, counts = seg.get("method", "?"), seg.get("k", "?"), seg.get("counts")
        sec.add_figure(
            ctx,
            figures.score_histogram(
                scores["score"].to_numpy(), seg.get("thresholds", []), f"{label}: {method}, K={k}"
            ),
            f"scores_{phase2.info.run_id[:8]}.png",
            f"Phase-1 patch scores ({label}, phase-1 run {phase1.info.run_id[:8]}) with the "
            f"thresholds of segmenter {method} (K={k}, phase-2 run {phase2.info.run_id[:8]})"
            + (f"; patches per class {counts}." if counts is not None else "."),
        )
    if not sec.figures:
        sec.missing = missing("phase1 with scores/patch_scores.csv")
    return sec
