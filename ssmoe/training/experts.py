"""Expert decoders trained on routed subsets with the encoder frozen (phase three, Hard MoE).

All K experts are trained in one call of the training loop, with batches that each hold pairs of
one subset only (in random order across subsets): expert k sees full batches of S^(k) alone, as
if the experts were trained one after another (eq. 6 for every k), and the whole mixture has one
validation loss per epoch for the pruner. Each expert starts from the baseline decoder (paper,
phase three).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ssmoe.models.moe import decode_routed, expert_from, freeze
from ssmoe.models.unet import Decoder, Encoder, UNetConfig
from ssmoe.training.loop import TrainConfig, train


class ExpertBank(nn.Module):
    """Frozen encoder + K experts; forward(x, routes) decodes each patch with its expert."""

    def __init__(self, config: UNetConfig, encoder: Encoder, experts: list[Decoder]) -> None:
        super().__init__()
        self.config = config
        self.encoder: Encoder = freeze(encoder)
        self.experts = nn.ModuleList(experts)

    def forward(self, x: torch.Tensor, routes: torch.Tensor) -> torch.Tensor:
        return decode_routed(self.config, self.encoder, self.experts, x, routes)


def _routed_mse(model: nn.Module, batch) -> torch.Tensor:
    x, y, routes = batch
    return nn.functional.mse_loss(model(x, routes), y)


def train_experts(
    model_config: UNetConfig,
    encoder: Encoder,
    baseline_decoder: Decoder,
    k: int,
    train_data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    val_data: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    config: TrainConfig,
    device: torch.device,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    desc: str = "experts",
) -> list[Decoder]:
    """Train K experts; data are (x LR, y HR, routes int64 in 0..K-1) tensors."""
    experts = [expert_from(baseline_decoder) for _ in range(k)]
    bank = ExpertBank(model_config, encoder, experts)
    for p in bank.experts.parameters():
        p.requires_grad_(True)
    train(
        bank,
        trainable=bank.experts,
        loss_fn=_routed_mse,
        train_data=train_data,
        val_data=val_data,
        config=config,
        device=device,
        on_epoch=on_epoch,
        desc=desc,
    )
    return [freeze(e) for e in experts]
