"""CLI commands (report)."""

from __future__ import annotations

from pathlib import Path

import click

from ssmoe.cli import main


@main.command("report")
@click.option("--experiment", default="ssmoe", show_default=True, help="MLflow experiment name.")
@click.option("--root-run", default=None, help="Only the runs of this study (ssmoe.root_run tag).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Folder for index.html, figures/ and tables/.",
)
@click.option("--log-to-run", default=None, help="Also log the report as artifacts of this run.")
@click.option("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI).")
def report(
    experiment: str,
    root_run: str | None,
    out_dir: Path,
    log_to_run: str | None,
    tracking_uri: str | None,
) -> None:
    """Build the HTML report (tables 1, 2, S1; figures 1, 3, S2, S3; tuning) from MLflow runs."""
    from ssmoe.report import build_report  # lazily: matplotlib and optuna are slow to import

    try:
        index = build_report(
            out_dir,
            experiment=experiment,
            root_run=root_run or None,  # '' from MLproject defaults = whole experiment
            log_to_run=log_to_run or None,
            tracking_uri=tracking_uri,
        )
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(index))
