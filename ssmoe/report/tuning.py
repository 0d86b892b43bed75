"""The tuning section: trial runs -> an in-memory Optuna study -> ablation table and figures,
plus the tune run's own params, metrics and final test.

Trial runs (tag `ssmoe.step=trial`) carry params `study`, `trial_number`, `k`, `segmenter`,
`lr`, tag `ssmoe.trial_state` and metrics `objective`, `val_{stat}`. The study is rebuilt from
them alone (no Optuna storage is read), so the section works on any MLflow store.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd

from ssmoe.evaluation import figures
from ssmoe.report.context import Context, Section, missing, slug
from ssmoe.report.store import run_key
from ssmoe.report.tables import Cell, Table, fmt, key_value_table
from ssmoe.tracking import TAG_TRIAL_STATE, Run
from ssmoe.vocabulary import (
    METHOD_NAMES,
    METHODS,
    PAPER_STATISTICS,
    STATISTIC_NAMES,
    STATISTICS,
)

_STATES = {
    "COMPLETE": optuna.trial.TrialState.COMPLETE,
    "PRUNED": optuna.trial.TrialState.PRUNED,
    "FAIL": optuna.trial.TrialState.FAIL,
}


def trials_frame(trials: list[Run]) -> pd.DataFrame:
    """One row per trial: number, state, k, segmenter, lr, objective, val_* (latest run wins)."""
    records: dict[tuple[str, int], dict[str, object]] = {}
    for run in sorted(trials, key=run_key):
        p, m = run.data.params, run.data.metrics
        state = run.data.tags.get(TAG_TRIAL_STATE)
        if state is None:  # no tag: infer from the run status
            state = "COMPLETE" if run.info.status == "FINISHED" and "objective" in m else "FAIL"
        number = int(float(p.get("trial_number", len(records))))
        records[(p.get("study", ""), number)] = {
            "study": p.get("study", ""),
            "number": number,
            "state": state.upper(),
            "k": int(float(p["k"])) if "k" in p else None,
            "segmenter": p.get("segmenter"),
            "lr": float(p["lr"]) if "lr" in p else np.nan,
            "objective": float(m.get("objective", np.nan)),
            **{f"val_{s}": float(m.get(f"val_{s}", np.nan)) for s in PAPER_STATISTICS},
            "run_id": run.info.run_id,
        }
    frame = pd.DataFrame(list(records.values()))
    return frame.sort_values("number").reset_index(drop=True) if len(frame) else frame


def rebuild_study(frame: pd.DataFrame, name: str = "report") -> optuna.Study:
    """An in-memory minimisation study holding the trials of `frame` (for importance/plots)."""
    dists: dict[str, optuna.distributions.BaseDistribution] = {}
    for col in ("k", "segmenter"):
        values = frame[col].dropna().unique().tolist()
        values = [int(v) for v in values] if col == "k" else [str(v) for v in values]
        if values:
            dists[col] = optuna.distributions.CategoricalDistribution(sorted(values))
    lrs = frame["lr"].dropna()
    if len(lrs):
        lo, hi = float(lrs.min()), float(lrs.max())
        dists["lr"] = optuna.distributions.FloatDistribution(
            lo, hi if hi > lo else lo * 1.0001, log=True
        )
    study = optuna.create_study(study_name=name, direction="minimize")
    for rec in frame.to_dict("records"):
        state = _STATES.get(rec["state"], optuna.trial.TrialState.FAIL)
        value = rec["objective"]
        if state == optuna.trial.TrialState.COMPLETE and not math.isfinite(value):
            state = optuna.trial.TrialState.FAIL
        params = {
            name: (int(rec[name]) if name == "k" else rec[name])
            for name in dists
            if rec.get(name) is not None
            and not (isinstance(rec[name], float) and math.isnan(rec[name]))
        }
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=value if state == optuna.trial.TrialState.COMPLETE else None,
                params=params,
                distributions={n: dists[n] for n in params},
                user_attrs={"mlflow_run_id": rec["run_id"]},
            )
        )
    return study


def param_importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importances of the varied parameters ({} when too few complete trials)."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    varied = [
        name
        for name in ("k", "segmenter", "lr")
        if len({t.params.get(name) for t in complete if name in t.params}) > 1
    ]
    if len(complete) < 2 or not varied:
        return {}
    try:
        return optuna.importance.get_param_importances(study, params=varied)
    except (RuntimeError, ValueError):
        return {}


def ablation_table(frame: pd.DataFrame, study: str) -> Table:
    """Validation statistics of the best complete trial per (K, segmenter), like Table 2."""
    done = frame[frame.state == "COMPLETE"].dropna(subset=["objective"])
    counts = frame.groupby(["k", "segmenter"]).state.value_counts().unstack(fill_value=0)
    best = done.loc[done.groupby(["k", "segmenter"]).objective.idxmin()].sort_values(
        ["k", "segmenter"]
    )
    overall = done.objective.min() if len(done) else np.nan
    rows = []
    for rec in best.to_dict("records"):
        c = counts.loc[(rec["k"], rec["segmenter"])]
        is_best = rec["objective"] == overall
        row = [
            Cell(str(rec["k"]), header=True),
            Cell(str(rec["segmenter"]), header=True),
            Cell(
                f"{int(c.get('COMPLETE', 0))} / {int(c.get('PRUNED', 0))} / {int(c.get('FAIL', 0))}"
            ),
            Cell(str(rec["number"])),
            Cell(f"{rec['lr']:.2e}", title=repr(rec["lr"]), cls="num"),
            Cell(fmt(rec["objective"]), bold=is_best, title=repr(rec["objective"]), cls="num"),
        ]
        row += [
            Cell(fmt(rec[f"val_{s}"]), title=repr(rec[f"val_{s}"]), cls="num")
            for s in PAPER_STATISTICS
        ]
        rows.append(row)
    caption = (
        f"Ablation (study {study!r}): best complete trial per K and segmenter, validation "
        "per-volume MSE statistics of SS-MoE; trials = complete / pruned / failed; the best "
        "objective overall in bold."
    )
    columns = ["K", "Segmenter", "Trials", "Best trial", "lr", "Objective"]
    columns += [f"Val. {STATISTIC_NAMES[s].lower()}" for s in PAPER_STATISTICS]
    return Table(id=f"ablation_{study}", caption=caption, columns=columns, rows=rows, frame=best)


def section_tuning(ctx: Context) -> Section:
    sec = Section("tuning", "Tuning — Optuna studies over K, segmenter and learning rate")
    tunes = ctx.store.by_step("tune")
    trial_runs = ctx.store.by_step("trial", finished_only=False)
    if not tunes and not trial_runs:
        sec.missing = missing("tune")
        return sec
    frame = trials_frame(trial_runs)
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
        if len(sub) and (sub.state == "COMPLETE").any():
            _study_figures(ctx, sec, sub, name)
        if tune is not None:
            sec.tables.extend(_tune_run_tables(tune, name))
    if not sec.tables and not sec.figures:
        sec.missing = missing("trial with ssmoe.trial_state=COMPLETE")
    return sec


def _study_figures(ctx: Context, sec: Section, trials: pd.DataFrame, name: str) -> None:
    """Ablation table, optimisation history and parameter importance of one study."""
    sec.tables.append(ablation_table(trials, name))
    history = figures.tuning_history(trials)
    if history is not None:
        sec.add_figure(
            ctx,
            history,
            f"tuning_{slug(name)}_history.png",
            f"Optimisation history of study {name!r}: objective of each complete "
            "trial, pruned trials (x), and the best value so far.",
        )
    importances = param_importances(rebuild_study(trials, name))
    if importances:
        sec.add_figure(
            ctx,
            figures.importance_bars(importances),
            f"tuning_{slug(name)}_importance.png",
            f"Parameter importance (fANOVA) in study {name!r}, rebuilt from "
            f"{len(trials)} trial runs.",
        )


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
            key_value_table(
                f"tune_params_{slug(study)}",
                f"Parameters of the tune run of study {study!r} ({tune.info.run_id[:8]}).",
                dict(sorted(tune.data.params.items())),
            )
        )
    if metrics:
        out.append(
            key_value_table(
                f"tune_metrics_{slug(study)}",
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
        row = [Cell(STATISTIC_NAMES[stat], header=True)]
        vals = {m: test.get((stat, m), np.nan) for m in methods}
        best = min(vals, key=lambda m: vals[m] if np.isfinite(vals[m]) else np.inf)
        for m in methods:
            row.append(Cell(fmt(vals[m]), bold=m == best, cls="num"))
        rows.append(row)
    frame = pd.DataFrame(
        [(s, m, v) for (s, m), v in test.items()], columns=["stat", "method", "value"]
    )
    caption = (
        f"Best trial of study {study!r} evaluated once on the test subject "
        "(metrics test_{stat}_{method} of the tune run); best per row in bold."
    )
    columns = ["Stats."] + [METHOD_NAMES[m] for m in methods]
    return Table(f"tune_test_{slug(study)}", caption, columns, rows, frame=frame)
