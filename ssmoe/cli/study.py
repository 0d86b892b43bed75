"""CLI commands of studies: pipeline (one fold), cv (leave-one-subject-out), quickstart."""

from __future__ import annotations

import time

import click

from ssmoe.cli import main
from ssmoe.cli.options import (
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
from ssmoe.vocabulary import STEPS, TASKS

TASK_CHOICES = [*TASKS, "both"]
both_tasks_option = click.option(
    "--task", type=click.Choice(TASK_CHOICES), default="aniso", show_default=True
)


def _tasks(task: str) -> tuple[str, ...]:
    return TASKS if task == "both" else (task,)


pipeline_options = options(
    click.option(
        "--workdir",
        default="runs/pipeline",
        show_default=True,
        help="Where simulated data go when --data is not given.",
    ),
    click.option(
        "--data",
        "data_dir",
        type=OPT_STR,
        help="Dataset directory (default: simulate into WORKDIR/data).",
    ),
    preset_option,
    click.option(
        "--subjects", type=int, default=5, show_default=True, help="Subjects to simulate."
    ),
    click.option("--segmenter", type=optional_choice(SEGMENTERS)),
    click.option("--k", type=OPT_INT, help="Pseudo error classes (default: preset)."),
    seed_option,
    device_option,
    max_volumes_option,
    experiment_option,
    set_option,
)


def _pipeline_config(overrides: tuple[str, ...], **kw):
    from ssmoe.configs import parse_overrides
    from ssmoe.study.pipeline import PipelineConfig

    return PipelineConfig(overrides=parse_overrides(overrides), **kw)


@main.command()
@pipeline_options
@task_option
@click.option("--test-subject", type=OPT_STR, help="Held-out subject (default: the last).")
@click.option(
    "--force",
    type=optional_choice(STEPS),
    help="Re-run this step and everything downstream of it.",
)
@user_errors
def pipeline(experiment, task, test_subject, force, **kw) -> None:
    """One fold: simulate -> phase1 -> phase2 -> phase3 -> hardmoe -> evaluate, reusing steps."""
    from ssmoe.study.pipeline import run_pipeline

    cfg = _pipeline_config(**kw, task=task, test_subject=test_subject, force=force)
    result = run_pipeline(cfg, experiment=experiment)
    for step, run_id in result.runs.items():
        click.echo(f"{step:9s} {run_id} {'(reused)' if result.reused[step] else ''}".rstrip())
    click.echo(result.parent_run_id)


@main.command()
@pipeline_options
@both_tasks_option
@click.option("--folds", type=OPT_STR, help="Comma-separated held-out subjects (default: all).")
@user_errors
def cv(experiment, task, folds, **kw) -> None:
    """Leave-one-subject-out cross-validation for one task or both."""
    from ssmoe.study.cv import CVConfig, run_cv

    cfg = CVConfig(
        pipeline=_pipeline_config(**kw),
        tasks=_tasks(task),
        folds=tuple(f for f in (folds or "").split(",") if f),
    )
    click.echo(run_cv(cfg, experiment=experiment))


@main.command()
@click.option(
    "--workdir",
    default="runs/quickstart",
    show_default=True,
    help="Data, MLflow store (unless MLFLOW_TRACKING_URI is set) and report go here.",
)
@both_tasks_option
@click.option(
    "--folds",
    default="cdmri0015",
    show_default=True,
    help="Comma-separated held-out subjects; 'all' for the five folds.",
)
@preset_option
@device_option
@user_errors
def quickstart(workdir, task, folds, preset, device) -> None:
    """The whole comparison on the embedded simulator, then the report (minutes on a CPU)."""
    from ssmoe.report import build_report
    from ssmoe.study.quickstart import QuickstartConfig, run_quickstart
    from ssmoe.tracking import TrackingStore

    start = time.perf_counter()
    fold_list = () if folds == "all" else tuple(f for f in folds.split(",") if f)
    result = run_quickstart(
        QuickstartConfig(
            workdir=workdir, tasks=_tasks(task), folds=fold_list, preset=preset, device=device
        )
    )
    root = result.root_run_id
    report = build_report(result.workdir / "report", root_run=root, log_to_run=root)
    seconds = time.perf_counter() - start
    TrackingStore().log_metric(root, "seconds", seconds)  # the whole quick start, report included
    uri = result.tracking_uri
    click.echo(f"\nDone in {seconds / 60:.1f} min.")
    click.echo(f"Report:    {report}")
    click.echo(
        f"MLflow UI: mlflow ui --backend-store-uri {uri}   (then open http://127.0.0.1:5000)"
    )
    click.echo(f"Root run:  {result.root_run_id}")
