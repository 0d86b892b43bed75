"""Precision selection: bf16 only where the hardware has it, fp32 elsewhere, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssmoe.models.moe import UNetSR
from ssmoe.models.unet import LR_PATCH, UNetConfig
from ssmoe.training import precision
from ssmoe.training.precision import autocast, bf16_supported, resolve_precision


@pytest.fixture
def cpu(monkeypatch):
    """Set what the CPU probe sees: cpu(flags, torch_probe)."""

    def set_cpu(flags: set[str] | None, torch_probe: bool = False) -> None:
        precision.cpu_has_bf16.cache_clear()
        monkeypatch.setattr(
            precision, "_cpuinfo_flags", lambda: None if flags is None else frozenset(flags)
        )
        monkeypatch.setattr(precision, "_torch_cpu_bf16", lambda: torch_probe)

    yield set_cpu
    precision.cpu_has_bf16.cache_clear()


@pytest.mark.parametrize(
    ("flags", "probe", "expected"),
    [
        ({"avx512f", "avx512_bf16"}, False, torch.bfloat16),
        ({"amx_tile", "amx_bf16"}, False, torch.bfloat16),
        ({"avx512f", "avx2"}, False, torch.float32),
        (set(), False, torch.float32),
        (None, True, torch.bfloat16),  # no /proc/cpuinfo (macOS, Windows): torch's probe decides
        (None, False, torch.float32),
    ],
)
def test_auto_on_cpu_follows_the_bf16_flags(cpu, flags, probe, expected):
    cpu(flags, probe)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("fp32", "cpu") == torch.float32


def test_bf16_where_unsupported_is_a_clear_error(cpu):
    cpu({"avx2"})
    with pytest.raises(ValueError, match="precision 'bf16' needs native bf16 on device cpu"):
        resolve_precision("bf16", "cpu")
    cpu({"avx512_bf16"})
    assert resolve_precision("bf16", "cpu") == torch.bfloat16


def test_cuda_and_other_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda") == torch.float32  # e.g. a V100
    with pytest.raises(ValueError, match="device cuda"):
        resolve_precision("bf16", "cuda:0")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda") == torch.bfloat16
    assert not bf16_supported("mps")
    assert resolve_precision("auto", "mps") == torch.float32


def test_unknown_name_is_rejected():
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32; got 'fp16'"):
        resolve_precision("fp16", "cpu")


def test_cpuinfo_parser(tmp_path: Path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16 amx_bf16\n\nprocessor\t: 1\n")
    assert precision._cpuinfo_flags(info) == {"fpu", "sse", "avx512_bf16", "amx_bf16"}
    assert precision._cpuinfo_flags(tmp_path / "missing") is None


def test_autocast_is_a_no_op_for_fp32_and_keeps_weights_fp32():
    torch.manual_seed(0)
    model = UNetSR(UNetConfig("aniso", 4)).eval()
    x = torch.rand(2, 1, *LR_PATCH["aniso"])
    with torch.no_grad():
        ref = model(x)
        with autocast("cpu", torch.float32):
            assert torch.equal(model(x), ref)
        with autocast("cpu", None):
            assert torch.equal(model(x), ref)
        with autocast("cpu", torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16  # the convolutions ran in bf16 ...
    assert all(p.dtype == torch.float32 for p in model.parameters())  # ... the weights did not
    # bf16 keeps 8 bits of mantissa: close to fp32, not equal
    assert 0 < (low.float() - ref).abs().max() < 0.05 * ref.abs().max()
