"""Subject anatomies on the HR grid."""

from __future__ import annotations

import numpy as np
import pytest

from ssmoe.data.anatomy import (
    HR_SHAPE,
    AnatomyConfig,
    grid_affine,
    make_subject_anatomy,
    template_2p5mm,
)


def test_template_cached_and_2p5mm():
    maps, affine = template_2p5mm()
    assert template_2p5mm()[0] is maps  # cached per process
    np.testing.assert_allclose(np.diag(affine)[:3], 2.5)
    assert set(maps) == {"GM", "WM", "mask"}
    assert 0.0 <= maps["GM"].min() and maps["WM"].max() <= 1.0


def test_crop_grid_is_a_sub_grid_of_the_full_grid():
    full, crop = grid_affine(HR_SHAPE), grid_affine((32, 32, 24))
    offset = np.linalg.solve(full, crop[:, 3])[:3]
    np.testing.assert_allclose(offset, np.round(offset))
    assert (np.round(offset) % 2 == 0).all()  # LR voxels line up with the full grid's
    assert offset[2] + 24 == HR_SHAPE[2]  # keeps the top slices
    with pytest.raises(ValueError, match="grid shape"):
        grid_affine((100, 92, 56))


def test_fractions_and_fibres():
    a = make_subject_anatomy(AnatomyConfig(shape=(40, 40, 32)), np.random.default_rng(0))
    assert a.fractions.shape == (3, 40, 40, 32)
    total = a.fractions.sum(axis=0)
    np.testing.assert_allclose(total[a.mask], 1.0, atol=1e-5)
    assert (total[~a.mask] == 0).all()
    assert (a.fractions >= -1e-6).all()
    np.testing.assert_allclose(np.linalg.norm(a.fibre, axis=-1), 1.0, atol=1e-5)
    assert 0.85 < a.bias[a.mask].min() and a.bias[a.mask].max() < 1.15


def test_subjects_differ_and_seed_reproduces():
    cfg = AnatomyConfig(shape=(32, 32, 24))
    a = make_subject_anatomy(cfg, np.random.default_rng(1))
    b = make_subject_anatomy(cfg, np.random.default_rng(1))
    c = make_subject_anatomy(cfg, np.random.default_rng(2))
    np.testing.assert_array_equal(a.fractions, b.fractions)
    assert np.abs(a.fractions - c.fractions).mean() > 0.01
    assert a.tissues != c.tissues
