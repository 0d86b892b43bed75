"""MLflow run-context provider (entry point ``mlflow.run_context_provider: ssmoe_job``): every
run started with ``mlflow.start_run`` inside a cluster job gets the job tags of
:func:`ssmoe.cluster.tags.job_tags` (``ssmoe.executor``, ``ssmoe.job_id``, ``ssmoe.job_node``).

MLflow imports this module while it imports its own tracking package; nothing but MLflow's
registry should import it (``ssmoe.cluster.tags`` is the mlflow-free part).
"""

from __future__ import annotations

from mlflow.tracking.context.abstract_context import RunContextProvider

from ssmoe.cluster.tags import job_tags


class JobRunContext(RunContextProvider):
    """Adds the job tags to runs started inside a job (none elsewhere)."""

    def in_context(self) -> bool:
        return bool(job_tags())

    def tags(self) -> dict[str, str]:
        return job_tags()
