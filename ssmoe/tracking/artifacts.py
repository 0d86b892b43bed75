"""Named artifacts of the active run, the contract between steps: tables, JSON, figures, files,
models; and reading them back from any run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import pandas as pd
import torch
from matplotlib.figure import Figure

import ssmoe
from ssmoe.tracking.client import TrackingStore

M = TypeVar("M", bound=torch.nn.Module)


def log_frame(frame: pd.DataFrame, path: str) -> None:
    """Log a table as CSV at artifact ``path`` (e.g. 'scores/patch_scores.csv')."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(path).name
        frame.to_csv(local, index=False)
        mlflow.log_artifact(str(local), artifact_path=str(Path(path).parent) or None)


def log_json(obj: Any, path: str) -> None:
    """Log a JSON document at artifact ``path``."""
    mlflow.log_text(json.dumps(obj, indent=2, default=_jsonable), path)


def log_figure(fig: Figure, path: str) -> None:
    """Log a matplotlib figure as image ``path`` (e.g. 'figures/score_histogram.png'), then
    free it."""
    import matplotlib.pyplot as plt

    mlflow.log_figure(fig, path)
    plt.close(fig)


def log_artifact(local: str | Path, artifact_dir: str) -> None:
    """Log the file ``local`` under ``artifact_dir`` of the active run."""
    mlflow.log_artifact(str(local), artifact_dir)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def download(run_id: str, path: str) -> Path:
    """Local copy of artifact ``path`` of run ``run_id``, with a clear error when absent."""
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path))
    except Exception as err:  # mlflow raises several types for a missing artifact
        raise ValueError(f"run {run_id!r} has no artifact {path!r}: {err}") from err


def download_uri(uri: str) -> Path:
    """Local copy of an artifact URI (``runs:/<id>/<path>``, ``models:/...``,
    ``mlflow-artifacts:/...``)."""
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))


def load_frame(run_id: str, path: str) -> pd.DataFrame:
    return pd.read_csv(download(run_id, path))


def load_json(run_id: str, path: str) -> Any:
    return json.loads(download(run_id, path).read_text())


def log_model(model: torch.nn.Module, name: str = "model") -> str:
    """Log a torch module with mlflow.pytorch and return its ``runs:/`` URI.

    ``serialization_format='pickle'`` keeps our two-input ``forward(x, acq)`` loadable with
    ``mlflow.pytorch.load_model``; MLflow 3's default 'pt2' export would need an input example
    and a single-tensor signature. Requirements are given, not inferred (inference spawns a
    slow subprocess per model).
    """
    model = model.cpu().eval()
    run = mlflow.active_run()
    assert run is not None, "log_model needs an active run"
    mlflow.pytorch.log_model(
        model,
        name=name,
        serialization_format="pickle",
        pip_requirements=[
            f"torch=={torch.__version__.split('+')[0]}",
            f"ssmoe=={ssmoe.__version__}",
        ],
    )
    return f"runs:/{run.info.run_id}/{name}"


def load_model(
    uri: str,
    device: torch.device | str = "cpu",
    kind: type[M] = torch.nn.Module,  # type: ignore[assignment]
) -> M:
    """Load a logged ssmoe model (``runs:/<id>/model``, ``models:/<name>/<version>``, a path),
    checked to be a ``kind`` (e.g. ``UNetSR`` for a phase-1 model)."""
    try:
        model = mlflow.pytorch.load_model(uri, map_location=torch.device(device))
    except Exception as err:
        raise ValueError(f"cannot load model {uri!r}: {err}") from err
    if not hasattr(model, "task"):
        raise ValueError(f"{uri!r} is not an ssmoe super-resolution model (no 'task')")
    if not isinstance(model, kind):
        raise ValueError(f"{uri!r} is a {type(model).__name__}, expected a {kind.__name__}")
    return model.eval()


def list_artifacts(run_id: str, path: str | None = None) -> list[str]:
    return TrackingStore().list_artifacts(run_id, path)
