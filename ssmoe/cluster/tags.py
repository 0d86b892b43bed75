"""Job-id tags: every MLflow run made inside a cluster job says which job made it.

- ``ssmoe.executor``: ``slurm`` or ``local``;
- ``ssmoe.job_id``: Slurm's id of the job, ``<array job id>_<task>`` for an array task (what
  ``squeue``/``sacct -j`` take), or the local executor's ``local-<hex>[_i]``;
- ``ssmoe.job_node``: the node it ran on (Slurm only).

Slurm's own variables are read first, so a job submitted by hand with ``sbatch`` or ``srun`` is
tagged too. ``ssmoe.cluster.run_context`` adds these tags to every run started with
``mlflow.start_run``; runs created with ``MlflowClient.create_run`` pass ``job_tags()``
themselves. (No mlflow import here: MLflow loads the run-context plugin while it imports
itself, so a module importing mlflow at the top would be imported in a circle.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TAG_EXECUTOR = "ssmoe.executor"
TAG_JOB_ID = "ssmoe.job_id"
TAG_JOB_NODE = "ssmoe.job_node"


def job_tags(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The job tags of this process (``{}`` outside a job)."""
    env = os.environ if environ is None else environ
    if env.get("SLURM_JOB_ID"):
        array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
        tags = {
            TAG_EXECUTOR: "slurm",
            TAG_JOB_ID: f"{array}_{task}" if array and task else env["SLURM_JOB_ID"],
        }
        if env.get("SLURMD_NODENAME"):
            tags[TAG_JOB_NODE] = env["SLURMD_NODENAME"]
        return tags
    if env.get("SSMOE_JOB_ID"):
        return {TAG_EXECUTOR: env.get("SSMOE_EXECUTOR", "local"), TAG_JOB_ID: env["SSMOE_JOB_ID"]}
    return {}
