"""The Kubernetes path without a cluster: the job spec is rendered from our template by MLflow's
own Kubernetes backend code (the steps of ``mlflow.projects._run`` for ``--backend
kubernetes``, minus building, pushing and submitting), and its fields are checked.

``mlflow.projects.kubernetes`` imports the ``kubernetes`` client at module level for
submitting; rendering the spec does not use it. Where that client is not installed (it is not
an ssmoe dependency), empty placeholder modules stand in for those two imports only.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest
import yaml

from ssmoe.cluster.kubernetes import SOURCE, TARGET, render_project

ROOT = Path(__file__).resolve().parents[2]
REAL_CLIENT = importlib.util.find_spec("kubernetes") is not None


@pytest.fixture
def kb(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    if not REAL_CLIENT:
        client = types.ModuleType("kubernetes")
        config = types.ModuleType("kubernetes.config")
        exceptions = types.ModuleType("kubernetes.config.config_exception")
        exceptions.ConfigException = type("ConfigException", (Exception,), {})  # type: ignore[attr-defined]
        client.config = config  # type: ignore[attr-defined]
        config.config_exception = exceptions  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "kubernetes", client)
        monkeypatch.setitem(sys.modules, "kubernetes.config", config)
        monkeypatch.setitem(sys.modules, "kubernetes.config.config_exception", exceptions)
        monkeypatch.delitem(sys.modules, "mlflow.projects.kubernetes", raising=False)
    from mlflow.projects import kubernetes

    return kubernetes


def test_kubernetes_project_is_generated_from_the_main_one() -> None:
    assert TARGET.read_text() == render_project(SOURCE), (
        "mlproject/kubernetes/MLproject is out of date: python -m ssmoe.cluster.kubernetes"
    )
    main = yaml.safe_load(SOURCE.read_text())
    variant = yaml.safe_load(TARGET.read_text())
    assert variant["entry_points"] == main["entry_points"]
    assert variant["docker_env"] == {"image": "ssmoe:latest"} and "python_env" not in variant


def test_job_spec_renders_from_the_template(kb, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.projects import _parse_kubernetes_config
    from mlflow.projects.docker import validate_docker_env
    from mlflow.projects.utils import get_entry_point_command, get_run_env_vars, load_project

    monkeypatch.chdir(ROOT)  # kubernetes.json names the template relative to the repository
    monkeypatch.setenv("KUBE_MLFLOW_TRACKING_URI", "http://mlflow.ssmoe.svc:5000")
    backend_config = json.loads((ROOT / "mlproject/cluster/kubernetes.json").read_text())
    kube_config = _parse_kubernetes_config(backend_config)
    project = load_project(str(TARGET.parent))
    validate_docker_env(project)  # what `mlflow run --backend kubernetes` checks first
    params = {"data_dir": "/data/sim", "preset": "tiny", "device": "cuda"}
    command = get_entry_point_command(project, "phase1", params, None)
    job = kb._get_kubernetes_job_definition(
        project.name,
        "registry.example.org/ssmoe/ssmoe-project:abc1234",
        "sha256:0123",
        kb._get_run_command(command),
        get_run_env_vars(run_id="r1", experiment_id="7"),
        kube_config["kube-job-template"],
    )
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["name"].startswith("ssmoe-")
    assert job["metadata"]["namespace"] == "ssmoe"
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["name"] == "ssmoe"
    assert container["image"] == "registry.example.org/ssmoe/ssmoe-project:abc1234@sha256:0123"
    assert container["command"][:4] == ["ssmoe", "phase1", "--data", "/data/sim"]
    assert container["command"][container["command"].index("--device") + 1] == "cuda"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["MLFLOW_RUN_ID"] == "r1" and env["MLFLOW_EXPERIMENT_ID"] == "7"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.ssmoe.svc:5000"
    assert env["SSMOE_EXECUTOR"] == "kubernetes"
    assert env["SSMOE_JOB_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"data": "/data", "shm": "/dev/shm"}
    assert {v["name"] for v in pod["volumes"]} == set(mounts)
    if REAL_CLIENT:
        # With the real client: the spec deserialises into its V1Job model.
        api = kb.kubernetes.client.ApiClient()
        model = api._ApiClient__deserialize(job, "V1Job")
        assert model.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
