"""Pipeline reuse: nothing re-runs the second time; a phase-2 change re-runs phases 2, 3 and the
evaluation only; a code change or --force re-runs what it must."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ssmoe.study import cache
from ssmoe.study.pipeline import PipelineConfig, run_pipeline

STEPS = ["simulate", "phase1", "phase2", "phase3", "hardmoe", "evaluate"]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return uri


def _config(tmp_path: Path, **kw) -> PipelineConfig:
    base = {
        "workdir": str(tmp_path / "work"),
        "preset": "tiny",
        "subjects": 2,
        "grid": (32, 32, 24),
        "max_volumes": 3,
        "device": "cpu",
    }
    return PipelineConfig(**{**base, **kw})


def _reran(result) -> set[str]:
    return {step for step, reused in result.reused.items() if not reused}


@pytest.mark.slow
def test_reuse_and_what_a_change_reruns(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_pipeline(_config(tmp_path))
    assert list(first.runs) == STEPS and _reran(first) == set(STEPS)
    assert (tmp_path / "work" / "data" / "cdmri0012").is_dir()

    second = run_pipeline(_config(tmp_path))
    assert _reran(second) == set()
    assert second.runs == first.runs
    client = MlflowClient()
    parent = client.get_run(second.parent_run_id)
    assert parent.data.params["phase1_run"] == first.runs["phase1"]
    assert parent.data.tags["ssmoe.reused.phase1"] == "true"
    assert "average_ssmoe" in parent.data.metrics

    # one phase-2 parameter (the segmenter; K would also change the Hard MoE's size)
    third = run_pipeline(_config(tmp_path, segmenter="kmeans"))
    assert _reran(third) == {"phase2", "phase3", "evaluate"}
    assert third.runs["phase1"] == first.runs["phase1"]
    assert third.runs["hardmoe"] == first.runs["hardmoe"]
    new_phase3 = client.get_run(third.runs["phase3"])
    assert new_phase3.data.params["phase2_run"] == third.runs["phase2"]
    assert new_phase3.data.tags["mlflow.parentRunId"] == third.parent_run_id

    forced = run_pipeline(_config(tmp_path, force="phase3"))
    assert _reran(forced) == {"phase3", "evaluate"}

    # other code: every step's key changes
    cache.code_version.cache_clear()
    monkeypatch.setattr(cache, "code_version", lambda: "0123456789ab")
    changed = run_pipeline(_config(tmp_path, max_volumes=2))
    assert _reran(changed) == set(STEPS)


def test_failed_step_is_not_reused_and_parent_fails(
    store: str, tiny_dataset: Path, tmp_path: Path
) -> None:
    bad = PipelineConfig(
        data_dir=str(tiny_dataset), preset="tiny", device="cpu", test_subject="cdmri0099"
    )
    with pytest.raises(ValueError, match="cdmri0099"):
        run_pipeline(bad)
    runs = MlflowClient().search_runs([_experiment_id()])
    statuses = {r.data.tags["ssmoe.step"]: r.info.status for r in runs}
    assert statuses["pipeline"] == "FAILED"
    assert "phase1" not in statuses or statuses["phase1"] == "FAILED"


def _experiment_id() -> str:
    return MlflowClient().get_experiment_by_name("ssmoe").experiment_id


def test_force_must_name_a_step() -> None:
    with pytest.raises(ValueError, match="force"):
        PipelineConfig(force="phase9")


def test_code_version_hashes_the_package_source() -> None:
    cache.code_version.cache_clear()
    v = cache.code_version()
    assert len(v) == 12 and v == cache.code_version()
    assert os.path.exists(Path(cache.__file__).parent.parent / "study" / "pipeline.py")
