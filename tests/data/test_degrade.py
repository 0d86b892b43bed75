"""Block-average degradation and the exact HR <-> LR voxel correspondence."""

from __future__ import annotations

import numpy as np
import pytest

from ssmoe.data.degrade import (
    SCALES,
    degrade,
    hr_to_lr_index,
    lr_affine,
    lr_patch_shape,
    lr_shape,
    lr_to_hr_coord,
    lr_to_hr_index,
)


def test_scales_and_patch_shapes():
    assert SCALES == {"aniso": (1, 1, 2), "iso": (2, 2, 2)}
    assert lr_patch_shape("iso") == (8, 8, 8)
    assert lr_patch_shape("aniso") == (16, 16, 8)
    assert lr_shape((82, 92, 56), "aniso") == (82, 92, 28)
    assert lr_shape((82, 92, 56, 1344), "iso") == (41, 46, 28, 1344)


def test_block_average_by_hand():
    hr = np.arange(4 * 2 * 4, dtype=np.float32).reshape(4, 2, 4)
    iso = degrade(hr, "iso")
    assert iso.shape == (2, 1, 2) and iso.dtype == np.float32
    # LR voxel (0, 0, 0) averages hr[0:2, 0:2, 0:2] = {0, 1, 4, 5, 8, 9, 12, 13}
    assert iso[0, 0, 0] == pytest.approx(np.mean([0, 1, 4, 5, 8, 9, 12, 13]))
    aniso = degrade(hr, "aniso")
    assert aniso.shape == (4, 2, 2)
    assert aniso[1, 1, 1] == pytest.approx((hr[1, 1, 2] + hr[1, 1, 3]) / 2)


def test_4d_is_volume_by_volume_and_odd_sizes_drop_the_tail():
    rng = np.random.default_rng(0)
    hr = rng.random((5, 6, 7, 3)).astype(np.float32)
    lr = degrade(hr, "iso")
    assert lr.shape == (2, 3, 3, 3)
    for v in range(3):
        np.testing.assert_array_equal(lr[..., v], degrade(hr[..., v], "iso"))
    np.testing.assert_array_equal(degrade(hr[:4, :6, :6], "iso"), lr)


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'x4'"):
        degrade(np.zeros((4, 4, 4)), "x4")


@pytest.mark.parametrize("task", ["aniso", "iso"])
def test_lr_centre_is_mean_of_its_hr_centres(task):
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    hr_aff = np.eye(4)
    hr_aff[:3, :3] = q @ np.diag([2.5, 2.5, 2.5])
    hr_aff[:3, 3] = rng.normal(size=3) * 50
    la = lr_affine(hr_aff, task)
    s = np.asarray(SCALES[task])
    for j in [(0, 0, 0), (3, 1, 4), (7, 9, 2)]:
        block = np.stack(
            np.meshgrid(*[np.arange(s[a] * j[a], s[a] * j[a] + s[a]) for a in range(3)]), -1
        ).reshape(-1, 3)
        centres = block @ hr_aff[:3, :3].T + hr_aff[:3, 3]
        np.testing.assert_allclose(la[:3, :3] @ j + la[:3, 3], centres.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(la[:3, :3], axis=0), 2.5 * s)


def test_index_maps():
    hr = np.array([[0, 0, 0], [1, 1, 1], [5, 4, 3]])
    np.testing.assert_array_equal(hr_to_lr_index(hr, "iso"), [[0, 0, 0], [0, 0, 0], [2, 2, 1]])
    np.testing.assert_array_equal(hr_to_lr_index(hr, "aniso"), [[0, 0, 0], [1, 1, 0], [5, 4, 1]])
    np.testing.assert_array_equal(lr_to_hr_index([[2, 2, 1]], "iso"), [[4, 4, 2]])
    np.testing.assert_allclose(lr_to_hr_coord([[2, 2, 1]], "aniso"), [[2, 2, 2.5]])
