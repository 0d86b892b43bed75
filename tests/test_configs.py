"""The one mapping preset + settings + overrides -> step configs, and typed ``--set`` values."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from ssmoe.cli import main
from ssmoe.configs import StudySettings, parse_overrides
from ssmoe.presets import get_preset
from ssmoe.study.pipeline import PipelineConfig


@pytest.mark.parametrize(
    ("text", "expected"),
    [("False", False), ("false", False), ("0", False), ("TRUE", True), ("true", True), ("1", True)],
)
def test_bool_override_is_parsed_not_truthy(text: str, expected: bool) -> None:
    overrides = parse_overrides([f"phase1.residual={text}"])
    assert overrides == {"phase1": {"residual": expected}}
    config = StudySettings(preset="quick", data_dir="d", overrides=overrides).phase1()
    assert config.residual is expected  # quick's own residual is True


def test_values_are_typed_by_their_field() -> None:
    overrides = parse_overrides(
        [
            "phase1.n_pairs=20000",
            "phase1.val_fraction=0.25",
            "phase3.lr=1e-3",
            "phase1.exclude_subjects=cdmri0011,cdmri0012",
            "phase1.test_subject=none",
            "evaluate.max_volumes=null",
            "evaluate.hardmoe_run=",
            'phase2.segmenter="kmeans"',
            "phase2.segmenter=empirical",
        ]
    )
    assert overrides == {
        "phase1": {
            "n_pairs": 20000,
            "val_fraction": 0.25,
            "exclude_subjects": ("cdmri0011", "cdmri0012"),
            "test_subject": None,
        },
        "phase3": {"lr": 0.001},
        "evaluate": {"max_volumes": None, "hardmoe_run": None},
        "phase2": {"segmenter": "empirical"},
    }
    assert isinstance(overrides["phase1"]["n_pairs"], int)
    assert parse_overrides(['phase2.segmenter="kmeans"'])["phase2"]["segmenter"] == "kmeans"
    assert parse_overrides(['phase1.exclude_subjects=["a", "b"]']) == {
        "phase1": {"exclude_subjects": ("a", "b")}
    }
    assert parse_overrides(["evaluate.max_volumes=3"]) == {"evaluate": {"max_volumes": 3}}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("phase1.n_pairs=abc", "phase1.n_pairs='abc': expected an integer"),
        ("phase1.n_pairs=1.5", "phase1.n_pairs='1.5': expected an integer"),
        ("phase1.residual=yes", "phase1.residual='yes': expected true, false, 1 or 0"),
        ("phase3.lr=fast", "phase3.lr='fast': expected a number"),
        ("evaluate.max_volumes=all", "evaluate.max_volumes='all': expected an integer or none"),
        ("simulate.snr=20", "STEP.FIELD=VALUE"),
        ("phase1n_pairs=3", "STEP.FIELD=VALUE"),
    ],
)
def test_bad_values_name_the_field_and_the_value(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_overrides([item])


def test_unknown_fields_and_typed_values_are_checked_when_a_study_is_built() -> None:
    with pytest.raises(ValueError, match=r"phase2\.x: Phase2Config has no such field"):
        PipelineConfig(overrides=parse_overrides(["phase2.x=a"]))
    # Programmatic overrides are converted and checked like the command line's.
    settings = StudySettings(overrides={"phase1": {"residual": "False", "n_pairs": "64"}})
    assert settings.overrides == {"phase1": {"residual": False, "n_pairs": 64}}
    with pytest.raises(ValueError, match=r"phase1\.n_pairs=True: expected an integer"):
        StudySettings(overrides={"phase1": {"n_pairs": True}})
    with pytest.raises(ValueError, match="unknown preset"):
        StudySettings(preset="huge")


def test_preset_settings_and_overrides_in_that_order() -> None:
    p = get_preset("quick")
    settings = StudySettings(
        preset="quick",
        data_dir="data",
        lr=5e-4,
        k=3,
        seed=7,
        overrides={"phase3": {"n_pairs": 123, "epochs": 2}, "hardmoe": {"lr": 2e-3}},
    )
    c1 = settings.phase1()
    assert (c1.width, c1.residual, c1.n_pairs, c1.epochs) == (
        p.width,
        p.residual,
        p.n_pairs,
        p.epochs_phase1,
    )
    assert c1.lr == p.lr and c1.preset == "quick" and c1.seed == 7  # the tuner's lr: phases 2-3
    c2 = settings.phase2("r1")
    assert (c2.phase1_run, c2.k, c2.segmenter, c2.lr, c2.epochs) == (
        "r1",
        3,
        p.segmenter,
        5e-4,
        p.epochs_phase2,
    )
    c3 = settings.phase3("r2")
    assert (c3.n_pairs, c3.epochs, c3.lr) == (123, 2, 5e-4)
    # The Hard MoE copies K from phase 2 and the budget from phase 3; its own overrides last.
    ch = settings.hardmoe("r1")
    assert (ch.k, ch.n_pairs, ch.epochs, ch.batch_size, ch.lr) == (3, 123, 2, p.batch_size, 2e-3)
    ce = settings.evaluate("r3", None)
    assert (ce.stride, ce.hardmoe_run, ce.seed) == (p.eval_stride, None, 7)


def test_phase_command_rejects_bad_overrides_cleanly() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["phase2", "--phase1-run", "x", "--set", "phase2.k=four"])
    assert result.exit_code == 1
    assert "phase2.k='four': expected an integer" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(main, ["phase1", "--data", ".", "--set", "phase2.k=3"])
    assert result.exit_code == 1 and "does not reach phase1" in result.output
    result = runner.invoke(main, ["pipeline", "--set", "phase1.residual=maybe"])
    assert result.exit_code == 1 and "phase1.residual='maybe': expected true" in result.output


def test_phase_command_flags_are_overrides_of_their_step() -> None:
    from ssmoe.cli.phases import _config

    options = {
        **{"preset": "tiny", "seed": 2, "device": "cpu"},
        **{"overrides": ("phase3.epochs=5", "hardmoe.k=6")},
        **{"k": 3, "n_pairs": None, "epochs": None, "batch_size": 16, "lr": None},
    }
    config = _config("hardmoe", options, "r1")
    tiny = get_preset("tiny")
    # --set after the flags; phase-3 overrides reach the Hard MoE through its budget.
    assert (config.k, config.batch_size, config.epochs, config.n_pairs, config.seed) == (
        6,
        16,
        5,
        tiny.n_pairs_phase3,
        2,
    )


def test_hard_moe_copies_an_overridden_eval_batch_size_from_phase3() -> None:
    plain = StudySettings(preset="tiny").hardmoe("r1")
    assert plain.eval_batch_size == 256  # TrainingFields' default
    settings = StudySettings(preset="tiny", overrides={"phase3": {"eval_batch_size": 64}})
    assert settings.phase3("r2").eval_batch_size == settings.hardmoe("r1").eval_batch_size == 64
