"""`ssmoe segment` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ssmoe.cli import main


def _run(*args: str):
    return CliRunner().invoke(main, ["segment", *args])


@pytest.mark.parametrize("method", ["mqs", "kmeans", "empirical", "quantile"])
def test_text_file(tmp_path: Path, scores: np.ndarray, method: str) -> None:
    path = tmp_path / "scores.txt"
    np.savetxt(path, scores)
    res = _run("--method", method, "--k", "3", str(path))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == method and len(out["thresholds"]) == 2
    assert sum(out["counts"]) == len(scores)


def test_csv_table_with_column_and_option(tmp_path: Path, scores: np.ndarray) -> None:
    path = tmp_path / "patch_scores.csv"
    pd.DataFrame({"subject": "s1", "volume": np.arange(len(scores)), "mse": scores}).to_csv(
        path, index=False
    )
    res = _run("--method", "mqs", "--k", "2", "--column", "mse", "-o", "alpha=0.1", str(path))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["options"]["alpha"] == 0.1 and out["alpha"] == 0.1


@pytest.mark.parametrize(
    "content,match",
    [
        ("1.0\n-2.0\n3.0\n4.0\n", "positive"),
        ("score\n1.0\nabc\n", "not a number"),
        ("", "empty"),
        ("a,b\n1,2\n", "no column 'score'"),
    ],
)
def test_bad_input_names_file_and_problem(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    res = _run("--method", "quantile", "--k", "2", str(path))
    assert res.exit_code != 0
    assert "bad.csv" in res.output and match in res.output


def test_missing_file_and_bad_option(tmp_path: Path) -> None:
    res = _run("--k", "2", str(tmp_path / "nope.txt"))
    assert res.exit_code != 0 and "no such file" in res.output
    path = tmp_path / "s.txt"
    np.savetxt(path, np.arange(1.0, 20.0))
    res = _run("--method", "kmeans", "-o", "alpha=0.1", str(path))
    assert res.exit_code != 0 and "unknown option" in res.output


def test_mlflow_run_uri(
    tmp_path: Path, scores: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    table = tmp_path / "patch_scores.csv"
    pd.DataFrame({"score": scores}).to_csv(table, index=False)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(table), artifact_path="scores")
    res = _run(
        "--method", "quantile", "--k", "4", f"runs:/{run.info.run_id}/scores/patch_scores.csv"
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["counts"] == [750, 750, 750, 750]
