"""The tracking layer: the only part of the library that talks to MLflow.

- ``runs``: the store in force, the run of a step (``step_run``), params/metrics/tags of the
  active run, lineage look-ups (``require_step``, ``run_params``), shared tag names;
- ``artifacts``: named artifacts of the active run (tables, JSON, figures, files, models) and
  reading them back;
- ``client``: any run by id (``TrackingStore``): search, create, tag, log, end, up/download.
"""

from ssmoe.tracking.artifacts import (
    download,
    download_uri,
    list_artifacts,
    load_frame,
    load_json,
    load_model,
    log_artifact,
    log_figure,
    log_frame,
    log_json,
    log_model,
)
from ssmoe.tracking.client import Run, TrackingError, TrackingStore
from ssmoe.tracking.runs import (
    TAG_PARENT,
    TAG_ROOT,
    TAG_STEP,
    TAG_TRIAL_STATE,
    get_run,
    log_metrics,
    log_params,
    require_step,
    run_params,
    set_tags,
    setup,
    step_run,
    tracking_uri,
)

__all__ = [
    "TAG_PARENT",
    "TAG_ROOT",
    "TAG_STEP",
    "TAG_TRIAL_STATE",
    "Run",
    "TrackingError",
    "TrackingStore",
    "download",
    "download_uri",
    "get_run",
    "list_artifacts",
    "load_frame",
    "load_json",
    "load_model",
    "log_artifact",
    "log_figure",
    "log_frame",
    "log_json",
    "log_metrics",
    "log_model",
    "log_params",
    "require_step",
    "run_params",
    "set_tags",
    "setup",
    "step_run",
    "tracking_uri",
]
