"""The tuning section: trial runs -> an in-memory Optuna study -> ablation table and figures.

Trial runs (tag `ssmoe.step=trial`) carry params `study`, `trial_number`, `k`, `segmenter`,
`lr`, tag `ssmoe.trial_state` and metrics `objective`, `val_{stat}`. The study is rebuilt from
them alone (no Optuna storage is read), so the section works on any MLflow store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.entities import Run  # noqa: E402

from ssmoe.report.collect import TRIAL_STATE_TAG, run_key  # noqa: E402
from ssmoe.report.tables import Cell, Table, fmt  # noqa: E402
from ssmoe.vocabulary import PAPER_STATISTICS, STATISTIC_NAMES  # noqa: E402

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
        state = run.data.tags.get(TRIAL_STATE_TAG)
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


@dataclass
class TuningFigures:
    history: Path | None
    importance: Path | None
    importances: dict[str, float]


def tuning_figures(frame: pd.DataFrame, study: optuna.Study, out: Path, stem: str) -> TuningFigures:
    """Optimisation history (objective per trial + best so far) and parameter importances."""
    done = frame[frame.state == "COMPLETE"].dropna(subset=["objective"])
    history = None
    if len(done):
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
        history = out / f"{stem}_history.png"
        fig.savefig(history, dpi=110, bbox_inches="tight")
        plt.close(fig)
    importances = param_importances(study)
    importance = None
    if importances:
        names = list(importances)[::-1]
        fig, ax = plt.subplots(figsize=(5.2, 0.5 + 0.55 * len(names)))
        ax.barh(names, [importances[n] for n in names], color="#4c72b0")
        for i, n in enumerate(names):
            ax.text(importances[n], i, f" {importances[n]:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, 1.1)
        ax.set_xlabel("importance (fANOVA, normalised)")
        ax.set_title("Parameter importance", fontsize=10)
        importance = out / f"{stem}_importance.png"
        fig.savefig(importance, dpi=110, bbox_inches="tight")
        plt.close(fig)
    return TuningFigures(history, importance, importances)
