"""The Kubernetes variant of the MLflow Project: ``mlproject/kubernetes/MLproject``.

MLflow's Kubernetes backend runs a project only if its MLproject declares ``docker_env`` (the
image it builds the job's image from), and a ``docker_env`` makes every other ``mlflow run`` of
that project build and run Docker containers as well, ``--env-manager local`` or not. So
``mlproject/MLproject`` stays as it is (local and Slurm runs) and the Kubernetes variant is
generated from it - the same entry points, ``docker_env`` instead of ``python_env`` - by

    python -m ssmoe.cluster.kubernetes [IMAGE]

(default image ``ssmoe:latest``, built from ``docker/Dockerfile``). A test checks that the
checked-in file is what this produces, so the two cannot drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "mlproject" / "MLproject"
TARGET = ROOT / "mlproject" / "kubernetes" / "MLproject"
DEFAULT_IMAGE = "ssmoe:latest"

HEADER = """\
# GENERATED from ../MLproject by `python -m ssmoe.cluster.kubernetes {image}`: do not edit.
# The Kubernetes variant of the project (docs/cluster.md):
#
#   mlflow run mlproject/kubernetes -e phase1 --backend kubernetes \\
#       --backend-config mlproject/cluster/kubernetes.json -P data_dir=/data/sim
#
# MLflow builds an image FROM the docker_env image below with this folder copied into
# /mlflow/projects/code, pushes it to the `repository-uri` of kubernetes.json, and starts the
# job template of kubernetes.json with the entry point's command. Paths given as parameters are
# paths inside the container (the job template mounts the data volume at /data).
"""


def render_project(source: Path = SOURCE, image: str = DEFAULT_IMAGE) -> str:
    """The text of the Kubernetes MLproject made from ``source``."""
    doc = yaml.safe_load(source.read_text())
    if not isinstance(doc, dict) or "entry_points" not in doc:
        raise ValueError(f"{source}: not an MLproject with entry_points")
    variant = {"name": doc["name"], "docker_env": {"image": image}}
    variant["entry_points"] = doc["entry_points"]
    body = yaml.safe_dump(variant, sort_keys=False, width=100, default_flow_style=False)
    return HEADER.format(image=image) + "\n" + body


def write_project(image: str = DEFAULT_IMAGE, target: Path = TARGET) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_project(image=image))
    return target


if __name__ == "__main__":
    print(write_project(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_IMAGE))
