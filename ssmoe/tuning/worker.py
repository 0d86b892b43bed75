"""One tuning worker: join (or create) the study, run trials until the study has ``n_trials``
finished ones, then (unless told not to) evaluate the best trial on the test subject.

Start as many workers as you like, on one machine or many, with the same study name and
storage: they share the Optuna study and its one MLflow parent run. A worker runs a trial only
while COMPLETE + PRUNED + RUNNING < ``n_trials`` (``MaxTrialsCallback`` counting COMPLETE +
PRUNED stops it after a trial), and waits while other workers' trials may still finish the
study; a RUNNING trial whose worker died goes stale after the grace period, is failed (its
MLflow run closed FAILED) and retried, so a restarted worker completes the study.
"""

from __future__ import annotations

import fcntl
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ssmoe.configs import simulation
from ssmoe.data import layout
from ssmoe.data.simulate import simulate_dataset
from ssmoe.tracking import TrackingStore, setup
from ssmoe.tuning.config import Fold, TuneConfig, resolve_fold
from ssmoe.tuning.final import FinalTest, evaluate_best, trial_counts
from ssmoe.tuning.objective import Objective
from ssmoe.tuning.space import SearchSpace, load_space
from ssmoe.tuning.storage import make_storage, public_url, quiet, resolve_url
from ssmoe.tuning.tracking import (
    close_orphan_runs,
    on_stale_trial,
    phase1_in_progress,
    shared_parent_run,
)

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
ATTR_FOLD = "ssmoe_fold"  # study user attr: what every worker of the study must agree on


@dataclass
class TuneResult:
    study: str
    parent_run_id: str
    counts: dict[str, int]
    trials_run: int  # by this worker
    final: FinalTest | None


def open_study(config: TuneConfig, space: SearchSpace) -> tuple[optuna.Study, bool]:
    """Create the study, or load it when another worker did; returns (study, created)."""
    storage = make_storage(config.storage, on_stale=on_stale_trial)
    sampler = space.make_sampler(config.sampler)
    pruner = space.make_pruner()
    try:
        study = optuna.create_study(
            study_name=config.study,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction="minimize",
        )
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        # A joining worker must not replay the creator's random sequence (same seed = same
        # proposals = duplicate trials): it draws its own seed.
        seed = random.SystemRandom().randrange(2**31)
        log.info("joining study %s with sampler seed %d", config.study, seed)
        study = optuna.load_study(
            study_name=config.study,
            storage=storage,
            sampler=space.make_sampler(config.sampler, seed=seed),
            pruner=pruner,
        )
        return study, False


def _data_dir(config: TuneConfig) -> str:
    """The dataset: ``data_dir``, or simulated into ``<workdir>/data`` under a file lock (kept
    once complete, so only the first local worker writes it)."""
    if config.data_dir:
        path = Path(config.data_dir).resolve()
        if not path.is_dir():
            raise ValueError(f"data_dir {path} does not exist")
        return str(path)
    workdir = Path(config.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "data"
    with open(workdir / ".simulate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / layout.SIM_CONFIG).exists():  # the record is written last
            log.info("simulating %d subjects into %s", config.subjects, path)
            simulate_dataset(simulation(config.preset, path, config.subjects, config.seed))
    return str(path)


def _check_fold(study: optuna.Study, created: bool, expected: dict[str, object]) -> None:
    """Every worker of a study must tune the same fold, task, preset and data."""
    expected = json.loads(json.dumps(expected))  # as stored (tuples become lists)
    if created:
        study.set_user_attr(ATTR_FOLD, expected)
        return
    deadline = time.monotonic() + 60
    while ATTR_FOLD not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)
    recorded = study.user_attrs.get(ATTR_FOLD)
    if recorded is None:
        study.set_user_attr(ATTR_FOLD, expected)
        return
    diff = {k: (recorded.get(k), v) for k, v in expected.items() if recorded.get(k) != v}
    if diff:
        raise ValueError(
            f"study {study.study_name!r} was started with other settings "
            f"(field: (study, this worker)) {diff}; use another study name"
        )


def _budget(study: optuna.Study) -> tuple[int, int]:
    """(finished = COMPLETE + PRUNED, running) after failing stale trials."""
    with quiet():
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return len(trials) - running, running


def work(study: optuna.Study, objective: Objective, n_trials: int, poll_s: float) -> int:
    """Run trials until the study has ``n_trials`` finished ones; returns how many ran here."""
    ran = 0
    stop = optuna.study.MaxTrialsCallback(n_trials, states=FINISHED)
    while True:
        finished, running = _budget(study)
        if finished >= n_trials:
            return ran
        if finished + running >= n_trials:
            # Other workers' trials may finish the study, or go stale and be retried here.
            time.sleep(poll_s)
            continue
        if not finished and not ran and running and phase1_in_progress(study):
            time.sleep(poll_s)  # let the first trial train the phase 1 every trial reuses
            continue
        study.optimize(
            objective,
            n_trials=1,
            catch=(FloatingPointError,),  # a diverging learning rate is a FAIL, not a crash
            callbacks=[stop],
            gc_after_trial=True,
        )
        ran += 1


def wait_idle(study: optuna.Study, poll_s: float) -> None:
    """Wait until no trial is RUNNING (stale ones are failed on the way)."""
    while _budget(study)[1]:
        time.sleep(poll_s)


def run_tune(config: TuneConfig) -> TuneResult:
    """Run one worker of ``config.study`` (see the module docstring)."""
    space = load_space(config.space)
    n_trials = config.n_trials
    if (config.sampler or space.sampler.get("name")) == "grid" and n_trials > space.grid_size():
        log.warning("grid of %d points: n_trials %d lowered to it", space.grid_size(), n_trials)
        n_trials = space.grid_size()
    setup(config.experiment)
    data_dir = _data_dir(config)
    fold = resolve_fold(data_dir, config.test_subject, config.val_subject)
    study, created = open_study(config, space)
    settings = {
        "task": config.task,
        "preset": config.preset,
        "seed": config.seed,
        "overrides": config.overrides,
    }
    _check_fold(study, created, {**fold.as_dict(), **settings, "data_dir": data_dir})
    parent = shared_parent_run(
        study,
        created=created,
        experiment=config.experiment,
        params={
            **settings,
            **fold.as_dict(),
            "data_dir": data_dir,
            "storage": public_url(resolve_url(config.storage.url)),
            "space": config.space or "default",
            "sampler": config.sampler or space.sampler.get("name", "tpe"),
            "pruner": space.pruner.get("name", "median"),
            "max_volumes": config.max_volumes,
        },
    )
    log.info(
        "study %s (%s), parent run %s, fold %s",
        config.study,
        "created" if created else "joined",
        parent,
        fold,
    )
    close_orphan_runs(study)
    objective = Objective(config, space, fold, data_dir, parent)
    poll_s = float(config.storage.heartbeat_interval)
    ran = work(study, objective, n_trials, poll_s)
    final = None
    if config.final_test:
        wait_idle(study, poll_s)
        close_orphan_runs(study)
        final = evaluate_best(study, config, fold, data_dir, parent)
        TrackingStore().end_run(parent, "FINISHED")
    close_orphan_runs(study)
    return TuneResult(config.study, parent, trial_counts(study), ran, final)


__all__ = ["Fold", "TuneResult", "run_tune", "work"]
