"""Reports rebuilt from MLflow runs alone (`ssmoe report`)."""

from reports.build import build_report

__all__ = ["build_report"]
