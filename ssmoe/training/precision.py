"""Numerical precision of training and inference steps: ``auto``, ``bf16`` or ``fp32``.

``bf16`` runs the step under ``torch.autocast`` with bfloat16: convolutions and matrix products
compute in bf16, while weights, optimiser state and the loss stay fp32 (autocast changes only
the dtype of op inputs, never of parameters). ``auto`` picks bf16 where the hardware has native
bf16 arithmetic and fp32 elsewhere:

- CPU: the ``avx512_bf16`` or ``amx_bf16`` instruction sets (``/proc/cpuinfo`` flags on Linux,
  else torch's own CPU probe). Without them oneDNN emulates bf16 and is slower than fp32.
- CUDA: ``torch.cuda.is_bf16_supported()`` (compute capability 8.0 and newer: A100, H100, ...).
- anything else (MPS, ...): fp32.

On this project's 2-core CPU (AVX512-BF16, no AMX) the quick-width U-Net trains 1.3-1.4x and
infers 1.1-1.4x faster in bf16, 2.0-2.2x and 1.6-1.8x together with channels-last memory format
(``benchmarks/bench_precision.py``, ``benchmarks/README.md``).
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Literal, get_args

import torch

Precision = Literal["auto", "bf16", "fp32"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def _cpuinfo_flags(path: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The CPU feature flags of the first processor in ``/proc/cpuinfo``; None where absent."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def _torch_cpu_bf16() -> bool:
    """torch's own probe (private helpers present in torch >= 2.3; False where missing)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    flags = _cpuinfo_flags()
    if flags is not None and flags & CPU_BF16_FLAGS:
        return True
    return _torch_cpu_bf16()


def bf16_supported(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 natively (see the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_bf16()
    return False


def resolve_precision(name: str, device: torch.device | str) -> torch.dtype:
    """The compute dtype of ``name`` on ``device``: ``torch.bfloat16`` or ``torch.float32``.

    ``auto`` gives bf16 where ``bf16_supported(device)`` and fp32 elsewhere; ``bf16`` on a device
    without native bf16 is a ValueError (emulated bf16 would be slower than fp32, not faster).
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {name!r}")
    if name == "fp32":
        return torch.float32
    supported = bf16_supported(device)
    if name == "bf16" and not supported:
        raise ValueError(
            f"precision 'bf16' needs native bf16 on device {torch.device(device)} (a CPU with "
            "AVX512-BF16 or AMX-BF16, or a CUDA GPU of compute capability >= 8.0), which this "
            "machine lacks; use precision 'auto' or 'fp32'"
        )
    return torch.bfloat16 if supported else torch.float32


def autocast(
    device: torch.device | str, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type; a no-op for fp32 (or None)."""
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
