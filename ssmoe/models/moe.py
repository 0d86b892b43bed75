"""Super-resolution models with one forward signature: ``forward(x, acq) -> y``.

- ``UNetSR``: the backbone y = D(E(x)) (baseline; ignores acq).
- ``SSMoE``: c = G([E^O(x), z(a)]), y = D^c(E(x)) (paper eqs. 7-8).
- ``GatedEncoder``: E^O followed by G, the phase-2 model (logits only, no decoder).
- ``HardMoE``: c = nearest centroid of standardised E^O(x) (Gross et al. 2017), y = D^c(E(x)).

x is an LR patch batch (B, 1, *LR_PATCH[task]); acq is the raw acquisition vector (B, 6)
(gx, gy, gz, b [s/mm^2], TI [ms], TE [ms]); y is (B, 1, 16, 16, 16) in the same units as x.
Every model is self-contained (normalisation buffers inside) so a logged model can be loaded by
``ssmoe predict`` alone.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn

from ssmoe.models.gater import AcquisitionNorm, Gater
from ssmoe.models.unet import Decoder, Encoder, UNetConfig, global_average_pool, with_base

MT = TypeVar("MT", bound=nn.Module)


class UNetSR(nn.Module):
    """The SR U-Net baseline: y = D(E(x))."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        self.task = config.task
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """E^O(x): (B, 4w) global-average-pooled last encoder activation."""
        return global_average_pool(self.encoder(x)[1])

    def forward(self, x: torch.Tensor, acq: torch.Tensor | None = None) -> torch.Tensor:
        return with_base(self.config, x, self.decoder(*self.encoder(x)))


def decode_routed(
    config: UNetConfig,
    encoder: Encoder,
    experts: nn.ModuleList,
    x: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """Decode each patch with the expert its label names (one batched call per expert)."""
    skip, bottom = encoder(x)
    return with_base(config, x, _decode(experts, skip, bottom, labels))


def _decode(
    experts: nn.ModuleList, skip: torch.Tensor, bottom: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    out = skip.new_empty((skip.shape[0], 1, 16, 16, 16))
    for k, expert in enumerate(experts):
        idx = (labels == k).nonzero(as_tuple=True)[0]
        if idx.numel():
            out[idx] = expert(skip[idx], bottom[idx])
    return out


class _Mixture(nn.Module):
    """K expert decoders on a shared frozen encoder; subclasses route on the bottleneck E(x)."""

    experts: nn.ModuleList

    def __init__(self, config: UNetConfig, encoder: Encoder) -> None:
        super().__init__()
        self.config = config
        self.task = config.task
        self.encoder = encoder

    @property
    def k(self) -> int:
        return len(self.experts)

    def _routes(self, bottom: torch.Tensor, acq: torch.Tensor | None) -> torch.Tensor:
        """Expert per patch, (B,) int64, from the bottleneck activation (B, C, ...)."""
        raise NotImplementedError

    def forward_with_routes(
        self, x: torch.Tensor, acq: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(HR patches, expert per patch), running the shared encoder once."""
        skip, bottom = self.encoder(x)
        routes = self._routes(bottom, acq)
        return with_base(self.config, x, _decode(self.experts, skip, bottom, routes)), routes

    def forward(self, x: torch.Tensor, acq: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_routes(x, acq)[0]


class SSMoE(_Mixture):
    """Self-supervised mixture of experts: frozen encoder, gater, K expert decoders."""

    def __init__(
        self,
        config: UNetConfig,
        encoder: Encoder,
        gater: Gater,
        acq_norm: AcquisitionNorm,
        experts: list[Decoder],
    ) -> None:
        super().__init__(config, encoder)
        self.gater = gater
        self.acq_norm = acq_norm
        self.experts = nn.ModuleList(experts)

    def gate_logits(self, x: torch.Tensor, acq: torch.Tensor) -> torch.Tensor:
        """G([E^O(x), z(a)]): (B, K) logits."""
        features = global_average_pool(self.encoder(x)[1])
        return self.gater(features, self.acq_norm(acq))

    def route(self, x: torch.Tensor, acq: torch.Tensor) -> torch.Tensor:
        """Predicted pseudo error class per patch, (B,) int64."""
        return self.gate_logits(x, acq).argmax(dim=1)

    def _routes(self, bottom: torch.Tensor, acq: torch.Tensor | None) -> torch.Tensor:
        assert acq is not None, "SS-MoE routes on the acquisition too"
        return self.gater(global_average_pool(bottom), self.acq_norm(acq)).argmax(dim=1)


class HardMoE(_Mixture):
    """Hard MoE baseline: K-means clusters of the baseline's E^O features, one expert each."""

    centroids: torch.Tensor
    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(
        self,
        config: UNetConfig,
        encoder: Encoder,
        centroids: torch.Tensor,
        feature_mean: torch.Tensor,
        feature_std: torch.Tensor,
        experts: list[Decoder],
    ) -> None:
        super().__init__(config, encoder)
        self.register_buffer("centroids", centroids.float())
        self.register_buffer("feature_mean", feature_mean.float())
        self.register_buffer("feature_std", feature_std.float())
        self.experts = nn.ModuleList(experts)

    def route(self, x: torch.Tensor, acq: torch.Tensor | None = None) -> torch.Tensor:
        """Nearest centroid of the standardised features, (B,) int64."""
        return self._routes(self.encoder(x)[1], acq)

    def _routes(self, bottom: torch.Tensor, acq: torch.Tensor | None = None) -> torch.Tensor:
        f = (global_average_pool(bottom) - self.feature_mean) / self.feature_std
        return torch.cdist(f, self.centroids).argmin(dim=1)


class GatedEncoder(nn.Module):
    """E^O followed by G: the logged phase-2 model; forward(x, acq) -> (B, K) logits."""

    def __init__(self, baseline: UNetSR, gater: Gater, acq_norm: AcquisitionNorm) -> None:
        super().__init__()
        self.task = baseline.task
        self.encoder = baseline.encoder
        self.gater = gater
        self.acq_norm = acq_norm

    def forward(self, x: torch.Tensor, acq: torch.Tensor) -> torch.Tensor:
        return self.gater(global_average_pool(self.encoder(x)[1]), self.acq_norm(acq))


def expert_from(decoder: Decoder) -> Decoder:
    """A new expert decoder initialised from the baseline decoder (paper, phase three)."""
    return copy.deepcopy(decoder)


def freeze(module: MT) -> MT:
    """Stop gradients and fix BN statistics of a module (the frozen encoder)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()
