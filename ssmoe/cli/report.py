"""CLI commands (report)."""

from __future__ import annotations

from ssmoe.cli import main  # noqa: F401
