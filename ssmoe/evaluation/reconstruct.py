"""Whole-volume reconstruction with a patch model (the test phase and ``ssmoe predict``).

The LR volume is cut into the LR patches of a grid of HR tiles (``GridTiler``), the model maps
each to its 16^3 HR patch (gating per patch for a mixture), and overlapping tiles are averaged.
Tiles whose LR input is entirely zero (background of a masked volume) are not run through the
network and reconstruct as zeros - the same rule in evaluation and in ``predict``.

On a GPU the active tiles go to the device in one copy and come back in one copy: no host
synchronisation per batch. ``dtype`` is the autocast dtype of
``ssmoe.training.precision.resolve_precision`` (bf16 where the hardware has it). On CPU the model
is put in channels-last memory format (see ``reconstruct``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssmoe.data.patches import GridTiler
from ssmoe.training.precision import autocast

HR_TILE = (1, 16, 16, 16)


@dataclass
class Reconstruction:
    volume: np.ndarray  # (X, Y, Z) float32, HR grid
    tiles: np.ndarray  # (M, 1, 16, 16, 16) the model's HR tiles before averaging (0 if skipped)
    routes: np.ndarray | None  # (M,) expert per tile (-1 where skipped); None for a plain model


def active_tiles(lr_tiles: np.ndarray) -> np.ndarray:
    """Indices (K,) of the tiles ``(M, 1, *lr_patch)`` with a non-zero LR voxel."""
    return np.flatnonzero(lr_tiles.reshape(len(lr_tiles), -1).any(axis=1))


def default_batch_size(device: torch.device | str) -> int:
    """Tiles per forward: 128 on CPU, where larger batches overflow the caches (quick-width
    aniso U-Net, one core, patches/s at batch 256/128/64: fp32 89/125/159, bf16 channels-last
    285/298/261; ``benchmarks/README.md``), 256 elsewhere (GPU: not re-measured)."""
    return 128 if torch.device(device).type == "cpu" else 256


@torch.no_grad()
def reconstruct(
    model: torch.nn.Module,
    lr_volume: np.ndarray,
    acq: np.ndarray,
    tiler: GridTiler,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> Reconstruction:
    """Super-resolve one LR volume (X', Y', Z') acquired with ``acq`` (6,) to the HR grid.

    Puts ``model`` in eval mode and, on CPU, in channels-last (``channels_last_3d``) memory
    format. ``batch_size``: tiles per forward, None for ``default_batch_size(device)``.
    ``dtype``: compute dtype of the model's forward (``torch.float32``, or ``torch.bfloat16``
    under autocast); tiles and volume are float32 either way.
    """
    model.eval()
    device = torch.device(device)
    if device.type == "cpu":
        # oneDNN's preferred layout: 1.3-1.6x faster on CPU, fp32 and bf16 alike
        # (benchmarks/bench_reconstruct.py). Changes the weights' strides, not their values.
        model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    batch_size = batch_size or default_batch_size(device)
    lr_tiles = tiler.lr_patches(np.asarray(lr_volume, dtype=np.float32))
    active = active_tiles(lr_tiles)
    x = torch.from_numpy(lr_tiles[active]).to(device, non_blocking=True)
    a = torch.as_tensor(np.asarray(acq, dtype=np.float32)).reshape(1, -1).to(device)
    a = a.expand(len(active), -1)
    with_routes = getattr(model, "forward_with_routes", None)  # mixtures report their experts
    hr = torch.empty((len(active), *HR_TILE), dtype=torch.float32, device=device)
    routes = torch.empty(len(active), dtype=torch.int64, device=device)
    with autocast(device, dtype):
        for start in range(0, len(active), batch_size):
            batch = slice(start, start + batch_size)
            if with_routes is not None:
                hr[batch], routes[batch] = with_routes(x[batch], a[batch])
            else:
                hr[batch] = model(x[batch], a[batch])
    tiles = np.zeros((len(lr_tiles), *HR_TILE), dtype=np.float32)
    tiles[active] = hr.cpu().numpy()
    all_routes = None
    if with_routes is not None:
        all_routes = np.full(len(lr_tiles), -1, dtype=np.int64)
        all_routes[active] = routes.cpu().numpy()
    return Reconstruction(tiler.assemble(tiles), tiles, all_routes)
