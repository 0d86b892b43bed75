"""CLI command ``tune``: one worker of an Optuna study (start several for parallel tuning)."""

from __future__ import annotations

import click

from ssmoe.cli import main
from ssmoe.cli.options import (
    OPT_STR,
    device_option,
    experiment_option,
    max_volumes_option,
    preset_option,
    seed_option,
    set_option,
    task_option,
    user_errors,
)


@main.command()
@click.option("--study", required=True, help="Study name; workers with the same name cooperate.")
@click.option(
    "--n-trials",
    type=click.IntRange(min=1),
    required=True,
    help="Finished (complete + pruned) trials the study should reach, over all workers.",
)
@click.option(
    "--storage",
    type=OPT_STR,
    help="Optuna storage URL (default: sqlite optuna.db beside the MLflow store); "
    "postgresql+psycopg2://... for several machines.",
)
@click.option(
    "--space",
    type=OPT_STR,
    help="Study definition JSON, or a name in ssmoe/tuning/spaces/ (default: default).",
)
@click.option(
    "--sampler", type=click.Choice(["tpe", "grid", "random"]), help="Override the file's."
)
@click.option(
    "--data", "data_dir", type=OPT_STR, help="Dataset (default: simulate into WORKDIR/data)."
)
@click.option("--workdir", default="runs/tune", show_default=True)
@click.option("--subjects", type=int, default=5, show_default=True, help="Subjects to simulate.")
@task_option
@click.option("--test-subject", type=OPT_STR, help="Fold's test subject (default: the last).")
@click.option("--val-subject", type=OPT_STR, help="Validation subject (default: last training).")
@preset_option
@seed_option
@device_option
@max_volumes_option
@experiment_option
@click.option(
    "--final-test/--no-final-test",
    default=True,
    show_default=True,
    help="Evaluate the best trial on the test subject at the end (let only one worker do it).",
)
@click.option("--heartbeat-interval", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--grace-period",
    type=click.IntRange(min=2),
    default=60,
    show_default=True,
    help="Seconds without heartbeat after which a RUNNING trial is failed and retried.",
)
@click.option("--max-retry", type=click.IntRange(min=0), default=2, show_default=True)
@set_option
@user_errors
def tune(storage, heartbeat_interval, grace_period, max_retry, final_test, overrides, **kw) -> None:
    """One worker of Optuna study STUDY over K, segmenter and learning rate."""
    from ssmoe.configs import parse_overrides
    from ssmoe.tuning import StorageConfig, TuneConfig, run_tune

    config = TuneConfig(
        storage=StorageConfig(storage, heartbeat_interval, grace_period, max_retry),
        final_test=final_test,
        overrides=parse_overrides(overrides),
        **kw,
    )
    result = run_tune(config)
    counts = ", ".join(f"{k}={v}" for k, v in result.counts.items())
    click.echo(f"study {result.study}: {counts}; {result.trials_run} trial(s) run by this worker")
    if result.final is not None:
        f = result.final
        click.echo(f"best trial {f.best_trial} {f.params}: validation objective {f.objective:.6g}")
        for key in ("test_average_ssmoe", "test_average_unet", "test_average_cubic"):
            if key in f.test_metrics:
                click.echo(f"{key} {f.test_metrics[key]:.6g}")
    click.echo(result.parent_run_id)
