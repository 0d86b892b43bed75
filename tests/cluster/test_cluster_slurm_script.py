"""The sbatch script and the parsing of Slurm's answers, without a cluster: the script is run
by bash with a fake SLURM_* environment, the parsers get Slurm 22.05's real output formats."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ssmoe.cluster import JobSpec, SlurmConfig
from ssmoe.cluster.slurm import _exit_code, _parse_records, _task_range, render_script

EXAMPLES = Path(__file__).resolve().parents[2] / "mlproject" / "cluster"


def directives(script: str) -> list[str]:
    return [
        line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH")
    ]


def test_gpu_config_directives(tmp_path: Path) -> None:
    config = SlurmConfig.load(EXAMPLES / "slurm-gpu.json")
    spec = JobSpec(commands=(["ssmoe", "phase1", "--data", "/data/my sim"],), name="p1")
    script = render_script(spec, config, tmp_path)
    assert directives(script) == [
        "--job-name=p1",
        f"--output={tmp_path}/%x-%j.out",
        "--export=ALL",
        "--partition=gpu",
        "--time=12:00:00",
        "--mem=32G",
        "--cpus-per-task=8",
        "--gpus-per-node=1",
    ]
    assert "module load cuda/12.8" in script
    assert "source $HOME/venvs/ssmoe/bin/activate" in script
    assert "ssmoe phase1 --data '/data/my sim'" in script  # argv quoted for the shell
    gres = render_script(spec, SlurmConfig(gres="gpu:a100:2", exclusive=True), tmp_path)
    assert {"--gres=gpu:a100:2", "--exclusive"} <= set(directives(gres))


def run_task(script: str, env: dict[str, str]) -> str:
    """Run a rendered script as Slurm would (directives are comments to bash)."""
    done = subprocess.run(
        ["bash", "-c", script], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    return done.stdout


def test_array_script_runs_the_task_command(tmp_path: Path) -> None:
    show = 'echo "$SSMOE_EXECUTOR $SSMOE_JOB_ID $SSMOE_TASK_INDEX $SSMOE_JOB_LOG $OMP_NUM_THREADS'
    spec = JobSpec(commands=(f'{show} a"', f'{show} b"', f'{show} c"'), name="arr")
    config = SlurmConfig(max_parallel=2, environment=("GREETING=hello world",))
    script = render_script(spec, config, tmp_path)
    assert "--array=0-2%2" in directives(script)
    assert f"--output={tmp_path}/%x-%A_%a.out" in directives(script)
    env = {"SLURM_JOB_ID": "41", "SLURM_ARRAY_JOB_ID": "40", "SLURM_CPUS_PER_TASK": "3"}
    out = run_task(script, {**env, "SLURM_ARRAY_TASK_ID": "1"})
    assert out.split() == ["slurm", "40_1", "1", f"{tmp_path}/arr-40_1.out", "3", "b"]
    out = run_task(script, {**env, "SLURM_ARRAY_TASK_ID": "2", "OMP_NUM_THREADS": "1"})
    assert out.split()[-2:] == ["1", "c"]  # an explicit OMP_NUM_THREADS wins
    greeting = render_script(JobSpec(commands=('echo "$GREETING"',)), config, tmp_path)
    assert run_task(greeting, {"SLURM_JOB_ID": "7"}) == "hello world\n"


def test_scontrol_records_and_exit_codes() -> None:
    # `scontrol show job -o` of an array with a pending range, Slurm 22.05 (fields trimmed)
    text = (
        "JobId=12 ArrayJobId=10 ArrayTaskId=2 JobName=w JobState=COMPLETED Reason=None "
        "ExitCode=0:0 Command=(null)\n"
        "JobId=11 ArrayJobId=10 ArrayTaskId=1 JobName=w JobState=FAILED ExitCode=3:0\n"
        "JobId=10 ArrayJobId=10 ArrayTaskId=3-5%2 JobName=w JobState=PENDING ExitCode=0:0\n"
    )
    records = _parse_records(text)
    assert [(r["ArrayTaskId"], r["JobState"]) for r in records] == [
        ("2", "COMPLETED"), ("1", "FAILED"), ("3-5%2", "PENDING"),
    ]  # fmt: skip
    assert _task_range("3-5%2") == [3, 4, 5] and _task_range("0,2-3") == [0, 2, 3]
    assert (_exit_code("0:0"), _exit_code("3:0"), _exit_code("0:15"), _exit_code(None)) == (
        0, 3, 143, None,
    )  # fmt: skip


def test_job_spec_checks_its_fields() -> None:
    with pytest.raises(ValueError, match="at least one command"):
        JobSpec(commands=())
    with pytest.raises(ValueError, match="job name .* got 'a b'"):
        JobSpec(commands=("true",), name="a b")
