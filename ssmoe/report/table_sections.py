"""The table sections: Table 1 (methods over folds), Table 2 (K), Table S1 (Wilcoxon tests)
and the evaluate runs the report read; the tables themselves are built in ``tables``."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ssmoe.report import tables
from ssmoe.report.context import Context, Section, missing
from ssmoe.report.store import EvalKey
from ssmoe.report.tables import Cell, Table
from ssmoe.tracking import Run


def section_table1(ctx: Context) -> Section:
    sec = Section("table1", "Table 1 — methods across cross-validation folds")
    if not ctx.tasks:
        sec.missing = missing("evaluate")
        return sec
    sec.tables.append(
        tables.table1({t: ctx.folds[t] for t in ctx.tasks}, {t: ctx.settings[t] for t in ctx.tasks})
    )
    return sec


def section_table2(ctx: Context) -> Section:
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
        sec.missing = missing("evaluate")
        return sec
    (task, subject), runs = max(groups.items(), key=lambda kv: (len(kv[1]), kv[0][0] == "iso"))
    if len(runs) < 2:
        sec.missing = "not available (no task and fold was evaluated with more than one K)"
        return sec
    sec.tables.append(tables.table2(runs, task, subject, ctx.settings[task][1]))
    return sec


def section_table_s1(ctx: Context) -> Section:
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
        sec.missing = ctx.missing_artifact(path)
    return sec


def _sort_key(key: EvalKey) -> tuple:
    return (key.task, key.test_subject, key.k or 0, key.segmenter)


def section_provenance(ctx: Context) -> Section:
    sec = Section("provenance", "Runs used")
    evals = sorted(ctx.evals.items(), key=lambda kv: _sort_key(kv[0]))
    if not evals:
        sec.missing = missing("evaluate")
        return sec
    records = []
    for key, run in evals:
        started = dt.datetime.fromtimestamp((run.info.start_time or 0) / 1000, dt.timezone.utc)
        records.append(
            [
                Cell(key.task, header=True),
                Cell(key.test_subject),
                Cell(str(key.k)),
                Cell(key.segmenter),
                Cell(run.data.params.get("preset", "")),
                Cell(run.info.run_id, cls="mono"),
                Cell(started.strftime("%Y-%m-%d %H:%M")),
            ]
        )
    sec.tables.append(
        Table(
            id="runs",
            caption="Evaluate runs read by this report (the latest finished run per task, "
            "test subject, K and segmenter; evaluations inside tuning trials are left out).",
            columns=["Task", "Test subject", "K", "Segmenter", "Preset", "Run", "Started (UTC)"],
            rows=records,
            frame=pd.DataFrame([{**vars(k), "run_id": r.info.run_id} for k, r in evals]),
        )
    )
    return sec
