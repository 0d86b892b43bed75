"""The paper's tables (1, 2, S1) built from evaluate runs, as `Table` objects the template renders.

Each `Table` also carries a machine-readable `frame` (written to `tables/<id>.csv`) holding the
full-precision numbers behind the rounded cells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ssmoe.tracking import Run
from ssmoe.vocabulary import (
    METHOD_NAMES,
    METHODS,
    PAPER_STATISTICS,
    STATISTIC_NAMES,
    STATISTICS,
    TASK_NAMES,
)

SIGNIFICANCE = 1e-3


@dataclass
class Cell:
    """One table cell; `title` holds the full-precision value shown on hover."""

    text: str
    bold: bool = False
    header: bool = False
    sub: str = ""  # smaller second line
    title: str | None = None
    rowspan: int = 1
    cls: str = ""


@dataclass
class Table:
    """A captioned HTML table plus the numbers behind it."""

    id: str
    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    note: str = ""

    @property
    def has_csv(self) -> bool:
        """Whether `tables/<id>.csv` is written for this table."""
        return len(self.frame) > 0


def fmt(x: float, sig: int = 4) -> str:
    """`x` with `sig` significant digits; scientific outside [1e-3, 1e5)."""
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{sig - 1}e}"
    decimals = max(0, sig - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def fmt_pm(mean: float, std: float, sig: int = 4) -> str:
    """`mean ± std`, the std with as many decimals as the mean (std omitted when NaN)."""
    if not math.isfinite(mean):
        return "–"
    text = fmt(mean, sig)
    if not math.isfinite(std):
        return text
    if "e" in text:
        return f"{text} ± {std:.{sig - 1}e}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return f"{text} ± {std:.{decimals}f}"


def eval_metric(run: Run, stat: str, method: str) -> float:
    """Metric `{stat}_{method}` of an evaluate run, NaN when not logged."""
    return float(run.data.metrics.get(f"{stat}_{method}", np.nan))


def fold_statistics(runs: Mapping[str, Run]) -> pd.DataFrame:
    """Per-fold metrics as a long frame: columns fold, stat, method, value."""
    rows = [
        (fold, stat, method, eval_metric(run, stat, method))
        for fold, run in runs.items()
        for stat in STATISTICS
        for method in METHODS
    ]
    return pd.DataFrame(rows, columns=["fold", "stat", "method", "value"])


def _present_methods(long: pd.DataFrame) -> list[str]:
    seen = long.dropna(subset=["value"])["method"].unique()
    return [m for m in METHODS if m in seen]


def table1(
    folds: Mapping[str, Mapping[str, Run]],
    settings: Mapping[str, tuple[int | None, str]],
    stats: Sequence[str] = PAPER_STATISTICS,
) -> Table:
    """Table 1: methods x statistics, mean ± sample std (ddof=1) over folds, one block per task.

    Args:
        folds: task -> test subject -> evaluate run (the task's default k and segmenter).
        settings: task -> (k, segmenter) used for that task.
        stats: statistics shown as rows (all seven are in the CSV frame).
    """
    frames = []
    for task, runs in folds.items():
        long = fold_statistics(runs)
        long["task"] = task
        frames.append(long)
    long = pd.concat(frames, ignore_index=True)
    methods = _present_methods(long)
    agg = (
        long.groupby(["task", "stat", "method"], sort=False)["value"]
        .agg(mean="mean", std=lambda v: v.std(ddof=1) if v.count() > 1 else np.nan, n="count")
        .reset_index()
    )
    rows: list[list[Cell]] = []
    for task in folds:
        n_folds = len(folds[task])
        k, segmenter = settings[task]
        label = TASK_NAMES.get(task, task)
        detail = f"{n_folds} fold{'s' * (n_folds != 1)}, K={k}, {segmenter}"
        for i, stat in enumerate(stats):
            sub = agg[(agg.task == task) & (agg.stat == stat)].set_index("method")
            means = sub["mean"].reindex(methods)
            best = means.idxmin() if means.notna().any() else None
            row = [Cell(label, header=True, sub=detail, rowspan=len(stats))] if i == 0 else []
            row.append(Cell(STATISTIC_NAMES[stat], header=True))
            for method in methods:
                mean, std = (
                    float(sub["mean"].get(method, np.nan)),
                    float(sub["std"].get(method, np.nan)),
                )
                row.append(
                    Cell(
                        fmt_pm(mean, std),
                        bold=method == best,
                        title=f"mean={mean!r} std={std!r} n={int(sub['n'].get(method, 0))}",
                        cls="num",
                    )
                )
            rows.append(row)
    n_all = sorted({len(r) for r in folds.values()})
    caption = (
        "Table 1. Per-volume MSE statistics of each method, mean ± std (sample, ddof=1) over "
        f"{' / '.join(map(str, n_all))} leave-one-subject-out fold(s); best (lowest) per row in bold."
    )
    columns = ["Dataset", "Stats."] + [METHOD_NAMES[m] for m in methods]
    return Table("table1", caption, columns, rows, frame=agg)


def table2(runs_by_k: Mapping[int, Run], task: str, subject: str, segmenter: str) -> Table:
    """Table 2: SS-MoE statistics and number of weights against K, for one task and fold."""
    records = []
    for k, run in sorted(runs_by_k.items()):
        rec = {"k": k, "n_weights": run.data.metrics.get("n_weights_ssmoe", np.nan)}
        rec |= {stat: eval_metric(run, stat, "ssmoe") for stat in STATISTICS}
        records.append(rec)
    frame = pd.DataFrame(records)
    best = {stat: frame[stat].min() for stat in STATISTICS}
    rows = []
    for rec in records:
        n_w = rec["n_weights"]
        row = [
            Cell(str(rec["k"]), header=True),
            Cell(f"{int(n_w):,}" if math.isfinite(n_w) else "–", cls="num"),
        ]
        row += [
            Cell(fmt(rec[s]), bold=rec[s] == best[s], title=repr(rec[s]), cls="num")
            for s in STATISTICS
        ]
        rows.append(row)
    caption = (
        f"Table 2. SS-MoE per-volume MSE statistics against the number of pseudo error classes K "
        f"({TASK_NAMES.get(task, task)} task, test subject {subject}, segmenter {segmenter}); "
        "#Weights = trainable weights of the SS-MoE model; lowest per column in bold."
    )
    columns = ["#Classes (K)", "#Weights"] + [STATISTIC_NAMES[s] for s in STATISTICS]
    return Table("table2", caption, columns, rows, frame=frame)


def _pair(a: str, b: str) -> tuple[str, str]:
    order = {m: i for i, m in enumerate(METHODS)}
    return (a, b) if order.get(a, 99) <= order.get(b, 99) else (b, a)


def table_s1(wilcoxon: Mapping[str, pd.DataFrame], task: str, setting: str) -> Table:
    """Table S1: two-sided Wilcoxon signed-rank p-values, method pairs x folds, for one task.

    Args:
        wilcoxon: test subject -> `evaluation/wilcoxon.csv` (method_a, method_b, statistic,
            p_value).
        setting: text naming k and segmenter, for the caption.
    """
    long = []
    for fold, df in wilcoxon.items():
        for rec in df.to_dict("records"):
            a, b = _pair(str(rec["method_a"]), str(rec["method_b"]))
            long.append((fold, a, b, float(rec["statistic"]), float(rec["p_value"])))
    frame = pd.DataFrame(long, columns=["fold", "method_a", "method_b", "statistic", "p_value"])
    folds = list(wilcoxon)
    pairs = list(dict.fromkeys(zip(frame.method_a, frame.method_b, strict=True)))
    rows = []
    for a, b in pairs:
        row = [Cell(f"{METHOD_NAMES.get(a, a)} vs {METHOD_NAMES.get(b, b)}", header=True)]
        for fold in folds:
            hit = frame[(frame.fold == fold) & (frame.method_a == a) & (frame.method_b == b)]
            if hit.empty:
                row.append(Cell("–", cls="num"))
                continue
            p = float(hit.p_value.iloc[0])
            row.append(
                Cell(
                    f"{p:.2e}",
                    bold=p < SIGNIFICANCE,
                    title=f"p={p!r} W={float(hit.statistic.iloc[0])!r}",
                    cls="num sig" if p < SIGNIFICANCE else "num",
                )
            )
        rows.append(row)
    caption = (
        f"Table S1 ({TASK_NAMES.get(task, task)}). Two-sided Wilcoxon signed-rank test of "
        f"per-volume MSE between methods, p-value per fold (test subject), {setting}; "
        "p < 0.001 in bold."
    )
    columns = ["Methods"] + [f"fold {f}" for f in folds]
    return Table(f"table_s1_{task}", caption, columns, rows, frame=frame)


def key_value_table(id: str, caption: str, values: Mapping[str, object]) -> Table:
    """A two-column name/value table (used for run parameters and metrics)."""
    rows = []
    for name, value in values.items():
        text = fmt(value) if isinstance(value, float) else str(value)
        rows.append([Cell(name, header=True), Cell(text, title=repr(value), cls="num")])
    frame = pd.DataFrame({"name": list(values), "value": list(values.values())})
    return Table(id=id, caption=caption, columns=["Name", "Value"], rows=rows, frame=frame)
