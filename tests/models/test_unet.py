"""SR U-Net backbone: the paper's size, shapes per task, the encoder/decoder split, MoE routing."""

from __future__ import annotations

import pytest
import torch

from ssmoe.models.gater import AcquisitionNorm, Gater, GaterConfig
from ssmoe.models.moe import HardMoE, SSMoE, UNetSR, expert_from
from ssmoe.models.unet import LR_PATCH, UNetConfig, count_weights, glorot_normal_


def test_paper_width_iso_has_8_9_million_weights() -> None:
    model = UNetSR(UNetConfig("iso", 64))
    assert count_weights(model) == pytest.approx(8.9e6, rel=0.05)
    # phase-three experts retrain the decoder: about 2.2 M weights each
    assert count_weights(model.decoder) == pytest.approx(2.2e6, rel=0.05)


@pytest.mark.parametrize("task", ["iso", "aniso"])
def test_shapes_and_split(task: str) -> None:
    model = UNetSR(UNetConfig(task, 4)).eval()
    x = torch.randn(3, 1, *LR_PATCH[task])
    skip, bottom = model.encoder(x)
    assert skip.shape == (3, 8, *LR_PATCH[task])  # 2w channels at LR size
    assert bottom.shape[1] == 16  # 4w channels at the coarsest level
    assert model.features(x).shape == (3, 16)  # E^O = GAP of the last activation
    y = model(x)
    assert y.shape == (3, 1, 16, 16, 16)
    assert torch.equal(y, model.decoder(skip, bottom))


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="task"):
        UNetConfig("2d", 8)
    with pytest.raises(ValueError, match="width"):
        UNetConfig("iso", 3)
    with pytest.raises(ValueError, match="k"):
        GaterConfig(in_features=8, k=1)


def test_glorot_normal_zero_bias_and_variance() -> None:
    model = UNetSR(UNetConfig("iso", 16))
    glorot_normal_(model)
    conv = model.encoder.block2.main[0][0]
    fan_in = conv.in_channels * 27
    fan_out = conv.out_channels * 27
    assert torch.all(conv.bias == 0)
    assert conv.weight.std().item() == pytest.approx((2 / (fan_in + fan_out)) ** 0.5, rel=0.1)


def test_ssmoe_routes_each_patch_to_its_expert() -> None:
    torch.manual_seed(0)
    base = UNetSR(UNetConfig("iso", 4)).eval()
    experts = [expert_from(base.decoder) for _ in range(2)]
    with torch.no_grad():  # make expert 1 distinguishable: a constant offset on its head
        experts[1].head.bias += 100.0
    params = torch.randn(20, 6)
    gater = Gater(GaterConfig(in_features=16, k=2))
    model = SSMoE(
        base.config, base.encoder, gater, AcquisitionNorm.from_table(params), experts
    ).eval()
    x, acq = torch.randn(8, 1, 8, 8, 8), params[:8]
    with torch.no_grad():
        y, routes = model.forward_with_routes(x, acq)
        assert torch.equal(routes, model.route(x, acq))
        plain = base(x)
    for i, r in enumerate(routes.tolist()):
        expected = plain[i] + (100.0 if r == 1 else 0.0)
        assert torch.allclose(y[i], expected, atol=1e-3)


def test_hardmoe_nearest_centroid() -> None:
    base = UNetSR(UNetConfig("iso", 4)).eval()
    x = torch.randn(6, 1, 8, 8, 8)
    with torch.no_grad():
        f = base.features(x)
    centroids = torch.stack([f[0], f[1]])
    model = HardMoE(
        base.config,
        base.encoder,
        centroids,
        torch.zeros(16),
        torch.ones(16),
        [expert_from(base.decoder) for _ in range(2)],
    ).eval()
    with torch.no_grad():
        routes = model.route(x)
    assert routes[0] == 0 and routes[1] == 1
    assert torch.equal(routes, torch.cdist(f, centroids).argmin(1))


def test_acquisition_norm_z_scores_and_survives_constant_columns() -> None:
    table = torch.tensor([[1.0, 0, 0, 0, 20, 80], [0, 1.0, 0, 1000, 4000, 80]])
    norm = AcquisitionNorm.from_table(table)
    z = norm(table)
    assert torch.isfinite(z).all()
    assert torch.allclose(z[:, 3], torch.tensor([-1.0, 1.0]))
    assert torch.all(z[:, 5] == 0)  # constant TE maps to 0, not NaN


@pytest.mark.parametrize("task", ["iso", "aniso"])
def test_residual_model_is_interpolation_plus_decoder(task: str) -> None:
    from ssmoe.models.unet import base_upsample

    model = UNetSR(UNetConfig(task, 4, residual=True)).eval()
    plain = UNetSR(UNetConfig(task, 4, residual=False)).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.rand(2, 1, *LR_PATCH[task]) * 10
    with torch.no_grad():
        assert torch.allclose(model(x), plain(x) + base_upsample(model.config, x), atol=1e-5)
        torch.nn.init.zeros_(model.decoder.head.weight)
        torch.nn.init.zeros_(model.decoder.head.bias)
        assert torch.allclose(model(x), base_upsample(model.config, x))  # a zero decoder


@pytest.mark.parametrize("task", ["iso", "aniso"])
def test_residual_base_is_the_cubic_spline_baseline_on_a_patch(task: str) -> None:
    import numpy as np

    from ssmoe.data.degrade import SCALES
    from ssmoe.evaluation.interpolation import cubic_spline_upsample
    from ssmoe.models.unet import base_upsample

    lr = np.random.default_rng(0).random(LR_PATCH[task]).astype(np.float32)
    ours = base_upsample(UNetConfig(task, 4), torch.from_numpy(lr)[None, None])[0, 0].numpy()
    assert np.abs(ours - cubic_spline_upsample(lr, SCALES[task])).max() < 1e-5
