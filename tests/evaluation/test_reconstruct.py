"""Whole-volume reconstruction equals the direct per-tile computation (and MONAI's sliding
window where MONAI is installed); bf16 stays close to fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssmoe.data import open_dataset
from ssmoe.data.patches import GridTiler
from ssmoe.evaluation.reconstruct import reconstruct
from ssmoe.models.gater import AcquisitionNorm, Gater, GaterConfig
from ssmoe.models.moe import SSMoE, UNetSR
from ssmoe.models.unet import Decoder, UNetConfig, global_average_pool


def models(task: str, lr_tiles: np.ndarray) -> dict[str, torch.nn.Module]:
    """A residual U-Net and a 3-expert SS-MoE on its encoder, random weights, eval mode; the
    gater routes the non-empty ``lr_tiles`` to all three experts (by tertiles of their mean
    feature)."""
    torch.manual_seed(0)
    config = UNetConfig(task, width=4, residual=True)
    unet = UNetSR(config).eval()
    lr_tiles = lr_tiles[lr_tiles.reshape(len(lr_tiles), -1).any(axis=1)]
    with torch.no_grad():
        f = global_average_pool(unet.encoder(torch.from_numpy(lr_tiles))[1]).mean(1).numpy()
    t1, t2 = np.quantile(f, [1 / 3, 2 / 3])
    gater = Gater(GaterConfig(in_features=16, k=3, hidden=(), dropout=0.0))
    with torch.no_grad():  # logit_k = k * mean(f) - (t1 + ... + tk): argmax = thresholds below
        gater.net[-1].weight.zero_()
        gater.net[-1].weight[:, :16] = torch.arange(3.0)[:, None] / 16
        gater.net[-1].bias.copy_(-torch.tensor([0.0, t1, t1 + t2]))
    norm = AcquisitionNorm(torch.zeros(6), torch.ones(6))
    experts = [Decoder(config) for _ in range(3)]
    for i, e in enumerate(experts):  # distinct experts, so a wrong route changes the output
        torch.nn.init.constant_(e.head.bias, float(i))
    return {"unet": unet, "ssmoe": SSMoE(config, unet.encoder, gater, norm, experts).eval()}


def direct(model, lr, acq, tiler):
    """The non-empty tiles through the model in one batch; each voxel the average of the tiles
    covering it (float64, one loop over tiles)."""
    tiles = tiler.lr_patches(lr)
    keep = np.flatnonzero(tiles.reshape(len(tiles), -1).any(axis=1))
    x = torch.from_numpy(tiles[keep])
    a = torch.as_tensor(acq, dtype=torch.float32).reshape(1, 6).expand(len(keep), -1)
    with torch.no_grad():
        hr = np.zeros((len(tiles), 16, 16, 16))
        hr[keep] = model(x, a)[:, 0].numpy()
        routes = np.full(len(tiles), -1)
        if hasattr(model, "route"):
            routes[keep] = model.route(x, a).numpy()
    out, count = np.zeros(tiler.hr_shape), np.zeros(tiler.hr_shape)
    for (i, j, k), t in zip(tiler.origins, hr, strict=True):
        out[i : i + 16, j : j + 16, k : k + 16] += t
        count[i : i + 16, j : j + 16, k : k + 16] += 1
    return out / count, routes


def with_background(lr: np.ndarray, tiler: GridTiler) -> np.ndarray:
    """The LR volume with the x-planes of its first tile row zeroed: those tiles are empty."""
    lr = lr.copy()
    lr[: tiler.lr_patch[0]] = 0
    return lr


@pytest.fixture(scope="module")
def subject(tiny_dataset):
    return open_dataset(tiny_dataset)["cdmri0013"]


@pytest.mark.parametrize(("task", "stride"), [("aniso", 8), ("iso", 6)])
def test_equals_the_direct_per_tile_computation(subject, task, stride):
    tiler = GridTiler(subject.hr_shape, task, stride=stride)
    lr, acq = with_background(subject.lr_volume(task, 6), tiler), subject.params[6]
    for name, model in models(task, tiler.lr_patches(lr)).items():
        rec = reconstruct(model, lr, acq, tiler, batch_size=16)  # several batches
        expected, routes = direct(model, lr, acq, tiler)
        assert rec.volume.dtype == np.float32 and rec.volume.shape == subject.hr_shape
        np.testing.assert_allclose(rec.volume, expected, rtol=1e-5, atol=1e-5)
        empty = ~tiler.lr_patches(lr).reshape(len(tiler), -1).any(axis=1)
        assert not rec.tiles[empty].any()
        if name == "ssmoe":
            assert rec.routes is not None
            np.testing.assert_array_equal(rec.routes, routes)
            assert (rec.routes[empty] == -1).all() and set(routes) == {-1, 0, 1, 2}
        else:
            assert rec.routes is None


def test_empty_tiles_are_skipped(subject):
    """A masked volume has empty tiles (skipped, zeros); an all-zero volume runs no tile."""
    tiler = GridTiler(subject.hr_shape, "iso", stride=8)
    lr = with_background(subject.lr_volume("iso", 2), tiler)
    model = models("iso", tiler.lr_patches(lr))["ssmoe"]
    rec = reconstruct(model, lr, subject.params[2], tiler)
    empty = ~tiler.lr_patches(lr).reshape(len(tiler), -1).any(axis=1)
    assert 0 < empty.sum() < len(tiler)
    zero = reconstruct(model, np.zeros_like(lr), subject.params[2], tiler)
    assert not zero.volume.any() and (zero.routes == -1).all()
    assert rec.volume.any()


def test_bf16_is_close_to_fp32_and_returns_float32(subject):
    tiler = GridTiler(subject.hr_shape, "aniso", stride=16)
    lr, acq = subject.lr_volume("aniso", 9), subject.params[9]
    model = models("aniso", tiler.lr_patches(lr))["unet"]
    ref = reconstruct(model, lr, acq, tiler)
    low = reconstruct(model, lr, acq, tiler, dtype=torch.bfloat16)
    assert low.volume.dtype == np.float32 and low.tiles.dtype == np.float32
    err = np.abs(low.volume - ref.volume).max() / np.abs(ref.volume).max()
    assert 0 < err < 0.02  # bf16 keeps 8 mantissa bits: close, not equal


@pytest.mark.parametrize(("task", "stride"), [("aniso", 8), ("iso", 16)])
def test_equals_monai_sliding_window(subject, task, stride):
    """Where every tile is non-empty, the volume equals MONAI's sliding-window inference with the
    LR patch as window and a zoomed (HR) output, constant blending."""
    inferers = pytest.importorskip("monai.inferers")
    tiler = GridTiler(subject.hr_shape, task, stride=stride)
    lr = subject.lr_volume(task, 3) + 1.0  # no empty tile
    acq = subject.params[3]
    a = torch.as_tensor(acq, dtype=torch.float32).reshape(1, 6)
    for model in models(task, tiler.lr_patches(lr)).values():
        with torch.no_grad():
            monai = inferers.sliding_window_inference(
                torch.from_numpy(lr)[None, None],
                roi_size=tiler.lr_patch,
                sw_batch_size=7,
                predictor=lambda w, m=model: m(w, a.expand(len(w), -1)),
                overlap=1 - stride / 16,
                mode="constant",
            )[0, 0].numpy()
        ours = reconstruct(model, lr, acq, tiler).volume
        assert np.abs(ours - monai).max() <= 1e-5
