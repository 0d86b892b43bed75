"""Study definitions, folds, storage URLs and overrides: fast checks, no training."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from ssmoe.configs import parse_overrides
from ssmoe.tuning import StorageConfig, TuneConfig, load_space, resolve_fold
from ssmoe.tuning.space import DEFAULT_SPACE, SPACES_DIR
from ssmoe.tuning.storage import default_url, public_url


def test_default_space_is_tpe_over_k_segmenter_lr() -> None:
    space = load_space()
    assert space.source == str(DEFAULT_SPACE)
    by_name = {p.name: p for p in space.params}
    assert by_name["k"].choices == (2, 4, 8)
    assert by_name["segmenter"].choices == ("mqs", "kmeans", "empirical", "quantile")
    assert by_name["lr"].log and by_name["lr"].low == 1e-4 and by_name["lr"].high == 1e-2
    assert isinstance(space.make_sampler(), optuna.samplers.TPESampler)
    assert isinstance(space.make_pruner(), optuna.pruners.MedianPruner)


def test_ablation_grid_covers_every_k_and_segmenter() -> None:
    space = load_space("ablation_grid")  # a bare name resolves in ssmoe/tuning/spaces/
    assert space.source == str(SPACES_DIR / "ablation_grid.json")
    assert space.grid() == {
        "k": [2, 4, 8],
        "segmenter": ["mqs", "kmeans", "empirical", "quantile"],
        "lr": [1e-3],
    }
    assert space.grid_size() == 12
    assert isinstance(space.make_sampler(), optuna.samplers.GridSampler)
    assert isinstance(space.make_pruner(), optuna.pruners.NopPruner)


def test_sampler_override_drops_the_other_samplers_arguments() -> None:
    space = load_space()  # tpe with n_startup_trials etc.
    with pytest.raises(ValueError, match="grid sampler needs 'grid' values for params \\['lr'\\]"):
        space.make_sampler("grid")
    assert isinstance(space.make_sampler("random"), optuna.samplers.RandomSampler)


def test_suggest_returns_values_inside_the_space() -> None:
    space = load_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        params = space.suggest(study.ask())
        assert params["k"] in (2, 4, 8) and 1e-4 <= params["lr"] <= 1e-2


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"params": {}}, "non-empty 'params'"),
        ({"params": {"width": {"type": "int", "low": 1, "high": 4}}}, "unknown parameter 'width'"),
        ({"params": {"k": {"type": "set", "choices": [2]}}}, "params.k.type: 'set'"),
        ({"params": {"lr": {"type": "float", "low": 0, "high": 1, "log": True}}}, "low > 0"),
        ({"params": {"lr": {"type": "float", "low": 1, "high": 0}}}, "low <= high"),
        ({"params": {"k": {"type": "categorical"}}}, "needs choices"),
        (
            {"params": {"k": {"type": "categorical", "choices": [2]}}, "sampler": {"name": "cma"}},
            "sampler.name 'cma'",
        ),
        (
            {
                "params": {"k": {"type": "categorical", "choices": [2]}},
                "pruner": {"name": "median", "bogus": 1},
            },
            "pruner 'median'",
        ),
        (
            {"params": {"k": {"type": "categorical", "choices": [2]}}, "direction": "max"},
            "unknown top-level",
        ),
    ],
)
def test_bad_space_names_file_and_field(doc: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message) as err:
        load_space(path)
    assert str(path) in str(err.value)


def test_missing_or_broken_space_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_space(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_space(tmp_path / "broken.json")


def test_fold_defaults_hide_the_last_subject_and_validate_on_the_one_before(
    tiny_dataset: Path,
) -> None:
    fold = resolve_fold(str(tiny_dataset), None, None)
    assert (fold.test, fold.val, fold.train) == ("cdmri0013", "cdmri0012", ("cdmri0011",))
    fold = resolve_fold(str(tiny_dataset), "cdmri0011", "cdmri0013")
    assert (fold.test, fold.val, fold.train) == ("cdmri0011", "cdmri0013", ("cdmri0012",))
    with pytest.raises(ValueError, match="val_subject 'cdmri0099' is not in"):
        resolve_fold(str(tiny_dataset), None, "cdmri0099")
    with pytest.raises(ValueError, match="must differ"):
        resolve_fold(str(tiny_dataset), "cdmri0012", "cdmri0012")


def test_fold_needs_three_subjects(make_dataset) -> None:
    root = make_dataset(subjects=2, shape=(16, 16, 16))
    with pytest.raises(ValueError, match="at least 3 subjects"):
        resolve_fold(str(root), None, None)


def test_default_storage_is_sqlite_beside_the_mlflow_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}")
    assert default_url() == f"sqlite:///{tmp_path / 'db' / 'optuna.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.chdir(tmp_path)
    assert default_url() == f"sqlite:///{tmp_path / 'optuna.db'}"


def test_public_url_masks_the_password() -> None:
    url = public_url("postgresql+psycopg2://alice:s3cret@db.example:5432/optuna")
    assert "s3cret" not in url and url.startswith("postgresql+psycopg2://alice:***@db.example")


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="grace_period"):
        StorageConfig(heartbeat_interval=10, grace_period=10)
    with pytest.raises(ValueError, match="n_trials"):
        TuneConfig(study="s", n_trials=0)
    with pytest.raises(ValueError, match="unknown preset"):
        TuneConfig(study="s", n_trials=1, preset="huge")
    assert parse_overrides(["phase1.n_pairs=64", "phase3.lr=1e-3", "phase2.x=a"]) == {
        "phase1": {"n_pairs": 64},
        "phase3": {"lr": 1e-3},
        "phase2": {"x": "a"},
    }
    with pytest.raises(ValueError, match="STEP.FIELD=VALUE"):
        parse_overrides(["phase9.n=1"])


def test_cli_reports_a_bad_space_as_a_usage_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ssmoe.cli import main

    (tmp_path / "bad.json").write_text(json.dumps({"params": {"k": {"type": "set"}}}))
    result = CliRunner().invoke(
        main, ["tune", "--study", "s", "--n-trials", "2", "--space", str(tmp_path / "bad.json")]
    )
    assert result.exit_code == 1
    assert "params.k.type: 'set'" in result.output and "Traceback" not in result.output
