"""Reports rebuilt from MLflow runs alone (`ssmoe report`)."""

from ssmoe.report.build import build_report

__all__ = ["build_report"]
