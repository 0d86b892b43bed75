"""Reports rebuilt from MLflow runs alone (`ssmoe report`): the paper's tables and figures.

- ``store``: the runs of an experiment or study and their artifacts, read through
  ``ssmoe.tracking``; ``context``: what every section shares;
- ``tables`` (Table 1, 2, S1 as `Table` objects) and ``table_sections``; ``figure_sections``
  (Fig. 1, 3, S2, S3, scores; drawn by ``ssmoe.evaluation.figures``); ``tuning``;
- ``page``: `build_report`, the sections in order rendered into `index.html`.

The library never imports this package; only the command line does.
"""

from ssmoe.report.page import build_report

__all__ = ["build_report"]
