"""CLI commands of the phases: phase1, phase2, phase3, hardmoe, evaluate, predict.

Each builds its config with the one mapping of ``ssmoe.configs``: the ``--preset``, then the
command's flags (overrides of its own step), then ``--set STEP.FIELD=VALUE``. The run id is
printed on the last line of stdout so scripts can chain steps.
"""

from __future__ import annotations

from typing import Any

import click

from ssmoe.cli import main
from ssmoe.cli.options import (
    OPT_FLOAT,
    OPT_INT,
    OPT_STR,
    device_option,
    experiment_option,
    max_volumes_option,
    optional_choice,
    options,
    preset_option,
    seed_option,
    set_option,
    task_option,
    user_errors,
)
from ssmoe.segmenters import SEGMENTERS

run_options = options(seed_option, device_option, preset_option, experiment_option, set_option)
training_options = options(
    click.option("--epochs", type=OPT_INT, help="Epochs (default: from the preset)."),
    click.option("--batch-size", type=OPT_INT, help="Batch size (paper: 64)."),
    click.option("--lr", type=OPT_FLOAT, help="Adam learning rate (paper: 1e-3)."),
    run_options,
)


def _config(step: str, options: dict[str, Any], *lineage: str | None, **settings: Any) -> Any:
    """The config of ``step`` from a phase command's options: ``preset``, ``seed``, ``device``,
    ``overrides`` (``--set``) and the step's own flags (overrides of ``step``, None = not given,
    ``--set`` after them); ``lineage`` are the upstream run ids."""
    from ssmoe.configs import INPUTS, StudySettings, merge_overrides, parse_overrides

    kw = dict(options)
    parsed = parse_overrides(kw.pop("overrides"))
    stray = sorted(set(parsed) - set(INPUTS[step]))
    if stray:
        raise ValueError(f"--set {stray[0]}.*: does not reach {step} (it reads {INPUTS[step]})")
    common = {name: kw.pop(name) for name in ("preset", "seed", "device")}
    flags = {step: {name: value for name, value in kw.items() if value is not None}}
    overrides = merge_overrides(flags, parsed)
    return getattr(StudySettings(**common, **settings, overrides=overrides), step)(*lineage)


@main.command()
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset directory (simulated or the Super MUDI release).",
)
@task_option
@click.option(
    "--test-subject", type=OPT_STR, help="Held-out subject of the fold (default: the last one)."
)
@click.option("--width", type=OPT_INT, help="U-Net width nf (paper: 64).")
@click.option("--n-pairs", type=OPT_INT, help="Training patch pairs (paper: ~270k).")
@click.option(
    "--residual/--no-residual",
    default=None,
    help="Global residual over cubic-spline upsampling (default: from the preset).",
)
@training_options
@user_errors
def phase1(data_dir, task, test_subject, experiment, **kw) -> None:
    """Phase one: train the baseline SR U-Net and score every training pair."""
    from ssmoe.phases import run_phase1

    settings = {"data_dir": data_dir, "task": task, "test_subject": test_subject}
    click.echo(run_phase1(_config("phase1", kw, **settings), experiment=experiment))


@main.command()
@click.option("--phase1-run", required=True, help="MLflow run id of phase one.")
@click.option(
    "--segmenter",
    type=optional_choice(SEGMENTERS),
    help="Segmenter of the phase-1 scores (default: from the preset).",
)
@click.option("--k", type=OPT_INT, help="Number of pseudo error classes K.")
@training_options
@user_errors
def phase2(phase1_run, experiment, **kw) -> None:
    """Phase two: pseudo error labels by a segmenter, then train the gater."""
    from ssmoe.phases import run_phase2

    click.echo(run_phase2(_config("phase2", kw, phase1_run), experiment=experiment))


@main.command()
@click.option("--phase2-run", required=True, help="MLflow run id of phase two.")
@click.option("--n-pairs", type=OPT_INT, help="Fine-tuning pairs for the experts (paper: 100k).")
@training_options
@user_errors
def phase3(phase2_run, experiment, **kw) -> None:
    """Phase three: route pairs by the gater, train one expert decoder per class."""
    from ssmoe.phases import run_phase3

    click.echo(run_phase3(_config("phase3", kw, phase2_run), experiment=experiment))


@main.command()
@click.option("--phase1-run", required=True, help="MLflow run id of phase one.")
@click.option("--k", type=OPT_INT, help="Number of clusters/experts.")
@click.option("--n-pairs", type=OPT_INT, help="Fine-tuning pairs for the experts.")
@training_options
@user_errors
def hardmoe(phase1_run, experiment, **kw) -> None:
    """Hard MoE baseline: K-means on the baseline's features, one expert per cluster."""
    from ssmoe.phases import run_hardmoe

    click.echo(run_hardmoe(_config("hardmoe", kw, phase1_run), experiment=experiment))


@main.command()
@click.option("--phase3-run", required=True, help="MLflow run id of phase three (SS-MoE).")
@click.option(
    "--hardmoe-run", type=OPT_STR, help="MLflow run id of the Hard MoE baseline (omit to skip it)."
)
@click.option("--stride", type=OPT_INT, help="HR tiling stride (16: tiles meet; 8: overlap x8).")
@max_volumes_option
@run_options
@user_errors
def evaluate(phase3_run, hardmoe_run, max_volumes, experiment, **kw) -> None:
    """Test phase: all four methods on every volume of the held-out subject."""
    from ssmoe.phases import run_evaluate

    config = _config("evaluate", kw, phase3_run, hardmoe_run, max_volumes=max_volumes)
    click.echo(run_evaluate(config, experiment=experiment))


@main.command()
@click.option(
    "--model",
    "model_uri",
    required=True,
    help="Logged model: runs:/<run_id>/model or models:/<name>/<version>.",
)
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="LR NIfTI (3D or 4D).",
)
@click.option(
    "--params",
    "params_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="parameters.txt with one 'gx gy gz b TI TE' row per volume.",
)
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="HR NIfTI to write.")
@click.option("--stride", type=int, default=16, show_default=True)
@device_option
@user_errors
def predict(model_uri, input_path, params_path, output, stride, device) -> None:
    """Super-resolve a LR NIfTI with a logged SR U-Net, Hard MoE or SS-MoE model."""
    from ssmoe.phases import PredictConfig, run_predict
    from ssmoe.tracking.runs import setup

    setup()  # resolve runs:/ and models:/ URIs against the same store as the phases
    click.echo(
        str(
            run_predict(
                PredictConfig(
                    model_uri, input_path, params_path, output, stride=stride, device=device
                )
            )
        )
    )
