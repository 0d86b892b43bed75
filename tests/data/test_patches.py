"""Foreground rule, uniform reproducible sampling, LR-HR alignment, grid tiling."""

from __future__ import annotations

import numpy as np
import pytest

from ssmoe.data import open_dataset
from ssmoe.data.degrade import SCALES, degrade
from ssmoe.data.patches import (
    GridTiler,
    PatchIndex,
    extract_pairs,
    foreground_fraction,
    sample_index,
    sample_pairs,
    subject_origins,
    valid_origins,
)
from ssmoe.data.simulate import SimulationConfig, simulate_dataset


@pytest.fixture(scope="module")
def ds(tiny_dataset):
    return open_dataset(tiny_dataset)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """One subject on a 48x48x32 grid: wider than the top of the brain, so it has background
    patches (in the 32x32x24 tiny crop every 16^3 patch is > 50% brain)."""
    root = tmp_path_factory.mktemp("wide")
    cfg = SimulationConfig(out=root, n_subjects=1, protocol="tiny", shape=(48, 48, 32))
    simulate_dataset(cfg)
    return open_dataset(root)


def _candidates(shape, task):
    s = SCALES[task]
    axes = [np.arange(0, n - 16 + 1, k) for n, k in zip(shape, s, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


@pytest.mark.parametrize("task", ["aniso", "iso"])
def test_summed_area_table_matches_brute_force(wide, task):
    mask = wide["cdmri0011"].mask
    cand = _candidates(mask.shape, task)
    frac = foreground_fraction(mask, cand)
    expected = cand[frac > 0.5]
    got = valid_origins(mask, task)
    np.testing.assert_array_equal(got, expected)
    assert 0 < len(got) < len(cand)  # valid and invalid patches both occur
    assert (got % SCALES[task] == 0).all()


def test_exactly_half_foreground_is_rejected():
    mask = np.zeros((16, 16, 16), dtype=bool)
    mask[:, :, :8] = True  # 2048 of 4096 voxels: exactly 50%
    assert len(valid_origins(mask, "iso")) == 0
    mask[0, 0, 8] = True  # 2049 voxels
    np.testing.assert_array_equal(valid_origins(mask, "iso"), [[0, 0, 0]])
    assert len(valid_origins(mask, "iso", min_foreground=0.6)) == 0


@pytest.mark.parametrize("task", ["aniso", "iso"])
def test_every_sampled_patch_is_foreground(ds, wide, task):
    for data in (ds, wide):
        index = sample_index(data, data.subjects, task, 500, seed=0)
        for sid in data.subjects:
            sel = index.subject == sid
            assert (foreground_fraction(data[sid].mask, index.origin[sel]) > 0.5).all()
        assert set(index.subject) == set(data.subjects)
        assert (index.volume >= 0).all() and (index.volume < 15).all()
    # On the wide grid, an unfiltered draw would hit background patches.
    mask = wide["cdmri0011"].mask
    assert (foreground_fraction(mask, _candidates(mask.shape, task)) <= 0.5).any()


def test_seed_reproducibility(ds):
    a = sample_index(ds, ds.subjects[:2], "iso", 300, seed=3)
    b = sample_index(ds, ds.subjects[:2], "iso", 300, seed=3)
    c = sample_index(ds, ds.subjects[:2], "iso", 300, seed=4)
    pd_a, pd_b = a.to_frame(), b.to_frame()
    assert pd_a.equals(pd_b)
    assert not pd_a.equals(c.to_frame())


def test_uniform_over_subject_volume_origin(ds):
    subjects = ds.subjects
    counts = np.array([len(subject_origins(ds[s], "iso")) * 15 for s in subjects])
    total = counts.sum()
    index = sample_index(ds, subjects, "iso", total, seed=0)  # all triples, without replacement
    frame = index.to_frame()
    assert not frame.duplicated().any()
    assert [int((index.subject == s).sum()) for s in subjects] == counts.tolist()
    with pytest.raises(ValueError, match="distinct pairs"):
        sample_index(ds, subjects, "iso", total + 1, seed=0, replace=False)
    more = sample_index(ds, subjects, "iso", total + 1, seed=0)  # switches to replacement
    assert len(more) == total + 1


@pytest.mark.parametrize("task", ["aniso", "iso"])
def test_pairs_cover_the_same_field_of_view(ds, task):
    pairs = sample_pairs(ds, ds.subjects, task, 64, seed=1)
    s = np.asarray(SCALES[task])
    lr_p = np.asarray(pairs.lr.shape[2:])
    assert pairs.hr.shape == (64, 1, 16, 16, 16) and tuple(lr_p) == tuple(16 // s)
    for i in range(len(pairs)):
        sub = ds[pairs.index.subject[i]]
        o = pairs.index.origin[i]
        # Same world-space box: centres and extents agree.
        hr_c = sub.hr_affine @ np.append(o + 7.5, 1)
        lr_c = sub.lr_affine(task) @ np.append(o // s + (lr_p - 1) / 2, 1)
        np.testing.assert_allclose(hr_c, lr_c, atol=1e-6)
        # And the LR patch is exactly the degraded HR patch.
        np.testing.assert_array_equal(degrade(pairs.hr[i, 0], task), pairs.lr[i, 0])
        v = pairs.index.volume[i]
        x, y, z = o
        np.testing.assert_array_equal(
            pairs.hr[i, 0], sub.hr_volume(v)[x : x + 16, y : y + 16, z : z + 16]
        )
        np.testing.assert_allclose(pairs.acq[i], sub.params[v], rtol=1e-6)


def test_index_frame_round_trip_and_subsets(ds):
    index = sample_index(ds, ds.subjects, "aniso", 50, seed=0)
    back = PatchIndex.from_frame(index.to_frame())
    np.testing.assert_array_equal(back.origin, index.origin)
    np.testing.assert_array_equal(back.subject, index.subject)
    assert list(index.to_frame().columns) == ["subject", "volume", "x", "y", "z"]
    sub = index[index.volume == index.volume[0]]
    pairs = extract_pairs(ds, sub, "aniso")
    assert len(pairs) == len(sub) and pairs.lr.shape[1:] == (1, 16, 16, 8)


def test_misaligned_origin_is_rejected(ds):
    bad = PatchIndex(np.array(["cdmri0011"]), np.array([0]), np.array([[1, 0, 0]]))
    with pytest.raises(ValueError, match="multiples of the iso scale"):
        extract_pairs(ds, bad, "iso")


@pytest.mark.parametrize("task,stride", [("iso", 8), ("aniso", 6), ("iso", 16)])
def test_grid_tiler_round_trip(ds, task, stride):
    sub = ds["cdmri0012"]
    tiler = GridTiler(sub.hr_shape, task, stride=stride)
    cover = np.zeros(sub.hr_shape, dtype=int)
    for x, y, z in tiler.origins:
        cover[x : x + 16, y : y + 16, z : z + 16] += 1
    assert (cover > 0).all()
    assert (tiler.origins.max(axis=0) == np.asarray(sub.hr_shape) - 16).all()  # flush last tile
    hr = sub.hr_volume(2)
    patches = tiler.hr_patches(hr)
    np.testing.assert_allclose(tiler.assemble(patches), hr, rtol=1e-6)
    lr = tiler.lr_patches(sub.lr_volume(task, 2))
    np.testing.assert_array_equal(degrade(np.moveaxis(patches[:, 0], 0, -1), task),
                                  np.moveaxis(lr[:, 0], 0, -1))  # fmt: skip


def test_grid_tiler_errors():
    with pytest.raises(ValueError, match="stride 3"):
        GridTiler((32, 32, 24), "iso", stride=3)
    with pytest.raises(ValueError, match="multiple of the iso scale"):
        GridTiler((33, 32, 24), "iso")
    with pytest.raises(ValueError, match="expected"):
        GridTiler((32, 32, 24), "iso").assemble(np.zeros((2, 1, 16, 16, 16)))
