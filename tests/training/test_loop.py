"""The one training loop: Keras decay, grouped batches, frozen parts stay frozen, it learns."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssmoe.models.moe import UNetSR
from ssmoe.models.unet import UNetConfig
from ssmoe.training.experts import train_experts
from ssmoe.training.loop import TrainConfig, epoch_batches, learning_rate, mse_loss, train


def test_keras_time_based_decay() -> None:
    assert learning_rate(1e-3, 1e-6, 0) == 1e-3
    assert learning_rate(1e-3, 1e-6, 1_000_000) == pytest.approx(5e-4)
    assert learning_rate(1e-3, 0.0, 10**9) == 1e-3


def test_epoch_batches_cover_every_sample_once() -> None:
    g = torch.Generator().manual_seed(0)
    batches = epoch_batches(103, 10, g)
    assert sorted(torch.cat(batches).tolist()) == list(range(103))
    assert max(len(b) for b in batches) == 10


def test_grouped_batches_are_homogeneous_and_complete() -> None:
    groups = torch.tensor([0, 1, 2] * 30 + [1] * 7)
    batches = epoch_batches(len(groups), 8, torch.Generator().manual_seed(1), groups)
    assert sorted(torch.cat(batches).tolist()) == list(range(len(groups)))
    for b in batches:
        assert len(torch.unique(groups[b])) == 1
    # batches of different groups are interleaved, not one group after the other
    order = [int(groups[b[0]]) for b in batches]
    assert order != sorted(order)


def test_train_fits_a_linear_map_and_reports_each_epoch() -> None:
    torch.manual_seed(0)
    x = torch.randn(512, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = nn.Linear(3, 1)
    seen = []

    def loss_fn(m: nn.Module, batch) -> torch.Tensor:
        return nn.functional.mse_loss(m(batch[0]), batch[1])

    history = train(
        model,
        trainable=model,
        loss_fn=loss_fn,
        train_data=(x, y),
        val_data=(x[:64], y[:64]),
        config=TrainConfig(epochs=30, lr=0.05),
        device=torch.device("cpu"),
        on_epoch=lambda e, m: seen.append(e),
    )
    assert seen == list(range(30))
    assert history[-1]["val_loss"] < 1e-3 < history[0]["val_loss"]


def test_train_config_validates() -> None:
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1)


def test_experts_leave_the_frozen_encoder_untouched() -> None:
    torch.manual_seed(0)
    base = UNetSR(UNetConfig("iso", 2))
    x, y = torch.randn(64, 1, 8, 8, 8), torch.randn(64, 1, 16, 16, 16)
    train(
        base,
        trainable=base,
        loss_fn=mse_loss,
        train_data=(x, y, torch.zeros(64, 6)),
        val_data=None,
        config=TrainConfig(epochs=1, batch_size=16),
        device=torch.device("cpu"),
    )
    before = {k: v.clone() for k, v in base.encoder.state_dict().items()}
    decoder_before = base.decoder.state_dict()["head.weight"].clone()
    routes = torch.tensor([0, 1] * 32)
    experts = train_experts(
        base.config,
        base.encoder,
        base.decoder,
        2,
        (x, y, routes),
        None,
        TrainConfig(epochs=1, batch_size=16),
        torch.device("cpu"),
    )
    after = base.encoder.state_dict()
    for key, value in before.items():  # weights and BN running statistics
        assert torch.equal(value, after[key]), key
    assert torch.equal(base.decoder.state_dict()["head.weight"], decoder_before)
    assert not torch.equal(experts[0].head.weight, experts[1].head.weight)
