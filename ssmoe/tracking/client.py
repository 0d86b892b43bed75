"""Runs by id: read and write any run of a store without making it the active run.

What the pipeline's reuse, the tuner's shared runs and the report need beside the active-run
helpers of ``ssmoe.tracking.runs``: get, search and create runs, tag them, log to them, end them,
move artifacts in and out. ``TrackingStore()`` is the store in force (``setup`` points MLflow at
it); ``TrackingStore(uri)`` another one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ssmoe.tracking.runs import TAG_PARENT

TrackingError = MlflowException
"""What the store raises for an unknown run or a forbidden write (e.g. changing a param)."""

__all__ = ["Run", "TrackingError", "TrackingStore"]

_PAGE = 1000


class TrackingStore:
    """One MLflow tracking store addressed by URI (default: the one in force)."""

    def __init__(self, uri: str | None = None) -> None:
        self.uri = uri or mlflow.get_tracking_uri()
        self._client = MlflowClient(tracking_uri=self.uri)

    # --- reading ----------------------------------------------------------------------------

    def run(self, run_id: str) -> Run:
        """The run ``run_id``; ``TrackingError`` when the store has none."""
        return self._client.get_run(run_id)

    def metrics(self, run_id: str) -> dict[str, float]:
        """Latest value of every metric of run ``run_id``."""
        return dict(self.run(run_id).data.metrics)

    def experiment_id(self, name: str) -> str | None:
        """Id of the experiment ``name``, None when the store has none."""
        experiment = self._client.get_experiment_by_name(name)
        return None if experiment is None else experiment.experiment_id

    def search(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int | None = None,
    ) -> list[Run]:
        """Runs matching ``filter_string`` (MLflow search syntax): the first ``max_results``, or
        every page when None."""
        runs: list[Run] = []
        token: str | None = None
        while True:
            page = self._client.search_runs(
                experiment_ids,
                filter_string=filter_string,
                order_by=order_by,
                max_results=max_results or _PAGE,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if max_results is not None or not token:
                return runs

    def children(self, run_id: str, max_results: int | None = None) -> list[Run]:
        """Runs whose parent (tag ``mlflow.parentRunId``) is ``run_id``."""
        experiment_id = self.run(run_id).info.experiment_id
        query = f"tags.`{TAG_PARENT}` = '{run_id}'"
        return self.search([experiment_id], query, max_results=max_results)

    def download(self, run_id: str, path: str, dst: Path | None = None) -> Path:
        """Local copy of artifact ``path`` of ``run_id`` (under ``dst`` when given)."""
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=path,
            dst_path=None if dst is None else str(dst),
            tracking_uri=self.uri,
        )
        return Path(local)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        return [f.path for f in self._client.list_artifacts(run_id, path)]

    # --- writing ----------------------------------------------------------------------------

    def create_run(self, experiment_id: str, name: str, tags: dict[str, str]) -> str:
        """A new RUNNING run (not the active run); returns its id."""
        return self._client.create_run(experiment_id, run_name=name, tags=tags).info.run_id

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self._client.set_tag(run_id, key, str(value))

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Log a param; ``TrackingError`` when it already holds another value."""
        self._client.log_param(run_id, key, str(value))

    def log_metric(self, run_id: str, key: str, value: float, step: int | None = None) -> None:
        self._client.log_metric(run_id, key, float(value), step=step)

    def end_run(self, run_id: str, status: str) -> None:
        """End run ``run_id`` with ``status`` (FINISHED, FAILED or KILLED)."""
        self._client.set_terminated(run_id, status=status)

    def upload(self, run_id: str, local_dir: Path, artifact_path: str) -> None:
        """Log every file under ``local_dir`` as artifacts ``artifact_path/...`` of ``run_id``."""
        self._client.log_artifacts(run_id, str(local_dir), artifact_path=artifact_path)
