"""Whole-volume reconstruction with a patch model (the test phase and ``ssmoe predict``).

The LR volume is cut into the LR patches of a grid of HR tiles (``GridTiler``), the model maps
each to its 16^3 HR patch (gating per patch for a mixture), and overlapping tiles are averaged.
Tiles whose LR input is entirely zero (background of a masked volume) are not run through the
network and reconstruct as zeros - the same rule in evaluation and in ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ssmoe.data.patches import GridTiler


@dataclass
class Reconstruction:
    volume: np.ndarray  # (X, Y, Z) float32, HR grid
    tiles: np.ndarray  # (M, 1, 16, 16, 16) the model's HR tiles before averaging (0 if skipped)
    routes: np.ndarray | None  # (M,) expert per tile (-1 where skipped); None for a plain model


@torch.no_grad()
def reconstruct(
    model: torch.nn.Module,
    lr_volume: np.ndarray,
    acq: np.ndarray,
    tiler: GridTiler,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
) -> Reconstruction:
    """Super-resolve one LR volume (X', Y', Z') acquired with ``acq`` (6,) to the HR grid."""
    model.eval()
    patches = tiler.lr_patches(np.asarray(lr_volume, dtype=np.float32))
    active = np.flatnonzero(np.abs(patches).reshape(len(patches), -1).max(axis=1) > 0)
    out = np.zeros((len(patches), 1, 16, 16, 16), dtype=np.float32)
    with_routes = getattr(model, "forward_with_routes", None)  # mixtures report their experts
    routes = np.full(len(patches), -1, dtype=np.int64) if with_routes is not None else None
    a = torch.as_tensor(np.asarray(acq, dtype=np.float32)).reshape(1, -1).to(device)
    for start in range(0, len(active), batch_size):
        idx = active[start : start + batch_size]
        x = torch.from_numpy(patches[idx]).to(device)
        acq_b = a.expand(len(idx), -1)
        if with_routes is not None and routes is not None:
            y, r = with_routes(x, acq_b)
            routes[idx] = r.cpu().numpy()
        else:
            y = model(x, acq_b)
        out[idx] = y.cpu().numpy()
    return Reconstruction(tiler.assemble(out), out, routes)
