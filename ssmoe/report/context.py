"""What every section builder shares: the run store, the output folder, the folds shown, and
the ``Section`` each builder returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from ssmoe.evaluation.figures import save_figure
from ssmoe.report.store import RunStore, default_setting, fold_runs, tasks_present
from ssmoe.report.tables import Table
from ssmoe.tracking import Run
from ssmoe.vocabulary import TASK_NAMES

FIG_DIR = "figures"
TABLE_DIR = "tables"


@dataclass
class FigureRef:
    """A PNG under ``figures/`` (path relative to the page) and its caption."""

    src: str
    caption: str


@dataclass
class Section:
    """One heading of the page: tables and figures, or a note saying why it is empty."""

    id: str
    title: str
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureRef] = field(default_factory=list)
    missing: str | None = None
    intro: str = ""

    def add_figure(self, ctx: Context, fig: Figure, name: str, caption: str) -> None:
        """Save ``fig`` as ``figures/<name>`` and show it in this section."""
        save_figure(fig, ctx.out_dir / FIG_DIR / name)
        self.figures.append(FigureRef(f"{FIG_DIR}/{name}", caption))


class Context:
    """The store, the output folder and, per task, its default (K, segmenter) and folds."""

    def __init__(self, store: RunStore, out_dir: Path) -> None:
        self.store = store
        self.out_dir = out_dir
        self.evals = store.evaluations()
        self.tasks = tasks_present(self.evals)
        self.settings: dict[str, tuple[int | None, str]] = {}
        for task in self.tasks:
            setting = default_setting(self.evals, task)
            assert setting is not None  # the task has evaluate runs
            self.settings[task] = setting
        self.folds = {t: fold_runs(self.evals, t) for t in self.tasks}

    def figure_run(self, task: str, artifact: str) -> tuple[str, Run] | None:
        """The fold shown in figures: the last test subject (as the paper) having `artifact`."""
        for subject, run in reversed(self.folds[task].items()):
            if self.store.artifact(run, artifact) is not None:
                return subject, run
        return None

    def setting_text(self, task: str) -> str:
        k, segmenter = self.settings[task]
        return f"K={k}, segmenter {segmenter}"

    def missing_artifact(self, path: str) -> str:
        """Why a section of evaluate artifacts is empty: no evaluate run, or none logged it."""
        return missing("evaluate") if not self.tasks else no_artifact(path)


def missing(kind: str) -> str:
    return f"not available (no runs of kind {kind})"


def no_artifact(path: str) -> str:
    return f"not available (no evaluate run logged the artifact {path})"


def panel_title(task: str, subject: str) -> str:
    """Panel title naming the task and the fold's test subject."""
    return f"{TASK_NAMES.get(task, task)} task, test subject {subject}"


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))
