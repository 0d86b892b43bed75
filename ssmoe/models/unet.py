"""The SR U-Net backbone of SS-MoE, split into encoder E, decoder D and E^O = GAP(E).

Architecture after the released code (METHOD.md section 2; Heinrich et al. 2017; Lin et al. 2019):

- Residual block: two x [3^3 conv -> ReLU -> BN] on the main path, a 1^3 projection of the
  input, add, then ReLU -> BN.
- Skip path (FSRCNN-like bottleneck): 1^3 conv to c/2 -> two x [3^3 conv at c/2] -> 1^3 conv back
  to c, add the block input, then a transposed conv with kernel = stride = the through-plane scale.
- Encoder: ResBlock(1 -> 2w) -> max-pool -> ResBlock(2w -> 4w) -> ResBlock(4w -> 4w).
- Decoder: up(4w -> 2w, x2) ++ skip(2w) -> ResBlock(4w -> 2w) -> SR step up(2w -> w) ->
  ResBlock(w -> w) -> 1^3 conv to one channel, no output activation.

Tasks (`SCALES` in ssmoe.data.degrade): ``iso`` maps an 8^3 LR patch to 16^3; ``aniso`` maps
16x16x8 to 16^3. At width w=64 the isotropic model has ~8.9 M weights, the decoder ~2.2 M.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import nn

# Per task: first pooling, stride of the skip path's transposed conv, stride of the SR step.
_TASK_STRIDES: dict[
    str, tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]
] = {
    "iso": ((2, 2, 2), (1, 1, 1), (2, 2, 2)),
    "aniso": ((2, 2, 1), (1, 1, 2), (1, 1, 1)),
}
LR_PATCH: dict[str, tuple[int, int, int]] = {"iso": (8, 8, 8), "aniso": (16, 16, 8)}
HR_PATCH = (16, 16, 16)


@dataclass(frozen=True)
class UNetConfig:
    """Backbone hyper-parameters. ``width`` is the paper's nf (64); small widths serve CPU runs."""

    task: str = "iso"  # "iso" or "aniso" (checked below; a str so configs can pass strings)
    width: int = 64
    # Global residual: y = cubic_spline(x) + D(E(x)), so D learns the correction to interpolation.
    # Off in the paper's model; on for CPU presets, whose few hundred steps cannot teach a
    # non-residual network the intensity scale (see README, Results).
    residual: bool = False

    def __post_init__(self) -> None:
        if self.task not in _TASK_STRIDES:
            raise ValueError(f"task must be 'aniso' or 'iso', got {self.task!r}")
        if self.width < 2 or self.width % 2:
            raise ValueError(f"width must be an even integer >= 2, got {self.width!r}")


class ConvReluBN(nn.Sequential):
    """k^3 conv -> ReLU -> BN (the released code's order)."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__(
            nn.Conv3d(cin, cout, kernel, padding=kernel // 2),
            nn.ReLU(inplace=True),
            nn.BatchNorm3d(cout),
        )


class ResBlock(nn.Module):
    """Two conv-ReLU-BN layers plus a 1^3 projection shortcut, then ReLU -> BN."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.main = nn.Sequential(ConvReluBN(cin, cout, 3), ConvReluBN(cout, cout, 3))
        self.project = nn.Conv3d(cin, cout, 1)
        self.post = nn.Sequential(nn.ReLU(inplace=True), nn.BatchNorm3d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.main(x) + self.project(x))


class Bottleneck(nn.Module):
    """FSRCNN-like skip path: shrink, map, expand, add input, then upsample through-plane."""

    def __init__(self, channels: int, stride: tuple[int, int, int]) -> None:
        super().__init__()
        half = channels // 2
        self.body = nn.Sequential(
            ConvReluBN(channels, half, 1),
            ConvReluBN(half, half, 3),
            ConvReluBN(half, half, 3),
            ConvReluBN(half, channels, 1),
        )
        self.up = nn.ConvTranspose3d(channels, channels, kernel_size=stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(x) + x)


class Encoder(nn.Module):
    """E: returns (skip activation at LR size, last activation at the coarsest level)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        w = config.width
        pool, _, _ = _TASK_STRIDES[config.task]
        self.block1 = ResBlock(1, 2 * w)
        self.pool = nn.MaxPool3d(kernel_size=pool, stride=pool)
        self.block2 = ResBlock(2 * w, 4 * w)
        self.block3 = ResBlock(4 * w, 4 * w)
        self.out_channels = 4 * w

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.block1(x)
        bottom = self.block3(self.block2(self.pool(skip)))
        return skip, bottom


def global_average_pool(bottom: torch.Tensor) -> torch.Tensor:
    """O: (B, C, x, y, z) -> (B, C). E^O = O o E."""
    return bottom.mean(dim=(2, 3, 4))


class Decoder(nn.Module):
    """D: (skip, bottom) -> HR patch (B, 1, 16, 16, 16). Everything trained by an expert."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        w = config.width
        _, skip_stride, sr_stride = _TASK_STRIDES[config.task]
        self.skip = Bottleneck(2 * w, skip_stride)
        self.up = nn.ConvTranspose3d(4 * w, 2 * w, kernel_size=2, stride=2)
        self.block4 = ResBlock(4 * w, 2 * w)
        self.sr_up = nn.ConvTranspose3d(2 * w, w, kernel_size=sr_stride, stride=sr_stride)
        self.block5 = ResBlock(w, w)
        self.head = nn.Conv3d(w, 1, 1)

    def forward(self, skip: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.up(bottom), self.skip(skip)], dim=1)
        return self.head(self.block5(self.sr_up(self.block4(x))))


@functools.lru_cache(maxsize=8)
def _spline_matrix(n_lr: int, scale: int) -> np.ndarray:
    """(n_lr * scale, n_lr) linear map of 1-D cubic B-spline interpolation on the block geometry
    (HR voxel i samples LR coordinate (i - (scale-1)/2) / scale; 'nearest' beyond the edge) -
    the same interpolation as the cubic-spline baseline, restricted to one patch."""
    coords = (np.arange(n_lr * scale) - (scale - 1) / 2) / scale
    basis = np.eye(n_lr)
    return np.stack(
        [ndimage.map_coordinates(b, [coords], order=3, mode="nearest") for b in basis], axis=1
    )


def base_upsample(config: UNetConfig, x: torch.Tensor) -> torch.Tensor:
    """Cubic-spline upsampling of LR patches (B, 1, *LR_PATCH) to (B, 1, 16, 16, 16), as three
    fixed separable matrices."""
    lr = LR_PATCH[config.task]
    mats = [
        torch.as_tensor(_spline_matrix(n, h // n), dtype=x.dtype, device=x.device)
        for n, h in zip(lr, HR_PATCH, strict=True)
    ]
    return torch.einsum("ia,jb,kc,nzabc->nzijk", *mats, x)


def with_base(config: UNetConfig, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Add the interpolated input to a decoder output when the model is residual."""
    return y + base_upsample(config, x) if config.residual else y


def glorot_normal_(module: nn.Module) -> None:
    """Glorot-normal weights and zero biases for every conv, as in the paper (Keras default)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def count_weights(module: nn.Module) -> int:
    """Number of trainable weights (parameters), as the paper counts them."""
    return sum(p.numel() for p in module.parameters())
