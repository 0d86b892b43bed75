"""The separable cubic baseline equals scipy's order-3 map_coordinates on the full grid."""

from __future__ import annotations

import numpy as np
import pytest

from ssmoe.data import open_dataset
from ssmoe.data.degrade import SCALES
from ssmoe.evaluation.interpolation import (
    cubic_spline_reference,
    cubic_spline_upsample,
    spline_matrix,
)
from ssmoe.models.unet import _spline_matrix


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).max() / np.abs(b).max())


@pytest.mark.parametrize("task", ["aniso", "iso"])
@pytest.mark.parametrize("lr_shape", [(8, 9, 6), (13, 7, 11), (5, 6, 1), (1, 2, 3)])
def test_equals_map_coordinates_on_random_volumes(task, lr_shape):
    rng = np.random.default_rng(sum(lr_shape))
    # a smooth part plus noise and a sharp edge: all scales of detail
    lr = rng.normal(size=lr_shape) + 5 * (np.arange(lr_shape[0]) > lr_shape[0] // 2)[:, None, None]
    lr = lr.astype(np.float32)
    scale = SCALES[task]
    ours, ref = cubic_spline_upsample(lr, scale), cubic_spline_reference(lr, scale)
    assert ours.dtype == np.float32 and ours.shape == tuple(
        n * s for n, s in zip(lr_shape, scale, strict=True)
    )
    assert rel_diff(ours, ref) <= 1e-5
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("task", ["aniso", "iso"])
def test_equals_map_coordinates_on_a_masked_volume(tiny_dataset, task):
    subject = open_dataset(tiny_dataset)["cdmri0012"]
    lr = subject.lr_volume(task, 4)
    ours = cubic_spline_upsample(lr, SCALES[task], subject.hr_shape)
    ref = cubic_spline_reference(lr, SCALES[task], subject.hr_shape)
    assert ours.shape == subject.hr_shape
    assert rel_diff(ours, ref) <= 1e-5


def test_hr_grid_other_than_scale_times_lr():
    """An explicit HR shape (cropped or extended grid) samples the same coordinates as scipy."""
    lr = np.random.default_rng(0).normal(size=(6, 7, 5)).astype(np.float32)
    for hr_shape in [(10, 14, 9), (13, 15, 12)]:
        ref = cubic_spline_reference(lr, (2, 2, 2), hr_shape)
        assert rel_diff(cubic_spline_upsample(lr, (2, 2, 2), hr_shape), ref) <= 1e-5


def test_spline_matrix_properties():
    np.testing.assert_allclose(spline_matrix(9, 9, 1), np.eye(9), atol=1e-12)  # knots
    m = spline_matrix(16, 8, 2)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)  # constants are reproduced
    # far from the (edge-replicated) ends a cubic spline reproduces a linear ramp: the boundary
    # effect decays by 2 - sqrt(3) ~ 0.27 per LR voxel
    ramp = np.arange(40.0)
    np.testing.assert_allclose(
        (spline_matrix(80, 40, 2) @ ramp)[30:50], (np.arange(30, 50) - 0.5) / 2, atol=1e-6
    )
    assert not m.flags.writeable
    with pytest.raises(ValueError, match="n_hr, n_lr, scale >= 1"):
        spline_matrix(4, 0, 2)


@pytest.mark.parametrize(("n_lr", "scale"), [(8, 2), (16, 1), (8, 1)])
def test_same_operator_as_the_unet_patch_base(n_lr, scale):
    """models.unet._spline_matrix (the residual U-Net's per-patch base) is spline_matrix of one
    patch: one 1-D operator serves the baseline and the model."""
    np.testing.assert_allclose(
        _spline_matrix(n_lr, scale), spline_matrix(n_lr * scale, n_lr, scale)
    )


def test_rejects_a_non_3d_volume():
    with pytest.raises(ValueError, match="must be 3D"):
        cubic_spline_upsample(np.zeros((4, 4)), (1, 1, 2))
