"""CLI commands of studies: pipeline (one fold), cv (leave-one-subject-out), quickstart."""

from __future__ import annotations

import click

from ssmoe.cli import main
from ssmoe.cli.phases import OPT_INT, OPT_STR, _Optional, user_errors
from ssmoe.presets import PRESETS
from ssmoe.segmenters import SEGMENTERS
from ssmoe.vocabulary import STEPS, TASKS

TASK_CHOICES = [*TASKS, "both"]


def _tasks(task: str) -> tuple[str, ...]:
    return TASKS if task == "both" else (task,)


def pipeline_options(fn):
    options = [
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
        click.option(
            "--preset", type=click.Choice(sorted(PRESETS)), default="quick", show_default=True
        ),
        click.option(
            "--subjects", type=int, default=5, show_default=True, help="Subjects to simulate."
        ),
        click.option("--segmenter", type=_Optional(click.Choice(SEGMENTERS))),
        click.option("--k", type=OPT_INT, help="Pseudo error classes (default: preset)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", default="auto", show_default=True),
        click.option("--max-volumes", type=OPT_INT, help="Evaluate only the first N volumes."),
        click.option("--experiment", default="ssmoe", show_default=True),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="STEP.FIELD=VALUE",
            help="Override a step's config field, e.g. phase1.n_pairs=20000 "
            "(repeatable; JSON values).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _pipeline_config(
    workdir, data_dir, preset, subjects, segmenter, k, seed, device, max_volumes, overrides, **extra
):
    from ssmoe.study.pipeline import PipelineConfig, parse_overrides

    return PipelineConfig(
        workdir=workdir,
        data_dir=data_dir,
        preset=preset,
        subjects=subjects,
        segmenter=segmenter,
        k=k,
        seed=seed,
        device=device,
        max_volumes=max_volumes,
        overrides=parse_overrides(overrides),
        **extra,
    )


@main.command()
@pipeline_options
@click.option("--task", type=click.Choice(TASKS), default="aniso", show_default=True)
@click.option("--test-subject", type=OPT_STR, help="Held-out subject (default: the last).")
@click.option(
    "--force",
    type=_Optional(click.Choice(list(STEPS))),
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
@click.option("--task", type=click.Choice(TASK_CHOICES), default="aniso", show_default=True)
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
@click.option("--task", type=click.Choice(TASK_CHOICES), default="aniso", show_default=True)
@click.option(
    "--folds",
    default="cdmri0015",
    show_default=True,
    help="Comma-separated held-out subjects; 'all' for the five folds.",
)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="quick", show_default=True)
@click.option("--device", default="auto", show_default=True)
@user_errors
def quickstart(workdir, task, folds, preset, device) -> None:
    """The whole comparison on the embedded simulator, then the report (minutes on a CPU)."""
    from ssmoe.study.quickstart import QuickstartConfig, run_quickstart

    fold_list = () if folds == "all" else tuple(f for f in folds.split(",") if f)
    result = run_quickstart(
        QuickstartConfig(
            workdir=workdir, tasks=_tasks(task), folds=fold_list, preset=preset, device=device
        )
    )
    uri = result.tracking_uri
    click.echo(f"\nDone in {result.seconds / 60:.1f} min.")
    click.echo(f"Report:    {result.report}")
    click.echo(
        f"MLflow UI: mlflow ui --backend-store-uri {uri}   (then open http://127.0.0.1:5000)"
    )
    click.echo(f"Root run:  {result.root_run_id}")
