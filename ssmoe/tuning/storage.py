"""Where a study lives: an Optuna storage with heartbeats, so a killed worker's trial goes stale,
is failed and retried.

- Default (one machine): SQLite ``optuna.db`` next to the MLflow store (beside ``mlflow.db``
  when ``MLFLOW_TRACKING_URI`` is a SQLite file or unset, else in the working directory).
  SQLite rather than Optuna's journal file because heartbeats (stale-trial detection) are
  implemented by ``RDBStorage`` only; ``JournalStorage`` has none in Optuna 5, so a SIGKILLed
  trial would stay RUNNING for ever. ``optuna-dashboard sqlite:///…/optuna.db`` opens it.
- Several machines: ``postgresql+psycopg2://user:pass@host/db`` (any SQLAlchemy URL works).
- A path without ``://`` is a journal file (``JournalFileBackend``): no heartbeats, accepted
  for users who want it, with a warning.
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from ssmoe.tracking.runs import tracking_uri

log = logging.getLogger(__name__)

StaleCallback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass(frozen=True)
class StorageConfig:
    """``url`` None = the embedded default. Heartbeat times in seconds: a RUNNING trial whose
    worker has not written a heartbeat for ``grace_period`` s is failed by the next worker that
    looks (and retried up to ``max_retry`` times)."""

    url: str | None = None
    heartbeat_interval: int = 20
    grace_period: int = 60
    max_retry: int = 2

    def __post_init__(self) -> None:
        if self.heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be > 0, got {self.heartbeat_interval}")
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"grace_period ({self.grace_period} s) must exceed heartbeat_interval "
                f"({self.heartbeat_interval} s)"
            )


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning (heartbeats and retries are marked experimental)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def default_url() -> str:
    """``sqlite:///<dir>/optuna.db`` beside the MLflow SQLite store (else in the cwd)."""
    uri = tracking_uri()
    folder = Path(uri[len("sqlite:///") :]).parent if uri.startswith("sqlite:///") else Path.cwd()
    return f"sqlite:///{(folder / 'optuna.db').resolve()}"


def resolve_url(url: str | None) -> str:
    return url or default_url()


def public_url(url: str) -> str:
    """The URL with its password masked (safe to log as an MLflow param)."""
    if "://" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: leave it to the storage to complain
        return url


def make_storage(
    config: StorageConfig, on_stale: StaleCallback | None = None
) -> optuna.storages.BaseStorage:
    """The Optuna storage of ``config``; ``on_stale(study, trial)`` runs on every stale trial
    failed by this worker (after the retry is enqueued)."""
    url = resolve_url(config.url)
    if "://" not in url:
        log.warning("journal file %s: no heartbeats, a killed worker's trial stays RUNNING", url)
        from optuna.storages.journal import JournalFileBackend

        backend = JournalFileBackend(str(Path(url).resolve()))
        return optuna.storages.JournalStorage(backend)
    with quiet():
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=config.max_retry)

    def stale(study: optuna.Study, trial: FrozenTrial) -> None:
        log.warning("trial %d went stale (no heartbeat): failed, retrying", trial.number)
        retry(study, trial)
        if on_stale is not None:
            on_stale(study, trial)

    engine_kwargs: dict[str, Any]
    if url.startswith("sqlite"):
        # Several local workers share one file: wait for the write lock instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(5):
        try:
            with quiet():
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=config.heartbeat_interval,
                    grace_period=config.grace_period,
                    heartbeat_stale_trial_callback=stale,
                )
        except (IntegrityError, ProgrammingError) as err:
            # Workers starting together on an empty database race to create Optuna's schema
            # (PostgreSQL: duplicate CREATE TYPE); the loser finds it complete on a retry.
            if attempt == 4:
                raise
            log.info("storage schema being created by another worker (%s): retrying", err.orig)
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")
