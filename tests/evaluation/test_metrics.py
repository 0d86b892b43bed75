"""Per-volume MSE, statistics, Wilcoxon tests, cubic interpolation and tiled reconstruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from ssmoe.data.degrade import SCALES, degrade
from ssmoe.data.patches import GridTiler
from ssmoe.evaluation.interpolation import cubic_spline_upsample
from ssmoe.evaluation.metrics import summarize, volume_mse, wilcoxon_table
from ssmoe.evaluation.reconstruct import reconstruct


def test_volume_mse_is_over_the_mask_only() -> None:
    hr = np.zeros((4, 4, 4), np.float32)
    pred = np.zeros_like(hr)
    pred[0, 0, 0] = 3.0  # inside the mask
    pred[3, 3, 3] = 100.0  # outside: ignored
    mask = np.zeros(hr.shape, bool)
    mask[:2, :2, :2] = True
    assert volume_mse(hr, pred, mask) == pytest.approx(9.0 / 8)
    with pytest.raises(ValueError, match="shape"):
        volume_mse(hr, pred[:3], mask)


def test_summary_statistics() -> None:
    v = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    s = summarize(v)
    assert s["average"] == 22.0
    assert s["variance"] == pytest.approx(np.var(v, ddof=1))
    assert (s["min"], s["q1"], s["median"], s["q3"], s["max"]) == (1.0, 2.0, 3.0, 4.0, 100.0)


def test_wilcoxon_matches_scipy_and_orders_pairs() -> None:
    rng = np.random.default_rng(0)
    a = rng.lognormal(size=50)
    b = a * 1.2 + 0.01
    c = a.copy()
    table = wilcoxon_table({"a": a, "b": b, "c": c})
    assert list(zip(table.method_a, table.method_b, strict=True)) == [
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
    ]
    expected = stats.wilcoxon(a, b, alternative="two-sided").pvalue
    assert table.p_value[0] == pytest.approx(expected)
    assert table.p_value[0] < 1e-6 and table.median_diff[0] < 0
    assert table.p_value[1] == 1.0  # identical predictions


@pytest.mark.parametrize("task", ["aniso", "iso"])
def test_cubic_spline_is_exact_for_linear_ramps(task: str) -> None:
    scale = SCALES[task]
    x, y, z = np.meshgrid(np.arange(32.0), np.arange(32.0), np.arange(32.0), indexing="ij")
    hr = (2 * x + 3 * y - z + 50).astype(np.float32)
    up = cubic_spline_upsample(degrade(hr, task), scale)
    inner = tuple(slice(10, -10) for _ in range(3))  # away from the edges (spline prefilter)
    # a half-voxel misalignment would be off by ~1 (the ramp slope); edges add < 0.01
    assert np.allclose(up[inner], hr[inner], atol=1e-2)


class _NearestUp(torch.nn.Module):
    """A 'model' that upsamples by nearest neighbour: its reconstruction is known exactly."""

    task = "aniso"

    def forward(self, x: torch.Tensor, acq: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(2, dim=4)


@pytest.mark.parametrize("stride", [16, 8])
def test_reconstruct_reassembles_tiles_and_skips_background(stride: int) -> None:
    rng = np.random.default_rng(0)
    lr = rng.random((24, 32, 20)).astype(np.float32) + 1
    lr[:, :, :4] = 0  # background slab
    tiler = GridTiler((24, 32, 40), "aniso", stride=stride)
    rec = reconstruct(_NearestUp(), lr, np.zeros(6), tiler)
    assert np.allclose(rec.volume, np.repeat(lr, 2, axis=2))
    assert rec.routes is None and rec.tiles.shape == (len(tiler), 1, 16, 16, 16)


def test_figure_volume_is_the_papers_acquisition_in_any_protocol() -> None:
    from ssmoe.data.protocol import get_protocol
    from ssmoe.phases.evaluate import figure_volume

    full, quick = get_protocol("full"), get_protocol("quick")
    assert figure_volume(full, 118) == 118
    assert np.array_equal(quick[figure_volume(quick, 118)], full[118])
