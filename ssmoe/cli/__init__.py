"""The `ssmoe` command line: a click group; each area registers its commands in its own module.

Commands are thin: they parse options into a dataclass config and call one library function.
"""

from __future__ import annotations

import logging

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ssmoe")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """SS-MoE super-resolution of quantitative MRI, tracked with MLflow and Optuna."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# Each module adds its commands to `main` on import.
from ssmoe.cli import data, maps, phases, report, segment, study, tune  # noqa: E402,F401
