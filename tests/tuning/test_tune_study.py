"""A tiny study end to end, in process: trials, MLflow parent/child runs, reuse of phase 1,
the final test evaluation, pruning, and restarting a finished study."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from tune_helpers import FAST, write_space

from ssmoe.tuning import StorageConfig, TuneConfig, run_tune
from ssmoe.tuning.tracking import ATTR_PARENT_RUN, ATTR_TRIAL_RUN

pytestmark = pytest.mark.slow
STATS = ("average", "variance", "min", "q1", "median", "q3", "max")


def config(store: Path, data: Path, study: str, **kw) -> TuneConfig:
    return TuneConfig(
        study=study,
        data_dir=str(data),
        preset="tiny",
        max_volumes=3,
        overrides=FAST,
        experiment="tune-test",
        storage=StorageConfig(heartbeat_interval=1, grace_period=3),
        **kw,
    )


def runs(step: str | None = None, **where: str) -> list:
    client = MlflowClient()
    exp = client.get_experiment_by_name("tune-test")
    clauses = [f"tags.`ssmoe.step` = '{step}'"] if step else []
    clauses += [f"tags.`{k}` = '{v}'" for k, v in where.items()]
    return client.search_runs([exp.experiment_id], " and ".join(clauses), max_results=1000)


@pytest.fixture(scope="module")
def tiny_study(store: Path, tiny_dataset: Path):
    space = write_space(store / "space.json")
    result = run_tune(config(store, tiny_dataset, "tiny", n_trials=2, space=str(space)))
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{store / 'optuna.db'}")
    return result, study


def test_trials_complete_with_the_validation_objective(tiny_study) -> None:
    result, study = tiny_study
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert result.counts == {"n_complete": 2, "n_pruned": 0, "n_fail": 0}
    assert result.trials_run == 2
    for t in trials:
        assert t.value == pytest.approx(t.user_attrs["val"]["val_average"])
        evaluation = MlflowClient().get_run(t.user_attrs["evaluate_run"])
        # The trial's pipeline holds out the validation subject, never the test subject.
        assert evaluation.data.params["test_subject"] == "cdmri0012"
        assert t.value == pytest.approx(evaluation.data.metrics["average_ssmoe"])


def test_parent_run_and_trial_child_runs(tiny_study) -> None:
    result, study = tiny_study
    parent = MlflowClient().get_run(result.parent_run_id)
    assert study.user_attrs[ATTR_PARENT_RUN] == result.parent_run_id
    assert parent.data.tags["ssmoe.step"] == "tune"
    assert parent.data.params["study"] == "tiny"
    assert parent.info.status == "FINISHED"
    assert [r.info.run_id for r in runs("tune")] == [result.parent_run_id]
    trial_runs = {int(r.data.params["trial_number"]): r for r in runs("trial")}
    assert sorted(trial_runs) == [0, 1]
    for t in study.get_trials():
        run = trial_runs[t.number]
        assert run.info.run_id == t.user_attrs[ATTR_TRIAL_RUN]
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
        assert run.data.tags["ssmoe.root_run"] == result.parent_run_id
        assert run.data.tags["ssmoe.trial_state"] == "COMPLETE"
        p = run.data.params
        assert (p["study"], int(p["k"]), p["segmenter"]) == (
            "tiny",
            t.params["k"],
            t.params["segmenter"],
        )
        assert float(p["lr"]) == pytest.approx(t.params["lr"])
        m = run.data.metrics
        assert m["objective"] == pytest.approx(t.value)
        assert {f"val_{s}" for s in STATS} <= set(m)
        # The trial's pipeline run hangs under the trial run, its phases under the pipeline.
        (pipeline,) = runs("pipeline", **{"mlflow.parentRunId": run.info.run_id})
        phases = runs(**{"mlflow.parentRunId": pipeline.info.run_id})
        assert {r.data.tags["ssmoe.step"] for r in phases} >= {"phase2", "phase3", "evaluate"}


def test_phase1_is_trained_once_for_all_trials(tiny_study) -> None:
    result, _ = tiny_study
    trial_ids = {r.info.run_id for r in runs("trial")}
    pipelines = [r for r in runs("pipeline") if r.data.tags["mlflow.parentRunId"] in trial_ids]
    phase1_ids = {r.data.params["phase1_run"] for r in pipelines}
    assert len(pipelines) == 2 and len(phase1_ids) == 1
    reused = sorted(r.data.tags["ssmoe.reused.phase1"] for r in pipelines)
    assert reused == ["false", "true"]
    phase1 = MlflowClient().get_run(phase1_ids.pop())
    assert phase1.data.params["train_subjects"] == "cdmri0011"  # test subject excluded
    assert phase1.data.params["exclude_subjects"] == "cdmri0013"
    assert phase1.data.params["lr"] == "0.001"  # the tuned lr drives phases 2-3 only


def test_best_trial_is_evaluated_once_on_the_test_subject(tiny_study) -> None:
    result, study = tiny_study
    best = study.best_trial
    final = result.final
    assert final is not None and final.best_trial == best.number
    parent = MlflowClient().get_run(result.parent_run_id)
    p, m = parent.data.params, parent.data.metrics
    assert int(p["best_k"]) == best.params["k"] and p["best_segmenter"] == best.params["segmenter"]
    assert float(p["best_lr"]) == pytest.approx(best.params["lr"])
    assert m["best_objective"] == pytest.approx(best.value)
    assert m["best_val_average"] == pytest.approx(best.value)
    assert m["n_complete"] == 2
    (pipeline,) = runs("pipeline", **{"mlflow.parentRunId": result.parent_run_id})
    (evaluation,) = runs("evaluate", **{"mlflow.parentRunId": pipeline.info.run_id})
    assert evaluation.data.params["test_subject"] == "cdmri0013"
    assert m["test_average_ssmoe"] == pytest.approx(evaluation.data.metrics["average_ssmoe"])
    assert {f"test_{s}_{meth}" for s in STATS for meth in ("cubic", "unet", "ssmoe")} <= set(m)


def test_restarting_a_finished_study_runs_nothing(
    tiny_study, store: Path, tiny_dataset: Path
) -> None:
    result, _ = tiny_study
    n_pipelines = len(runs("pipeline"))
    again = run_tune(
        config(store, tiny_dataset, "tiny", n_trials=2, space=str(store / "space.json"))
    )
    assert again.trials_run == 0 and again.parent_run_id == result.parent_run_id
    assert again.final is not None and again.final.pipeline_run is None  # not re-evaluated
    assert len(runs("pipeline")) == n_pipelines


def test_a_worker_with_another_fold_is_refused(tiny_study, store: Path, tiny_dataset: Path) -> None:
    cfg = config(store, tiny_dataset, "tiny", n_trials=2, val_subject="cdmri0011")
    with pytest.raises(ValueError, match="was started with other settings"):
        run_tune(cfg)


def test_pruned_trials(tiny_study, store: Path, tiny_dataset: Path) -> None:
    # Any validation loss is above 1e-9: the pruner stops every trial at phase 3's first epoch.
    # Another lr range than the "tiny" study: otherwise TPE (same seed) would propose the same
    # trials, whose phases 2-3 would be reused and report no epoch to the pruner.
    space = write_space(
        store / "prune.json", pruner={"name": "threshold", "upper": 1e-9}, lr=(2e-2, 5e-2)
    )
    result = run_tune(
        config(store, tiny_dataset, "pruned", n_trials=1, space=str(space), final_test=False)
    )
    study = optuna.load_study(study_name="pruned", storage=f"sqlite:///{store / 'optuna.db'}")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED]
    assert result.counts["n_pruned"] == 1 and result.final is None
    assert all(list(t.intermediate_values) == [0] for t in trials)  # phase 3, epoch 0
    for run in runs("trial", **{"ssmoe.study": "pruned"}):
        assert run.data.tags["ssmoe.trial_state"] == "PRUNED"
        assert run.info.status == "KILLED"
        assert "objective" not in run.data.metrics
        assert "phase3_val_loss" in run.data.metrics
        (pipeline,) = runs("pipeline", **{"mlflow.parentRunId": run.info.run_id})
        assert pipeline.info.status == "FAILED"
        (phase3,) = runs("phase3", **{"mlflow.parentRunId": pipeline.info.run_id})
        assert phase3.info.status == "FAILED"  # never reused by a later pipeline
