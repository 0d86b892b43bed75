"""MLflow runs for ssmoe steps: one store, one experiment, lineage tags, safe nesting.

- Store: ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<cwd>/mlflow.db`` with artifacts in
  ``<cwd>/mlartifacts`` - the same store whether a step is launched by ``ssmoe ...`` or by
  ``mlflow run`` (which exports its URI and ``MLFLOW_RUN_ID`` to the entry point).
- A step launched by ``mlflow run`` adopts the run that ``mlflow run`` created; a step launched
  by the pipeline is a child of the pipeline's run. An ``MLFLOW_RUN_ID`` inherited from a parent
  process is ignored when it names a run that is not ours to adopt (a known trap: it silently
  captures nested runs).
- A failing step ends its run FAILED (never FINISHED) and, artifacts being per run, never
  overwrites the artifacts of a good run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

# Artifact download bars would flood the logs of every step; our own progress says enough.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DEFAULT_EXPERIMENT = "ssmoe"
TAG_STEP = "ssmoe.step"
TAG_ROOT = "ssmoe.root_run"
TAG_PARENT = "mlflow.parentRunId"
TAG_PARAM = "ssmoe.param."
TAG_TRIAL_STATE = "ssmoe.trial_state"  # COMPLETE | PRUNED | FAIL on a tuning trial's run


def tracking_uri() -> str:
    """The tracking URI in force: ``MLFLOW_TRACKING_URI`` or the embedded SQLite store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _artifact_root(uri: str) -> str | None:
    if uri.startswith("sqlite:///"):
        # resolve() first: mlproject/mlflow.db is a link to the repository's store
        return (Path(uri[len("sqlite:///") :]).resolve().parent / "mlartifacts").as_uri()
    return None  # a tracking server or database decides (e.g. --default-artifact-root)


def setup(experiment: str = DEFAULT_EXPERIMENT) -> str:
    """Point mlflow at the store and return the experiment id (created if missing, race-safe)."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        try:
            return client.create_experiment(experiment, artifact_location=_artifact_root(uri))
        except MlflowException:  # another worker created it between our two calls
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                raise
    return exp.experiment_id


def _adoptable_env_run(client: MlflowClient) -> str | None:
    """The run ``mlflow run`` made for us (MLFLOW_RUN_ID, still RUNNING and without a step)."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException:
        log.warning("ignoring MLFLOW_RUN_ID=%s: no such run in %s", run_id, tracking_uri())
        return None
    if run.info.status != "RUNNING" or TAG_STEP in run.data.tags:
        log.warning("ignoring inherited MLFLOW_RUN_ID=%s (not a fresh run to adopt)", run_id)
        return None
    return run_id


@contextmanager
def step_run(
    step: str,
    *,
    params: Mapping[str, Any],
    experiment: str = DEFAULT_EXPERIMENT,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
) -> Iterator[Run]:
    """Start (or adopt) the MLflow run of one step; log its params and lineage tags.

    Ends the run FINISHED on success, FAILED on any exception (which propagates).
    """
    experiment_id = setup(experiment)
    client = MlflowClient()
    all_tags = {TAG_STEP: step, **(tags or {})}
    if parent_run_id:
        parent = client.get_run(parent_run_id)
        all_tags[TAG_ROOT] = parent.data.tags.get(TAG_ROOT, parent_run_id)
        all_tags[TAG_PARENT] = parent_run_id
    adopt = None if parent_run_id else _adoptable_env_run(client)
    # mlflow.start_run reads MLFLOW_RUN_ID itself; hide it unless we adopt that very run.
    saved = os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        run = mlflow.start_run(
            run_id=adopt,
            experiment_id=None if adopt else experiment_id,
            run_name=None if adopt else (run_name or step),
            nested=bool(parent_run_id) or mlflow.active_run() is not None,
            tags=None if adopt else all_tags,
        )
    finally:
        if saved is not None:
            os.environ["MLFLOW_RUN_ID"] = saved
    if adopt:
        mlflow.set_tags(all_tags)
    if TAG_ROOT not in all_tags and TAG_ROOT not in run.data.tags:
        mlflow.set_tag(TAG_ROOT, run.info.run_id)
    try:
        _log_params(run, {k: _param(v) for k, v in params.items()})
        yield run
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def log_params(params: Mapping[str, Any]) -> None:
    """Log params of the active run (values as strings, see ``_param``)."""
    mlflow.log_params({k: _param(v) for k, v in params.items()})


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log metrics of the active run (at ``step``, e.g. the epoch)."""
    mlflow.log_metrics(dict(metrics), step=step)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Tag the active run."""
    mlflow.set_tags(dict(tags))


def _log_params(run: Run, params: dict[str, str]) -> None:
    """Log params; where an adopted ``mlflow run`` run already holds a key with another value
    (its entry-point input, e.g. '' for "preset default" or '1e-3' for 0.001), MLflow forbids
    changing it, so the resolved value goes to the tag ``ssmoe.param.<key>`` instead -
    ``run_params`` reads both, resolved values first."""
    existing = run.data.params
    mlflow.log_params({k: v for k, v in params.items() if existing.get(k, v) == v})
    conflicts = {f"{TAG_PARAM}{k}": v for k, v in params.items() if existing.get(k, v) != v}
    if conflicts:
        mlflow.set_tags(conflicts)


def run_params(run: Run) -> dict[str, str]:
    """A step run's parameters as the step resolved them (see ``_log_params``)."""
    resolved = {k[len(TAG_PARAM) :]: v for k, v in run.data.tags.items() if k.startswith(TAG_PARAM)}
    return {**run.data.params, **resolved}


def _param(value: Any) -> str:
    """Parameters are compared as strings (pipeline reuse); one canonical spelling."""
    if isinstance(value, (list, tuple)):
        return ",".join(_param(v) for v in value)
    if value is None:
        return ""
    return str(value)


def get_run(run_id: str) -> Run:
    """A run by id with a clear error when it does not exist in the store in force."""
    setup_uri = tracking_uri()
    mlflow.set_tracking_uri(setup_uri)
    try:
        return MlflowClient().get_run(run_id)
    except MlflowException as err:
        raise ValueError(f"run {run_id!r} not found in tracking store {setup_uri}") from err


def require_step(run_id: str, step: str) -> Run:
    """The run ``run_id``, checked to be a FINISHED run of ``step`` (lineage parameters)."""
    run = get_run(run_id)
    found = run.data.tags.get(TAG_STEP)
    if found != step:
        raise ValueError(f"run {run_id!r} is a {found or 'non-ssmoe'} run, expected a {step} run")
    if run.info.status != "FINISHED":
        raise ValueError(f"{step} run {run_id!r} is {run.info.status}, expected FINISHED")
    return run
