"""The names shared by the library and the report: methods, statistics, tasks and steps.

One definition each; the phases log metrics named ``{statistic}_{method}``, the report reads them
back and shows the display names defined here.
"""

from __future__ import annotations

from ssmoe.typing import TASKS

# The four methods of the comparison, in the paper's column order.
METHODS: tuple[str, ...] = ("cubic", "unet", "hardmoe", "ssmoe")
METHOD_NAMES: dict[str, str] = {
    "cubic": "Cubic spline",
    "unet": "SR U-Net",
    "hardmoe": "Hard MoE",
    "ssmoe": "SS-MoE",
}

# Statistics of the per-volume MSE over the volumes of one held-out subject (paper, Table 1).
STATISTICS: tuple[str, ...] = ("average", "variance", "min", "q1", "median", "q3", "max")
STATISTIC_NAMES: dict[str, str] = {
    "average": "Average",
    "variance": "Variance",
    "min": "Min",
    "q1": "Q1",
    "median": "Median",
    "q3": "Q3",
    "max": "Max",
}
PAPER_STATISTICS: tuple[str, ...] = ("average", "variance", "median", "max")  # Table 1's rows

# Super-resolution tasks: aniso (LR 2.5x2.5x5 mm) and iso (LR 5 mm isotropic). TASKS is defined
# beside the ``Task`` type in ``ssmoe.typing`` (the data layer imports it from there).
TASK_NAMES: dict[str, str] = {"aniso": "Aniso.", "iso": "Iso."}

# The steps of one fold, in the order the pipeline runs them (each one MLflow run).
STEPS: tuple[str, ...] = ("simulate", "phase1", "phase2", "phase3", "hardmoe", "evaluate")

__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "PAPER_STATISTICS",
    "STATISTICS",
    "STATISTIC_NAMES",
    "STEPS",
    "TASKS",
    "TASK_NAMES",
]
