"""Every phase end to end on tiny data into a temporary tracking store, and what it logged."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import mlflow
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from ssmoe.data.patches import GridTiler
from ssmoe.data.reader import open_dataset
from ssmoe.evaluation.reconstruct import reconstruct
from ssmoe.phases import (
    EvaluateConfig,
    HardMoEConfig,
    Phase1Config,
    Phase2Config,
    Phase3Config,
    PredictConfig,
    run_evaluate,
    run_hardmoe,
    run_phase1,
    run_phase2,
    run_phase3,
    run_predict,
)
from ssmoe.tracking.artifacts import list_artifacts, load_frame, load_model

REPO = Path(__file__).resolve().parents[2]
TRAIN = {"epochs": 1, "batch_size": 32}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{path / 'mlflow.db'}"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture(scope="module")
def runs(store: str, tiny_dataset: Path) -> dict[str, str]:
    r1 = run_phase1(
        Phase1Config(
            data_dir=str(tiny_dataset), task="aniso", width=2, n_pairs=160, device="cpu", **TRAIN
        )
    )
    r2 = run_phase2(Phase2Config(phase1_run=r1, segmenter="quantile", k=2, device="cpu", **TRAIN))
    r3 = run_phase3(Phase3Config(phase2_run=r2, n_pairs=96, device="cpu", **TRAIN))
    rh = run_hardmoe(HardMoEConfig(phase1_run=r1, k=2, n_pairs=96, device="cpu", **TRAIN))
    re_ = run_evaluate(EvaluateConfig(phase3_run=r3, hardmoe_run=rh, max_volumes=6, device="cpu"))
    return {"phase1": r1, "phase2": r2, "phase3": r3, "hardmoe": rh, "evaluate": re_}


def test_every_phase_finished_with_its_step_tag(runs: dict[str, str]) -> None:
    client = MlflowClient()
    for step, run_id in runs.items():
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["ssmoe.step"] == step


def test_phase1_logs_scores_losses_and_a_loadable_model(runs, tiny_dataset: Path) -> None:
    run = MlflowClient().get_run(runs["phase1"])
    assert {"train_loss", "val_loss", "score_median"} <= set(run.data.metrics)
    assert run.data.params["test_subject"] == "cdmri0013"  # default fold: the last subject
    assert run.data.params["train_subjects"] == "cdmri0011,cdmri0012"
    scores = load_frame(runs["phase1"], "scores/patch_scores.csv")
    assert len(scores) == 160 and (scores.score > 0).all()
    assert set(scores.subject) == {"cdmri0011", "cdmri0012"}
    assert scores.is_val.sum() == 16
    assert "figures/score_histogram.png" in list_artifacts(runs["phase1"], "figures")
    model = load_model(f"runs:/{runs['phase1']}/model")
    y = model(torch.ones(2, 1, 16, 16, 8), torch.zeros(2, 6))
    assert y.shape == (2, 1, 16, 16, 16)


def test_phase2_lineage_labels_and_gater(runs) -> None:
    run = MlflowClient().get_run(runs["phase2"])
    assert run.data.params["phase1_run"] == runs["phase1"]
    labels = load_frame(runs["phase2"], "labels/pseudo_labels.csv")
    scores = load_frame(runs["phase1"], "scores/patch_scores.csv")
    thr = float(run.data.params["threshold_0"])
    assert np.array_equal(labels.label, (scores.score > thr).astype(int))
    assert run.data.metrics["class_count_0"] + run.data.metrics["class_count_1"] == 144
    confusion = load_frame(runs["phase2"], "gater/confusion.csv")
    assert confusion[["pred_0", "pred_1"]].to_numpy().sum() == 16  # validation pairs
    gater = load_model(f"runs:/{runs['phase2']}/gater")
    assert gater(torch.ones(3, 1, 16, 16, 8), torch.zeros(3, 6)).shape == (3, 2)


def test_phase3_and_hardmoe_models_route_to_k_experts(runs) -> None:
    p3 = MlflowClient().get_run(runs["phase3"])
    assert p3.data.params["phase2_run"] == runs["phase2"]
    assert p3.data.params["phase1_run"] == runs["phase1"]
    for step in ("phase3", "hardmoe"):
        model = load_model(f"runs:/{runs[step]}/model")
        assert model.k == 2
        x = torch.rand(4, 1, 16, 16, 8) * 50
        y, routes = model.forward_with_routes(x, torch.zeros(4, 6))
        assert y.shape == (4, 1, 16, 16, 16) and set(routes.tolist()) <= {0, 1}


def test_evaluate_logs_distributions_statistics_and_tests(runs) -> None:
    run = MlflowClient().get_run(runs["evaluate"])
    per_volume = load_frame(runs["evaluate"], "evaluation/per_volume_mse.csv")
    assert list(per_volume.columns) == [
        "volume",
        "b",
        "TI",
        "TE",
        "cubic",
        "unet",
        "hardmoe",
        "ssmoe",
    ]
    assert len(per_volume) == 6
    for method in ("cubic", "unet", "hardmoe", "ssmoe"):
        assert run.data.metrics[f"average_{method}"] == pytest.approx(per_volume[method].mean())
        assert run.data.metrics[f"max_{method}"] == pytest.approx(per_volume[method].max())
    wilcoxon = load_frame(runs["evaluate"], "evaluation/wilcoxon.csv")
    assert len(wilcoxon) == 6 and wilcoxon.p_value.between(0, 1).all()
    summary = load_frame(runs["evaluate"], "evaluation/summary.csv")
    assert list(summary.method) == ["cubic", "unet", "hardmoe", "ssmoe"]
    coronal = np.load(
        mlflow.artifacts.download_artifacts(
            run_id=runs["evaluate"], artifact_path="evaluation/coronal.npz"
        )
    )
    assert coronal["hr"].shape == coronal["ssmoe"].shape == (32, 24)
    assert coronal["lr"].shape == (32, 12)
    assert 0 <= int(coronal["volume"]) < 6  # a volume among those evaluated
    confusion = load_frame(runs["evaluate"], "evaluation/confusion.csv")
    assert confusion[["pred_0", "pred_1"]].to_numpy().sum() > 0
    for p in ("task", "test_subject", "k", "segmenter", "phase1_run", "phase2_run"):
        assert p in run.data.params


def test_predict_matches_the_test_phase_reconstruction(
    runs, tiny_dataset: Path, tmp_path: Path
) -> None:
    subject = open_dataset(tiny_dataset)["cdmri0013"]
    out = run_predict(
        PredictConfig(
            model=f"runs:/{runs['phase3']}/model",
            input=str(subject.lr_image("aniso").get_filename()),
            params=str(Path(subject.lr_image("aniso").get_filename()).parent / "parameters.txt"),
            output=str(tmp_path / "sr.nii.gz"),
            device="cpu",
        )
    )
    image = nib.load(out)
    assert image.shape == (*subject.hr_shape, subject.n_volumes)
    assert np.allclose(image.header.get_zooms()[:3], (2.5, 2.5, 2.5))
    assert np.allclose(image.affine, subject.hr_affine, atol=1e-4)
    model = load_model(f"runs:/{runs['phase3']}/model")
    expected = reconstruct(
        model,
        subject.lr_volume("aniso", 3),
        subject.params[3],
        GridTiler(subject.hr_shape, "aniso", stride=16),
    ).volume
    assert np.allclose(np.asarray(image.dataobj[..., 3]), expected, atol=1e-5)


def test_predict_rejects_mismatched_parameters(runs, tiny_dataset: Path, tmp_path: Path) -> None:
    subject = open_dataset(tiny_dataset)["cdmri0013"]
    params = tmp_path / "params.txt"
    params.write_text("0 0 1 0 20 80\n")
    with pytest.raises(ValueError, match="1 parameter rows"):
        run_predict(
            PredictConfig(
                model=f"runs:/{runs['phase3']}/model",
                input=str(subject.lr_image("aniso").get_filename()),
                params=str(params),
                output=str(tmp_path / "x.nii.gz"),
            )
        )
    assert not (tmp_path / "x.nii.gz").exists()


def test_a_failing_phase_ends_failed_not_finished(runs, store: str) -> None:
    with pytest.raises(ValueError, match="not found"):
        run_phase2(Phase2Config(phase1_run="0" * 32))
    # a phase that fails after its run started: an unknown segmenter
    with pytest.raises(ValueError):
        run_phase2(Phase2Config(phase1_run=runs["phase1"], segmenter="nope", k=2, device="cpu"))
    failed = mlflow.search_runs(
        experiment_names=["ssmoe"], filter_string="tags.`ssmoe.step` = 'phase2'"
    )
    statuses = pd.Series(failed.status.to_numpy())
    assert (statuses == "FAILED").sum() == 1 and (statuses == "FINISHED").sum() == 1


def test_lineage_is_checked(runs) -> None:
    with pytest.raises(ValueError, match="is a phase2 run, expected a phase1 run"):
        run_phase2(Phase2Config(phase1_run=runs["phase2"]))


@pytest.mark.slow
def test_mlflow_run_entry_point_phase2(runs, store: str, tmp_path: Path) -> None:
    """`mlflow run . -e phase2` with --env-manager local, into the same store."""
    if shutil.which("mlflow") is None:
        pytest.skip("mlflow CLI not on PATH")
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.run(
        [
            "mlflow",
            "run",
            ".",
            "-e",
            "phase2",
            "--env-manager",
            "local",
            "--experiment-name",
            "ssmoe",
            "-P",
            f"phase1_run={runs['phase1']}",
            "-P",
            "preset=tiny",
            "-P",
            "device=cpu",
        ],
        cwd=REPO / "mlproject",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = mlflow.search_runs(
        experiment_names=["ssmoe"], filter_string="tags.`mlflow.project.entryPoint` = 'phase2'"
    )
    assert len(found) == 1
    run = MlflowClient().get_run(found.run_id[0])
    assert run.info.status == "FINISHED"
    assert run.data.tags["ssmoe.step"] == "phase2"  # the phase adopted mlflow run's run
    assert run.data.params["phase1_run"] == runs["phase1"]
    assert "segmenter/segmenter.json" in list_artifacts(run.info.run_id, "segmenter")
