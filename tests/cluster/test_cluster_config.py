"""SlurmConfig: the example files load, bad files fail naming the file, field and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssmoe.cluster import SlurmConfig, make_executor
from ssmoe.cluster.local import LocalExecutor
from ssmoe.cluster.slurm import SlurmExecutor

EXAMPLES = Path(__file__).resolve().parents[2] / "mlproject" / "cluster"


def test_example_configs_load() -> None:
    local = SlurmConfig.load(EXAMPLES / "slurm.json")
    assert (local.cpus_per_task, local.mem, local.gpus_per_node) == (1, "4G", None)
    gpu = SlurmConfig.load(EXAMPLES / "slurm-gpu.json")
    assert gpu.gpus_per_node == 1 and gpu.partition == "gpu" and gpu.modules == ("cuda/12.8",)
    assert gpu.poll_interval == 30.0


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "slurm.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"gpus": 1}, "unknown key(s) ['gpus']"),
        ({"gpus_per_node": "two"}, "field 'gpus_per_node': expected an integer, got 'two'"),
        ({"cpus_per_task": True}, "field 'cpus_per_task': expected an integer, got True"),
        ({"cpus_per_task": 0}, "cpus_per_task must be a positive integer, got 0"),
        ({"modules": "cuda"}, "field 'modules': expected a list of strings, got 'cuda'"),
        ({"environment": ["NOEQUALS"]}, "environment entries are 'NAME=value', got 'NOEQUALS'"),
        ({"exclusive": "yes"}, "field 'exclusive': expected true or false, got 'yes'"),
        ({"poll_interval": 0}, "poll_interval must be > 0 seconds, got 0.0"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_bad_config_names_file_field_value(tmp_path: Path, doc: object, message: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(ValueError) as err:
        SlurmConfig.load(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unreadable_and_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read Slurm config .*missing.json"):
        SlurmConfig.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{partition: gpu}")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        SlurmConfig.load(bad)


def test_make_executor(tmp_path: Path) -> None:
    path = _write(tmp_path, {"max_parallel": 3, "log_dir": str(tmp_path / "logs")})
    local = make_executor("local", path)
    assert isinstance(local, LocalExecutor) and local.max_parallel == 3
    slurm = make_executor("slurm", path)
    assert isinstance(slurm, SlurmExecutor) and slurm.config.max_parallel == 3
    with pytest.raises(
        ValueError, match="executor must be one of \\('local', 'slurm'\\), got 'k8s'"
    ):
        make_executor("k8s")
