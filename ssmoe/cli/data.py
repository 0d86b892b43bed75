"""CLI commands (data): `ssmoe simulate`, `ssmoe info`, `ssmoe preview`.

Thin wrappers: parse options, call one library function, turn user errors into clean messages.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from ssmoe.cli import main
from ssmoe.cli.options import seed_option, user_errors


@main.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--subjects", "n_subjects", default=5, show_default=True, help="Number of subjects.")
@click.option(
    "--protocol",
    default="quick",
    show_default=True,
    type=click.Choice(["quick", "full", "tiny"]),
    help="full: the 1344-volume Super MUDI table; quick: 114-volume stratified subset.",
)
@seed_option
@click.option(
    "--shape",
    nargs=3,
    type=int,
    default=(82, 92, 56),
    show_default=True,
    help="HR grid (crop of the 82x92x56 release grid), e.g. 32 32 24 for tests.",
)
@click.option("--snr", default=40.0, show_default=True, help="SNR of WM at b=0, TE=80, long TI.")
@click.option("--force", is_flag=True, help="Overwrite existing subject directories.")
@user_errors
def simulate(**kw) -> None:
    """Simulate a Super MUDI-like dataset (MNI152 anatomy, ZEBRA signal) into OUT."""
    from ssmoe.data.simulate import SimulationConfig, simulate_dataset

    t0 = time.perf_counter()
    config = SimulationConfig(**kw)  # the options are named after its fields
    dirs = simulate_dataset(config)
    click.echo(
        f"wrote {len(dirs)} subjects ({config.protocol} protocol) to {config.out} "
        f"in {time.perf_counter() - t0:.1f} s"
    )


@main.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--volumes-per-shell", default=3, show_default=True, help="Sampled per b-shell.")
@click.option("--all-subjects", is_flag=True, help="Intensity table for every subject.")
@click.option("--validate", is_flag=True, help="Also read every volume and check NaN/Inf.")
@user_errors
def info(root: Path, volumes_per_shell: int, all_subjects: bool, validate: bool) -> None:
    """Summarise the dataset in ROOT: subjects, volumes, shapes, voxel sizes, intensities."""
    from ssmoe.data.reader import open_dataset
    from ssmoe.data.summary import describe

    dataset = open_dataset(root)
    click.echo(describe(dataset, per_shell=volumes_per_shell, subjects=None if all_subjects else 1))
    if validate:
        dataset.validate()
        click.echo("validate: every volume finite")


@main.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--subject", default=None, help="Subject id (default: the first).")
@user_errors
def preview(root: Path, out: Path, subject: str | None) -> None:
    """Render a montage PNG of one subject across contrasts (HR beside aniso and iso LR)."""
    from ssmoe.data.preview import render_preview
    from ssmoe.data.reader import open_dataset

    path = render_preview(open_dataset(root), out, subject)
    click.echo(f"wrote {path}")
