"""Volume-by-volume reading of gzipped 4D NIfTI: correct values, one gzip stream per image."""

from __future__ import annotations

import gzip
import shutil

import nibabel as nib
import nibabel.openers
import numpy as np
import pytest

from ssmoe.data import open_dataset
from ssmoe.data.reader import load_nifti


@pytest.fixture
def gz4d(tmp_path):
    """A (7, 6, 5, 9) int16 .nii.gz with a scale factor, and its float32 values."""
    rng = np.random.default_rng(0)
    data = rng.integers(-500, 500, size=(7, 6, 5, 9)).astype(np.int16)
    image = nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0]))
    image.header.set_slope_inter(0.5, 10.0)
    path = tmp_path / "x.nii.gz"
    nib.save(image, str(path))
    return path, data.astype(np.float32) * 0.5 + 10.0


@pytest.fixture
def opens(monkeypatch):
    """Counts the file openers nibabel's array proxies create."""
    count = {"n": 0}
    base = nibabel.openers.ImageOpener

    class Counting(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            count["n"] += 1
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(nibabel.openers, "ImageOpener", Counting)
    return count


def test_volumes_in_any_order_have_the_right_values(gz4d):
    path, expected = gz4d
    image = load_nifti(path)
    for v in [0, 1, 2, 8, 3, 3, 0, 7]:  # forwards, backwards, repeated
        np.testing.assert_array_equal(np.asarray(image.dataobj[..., v]), expected[..., v])


def test_in_order_reading_keeps_one_stream(gz4d, opens):
    """load_nifti: one gzip stream for the whole pass (linear in V); nibabel's default opens a
    new stream - decompressing from the start of the file - for every volume."""
    path, expected = gz4d
    image = load_nifti(path)
    for v in range(expected.shape[3]):
        np.testing.assert_array_equal(np.asarray(image.dataobj[..., v]), expected[..., v])
    assert opens["n"] == 1
    opens["n"] = 0
    default = nib.load(str(path))
    for v in range(expected.shape[3]):
        np.asarray(default.dataobj[..., v])
    assert opens["n"] == expected.shape[3]


def test_subject_reads_gzipped_files_like_uncompressed_ones(tiny_dataset, tmp_path, opens):
    src = tiny_dataset / "cdmri0011"
    dst = tmp_path / "gz" / "cdmri0011"
    shutil.copytree(src, dst)
    for nii in dst.glob("*.nii"):
        with open(nii, "rb") as f, gzip.open(f"{nii}.gz", "wb") as g:
            shutil.copyfileobj(f, g)
        nii.unlink()
    plain, zipped = open_dataset(tiny_dataset)["cdmri0011"], open_dataset(dst.parent)["cdmri0011"]
    assert zipped.hr_path.name.endswith(".nii.gz")
    hr = [plain.hr_volume(v) for v in range(plain.n_volumes)]
    lr = [plain.lr_volume("iso", v) for v in range(plain.n_volumes)]
    opens["n"] = 0
    for v in range(zipped.n_volumes):  # the evaluation's order: HR and LR of each volume
        np.testing.assert_array_equal(zipped.hr_volume(v), hr[v])
        np.testing.assert_array_equal(zipped.lr_volume("iso", v), lr[v])
    assert opens["n"] == 2  # one stream per file (HR, iso LR) for the whole pass
