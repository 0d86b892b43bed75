"""The report's tables hold exactly what the fabricated runs logged (recomputed here)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (
    METHODS,
    SUBJECTS,
    TASKS,
    Fabricated,
    PageParser,
    assert_close_text,
    parse_page,
    statistics,
)

from ssmoe.report import build_report

LABELS = {"Cubic spline": "cubic", "SR U-Net": "unet", "Hard MoE": "hardmoe", "SS-MoE": "ssmoe"}
STAT_ROWS = {"Average": "average", "Variance": "variance", "Median": "median", "Max": "max"}
PM = re.compile(r"^(\S+) ± (\S+)$")


@pytest.fixture(scope="module")
def page(fabricated: Fabricated, tmp_path_factory: pytest.TempPathFactory) -> PageParser:
    out = tmp_path_factory.mktemp("report")
    index = build_report(
        out, experiment=fabricated.experiment, root_run=fabricated.root_run,
        tracking_uri=fabricated.uri,
    )  # fmt: skip
    assert index == out / "index.html"
    parsed = parse_page(index)
    parsed.out = out  # type: ignore[attr-defined]
    return parsed


def test_table1_is_mean_and_sample_std_over_folds(page: PageParser, fab: Fabricated) -> None:
    rows = page.tables["table1"]
    header = page.headers["table1"]
    methods = [LABELS[h] for h in header[2:]]
    assert methods == list(METHODS)
    assert len(rows) == len(TASKS) * len(STAT_ROWS)
    for i, row in enumerate(rows):
        task = TASKS[i // len(STAT_ROWS)]
        if i % len(STAT_ROWS) == 0:  # the dataset cell spans the task's rows
            assert row[0].text.startswith({"aniso": "Aniso.", "iso": "Iso."}[task])
            assert "3 folds" in row[0].text and "K=4" in row[0].text
            row = row[1:]
        stat = STAT_ROWS[row[0].text]
        cells = row[1:]
        means = {}
        for method, cell in zip(methods, cells, strict=True):
            # Independently: the metric of each fold's latest finished K=4 run.
            values = [fab.metrics[(task, s, 4)][f"{stat}_{method}"] for s in SUBJECTS]
            mean, std = PM.match(cell.text).groups()
            assert_close_text(mean, float(np.mean(values)))
            assert_close_text(std, float(np.std(values, ddof=1)))
            means[method] = np.mean(values)
        best = min(means, key=means.get)
        assert [c.bold for c in cells] == [m == best for m in methods]


def test_table1_ignores_superseded_failed_and_running_runs(page: PageParser, fab) -> None:
    frame = pd.read_csv(page.out / "tables" / "table1.csv")
    got = frame[(frame.task == "aniso") & (frame.stat == "average") & (frame.method == "ssmoe")]
    expected = np.mean([fab.metrics[("aniso", s, 4)]["average_ssmoe"] for s in SUBJECTS])
    assert got["mean"].item() == pytest.approx(expected, rel=1e-12)
    assert got["n"].item() == 3


def test_table1_metrics_match_per_volume_csv(fab: Fabricated) -> None:
    """Sanity of the fixture itself: metrics are the statistics of per_volume_mse.csv."""
    df = fab.per_volume[("iso", "s2", 4)]
    assert fab.metrics[("iso", "s2", 4)]["q3_unet"] == statistics(df["unet"].to_numpy())["q3"]


def test_table2_statistics_and_weights_against_k(page: PageParser, fab: Fabricated) -> None:
    header = page.headers["table2"]
    assert header[:2] == ["#Classes (K)", "#Weights"]
    stats = [h.lower() for h in header[2:]]
    assert stats == ["average", "variance", "min", "q1", "median", "q3", "max"]
    rows = page.tables["table2"]
    assert [int(r[0].text) for r in rows] == [2, 4, 8]
    for row in rows:
        k = int(row[0].text)
        logged = fab.metrics[("iso", "s1", k)]
        assert int(row[1].text.replace(",", "")) == logged["n_weights_ssmoe"] == fab.n_weights[k]
        for stat, cell in zip(stats, row[2:], strict=True):
            assert_close_text(cell.text, logged[f"{stat}_ssmoe"])
    assert "Iso." in page.sections["table2"] and "s1" in page.sections["table2"]


def test_table_s1_p_values_per_fold(page: PageParser, fab: Fabricated) -> None:
    for task in TASKS:
        table_id = f"table_s1_{task}"
        assert page.headers[table_id] == ["Methods"] + [f"fold {s}" for s in SUBJECTS]
        rows = page.tables[table_id]
        assert len(rows) == 6  # all pairs of 4 methods
        for row in rows:
            a, b = (LABELS[x] for x in row[0].text.split(" vs "))
            for subject, cell in zip(SUBJECTS, row[1:], strict=True):
                wil = fab.wilcoxon[(task, subject)]
                p = wil[(wil.method_a == a) & (wil.method_b == b)].p_value.item()
                assert_close_text(cell.text, p)
                assert cell.bold == (p < 1e-3)


def test_ablation_table_best_trial_per_k_and_segmenter(page: PageParser, fab) -> None:
    trials = fab.trials
    done = trials[trials.state == "COMPLETE"]
    best = done.loc[done.groupby(["k", "segmenter"]).objective.idxmin()]
    rows = page.tables["ablation_ablation"]
    assert len(rows) == len(best)
    header = page.headers["ablation_ablation"]
    for row in rows:
        k, seg = int(row[0].text), row[1].text
        expected = best[(best.k == k) & (best.segmenter == seg)].iloc[0]
        cells = dict(zip(header, (c.text for c in row), strict=True))
        assert int(cells["Best trial"]) == expected.number
        assert_close_text(cells["Objective"], expected.objective)
        assert_close_text(cells["Val. max"], expected.val_max)
        assert_close_text(cells["lr"], expected.lr)
        group = trials[(trials.k == k) & (trials.segmenter == seg)]
        n = [int(x) for x in cells["Trials"].split(" / ")]
        assert n == [(group.state == s).sum() for s in ("COMPLETE", "PRUNED", "FAIL")]
    bold = [r for r in rows if any(c.bold for c in r)]
    assert len(bold) == 1 and float(bold[0][5].text) == pytest.approx(done.objective.min(), 1e-3)


def test_tune_run_test_evaluation_is_shown(page: PageParser) -> None:
    rows = {r[0].text: [c.text for c in r[1:]] for r in page.tables["tune_test_ablation"]}
    assert page.headers["tune_test_ablation"] == ["Stats.", "SR U-Net", "SS-MoE"]
    assert rows == {"Average": ["0.3000", "0.2100"], "Max": ["3.500", "2.000"]}


def test_root_run_restricts_runs(page: PageParser, fab: Fabricated, tmp_path: Path) -> None:
    used = {r[1].text for r in page.tables["runs"]}
    assert used == set(SUBJECTS)
    everything = parse_page(build_report(tmp_path, experiment=fab.experiment, tracking_uri=fab.uri))
    assert fab.stray_subject in {r[1].text for r in everything.tables["runs"]}
    # The stray K=16 run has one fold only: Table 1 still uses the 3 folds at K=4.
    assert everything.tables["table1"][0][0].text.startswith("Aniso. 3 folds, K=4")


@pytest.fixture
def fab(fabricated: Fabricated) -> Fabricated:
    return fabricated
