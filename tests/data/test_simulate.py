"""The simulated dataset on disk: layout, headers, HR/LR consistency, reproducibility."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from ssmoe.data import layout
from ssmoe.data.degrade import degrade, lr_affine
from ssmoe.data.nifti import VolumeStreamWriter
from ssmoe.data.protocol import get_protocol
from ssmoe.data.simulate import SimulationConfig, simulate_dataset


def test_layout(tiny_dataset):
    subjects = sorted(p.name for p in tiny_dataset.iterdir() if p.is_dir())
    assert subjects == ["cdmri0011", "cdmri0012", "cdmri0013"]
    for sid in subjects:
        names = {p.name for p in (tiny_dataset / sid).iterdir()}
        assert names == {
            "MB_Re_t_moco_registered_applytopup_resized.nii",
            "MB_Re_t_moco_registered_applytopup_anisotropic_voxcor.nii",
            "MB_Re_t_moco_registered_applytopup_isotropic_voxcor.nii",
            "brain_mask.nii.gz",
            "parameters.txt",
        }
    assert (tiny_dataset / layout.SIM_CONFIG).is_file()


def test_headers(tiny_dataset):
    d = tiny_dataset / "cdmri0011"
    hr = nib.load(d / layout.SIM_HR)
    assert hr.shape == (32, 32, 24, 15)
    expected = {
        layout.SIM_HR: ((32, 32, 24, 15), (2.5, 2.5, 2.5, 7.5)),
        layout.SIM_LR["aniso"]: ((32, 32, 12, 15), (2.5, 2.5, 5.0, 7.5)),
        layout.SIM_LR["iso"]: ((16, 16, 12, 15), (5.0, 5.0, 5.0, 7.5)),
    }
    for name, (shape, zooms) in expected.items():
        img = nib.load(d / name)
        assert img.shape == shape
        np.testing.assert_allclose(img.header.get_zooms(), zooms)
        np.testing.assert_allclose(img.get_qform(), img.affine)
        np.testing.assert_allclose(img.get_sform(), img.affine)
        assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
        assert img.header.get_xyzt_units() == ("mm", "sec")
    for task in ("aniso", "iso"):
        lr = nib.load(d / layout.SIM_LR[task])
        np.testing.assert_allclose(lr.affine, lr_affine(hr.affine, task), atol=1e-6)
    mask = nib.load(d / layout.SIM_MASK)
    assert mask.shape == (32, 32, 24)
    np.testing.assert_allclose(mask.affine, hr.affine)


def test_lr_files_are_degraded_hr_files(tiny_dataset):
    for sid in ("cdmri0011", "cdmri0013"):
        d = tiny_dataset / sid
        hr = np.asarray(nib.load(d / layout.SIM_HR).dataobj)
        for task in ("aniso", "iso"):
            lr = np.asarray(nib.load(d / layout.SIM_LR[task]).dataobj)
            np.testing.assert_array_equal(degrade(hr, task), lr)


def test_masked_quantitative_intensities(tiny_dataset):
    d = tiny_dataset / "cdmri0011"
    hr = np.asarray(nib.load(d / layout.SIM_HR).dataobj)
    mask = np.asarray(nib.load(d / layout.SIM_MASK).dataobj) > 0
    assert 0.3 < mask.mean() < 0.95  # the tiny crop holds brain and background
    assert (hr[~mask] == 0).all()
    assert (hr[mask] > 0).all()
    means = hr[mask].mean(axis=0)
    assert means.max() / means.min() > 5  # intensity scale differs by volume, no normalisation
    np.testing.assert_allclose(np.loadtxt(d / layout.SIM_PARAMS), get_protocol("tiny"), atol=1e-9)


def test_seed_reproducible_and_subject_independent_of_count(tiny_dataset, make_dataset):
    one = make_dataset(subjects=1, seed=0)
    other = make_dataset(subjects=1, seed=1)
    a = np.asarray(nib.load(tiny_dataset / "cdmri0011" / layout.SIM_HR).dataobj)
    b = np.asarray(nib.load(one / "cdmri0011" / layout.SIM_HR).dataobj)
    c = np.asarray(nib.load(other / "cdmri0011" / layout.SIM_HR).dataobj)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    s2 = np.asarray(nib.load(tiny_dataset / "cdmri0012" / layout.SIM_HR).dataobj)
    assert not np.array_equal(a, s2)


def test_refuses_to_overwrite(tiny_dataset, tmp_path):
    cfg = SimulationConfig(out=tiny_dataset, n_subjects=1, protocol="tiny", shape=(32, 32, 24))
    with pytest.raises(ValueError, match="already exists"):
        simulate_dataset(cfg)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"protocol": "huge"}, "unknown protocol"),
        ({"shape": (8, 32, 32)}, "shape"),
        ({"snr": 0}, "positive"),
        ({"n_subjects": 0}, "n_subjects"),
    ],
)
def test_config_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimulationConfig(out=tmp_path, **kwargs)


def test_stream_writer_round_trip_and_count(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((5, 4, 3, 6)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 4.0, 1.0])
    with VolumeStreamWriter(tmp_path / "x.nii", (5, 4, 3), 6, affine) as w:
        for v in range(6):
            w.write(data[..., v])
    img = nib.load(tmp_path / "x.nii")
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    np.testing.assert_allclose(img.affine, affine)
    w = VolumeStreamWriter(tmp_path / "y.nii", (5, 4, 3), 6, affine)
    w.write(data[..., 0])
    with pytest.raises(ValueError, match="1 of 6 volumes"):
        w.close()
