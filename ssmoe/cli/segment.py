"""CLI commands (segment): fit a segmenter on per-patch scores and print thresholds as JSON."""

from __future__ import annotations

import json

import click

from ssmoe.cli import main
from ssmoe.segmenters import SEGMENTERS, get_segmenter, read_scores


def _parse_option(text: str) -> tuple[str, object]:
    """KEY=VALUE -> (key, int | float | None | str)."""
    if "=" not in text:
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint="--option")
    key, raw = text.split("=", 1)
    value: object = raw
    if raw.lower() in ("none", "null"):
        value = None
    else:
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                pass
    return key.strip().replace("-", "_"), value


@main.command("segment")
@click.option("--method", type=click.Choice(SEGMENTERS), default="mqs", show_default=True)
@click.option("--k", "k", type=int, default=4, show_default=True, help="Number of classes K.")
@click.option("--column", default="score", show_default=True, help="Score column of a CSV.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Method option, e.g. -o alpha=0.1 -o max_n=50000 (repeatable).",
)
@click.argument("scores")
def segment(
    method: str, k: int, column: str, seed: int, options: tuple[str, ...], scores: str
) -> None:
    """Segment SCORES into K pseudo error classes; print thresholds and class counts as JSON.

    SCORES is a text file with one score per line, a CSV score table (column --column), or an
    MLflow artifact URI such as runs:/<run_id>/scores/patch_scores.csv.
    """
    opts = dict(_parse_option(o) for o in options)
    try:
        values = read_scores(scores, column=column)  # its errors already name the file
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    try:
        segmenter = get_segmenter(method, k, seed=seed, **opts)
        segmenter.fit(values)
    except ValueError as err:
        raise click.ClickException(f"{scores}: {err}") from err
    click.echo(json.dumps(segmenter.describe(), indent=2))
