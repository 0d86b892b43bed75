"""Lazy reading, real-release names, and a clear error for every malformed input."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ssmoe.data import layout, open_dataset
from ssmoe.data.degrade import degrade
from ssmoe.data.protocol import get_protocol


@pytest.fixture
def broken(tiny_dataset, tmp_path) -> Path:
    """A writable copy of the tiny dataset, to break."""
    return Path(shutil.copytree(tiny_dataset, tmp_path / "copy"))


def test_subject_api(tiny_dataset):
    ds = open_dataset(tiny_dataset)
    assert ds.subjects == ["cdmri0011", "cdmri0012", "cdmri0013"]
    s = ds["cdmri0012"]
    assert s.n_volumes == 15 and s.hr_shape == (32, 32, 24)
    assert s.tasks == ("aniso", "iso")
    np.testing.assert_allclose(s.params, get_protocol("tiny"), atol=1e-9)
    assert s.mask.dtype == bool and s.mask.shape == (32, 32, 24)
    v = s.hr_volume(7)
    assert v.dtype == np.float32 and v.shape == (32, 32, 24)
    assert s.lr_volume("aniso", 7).shape == (32, 32, 12)
    assert s.lr_volume("iso", 7).shape == (16, 16, 12)
    np.testing.assert_array_equal(degrade(v, "iso"), s.lr_volume("iso", 7))
    np.testing.assert_allclose(np.diag(s.lr_affine("iso"))[:3], 5.0)
    with pytest.raises(KeyError, match="no subject 'cdmri0099'"):
        ds["cdmri0099"]


def test_reading_a_volume_does_not_load_the_4d_array(tiny_dataset):
    s = open_dataset(tiny_dataset)["cdmri0011"]
    s.hr_volume(3)
    s.lr_volume("iso", 3)
    assert nib.is_proxy(s.hr_image.dataobj)
    assert not s.hr_image.in_memory
    assert not s.lr_image("iso").in_memory


def test_release_names_and_hr_lr_subfolders(tiny_dataset, tmp_path):
    """The organisers' `.nii.gz` names, split into HR/ and LR/, with a shared parameters_new.txt."""
    src = tiny_dataset / "cdmri0011"
    dst = tmp_path / "release" / "cdmri0011"
    (dst / "HR").mkdir(parents=True)
    (dst / "LR").mkdir()
    for name, target in [
        (layout.SIM_HR, "HR/MB_Re_t_moco_registered_applytopup.nii.gz"),
        (layout.SIM_LR["aniso"], "LR/aniso.nii.gz"),
        (layout.SIM_LR["iso"], "LR/MB_Re_t_moco_registered_applytopup_isotropic_voxcor.nii.gz"),
    ]:
        nib.save(nib.load(src / name), dst / target)
    shutil.copy(src / layout.SIM_MASK, dst / "HR" / "brain_mask.nii.gz")
    shutil.copy(src / layout.SIM_PARAMS, dst.parent / "parameters_new.txt")
    s = open_dataset(dst.parent)["cdmri0011"]
    ref = open_dataset(tiny_dataset)["cdmri0011"]
    for v in (0, 14, 5):  # gzip: any order works, increasing order is linear
        np.testing.assert_array_equal(s.hr_volume(v), ref.hr_volume(v))
        np.testing.assert_array_equal(s.lr_volume("aniso", v), ref.lr_volume("aniso", v))
    np.testing.assert_array_equal(s.mask, ref.mask)
    np.testing.assert_array_equal(s.params, ref.params)


def _rewrite(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> None:
    """Overwrite a NIfTI file; `data` is copied first (it may be a memmap of that very file)."""
    data = np.array(data, copy=True)
    img = nib.load(path)
    nib.save(nib.Nifti1Image(data, img.affine if affine is None else affine, img.header), path)


def test_parameter_rows_differ_from_volumes(broken):
    p = broken / "cdmri0012" / "parameters.txt"
    p.write_text("".join(p.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(ValueError, match=r"parameters\.txt: 14 parameter rows but .* 15 volumes"):
        open_dataset(broken)


def test_wrong_column_count(broken):
    p = broken / "cdmri0011" / "parameters.txt"
    lines = p.read_text().splitlines()
    lines[3] = " ".join(lines[3].split()[:5])
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"parameters\.txt: line 4 has 5 columns, expected 6"):
        open_dataset(broken)


def test_lr_shape_mismatch(broken):
    path = broken / "cdmri0013" / layout.SIM_LR["iso"]
    data = np.asarray(nib.load(path).dataobj)[:-1]
    _rewrite(path, data)
    with pytest.raises(ValueError, match=r"isotropic_voxcor\.nii: shape \(15, 16, 12, 15\)"):
        open_dataset(broken)


def test_lr_affine_mismatch(broken):
    path = broken / "cdmri0011" / layout.SIM_LR["aniso"]
    img = nib.load(path)
    shifted = img.affine.copy()
    shifted[2, 3] += 2.5  # half an LR slice: the classic corner-vs-centre convention slip
    _rewrite(path, np.asarray(img.dataobj), shifted)
    with pytest.raises(ValueError, match=r"anisotropic_voxcor\.nii: affine does not match"):
        open_dataset(broken)
    open_dataset(broken, check_affine=False)  # an explicit opt-out for foreign conventions


def test_nan_voxels(broken):
    path = broken / "cdmri0012" / layout.SIM_HR
    data = np.asarray(nib.load(path).dataobj).copy()
    data[10, 10, 10, 4] = np.nan
    _rewrite(path, data)
    s = open_dataset(broken)["cdmri0012"]  # headers are fine
    s.hr_volume(3)
    with pytest.raises(ValueError, match=r"resized\.nii: volume 4 has 1 NaN/Inf voxels"):
        s.hr_volume(4)
    with pytest.raises(ValueError, match="volume 4 has 1 NaN/Inf"):
        open_dataset(broken).validate()


def test_inf_in_lr(broken):
    path = broken / "cdmri0011" / layout.SIM_LR["iso"]
    data = np.asarray(nib.load(path).dataobj).copy()
    data[0, 0, 0, 0] = np.inf
    _rewrite(path, data)
    with pytest.raises(ValueError, match=r"isotropic_voxcor\.nii: volume 0 has 1 NaN/Inf"):
        open_dataset(broken)["cdmri0011"].validate()


@pytest.mark.parametrize(
    "remove,match",
    [
        (layout.SIM_HR, "cdmri0012: missing HR file"),
        (layout.SIM_PARAMS, "cdmri0012: missing parameter table"),
    ],
)
def test_missing_files(broken, remove, match):
    (broken / "cdmri0012" / remove).unlink()
    with pytest.raises(ValueError, match=match):
        open_dataset(broken)


def test_missing_lr_files(broken):
    (broken / "cdmri0011" / layout.SIM_LR["iso"]).unlink()
    s = open_dataset(broken)["cdmri0011"]
    assert s.tasks == ("aniso",)
    with pytest.raises(ValueError, match="cdmri0011: missing iso LR file"):
        s.lr_volume("iso", 0)
    (broken / "cdmri0011" / layout.SIM_LR["aniso"]).unlink()
    with pytest.raises(ValueError, match="cdmri0011: missing LR files"):
        open_dataset(broken)


def test_missing_mask_falls_back_to_nonzero_hr(broken, tiny_dataset):
    (broken / "cdmri0011" / layout.SIM_MASK).unlink()
    s = open_dataset(broken)["cdmri0011"]
    ref = open_dataset(tiny_dataset)["cdmri0011"]
    np.testing.assert_array_equal(s.mask, ref.mask)  # the simulated HR is > 0 inside the mask


def test_empty_or_missing_root(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="no subject directories"):
        open_dataset(tmp_path)
