"""The gater G of SS-MoE: c = G([E^O(x), a]) (paper eq. 2).

A feed-forward classifier on the global-average-pooled last encoder activation concatenated with
the z-scored acquisition vector a = (gx, gy, gz, b, TI, TE). Its output is K logits; the softmax of
the paper is folded into the cross-entropy loss during training and into argmax at test time.
The supplementary architecture is not public; two hidden layers (128, 64) with dropout is our
choice, documented here and logged with every phase-2 run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ACQ_DIM = 6


@dataclass(frozen=True)
class GaterConfig:
    """Gater hyper-parameters: input feature size (4w), classes K, hidden sizes, dropout."""

    in_features: int
    k: int
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError(f"k (number of pseudo error classes) must be >= 2, got {self.k!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


class Gater(nn.Module):
    """MLP: (B, in_features) features and (B, 6) z-scored acquisition -> (B, K) logits."""

    def __init__(self, config: GaterConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.in_features + ACQ_DIM
        for h in config.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = h
        layers.append(nn.Linear(width, config.k))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, acq_z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([features, acq_z], dim=1))


class AcquisitionNorm(nn.Module):
    """z-scores the raw acquisition vector with statistics of the protocol (stored as buffers).

    A constant column (e.g. one TE in a tiny protocol) gets std 1 so it maps to 0, not NaN.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        std = torch.where(std > 0, std, torch.ones_like(std))
        self.register_buffer("mean", mean.float().reshape(1, ACQ_DIM))
        self.register_buffer("std", std.float().reshape(1, ACQ_DIM))

    @classmethod
    def from_table(cls, params: torch.Tensor) -> AcquisitionNorm:
        """From a (V, 6) parameter table (gx gy gz b TI TE)."""
        return cls(params.mean(dim=0), params.std(dim=0, unbiased=False))

    def forward(self, acq: torch.Tensor) -> torch.Tensor:
        return (acq - self.mean) / self.std
