"""Reuse of finished steps: a step is reused when a FINISHED run exists with the same step, the
same parameters (compared as strings), the same code version and the same upstream runs.

Better than MLflow's multistep example, whose cache ignores code and upstream changes and
compares typed values with stored strings: here all of it goes into one key, stored as the tag
``ssmoe.cache_key`` on the run, so the look-up is one indexed tag query.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import ssmoe
from ssmoe.tracking import TAG_STEP, TrackingStore
from ssmoe.tracking.runs import _param

TAG_CACHE_KEY = "ssmoe.cache_key"
TAG_CODE_VERSION = "ssmoe.code_version"


# Code that cannot change a step's result: editing the report re-runs nothing.
_NOT_HASHED = ("report",)


@lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 (12 hex) of every source file of the installed ``ssmoe`` package (the report
    package aside).

    A content hash, not a git commit: it changes with uncommitted edits and works in a wheel
    install or a clean clone alike.
    """
    root = Path(ssmoe.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] in _NOT_HASHED:
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_key(step: str, params: Mapping[str, Any], upstream: Mapping[str, str]) -> str:
    """Key of a step: its name, params as strings, code version and upstream run ids."""
    doc = {
        "step": step,
        "params": {k: _param(v) for k, v in sorted(params.items())},
        "upstream": dict(sorted(upstream.items())),
        "code": code_version(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def find_finished(experiment_id: str, step: str, key: str) -> str | None:
    """Id of the latest FINISHED run of ``step`` with cache key ``key``, or None."""
    runs = TrackingStore().search(
        [experiment_id],
        filter_string=(
            f"tags.`{TAG_CACHE_KEY}` = '{key}' and tags.`{TAG_STEP}` = '{step}' "
            "and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None
