"""Reading per-patch scores: a text file (one score per line), a CSV score table, or an MLflow
artifact URI such as ``runs:/<run_id>/scores/patch_scores.csv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ssmoe.typing import FloatArray, PathLike


def resolve_source(source: PathLike) -> Path:
    """Local path of `source`; MLflow URIs (runs:/, models:/, mlflow-artifacts:/) are downloaded."""
    text = str(source)
    if text.startswith(("runs:/", "models:/", "mlflow-artifacts:/")):
        # imported lazily: reading a local file must not need a tracking store
        from ssmoe.tracking.artifacts import download_uri

        try:
            return download_uri(text)
        except Exception as err:  # MLflow raises several types; report them uniformly
            raise ValueError(f"{text}: cannot download the MLflow artifact ({err})") from err
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return path


def read_scores(source: PathLike, column: str = "score") -> FloatArray:
    """Scores (N,) float64 from a text file with one score per line or a CSV with a header.

    A file whose first non-empty line parses as a number is read as one score per line;
    otherwise it is a CSV table and `column` is taken. Values are not validated here beyond
    being numbers (segmenters check positivity etc.). Raises ValueError naming the file.
    """
    path = resolve_source(source)
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = next((line.strip() for line in fh if line.strip()), None)
    if first is None:
        raise ValueError(f"{path}: file is empty")
    try:
        float(first.split(",")[0])
        is_table = "," in first
    except ValueError:
        is_table = True
    if not is_table:
        try:
            values = np.loadtxt(path, dtype=np.float64, ndmin=1)
        except ValueError as err:
            raise ValueError(f"{path}: expected one number per line ({err})") from err
        return values
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: cannot parse as CSV ({err})") from err
    if column not in frame.columns:
        raise ValueError(
            f"{path}: no column {column!r}; columns are {', '.join(map(str, frame.columns))}"
        )
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) & frame[column].notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}: column {column!r} row {row} is not a number: {frame[column].iloc[row]!r}"
        )
    return values
