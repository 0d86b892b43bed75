"""CLI commands of the phases: phase1, phase2, phase3, hardmoe, evaluate, predict.

Each maps its flags one-to-one onto a config dataclass; a ``--preset`` fills what is not given.
The run id is printed on the last line of stdout so scripts can chain steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ssmoe.cli import main
from ssmoe.presets import PRESETS, Preset, get_preset
from ssmoe.segmenters import SEGMENTERS
from ssmoe.vocabulary import TASKS

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn the library's ValueErrors (bad input a user can fix) into a clean CLI error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError) as err:
            raise click.ClickException(str(err)) from err

    return wrapper  # type: ignore[return-value]


def pick(value: Any, default: Any) -> Any:
    return default if value is None else value


class _Optional(click.ParamType):
    """An int/float/str flag where an empty string means "not given" (MLproject defaults)."""

    def __init__(self, base: click.ParamType) -> None:
        self.base = base
        self.name = f"{base.name}"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or value == "":
            return None
        return self.base.convert(value, param, ctx)


OPT_INT = _Optional(click.INT)
OPT_FLOAT = _Optional(click.FLOAT)
OPT_STR = _Optional(click.STRING)


preset_option = click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="quick",
    show_default=True,
    help="Hyper-parameter preset; explicit flags override it.",
)
experiment_option = click.option(
    "--experiment", default="ssmoe", show_default=True, help="MLflow experiment name."
)
common = [
    click.option("--epochs", type=OPT_INT, help="Epochs (default: from the preset)."),
    click.option("--batch-size", type=OPT_INT, help="Batch size (paper: 64)."),
    click.option("--lr", type=OPT_FLOAT, help="Adam learning rate (paper: 1e-3)."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ..."),
    preset_option,
    experiment_option,
]


def _training(p: Preset, epochs_default: int, epochs, batch_size, lr, seed, device) -> dict:
    """A phase's TrainingFields: the explicit flags, else the preset's values."""
    return {
        "epochs": pick(epochs, epochs_default),
        "batch_size": pick(batch_size, p.batch_size),
        "lr": pick(lr, p.lr),
        "decay": p.decay,
        "seed": seed,
        "device": device,
    }


def training_options(fn: F) -> F:
    for option in reversed(common):
        fn = option(fn)
    return fn


@main.command()
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset directory (simulated or the Super MUDI release).",
)
@click.option("--task", type=click.Choice(TASKS), default="aniso", show_default=True)
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
def phase1(
    data_dir,
    task,
    test_subject,
    width,
    n_pairs,
    residual,
    epochs,
    batch_size,
    lr,
    seed,
    device,
    preset,
    experiment,
) -> None:
    """Phase one: train the baseline SR U-Net and score every training pair."""
    from ssmoe.phases import Phase1Config, run_phase1

    p = get_preset(preset)
    cfg = Phase1Config(
        data_dir=data_dir,
        task=task,
        test_subject=test_subject,
        width=pick(width, p.width),
        residual=pick(residual, p.residual),
        n_pairs=pick(n_pairs, p.n_pairs),
        **_training(p, p.epochs_phase1, epochs, batch_size, lr, seed, device),
        preset=p.name,
    )
    click.echo(run_phase1(cfg, experiment=experiment))


@main.command()
@click.option("--phase1-run", required=True, help="MLflow run id of phase one.")
@click.option(
    "--segmenter",
    type=_Optional(click.Choice(SEGMENTERS)),
    help="Segmenter of the phase-1 scores (default: from the preset).",
)
@click.option("--k", type=OPT_INT, help="Number of pseudo error classes K.")
@training_options
@user_errors
def phase2(
    phase1_run, segmenter, k, epochs, batch_size, lr, seed, device, preset, experiment
) -> None:
    """Phase two: pseudo error labels by a segmenter, then train the gater."""
    from ssmoe.phases import Phase2Config, run_phase2

    p = get_preset(preset)
    cfg = Phase2Config(
        phase1_run=phase1_run,
        segmenter=pick(segmenter, p.segmenter),
        k=pick(k, p.k),
        **_training(p, p.epochs_phase2, epochs, batch_size, lr, seed, device),
    )
    click.echo(run_phase2(cfg, experiment=experiment))


@main.command()
@click.option("--phase2-run", required=True, help="MLflow run id of phase two.")
@click.option("--n-pairs", type=OPT_INT, help="Fine-tuning pairs for the experts (paper: 100k).")
@training_options
@user_errors
def phase3(phase2_run, n_pairs, epochs, batch_size, lr, seed, device, preset, experiment) -> None:
    """Phase three: route pairs by the gater, train one expert decoder per class."""
    from ssmoe.phases import Phase3Config, run_phase3

    p = get_preset(preset)
    cfg = Phase3Config(
        phase2_run=phase2_run,
        n_pairs=pick(n_pairs, p.n_pairs_phase3),
        **_training(p, p.epochs_phase3, epochs, batch_size, lr, seed, device),
    )
    click.echo(run_phase3(cfg, experiment=experiment))


@main.command()
@click.option("--phase1-run", required=True, help="MLflow run id of phase one.")
@click.option("--k", type=OPT_INT, help="Number of clusters/experts.")
@click.option("--n-pairs", type=OPT_INT, help="Fine-tuning pairs for the experts.")
@training_options
@user_errors
def hardmoe(
    phase1_run, k, n_pairs, epochs, batch_size, lr, seed, device, preset, experiment
) -> None:
    """Hard MoE baseline: K-means on the baseline's features, one expert per cluster."""
    from ssmoe.phases import HardMoEConfig, run_hardmoe

    p = get_preset(preset)
    cfg = HardMoEConfig(
        phase1_run=phase1_run,
        k=pick(k, p.k),
        n_pairs=pick(n_pairs, p.n_pairs_phase3),
        **_training(p, p.epochs_phase3, epochs, batch_size, lr, seed, device),
    )
    click.echo(run_hardmoe(cfg, experiment=experiment))


@main.command()
@click.option("--phase3-run", required=True, help="MLflow run id of phase three (SS-MoE).")
@click.option(
    "--hardmoe-run", type=OPT_STR, help="MLflow run id of the Hard MoE baseline (omit to skip it)."
)
@click.option("--stride", type=OPT_INT, help="HR tiling stride (16: tiles meet; 8: overlap x8).")
@click.option(
    "--max-volumes", type=OPT_INT, help="Evaluate only the first N volumes (smoke tests)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@preset_option
@experiment_option
@user_errors
def evaluate(
    phase3_run, hardmoe_run, stride, max_volumes, seed, device, preset, experiment
) -> None:
    """Test phase: all four methods on every volume of the held-out subject."""
    from ssmoe.phases import EvaluateConfig, run_evaluate

    p = get_preset(preset)
    cfg = EvaluateConfig(
        phase3_run=phase3_run,
        hardmoe_run=hardmoe_run,
        stride=pick(stride, p.eval_stride),
        max_volumes=max_volumes,
        seed=seed,
        device=device,
    )
    click.echo(run_evaluate(cfg, experiment=experiment))


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
@click.option("--device", default="auto", show_default=True)
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
