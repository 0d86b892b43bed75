"""`build_report`: MLflow runs -> sections (tables + figures) -> `index.html` in one folder.

Each section builder reads what it needs from a `RunStore` and returns a `Section`; a section
whose runs or artifacts are absent says so ("not available (no runs of kind X)") instead of
failing the whole report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import jinja2
import optuna

from ssmoe.report.context import FIG_DIR, TABLE_DIR, Context, Section
from ssmoe.report.figure_sections import (
    section_fig1,
    section_fig3,
    section_fig_s2,
    section_fig_s3,
    section_scores,
)
from ssmoe.report.store import RunStore, step_of
from ssmoe.report.table_sections import (
    section_provenance,
    section_table1,
    section_table2,
    section_table_s1,
)
from ssmoe.report.tuning import section_tuning

log = logging.getLogger(__name__)

_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# Next to this file (not importlib.resources): works for wheels, editable and namespace imports.
TEMPLATES = Path(__file__).parent / "templates"

SECTIONS: tuple[Callable[[Context], Section], ...] = (
    section_table1,
    section_table2,
    section_table_s1,
    section_fig1,
    section_fig_s2,
    section_fig3,
    section_fig_s3,
    section_scores,
    section_tuning,
    section_provenance,
)


def _guarded(builder: Callable[[Context], Section], ctx: Context) -> Section:
    """Run one section builder; a malformed artifact costs that section only, not the report."""
    try:
        return builder(ctx)
    except Exception as err:
        log.exception("report section %s failed", builder.__name__)
        name = builder.__name__.removeprefix("section_")
        return Section(name, name, missing=f"failed to build: {type(err).__name__}: {err}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow's per-download progress bars and Optuna's per-study info logs."""
    old_env = os.environ.get(_PROGRESS_ENV)
    old_level = optuna.logging.get_verbosity()
    os.environ[_PROGRESS_ENV] = "false"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old_level)
        if old_env is None:
            os.environ.pop(_PROGRESS_ENV, None)
        else:
            os.environ[_PROGRESS_ENV] = old_env


def _write_tables(sections: list[Section], out_dir: Path) -> None:
    for sec in sections:
        for table in sec.tables:
            if table.has_csv:
                table.frame.to_csv(out_dir / TABLE_DIR / f"{table.id}.csv", index=False)


def _render(sections: list[Section], store: RunStore, out_dir: Path) -> Path:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    steps = Counter(step_of(r) or "(untagged)" for r in store.runs)
    html = env.get_template("index.html").render(
        sections=sections,
        experiment=store.experiment,
        tracking_uri=store.tracking_uri,
        root_run=store.root_run,
        steps=sorted(steps.items()),
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        table_dir=TABLE_DIR,
    )
    shutil.copyfile(TEMPLATES / "report.css", out_dir / "report.css")
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def build_report(
    out_dir: str | Path,
    *,
    experiment: str = "ssmoe",
    root_run: str | None = None,
    log_to_run: str | None = None,
    tracking_uri: str | None = None,
) -> Path:
    """Build the HTML report of an experiment (or one study) from its MLflow runs alone.

    Args:
        out_dir: folder receiving `index.html`, `report.css`, `figures/*.png`, `tables/*.csv`
            (self-contained, readable offline; earlier figures/tables there are replaced).
        experiment: MLflow experiment name.
        root_run: only runs tagged `ssmoe.root_run=<root_run>` and the root run itself.
        log_to_run: when given, the whole folder is logged as artifacts `report/` of that run.
        tracking_uri: store to read (default: the one in force).

    Returns:
        Path of `index.html`.

    Raises:
        ValueError: unknown experiment or root run.
    """
    out = Path(out_dir)
    for sub in (FIG_DIR, TABLE_DIR):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    store = RunStore(experiment, root_run=root_run, tracking_uri=tracking_uri)
    try:
        with _quiet():
            ctx = Context(store, out)
            sections = [_guarded(builder, ctx) for builder in SECTIONS]
        _write_tables(sections, out)
        index = _render(sections, store, out)
        if log_to_run:
            store.tracking.upload(log_to_run, out, "report")
    finally:
        store.close()
    log.info("report written to %s", index)
    return index
