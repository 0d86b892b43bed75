"""CLI command `ssmoe maps`: fit quantitative maps of one acquisition and write them as NIfTI.

Thin: resolve the input (a 4D NIfTI with --params, or a dataset subject), call
`ssmoe.maps.fit_source`, write with `ssmoe.maps.write_maps`, print NaN counts and timings.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from ssmoe.cli import main
from ssmoe.cli.options import user_errors


def _load(source: Path, subject: str | None, params: Path | None, mask: Path | None):
    from ssmoe.maps import load_nifti, load_subject

    if source.is_dir():
        if params is not None or mask is not None:
            raise click.UsageError(
                f"{source} is a dataset directory: its parameters.txt and brain mask are used; "
                "--params and --mask apply to a 4D NIfTI file"
            )
        return load_subject(source, subject)
    if not source.exists():
        raise click.ClickException(f"{source}: no such file or directory")
    if subject is not None:
        raise click.UsageError("--subject applies to a dataset directory, not a NIfTI file")
    if params is None:
        raise click.UsageError(f"{source} is a NIfTI file: --params (gx gy gz b TI TE) is required")
    return load_nifti(source, params, mask)


@main.command("maps")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--subject", default=None, help="Subject id in a dataset directory (default: first).")
@click.option(
    "--params",
    "params_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Acquisition table (gx gy gz b TI TE; s/mm^2, ms) of a 4D NIfTI SOURCE.",
)
@click.option(
    "--mask",
    "mask_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Voxels to fit (NIfTI on the data grid); default: voxels with any non-zero volume.",
)
@click.option("--force", is_flag=True, help="Overwrite maps already in OUT.")
@user_errors
def maps(
    source: Path,
    out: Path,
    subject: str | None,
    params_path: Path | None,
    mask_path: Path | None,
    force: bool,
) -> None:
    """Fit T1, T2*, MD, FA, AD, RD and apparent PD maps of SOURCE into OUT (one NIfTI each).

    SOURCE is a 4D NIfTI (with --params, optionally --mask) or a dataset directory (HR data of
    --subject) or a subject directory.
    """
    from ssmoe.maps import fit_source, write_maps
    from ssmoe.maps.design import MAP_NAMES

    existing = [out / f"{name}.nii.gz" for name in MAP_NAMES if (out / f"{name}.nii.gz").exists()]
    if existing and not force:
        raise click.ClickException(f"{existing[0]} exists; use --force to overwrite")
    t0 = time.perf_counter()
    src = _load(source, subject, params_path, mask_path)
    t_read = time.perf_counter() - t0
    fit = fit_source(src)
    paths = write_maps(fit, src.header, src.affine, out)
    n = int(fit.mask.sum())
    click.echo(f"{src.name}: {n} voxels x {src.signals.shape[1]} volumes (read {t_read:.1f} s)")
    for name, path in paths.items():
        nan = fit.nan_counts[name]
        why = fit.voxels.unsupported.get(name)
        note = f"  ({why})" if why else ""
        click.echo(f"  {name:8s} NaN {nan:7d} / {n}{note}  -> {path}")
    sec = fit.voxels.seconds
    click.echo(
        f"fit {sum(sec.values()):.1f} s (start {sec['init']:.1f} s, LM {sec['lm']:.1f} s); "
        f"total {time.perf_counter() - t0:.1f} s"
    )
