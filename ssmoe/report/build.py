"""`build_report`: MLflow runs -> sections (tables + figures) -> `index.html` in one folder.

Each section builder reads what it needs from a `RunStore` and returns a `Section`; a section
whose runs or artifacts are absent says so ("not available (no runs of kind X)") instead of
failing the whole report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import optuna
import pandas as pd
from mlflow.entities import Run

from ssmoe.report import figures, tables, tuning
from ssmoe.report.collect import (
    EvalKey,
    RunStore,
    default_setting,
    fold_runs,
    step_of,
    tasks_present,
)
from ssmoe.report.tables import Table
from ssmoe.vocabulary import METHOD_NAMES, METHODS, STATISTIC_NAMES, STATISTICS, TASK_NAMES

log = logging.getLogger(__name__)

_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# Next to this file (not importlib.resources): works for wheels, editable and namespace imports.
TEMPLATES = Path(__file__).parent / "templates"
FIG_DIR = "figures"
TABLE_DIR = "tables"


@dataclass
class Figure:
    """A PNG under `figures/` (path relative to the page) and its caption."""

    src: str
    caption: str


@dataclass
class Section:
    """One heading of the page: tables and figures, or a note saying why it is empty."""

    id: str
    title: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    missing: str | None = None
    intro: str = ""


class _Context:
    """What every section builder shares: the store, the output folder, the chosen folds."""

    def __init__(self, store: RunStore, out_dir: Path) -> None:
        self.store = store
        self.out_dir = out_dir
        self.evals = store.evaluations()
        self.tasks = tasks_present(self.evals)
        self.settings: dict[str, tuple[int | None, str]] = {}
        for task in self.tasks:
            setting = default_setting(self.evals, task)
            assert setting is not None  # the task has evaluate runs
            self.settings[task] = setting
        self.folds = {t: fold_runs(self.evals, t) for t in self.tasks}

    def fig_path(self, name: str) -> Path:
        return self.out_dir / FIG_DIR / name

    def figure_run(self, task: str, artifact: str) -> tuple[str, Run] | None:
        """The fold shown in figures: the last test subject (as the paper) having `artifact`."""
        for subject, run in reversed(self.folds[task].items()):
            if self.store.artifact(run, artifact) is not None:
                return subject, run
        return None

    def setting_text(self, task: str) -> str:
        k, segmenter = self.settings[task]
        return f"K={k}, segmenter {segmenter}"


def _missing(kind: str) -> str:
    return f"not available (no runs of kind {kind})"


def _no_artifact(path: str) -> str:
    return f"not available (no evaluate run logged the artifact {path})"


# --- sections ---------------------------------------------------------------------------------


def section_table1(ctx: _Context) -> Section:
    sec = Section("table1", "Table 1 — methods across cross-validation folds")
    if not ctx.tasks:
        sec.missing = _missing("evaluate")
        return sec
    sec.tables.append(
        tables.table1({t: ctx.folds[t] for t in ctx.tasks}, {t: ctx.settings[t] for t in ctx.tasks})
    )
    return sec


def section_table2(ctx: _Context) -> Section:
    sec = Section("table2", "Table 2 — number of pseudo error classes K")
    groups: dict[tuple[str, str], dict[int, Run]] = {}
    for key, run in ctx.evals.items():
        if key.k is None:
            continue
        # Keep the task's default segmenter so that K is the only thing that changes.
        if key.segmenter != ctx.settings[key.task][1]:
            continue
        groups.setdefault((key.task, key.test_subject), {})[key.k] = run
    if not groups:
        sec.missing = _missing("evaluate")
        return sec
    (task, subject), runs = max(groups.items(), key=lambda kv: (len(kv[1]), kv[0][0] == "iso"))
    if len(runs) < 2:
        sec.missing = "not available (no task and fold was evaluated with more than one K)"
        return sec
    sec.tables.append(tables.table2(runs, task, subject, ctx.settings[task][1]))
    return sec


def section_table_s1(ctx: _Context) -> Section:
    sec = Section("table_s1", "Table S1 — pairwise Wilcoxon signed-rank tests")
    path = "evaluation/wilcoxon.csv"
    for task in ctx.tasks:
        frames = {}
        for subject, run in ctx.folds[task].items():
            df = ctx.store.csv(run, path)
            if df is not None and len(df):
                frames[subject] = df
        if frames:
            sec.tables.append(tables.table_s1(frames, task, ctx.setting_text(task)))
    if not sec.tables:
        sec.missing = _missing("evaluate") if not ctx.tasks else _no_artifact(path)
    return sec


def _per_volume(ctx: _Context) -> dict[str, tuple[str, pd.DataFrame]]:
    path = "evaluation/per_volume_mse.csv"
    out = {}
    for task in ctx.tasks:
        hit = ctx.figure_run(task, path)
        if hit is not None:
            subject, run = hit
            out[task] = (subject, ctx.store.csv(run, path))
    return out


def section_fig1(ctx: _Context) -> Section:
    sec = Section("fig1", "Fig. 1 — distribution of interpolation errors")
    data = {
        figures.panel_title(task, subject): df["cubic"].to_numpy()
        for task, (subject, df) in _per_volume(ctx).items()
        if "cubic" in df.columns
    }
    if not data:
        sec.missing = _missing("evaluate") if not ctx.tasks else _no_artifact("per_volume_mse.csv")
        return sec
    figures.mse_histogram(data, ctx.fig_path("fig1_mse_histogram.png"))
    sec.figures.append(
        Figure(
            f"{FIG_DIR}/fig1_mse_histogram.png",
            "Fig. 1. Histogram of per-volume MSE between cubic-spline-interpolated LR volumes and "
            "HR volumes, 30 log-spaced bins (blue), with the density of log10 MSE scaled to "
            "counts (red).",
        )
    )
    return sec


def section_fig_s2(ctx: _Context) -> Section:
    sec = Section("fig_s2", "Fig. S2 — per-volume MSE distribution of each method")
    data = {figures.panel_title(t, s): df for t, (s, df) in _per_volume(ctx).items()}
    if not data:
        sec.missing = _missing("evaluate") if not ctx.tasks else _no_artifact("per_volume_mse.csv")
        return sec
    figures.mse_distributions(data, ctx.fig_path("fig_s2_distributions.png"))
    sec.figures.append(
        Figure(
            f"{FIG_DIR}/fig_s2_distributions.png",
            "Fig. S2. Per-volume MSE of every method (violin, box: quartiles, points: volumes), "
            "log scale.",
        )
    )
    return sec


def section_fig3(ctx: _Context) -> Section:
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
        name = f"fig3_coronal_{task}.png"
        title = f"{figures.panel_title(task, subject)}, volume {volume}, coronal slice {slice_}"
        figures.coronal_view(data, ctx.fig_path(name), title=title)
        sec.figures.append(
            Figure(
                f"{FIG_DIR}/{name}",
                f"Fig. 3 ({TASK_NAMES.get(task, task)}). Coronal views of volume {volume} "
                f"(slice {slice_}) of test subject {subject}: (a) LR, (b) cubic interpolation, "
                "(c) SR U-Net, (d) Hard MoE, (e) SS-MoE, (f) HR. Row 2: squared difference to HR "
                "normalised by the largest over all methods; row 3: the boxed region enlarged.",
            )
        )
    if not sec.figures:
        sec.missing = _missing("evaluate") if not ctx.tasks else _no_artifact(path)
    return sec


def _confusion_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`confusion.csv` as a square count matrix (first column taken as labels when present)."""
    if df.shape[1] == df.shape[0] + 1:
        df = df.set_index(df.columns[0])
    df.index = [str(i) for i in df.index]
    df.columns = [str(c).removeprefix("pred_") for c in df.columns]  # evaluate logs pred_<j>
    return df


def section_fig_s3(ctx: _Context) -> Section:
    sec = Section("fig_s3", "Fig. S3 — gater confusion matrix")
    path = "evaluation/confusion.csv"
    data = {}
    for task in ctx.tasks:
        hit = ctx.figure_run(task, path)
        if hit is not None:
            subject, run = hit
            data[figures.panel_title(task, subject)] = _confusion_frame(ctx.store.csv(run, path))
    if not data:
        sec.missing = _missing("evaluate") if not ctx.tasks else _no_artifact(path)
        return sec
    figures.confusion_matrix(data, ctx.fig_path("fig_s3_confusion.png"))
    sec.figures.append(
        Figure(
            f"{FIG_DIR}/fig_s3_confusion.png",
            "Fig. S3. Confusion matrix of the gater: rows are the true pseudo error labels, "
            "columns the predicted ones; counts, colours normalised per row.",
        )
    )
    return sec


def section_scores(ctx: _Context) -> Section:
    sec = Section("scores", "Pseudo error labels — phase-1 scores and segmenter thresholds")
    pairs: list[tuple[str, Run]] = []
    for task in ctx.tasks:
        hit = next(reversed(ctx.folds[task].items()), None)
        phase2 = ctx.store.upstream(hit[1], "phase2") if hit else None
        if phase2 is not None:
            pairs.append((TASK_NAMES.get(task, task), phase2))
    if not pairs and ctx.store.by_step("phase2"):
        pairs.append(("latest phase-2 run", ctx.store.by_step("phase2")[-1]))
    for label, phase2 in pairs:
        seg = ctx.store.json(phase2, "segmenter/segmenter.json") or {}
        phase1 = ctx.store.upstream(phase2, "phase1")
        if phase1 is None and ctx.store.by_step("phase1"):
            phase1 = ctx.store.by_step("phase1")[-1]
        scores = ctx.store.csv(phase1, "scores/patch_scores.csv") if phase1 else None
        if phase1 is None or scores is None or "score" not in scores.columns:
            continue
        name = f"scores_{phase2.info.run_id[:8]}.png"
        title = f"{label}: {seg.get('method', '?')}, K={seg.get('k', '?')}"
        figures.score_histogram(
            scores["score"].to_numpy(), ctx.fig_path(name), seg.get("thresholds", []), title
        )
        counts = seg.get("counts")
        sec.figures.append(
            Figure(
                f"{FIG_DIR}/{name}",
                f"Phase-1 patch scores ({label}, phase-1 run {phase1.info.run_id[:8]}) with the "
                f"thresholds of segmenter {seg.get('method', '?')} (K={seg.get('k', '?')}, "
                f"phase-2 run {phase2.info.run_id[:8]})"
                + (f"; patches per class {counts}." if counts is not None else "."),
            )
        )
    if not sec.figures:
        sec.missing = _missing("phase1 with scores/patch_scores.csv")
    return sec


def section_tuning(ctx: _Context) -> Section:
    sec = Section("tuning", "Tuning — Optuna studies over K, segmenter and learning rate")
    tunes = ctx.store.by_step("tune")
    trial_runs = ctx.store.by_step("trial", finished_only=False)
    if not tunes and not trial_runs:
        sec.missing = _missing("tune")
        return sec
    frame = tuning.trials_frame(trial_runs)
    studies = list(dict.fromkeys(frame["study"])) if len(frame) else []
    for tune_run in tunes:
        name = tune_run.data.params.get("study", tune_run.info.run_name or tune_run.info.run_id)
        if name not in studies:
            studies.append(name)
    for name in studies:
        sub = frame[frame["study"] == name] if len(frame) else frame
        tune = next((t for t in reversed(tunes) if t.data.params.get("study") == name), None)
        if tune is None and len(tunes) == 1 and len(studies) == 1:
            tune = tunes[0]
        stem = f"tuning_{_slug(name)}"
        if len(sub) and (sub.state == "COMPLETE").any():
            sec.tables.append(tuning.ablation_table(sub, name))
            study = tuning.rebuild_study(sub, name)
            figs = tuning.tuning_figures(sub, study, ctx.out_dir / FIG_DIR, stem)
            if figs.history:
                sec.figures.append(
                    Figure(
                        f"{FIG_DIR}/{figs.history.name}",
                        f"Optimisation history of study {name!r}: objective of each complete "
                        "trial, pruned trials (x), and the best value so far.",
                    )
                )
            if figs.importance:
                sec.figures.append(
                    Figure(
                        f"{FIG_DIR}/{figs.importance.name}",
                        f"Parameter importance (fANOVA) in study {name!r}, rebuilt from "
                        f"{len(sub)} trial runs.",
                    )
                )
        if tune is not None:
            sec.tables.extend(_tune_run_tables(tune, name))
    if not sec.tables and not sec.figures:
        sec.missing = _missing("trial with ssmoe.trial_state=COMPLETE")
    return sec


def _tune_run_tables(tune: Run, study: str) -> list[Table]:
    """The tune run's own params and metrics (best trial, its test-subject evaluation)."""
    out = []
    metrics = dict(sorted(tune.data.metrics.items()))
    test = {
        (stat, method): metrics[f"test_{stat}_{method}"]
        for stat in STATISTICS
        for method in METHODS
        if f"test_{stat}_{method}" in metrics
    }
    if test:
        out.append(_test_table(test, study))
    if tune.data.params:
        out.append(
            tables.key_value_table(
                f"tune_params_{_slug(study)}",
                f"Parameters of the tune run of study {study!r} ({tune.info.run_id[:8]}).",
                dict(sorted(tune.data.params.items())),
            )
        )
    if metrics:
        out.append(
            tables.key_value_table(
                f"tune_metrics_{_slug(study)}",
                f"Metrics of the tune run of study {study!r} (best trial and its evaluation on "
                "the fold's test subject).",
                metrics,
            )
        )
    return out


def _test_table(test: dict[tuple[str, str], float], study: str) -> Table:
    methods = [m for m in METHODS if any(k[1] == m for k in test)]
    stats = [s for s in STATISTICS if any(k[0] == s for k in test)]
    rows = []
    for stat in stats:
        row = [tables.Cell(STATISTIC_NAMES[stat], header=True)]
        vals = {m: test.get((stat, m), np.nan) for m in methods}
        best = min(vals, key=lambda m: vals[m] if np.isfinite(vals[m]) else np.inf)
        for m in methods:
            row.append(tables.Cell(tables.fmt(vals[m]), bold=m == best, cls="num"))
        rows.append(row)
    frame = pd.DataFrame(
        [(s, m, v) for (s, m), v in test.items()], columns=["stat", "method", "value"]
    )
    return Table(
        id=f"tune_test_{_slug(study)}",
        caption=f"Best trial of study {study!r} evaluated once on the test subject "
        "(metrics test_{stat}_{method} of the tune run); best per row in bold.",
        columns=["Stats."] + [METHOD_NAMES[m] for m in methods],
        rows=rows,
        frame=frame,
    )


def section_provenance(ctx: _Context) -> Section:
    sec = Section("provenance", "Runs used")
    records = []
    for key, run in sorted(ctx.evals.items(), key=lambda kv: _sort_key(kv[0])):
        started = dt.datetime.fromtimestamp((run.info.start_time or 0) / 1000, dt.timezone.utc)
        records.append(
            [
                tables.Cell(key.task, header=True),
                tables.Cell(key.test_subject),
                tables.Cell(str(key.k)),
                tables.Cell(key.segmenter),
                tables.Cell(run.data.params.get("preset", "")),
                tables.Cell(run.info.run_id, cls="mono"),
                tables.Cell(started.strftime("%Y-%m-%d %H:%M")),
            ]
        )
    if not records:
        sec.missing = _missing("evaluate")
        return sec
    frame = pd.DataFrame(
        [
            {**vars(k), "run_id": r.info.run_id}
            for k, r in sorted(ctx.evals.items(), key=lambda kv: _sort_key(kv[0]))
        ]
    )
    sec.tables.append(
        Table(
            id="runs",
            caption="Evaluate runs read by this report (the latest finished run per task, "
            "test subject, K and segmenter; evaluations inside tuning trials are left out).",
            columns=["Task", "Test subject", "K", "Segmenter", "Preset", "Run", "Started (UTC)"],
            rows=records,
            frame=frame,
        )
    )
    return sec


SECTIONS: tuple[Callable[[_Context], Section], ...] = (
    section_table1,
    section_table2,
    section_table_s1,
    section_fig1,
    section_fig_s2,
    section_fig3,
    section_fig_s3,
    section_scores,
    section_tuning,
    section_provenance,
)


# --- helpers ----------------------------------------------------------------------------------


def _sort_key(key: EvalKey) -> tuple:
    return (key.task, key.test_subject, key.k or 0, key.segmenter)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))


def _guarded(builder: Callable[[_Context], Section], ctx: _Context) -> Section:
    """Run one section builder; a malformed artifact costs that section only, not the report."""
    try:
        return builder(ctx)
    except Exception as err:
        log.exception("report section %s failed", builder.__name__)
        name = builder.__name__.removeprefix("section_")
        return Section(name, name, missing=f"failed to build: {type(err).__name__}: {err}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow's per-download progress bars and Optuna's per-study info logs."""
    old_env = os.environ.get(_PROGRESS_ENV)
    old_level = optuna.logging.get_verbosity()
    os.environ[_PROGRESS_ENV] = "false"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old_level)
        if old_env is None:
            os.environ.pop(_PROGRESS_ENV, None)
        else:
            os.environ[_PROGRESS_ENV] = old_env


def _write_tables(sections: list[Section], out_dir: Path) -> None:
    for sec in sections:
        for table in sec.tables:
            if table.has_csv:
                table.frame.to_csv(out_dir / TABLE_DIR / f"{table.id}.csv", index=False)


def _render(sections: list[Section], store: RunStore, out_dir: Path) -> Path:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    steps = Counter(step_of(r) or "(untagged)" for r in store.runs)
    html = env.get_template("index.html").render(
        sections=sections,
        experiment=store.experiment.name,
        tracking_uri=store.tracking_uri,
        root_run=store.root_run,
        steps=sorted(steps.items()),
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        table_dir=TABLE_DIR,
    )
    shutil.copyfile(TEMPLATES / "report.css", out_dir / "report.css")
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def build_report(
    out_dir: str | Path,
    *,
    experiment: str = "ssmoe",
    root_run: str | None = None,
    log_to_run: str | None = None,
    tracking_uri: str | None = None,
) -> Path:
    """Build the HTML report of an experiment (or one study) from its MLflow runs alone.

    Args:
        out_dir: folder receiving `index.html`, `report.css`, `figures/*.png`, `tables/*.csv`
            (self-contained, readable offline; earlier figures/tables there are replaced).
        experiment: MLflow experiment name.
        root_run: only runs tagged `ssmoe.root_run=<root_run>` and the root run itself.
        log_to_run: when given, the whole folder is logged as artifacts `report/` of that run.
        tracking_uri: store to read (default: `mlflow.get_tracking_uri()`).

    Returns:
        Path of `index.html`.

    Raises:
        ValueError: unknown experiment or root run.
    """
    out = Path(out_dir)
    for sub in (FIG_DIR, TABLE_DIR):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    store = RunStore(experiment, root_run=root_run, tracking_uri=tracking_uri)
    try:
        with _quiet():
            ctx = _Context(store, out)
            sections = [_guarded(builder, ctx) for builder in SECTIONS]
        _write_tables(sections, out)
        index = _render(sections, store, out)
        if log_to_run:
            store.client.log_artifacts(log_to_run, str(out), artifact_path="report")
    finally:
        store.close()
    log.info("report written to %s", index)
    return index
