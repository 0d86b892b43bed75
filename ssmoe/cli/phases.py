"""CLI commands of the phases: phase1, phase2, phase3, hardmoe, evaluate, predict.

Each builds its config with the one mapping of ``ssmoe.configs``: the ``--preset``, then the
command's flags (overrides of its own step), then ``--set STEP.FIELD=VALUE``. The run id is
printed on the last line of stdout so scripts can chain steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ssmoe.cli import main
from ssmoe.cli import options as opt
from ssmoe.segmenters import SEGMENTERS

run_options = opt.options(
    opt.seed_option, opt.device_option, opt.preset_option, opt.experiment_option, opt.set_option
)
training_options = opt.options(
    click.option("--epochs", type=opt.OPT_INT, help="Epochs (default: from the preset)."),
    click.option("--batch-size", type=opt.OPT_INT, help="Batch size (paper: 64)."),
    click.option("--lr", type=opt.OPT_FLOAT, help="Adam learning rate (paper: 1e-3)."),
    run_options,
)


def _config(step: str, options: dict[str, Any], *lineage: str | None, **settings: Any) -> Any:
    """The config of ``step`` from a phase command's options: ``preset``, ``seed``, ``device``,
    ``overrides`` (``--set``) and the step's own flags (overrides of ``step``, None = not given;
    ``--set`` comes after them); ``lineage``: the upstream run ids; ``settings``: the study
    settings the command sets."""
    from ssmoe.configs import INPUTS, StudySettings, merge_overrides, parse_overrides

    kw = dict(options)
    parsed = parse_overrides(kw.pop("overrides"))
    stray = sorted(set(parsed) - set(INPUTS[step]))
    if stray:
        raise ValueError(f"--set {stray[0]}.*: does not reach {step} (it reads {INPUTS[step]})")
    common = {name: kw.pop(name) for name in ("preset", "seed", "device")}
    flags = {step: {name: value for name, value in kw.items() if value is not None}}
    study = StudySettings(**common, **settings, overrides=merge_overrides(flags, parsed))
    return getattr(study, step)(*lineage)


def _run(step: str, options: dict[str, Any], *lineage: str | None, **settings: Any) -> None:
    """Run ``step`` (``options`` as for ``_config``, plus ``experiment``); print the run id."""
    import ssmoe.phases

    kw = dict(options)
    context = ssmoe.phases.RunContext(experiment=kw.pop("experiment"))
    config = _config(step, kw, *lineage, **settings)
    click.echo(getattr(ssmoe.phases, f"run_{step}")(config, context))


def _phase_command(
    *options: Any, training: bool = True
) -> Callable[[Callable[..., None]], click.Command]:
    """Register a phase command: its own options, then the training options (or only seed,
    device, preset, experiment and --set); user errors reported cleanly."""

    def register(fn: Callable[..., None]) -> click.Command:
        common = training_options if training else run_options
        return main.command()(opt.options(*options, common)(opt.user_errors(fn)))

    return register


def _upstream(step: str) -> Any:
    return click.option(f"--{step}-run", required=True, help=f"MLflow run id of {step}.")


_FILE = click.Path(dir_okay=False)
_n_pairs_experts = click.option(
    "--n-pairs", type=opt.OPT_INT, help="Expert fine-tuning pairs (paper: 100k)."
)


@_phase_command(
    click.option(
        "--data",
        "data_dir",
        required=True,
        type=click.Path(file_okay=False),
        help="Dataset directory (simulated or the Super MUDI release).",
    ),
    opt.task_option,
    click.option("--test-subject", type=opt.OPT_STR, help="Held-out subject (default: the last)."),
    click.option("--width", type=opt.OPT_INT, help="U-Net width nf (paper: 64)."),
    click.option("--n-pairs", type=opt.OPT_INT, help="Training patch pairs (paper: ~270k)."),
    click.option(
        "--residual/--no-residual",
        default=None,
        help="Global residual over cubic-spline upsampling (default: from the preset).",
    ),
)
def phase1(data_dir, task, test_subject, **kw) -> None:
    """Phase one: train the baseline SR U-Net and score every training pair."""
    _run("phase1", kw, data_dir=data_dir, task=task, test_subject=test_subject)


@_phase_command(
    _upstream("phase1"),
    click.option(
        "--segmenter",
        type=opt.optional_choice(SEGMENTERS),
        help="Segmenter of the phase-1 scores (default: from the preset).",
    ),
    click.option("--k", type=opt.OPT_INT, help="Number of pseudo error classes K."),
)
def phase2(phase1_run, **kw) -> None:
    """Phase two: pseudo error labels by a segmenter, then train the gater."""
    _run("phase2", kw, phase1_run)


@_phase_command(_upstream("phase2"), _n_pairs_experts)
def phase3(phase2_run, **kw) -> None:
    """Phase three: route pairs by the gater, train one expert decoder per class."""
    _run("phase3", kw, phase2_run)


@_phase_command(
    _upstream("phase1"),
    click.option("--k", type=opt.OPT_INT, help="Number of clusters/experts."),
    _n_pairs_experts,
)
def hardmoe(phase1_run, **kw) -> None:
    """Hard MoE baseline: K-means on the baseline's features, one expert per cluster."""
    _run("hardmoe", kw, phase1_run)


@_phase_command(
    _upstream("phase3"),
    click.option("--hardmoe-run", type=opt.OPT_STR, help="Hard MoE run id (omit to skip it)."),
    click.option("--stride", type=opt.OPT_INT, help="HR tiling stride (16: tiles meet)."),
    opt.max_volumes_option,
    training=False,
)
def evaluate(phase3_run, hardmoe_run, max_volumes, **kw) -> None:
    """Test phase: all four methods on every volume of the held-out subject."""
    _run("evaluate", kw, phase3_run, hardmoe_run, max_volumes=max_volumes)


@main.command()
@click.option(
    "--model",
    "model_uri",
    required=True,
    help="Logged model: runs:/<run_id>/model or models:/<name>/<version>.",
)
@click.option("--input", "input_path", required=True, type=_FILE, help="LR NIfTI (3D or 4D).")
@click.option(
    "--params",
    "params_path",
    required=True,
    type=_FILE,
    help="parameters.txt with one 'gx gy gz b TI TE' row per volume.",
)
@click.option("--output", required=True, type=_FILE, help="HR NIfTI to write.")
@click.option("--stride", type=int, default=16, show_default=True)
@opt.device_option
@opt.user_errors
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
