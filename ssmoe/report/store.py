"""Read what the phases logged: runs, params, metrics and named artifacts, from MLflow only.

Everything the report shows goes through `RunStore`, so the report never depends on state kept
in memory by the process that trained the models (see docs/ARCHITECTURE.md, "Tracking contract").
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssmoe.tracking import TAG_PARENT, TAG_ROOT, TAG_STEP, Run, TrackingStore
from ssmoe.vocabulary import TASKS

log = logging.getLogger(__name__)

# Runs still RUNNING/SCHEDULED are never read; trial runs may end FAILED/KILLED when Optuna
# prunes or fails them, their state then comes from the `ssmoe.trial_state` tag.
_TERMINAL = ("FINISHED", "FAILED", "KILLED")


def run_key(run: Run) -> tuple[int, int]:
    """Sort key: latest started (then latest ended) last."""
    return (run.info.start_time or 0, run.info.end_time or 0)


def step_of(run: Run) -> str | None:
    """The `ssmoe.step` tag of a run, or None."""
    return run.data.tags.get(TAG_STEP)


@dataclass(frozen=True)
class EvalKey:
    """Identity of one evaluation: the same key evaluated twice keeps only the latest run."""

    task: str
    test_subject: str
    k: int | None
    segmenter: str

    @classmethod
    def of(cls, run: Run) -> EvalKey:
        p = run.data.params
        k = p.get("k")
        return cls(
            task=p.get("task", "?"),
            test_subject=p.get("test_subject", "?"),
            k=int(float(k)) if k not in (None, "", "None") else None,
            segmenter=p.get("segmenter", "?"),
        )


class RunStore:
    """The finished runs of one experiment (optionally one study) and their artifacts.

    Args:
        experiment: MLflow experiment name.
        root_run: keep only runs tagged `ssmoe.root_run=<root_run>` and the root run itself.
        tracking_uri: store to read; default the one in force (`MLFLOW_TRACKING_URI`, else
            `sqlite:///<cwd>/mlflow.db`).

    Raises:
        ValueError: the experiment or the root run does not exist.
    """

    def __init__(
        self, experiment: str, root_run: str | None = None, tracking_uri: str | None = None
    ) -> None:
        self.tracking = TrackingStore(tracking_uri)
        self.tracking_uri = self.tracking.uri
        experiment_id = self.tracking.experiment_id(experiment)
        if experiment_id is None:
            raise ValueError(
                f"experiment {experiment!r} not found in tracking store {self.tracking_uri!r}"
            )
        self.experiment = experiment
        self.experiment_id = experiment_id
        self.root_run = root_run
        self.runs: list[Run] = self._search(experiment_id, root_run)
        self._by_id = {r.info.run_id: r for r in self.runs}
        self._cache = Path(tempfile.mkdtemp(prefix="ssmoe-report-"))
        log.info(
            "report: %d runs in experiment %r (root run %s)", len(self.runs), experiment, root_run
        )

    def _search(self, experiment_id: str, root_run: str | None) -> list[Run]:
        filt = f"tags.`{TAG_ROOT}` = '{root_run}'" if root_run else ""
        runs = self.tracking.search([experiment_id], filt)
        if root_run:
            try:
                root = self.tracking.run(root_run)
            except Exception as err:  # TrackingError: unknown id
                raise ValueError(f"root run {root_run!r} not found: {err}") from err
            if root.info.run_id not in {r.info.run_id for r in runs}:
                runs.append(root)
            runs.extend(self._referenced(runs))
        return [r for r in runs if r.info.status in _TERMINAL]

    def _referenced(self, runs: list[Run]) -> list[Run]:
        """Runs named by `<step>_run` params of `runs` (transitively) but outside the study.

        A pipeline that reuses a finished step from an earlier study logs its id as a param
        (e.g. `evaluate_run`); that run keeps the earlier study's `ssmoe.root_run` tag.
        """
        known = {r.info.run_id for r in runs}
        frontier, found = list(runs), []
        while frontier:
            run = frontier.pop()
            for name, value in run.data.params.items():
                if not name.endswith("_run") or not value or value in known:
                    continue
                known.add(value)
                try:
                    ref = self.tracking.run(value)
                except Exception:  # not a run id of this store
                    continue
                if ref.info.experiment_id == self.experiment_id:
                    found.append(ref)
                    frontier.append(ref)
        return found

    def close(self) -> None:
        """Remove downloaded artifacts."""
        shutil.rmtree(self._cache, ignore_errors=True)

    # --- runs -------------------------------------------------------------------------------

    def by_step(self, step: str, *, finished_only: bool = True) -> list[Run]:
        """Runs tagged `ssmoe.step=<step>`, oldest first."""
        out = [
            r
            for r in self.runs
            if step_of(r) == step and (not finished_only or r.info.status == "FINISHED")
        ]
        return sorted(out, key=run_key)

    def get(self, run_id: str | None) -> Run | None:
        """A finished run of this store by id (None when absent or not finished)."""
        run = self._by_id.get(run_id) if run_id else None
        return run if run is not None and run.info.status == "FINISHED" else None

    def evaluations(self) -> dict[EvalKey, Run]:
        """The latest finished evaluate run per (task, test_subject, k, segmenter).

        Evaluate runs nested under a tuning trial are left out: they score a validation subject
        at the trial's learning rate, and belong to the tuning section, not to Tables 1/2/S1.
        """
        latest: dict[EvalKey, Run] = {}
        for run in self.by_step("evaluate"):  # oldest first: later runs overwrite
            if not self.under_step(run, "trial"):
                latest[EvalKey.of(run)] = run
        return latest

    def under_step(self, run: Run, step: str) -> bool:
        """Whether an ancestor of `run` (via `mlflow.parentRunId`) is tagged `ssmoe.step=step`."""
        by_id = self._by_id
        seen: set[str] = set()
        parent = run.data.tags.get(TAG_PARENT)
        while parent and parent not in seen and parent in by_id:
            seen.add(parent)
            if step_of(by_id[parent]) == step:
                return True
            parent = by_id[parent].data.tags.get(TAG_PARENT)
        return False

    # --- artifacts --------------------------------------------------------------------------

    def artifact(self, run: Run, path: str) -> Path | None:
        """Download `path` of `run` (cached); None when the run has no such artifact."""
        dst = self._cache / run.info.run_id
        target = dst / path
        if target.exists():
            return target
        dst.mkdir(parents=True, exist_ok=True)
        try:
            return self.tracking.download(run.info.run_id, path, dst)
        except Exception as err:  # missing artifacts raise TrackingError or OSError
            log.debug("no artifact %s in run %s: %s", path, run.info.run_id, err)
            return None

    def csv(self, run: Run, path: str) -> pd.DataFrame | None:
        """A CSV artifact as a DataFrame, or None."""
        local = self.artifact(run, path)
        return pd.read_csv(local) if local is not None else None

    def json(self, run: Run, path: str) -> dict[str, Any] | None:
        """A JSON artifact, or None."""
        local = self.artifact(run, path)
        return json.loads(local.read_text()) if local is not None else None

    def npz(self, run: Run, path: str) -> dict[str, np.ndarray] | None:
        """An `.npz` artifact loaded into memory, or None."""
        local = self.artifact(run, path)
        if local is None:
            return None
        with np.load(local, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    # --- lineage ----------------------------------------------------------------------------

    def upstream(self, run: Run, step: str) -> Run | None:
        """The `step` run upstream of `run`, following params `<step>_run` (phase3 -> phase2 ...).

        Falls back to None when the chain is broken (e.g. the upstream run is outside the store).
        """
        seen: set[str] = set()
        frontier = [run]
        while frontier:
            current = frontier.pop()
            if current.info.run_id in seen:
                continue
            seen.add(current.info.run_id)
            direct = self.get(current.data.params.get(f"{step}_run"))
            if direct is not None:
                return direct
            for name, value in current.data.params.items():
                if name.endswith("_run"):
                    parent = self.get(value)
                    if parent is not None:
                        frontier.append(parent)
        return None


def default_setting(evals: dict[EvalKey, Run], task: str) -> tuple[int | None, str] | None:
    """The (k, segmenter) a task was cross-validated with: the one with the most folds."""
    folds: dict[tuple[int | None, str], set[str]] = {}
    for key in evals:
        if key.task == task:
            folds.setdefault((key.k, key.segmenter), set()).add(key.test_subject)
    if not folds:
        return None
    # Most folds first, then most runs of that k (the most common k), then smallest k.
    k_counts = Counter(key.k for key in evals if key.task == task)
    return max(folds, key=lambda s: (len(folds[s]), k_counts[s[0]], -(s[0] or 0), s[1] == "mqs"))


def fold_runs(evals: dict[EvalKey, Run], task: str) -> dict[str, Run]:
    """Per test subject (sorted), the evaluate run of `task` at its default (k, segmenter)."""
    setting = default_setting(evals, task)
    if setting is None:
        return {}
    k, segmenter = setting
    out = {
        key.test_subject: run
        for key, run in evals.items()
        if key.task == task and key.k == k and key.segmenter == segmenter
    }
    return dict(sorted(out.items()))


def tasks_present(evals: dict[EvalKey, Run]) -> list[str]:
    """Tasks with evaluate runs, the paper's order (aniso, iso) first."""
    found = {key.task for key in evals}
    return [t for t in TASKS if t in found] + sorted(found - set(TASKS))
