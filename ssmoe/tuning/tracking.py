"""MLflow runs of a study: one parent ``tune`` run shared by every worker, one ``trial`` child
run per Optuna trial (the trial's pipeline and phase runs hang under it).

Runs are made by id (``ssmoe.tracking.TrackingStore``), never through the fluent active-run stack, so an
inherited ``MLFLOW_RUN_ID`` cannot capture them and several trials can be opened and closed in
one process. The parent run id lives in the Optuna study's user attribute
``mlflow_parent_run``; the trial run id in the trial's user attribute ``mlflow_run_id``, so a
worker that fails a stale trial can close the MLflow run its dead owner left RUNNING.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.trial import TrialState

from ssmoe.tracking import (
    TAG_PARENT,
    TAG_ROOT,
    TAG_STEP,
    TAG_TRIAL_STATE,
    TrackingError,
    TrackingStore,
    setup,
)
from ssmoe.tracking.runs import _param
from ssmoe.tuning.storage import quiet

log = logging.getLogger(__name__)

TAG_STUDY = "ssmoe.study"
ATTR_PARENT_RUN = "mlflow_parent_run"
ATTR_TRIAL_RUN = "mlflow_run_id"
# Optuna trial state -> (ssmoe.trial_state tag, MLflow run status)
RUN_STATUS = {
    TrialState.COMPLETE: ("COMPLETE", "FINISHED"),
    TrialState.PRUNED: ("PRUNED", "KILLED"),
    TrialState.FAIL: ("FAIL", "FAILED"),
}


def create_parent_run(experiment: str, study_name: str, params: Mapping[str, Any]) -> str:
    """A new RUNNING ``tune`` run (tag ``ssmoe.step=tune``, param ``study``)."""
    store = TrackingStore()
    run_id = store.create_run(
        setup(experiment), f"tune {study_name}", {TAG_STEP: "tune", TAG_STUDY: study_name}
    )
    store.set_tag(run_id, TAG_ROOT, run_id)
    for key, value in {"study": study_name, **params}.items():
        store.log_param(run_id, key, _param(value))
    return run_id


def shared_parent_run(
    study: optuna.Study,
    *,
    created: bool,
    experiment: str,
    params: Mapping[str, Any],
    wait_s: float = 60.0,
) -> str:
    """The study's one parent run, race-free across workers.

    The worker whose ``create_study`` succeeded (``created``; the storage's unique study name
    makes exactly one winner) creates the run and records its id in the study; the others wait
    up to ``wait_s`` for it. If the creator died before recording it, a joiner creates it.
    """
    if created:
        run_id = create_parent_run(experiment, study.study_name, params)
        study.set_user_attr(ATTR_PARENT_RUN, run_id)
        return run_id
    deadline = time.monotonic() + wait_s
    while True:
        recorded: str | None = study.user_attrs.get(ATTR_PARENT_RUN)
        if recorded:
            run_id = recorded
            break
        if time.monotonic() > deadline:
            log.warning("study %s has no parent run after %.0f s: creating it", study, wait_s)
            run_id = create_parent_run(experiment, study.study_name, params)
            study.set_user_attr(ATTR_PARENT_RUN, run_id)
            break
        time.sleep(0.5)
    store = TrackingStore()
    try:
        store.run(run_id)
    except TrackingError as err:
        raise ValueError(
            f"study {study.study_name!r} records parent run {run_id} which is not in the "
            f"tracking store {store.uri}: point MLFLOW_TRACKING_URI at the "
            "store the study was started with"
        ) from err
    return run_id


@contextmanager
def trial_run(
    parent_run_id: str,
    trial: optuna.Trial,
    params: Mapping[str, Any],
) -> Iterator[str]:
    """Open the ``trial`` child run of ``trial``; yields its id.

    Closes it FINISHED (``ssmoe.trial_state=COMPLETE``), KILLED (``PRUNED``, on
    ``optuna.TrialPruned``) or FAILED (``FAIL``, on any other exception, which propagates).
    """
    store = TrackingStore()
    parent = store.run(parent_run_id)
    study_name = parent.data.params.get("study", trial.study.study_name)
    tags = {
        TAG_STEP: "trial",
        TAG_PARENT: parent_run_id,
        TAG_ROOT: parent.data.tags.get(TAG_ROOT, parent_run_id),
        TAG_STUDY: study_name,
    }
    retried = _retry_of(trial)
    if retried is not None:
        tags["ssmoe.retry_of"] = str(retried)
    run_id = store.create_run(parent.info.experiment_id, f"trial {trial.number}", tags)
    trial.set_user_attr(ATTR_TRIAL_RUN, run_id)
    for key, value in {"study": study_name, "trial_number": trial.number, **params}.items():
        store.log_param(run_id, key, _param(value))
    try:
        yield run_id
    except optuna.TrialPruned:
        close_trial_run(run_id, TrialState.PRUNED)
        raise
    except BaseException:
        close_trial_run(run_id, TrialState.FAIL)
        raise
    else:
        close_trial_run(run_id, TrialState.COMPLETE)


def _retry_of(trial: optuna.Trial) -> int | None:
    """Number of the stale trial that ``trial`` retries (None for a fresh trial)."""
    for frozen in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.number == trial.number:
            with quiet():
                return optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
    return None


def close_trial_run(run_id: str, state: TrialState) -> None:
    """Tag ``ssmoe.trial_state`` and end the run (and any RUNNING descendant) accordingly."""
    tag, status = RUN_STATUS.get(state, ("FAIL", "FAILED"))
    store = TrackingStore()
    store.set_tag(run_id, TAG_TRIAL_STATE, tag)
    for child in _running_descendants(store, run_id):
        store.end_run(child, "FAILED")
    store.end_run(run_id, status)


def _running_descendants(store: TrackingStore, run_id: str) -> list[str]:
    """Ids of RUNNING runs below ``run_id`` (a killed worker's pipeline and phase runs)."""
    found: list[str] = []
    frontier = [run_id]
    while frontier:
        for child in store.children(frontier.pop()):
            frontier.append(child.info.run_id)
            if child.info.status == "RUNNING":
                found.append(child.info.run_id)
    return found


def close_orphan_runs(study: optuna.Study) -> int:
    """Close trial runs still RUNNING whose Optuna trial has finished (its worker was killed
    before it could); returns how many were closed. Safe to call from any worker, any time."""
    store = TrackingStore()
    closed = 0
    for trial in study.get_trials(deepcopy=False):
        run_id = trial.user_attrs.get(ATTR_TRIAL_RUN)
        if not run_id or trial.state not in RUN_STATUS:
            continue
        try:
            run = store.run(run_id)
        except TrackingError:
            continue
        if run.info.status == "RUNNING":
            log.info("closing trial run %s of trial %d (%s)", run_id, trial.number, trial.state)
            close_trial_run(run_id, trial.state)
            closed += 1
    return closed


def phase1_in_progress(study: optuna.Study) -> bool:
    """True while another worker's first trial is still training phase 1 (its pipeline run has
    no ``phase1_run`` param yet): a worker that joins then waits, so that phase 1 is trained
    once and reused by every trial instead of once per worker."""
    store = TrackingStore()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        run_id = trial.user_attrs.get(ATTR_TRIAL_RUN)
        if not run_id:
            return True  # its run is being opened
        pipelines = store.children(run_id, max_results=10)
        if not any("phase1_run" in p.data.params for p in pipelines):
            return True
    return False


def on_stale_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Heartbeat-stale callback: the dead worker's trial run ends FAILED, tagged FAIL."""
    run_id = trial.user_attrs.get(ATTR_TRIAL_RUN)
    if run_id:
        try:
            close_trial_run(run_id, TrialState.FAIL)
        except TrackingError as err:  # another worker closed it or the store is elsewhere
            log.warning(
                "could not close trial run %s of stale trial %d: %s", run_id, trial.number, err
            )
