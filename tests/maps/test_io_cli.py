"""`ssmoe maps`: NIfTI in, one NIfTI per map out with the input geometry exactly; clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from ssmoe.cli import main
from ssmoe.data import open_dataset
from ssmoe.data.protocol import get_protocol
from ssmoe.maps import MAP_NAMES, fit_voxels, load_subject
from ssmoe.maps.io import GEOMETRY_FIELDS

from .zebra import random_voxels, signal

# An oblique affine with a non-trivial translation: any float32/quaternion round trip shows.
ANGLE = 0.3
OBLIQUE = np.array(
    [
        [2.5 * np.cos(ANGLE), -2.5 * np.sin(ANGLE), 0.0, -90.123456],
        [2.5 * np.sin(ANGLE), 2.5 * np.cos(ANGLE), 0.01, -100.98765],
        [0.0, 0.0, 2.5, -60.5],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def _run(*args: str):
    return CliRunner().invoke(main, ["maps", *args])


def _assert_same_geometry(path: Path, ref: nib.Nifti1Image) -> None:
    img = nib.load(path)
    assert np.array_equal(img.affine, ref.affine)
    for key in GEOMETRY_FIELDS:
        assert np.array_equal(img.header[key], ref.header[key]), key
    assert img.header.get_zooms() == ref.header.get_zooms()[:3]


def test_dataset_subject(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "maps"
    r = _run(str(tiny_dataset), "--subject", "cdmri0012", "--out", str(out))
    assert r.exit_code == 0, r.output
    subject = open_dataset(tiny_dataset)["cdmri0012"]
    hr = subject.hr_image
    mask = subject.mask
    written = {name: np.asarray(nib.load(out / f"{name}.nii.gz").dataobj) for name in MAP_NAMES}
    for name, data in written.items():
        _assert_same_geometry(out / f"{name}.nii.gz", hr)
        assert data.dtype == np.float32
        assert np.isnan(data[~mask]).all()
    # The file path changes no value: refit 300 of the mask's voxels from the 4D array.
    idx = np.flatnonzero(mask.ravel())[::37][:300]
    signals = np.asarray(hr.dataobj, dtype=np.float32).reshape(-1, subject.n_volumes)[idx]
    expected = fit_voxels(signals, subject.params).values
    for name in MAP_NAMES:
        np.testing.assert_allclose(written[name].ravel()[idx], expected[name], rtol=1e-4)
    summary = json.loads((out / "fit_summary.json").read_text())
    assert summary["voxels"] == int(mask.sum())
    assert summary["units"]["T1"] == "ms"
    assert 500 < np.nanmedian(written["T1"][mask]) < 3000  # brain tissue at 3 T


def test_subject_directory_or_dataset_root(tiny_dataset: Path) -> None:
    a = load_subject(tiny_dataset / "cdmri0011")
    b = load_subject(tiny_dataset)  # default: the first subject
    c = load_subject(tiny_dataset, "cdmri0011")
    assert a.name == b.name == c.name == "cdmri0011"
    np.testing.assert_array_equal(a.signals, b.signals)
    np.testing.assert_array_equal(a.mask, c.mask)
    assert a.signals.shape == (int(a.mask.sum()), 15)
    with pytest.raises(ValueError, match="is the subject directory 'cdmri0011', not 'x'"):
        load_subject(tiny_dataset / "cdmri0011", "x")


@pytest.fixture
def nifti_input(tmp_path: Path) -> dict[str, Path]:
    """Noise-free tiny-protocol 4D NIfTI (qform only, oblique), its table and a mask."""
    table = get_protocol("tiny")
    vox = random_voxels(6 * 5 * 4, np.random.default_rng(0))
    data = signal(vox, table).reshape(6, 5, 4, len(table)).astype(np.float32)
    mask = np.ones((6, 5, 4), dtype=np.uint8)
    mask[0] = 0
    data[0] = 0.0  # outside the brain, as in a masked release
    hdr = nib.Nifti1Header()
    hdr.set_qform(OBLIQUE, code=1)  # scanner-style: quaternion only, no sform
    hdr.set_sform(None, code=0)
    img = nib.Nifti1Image(data, None, header=hdr)
    paths = {"data": tmp_path / "dwi.nii", "params": tmp_path / "params.txt"}
    nib.save(img, paths["data"])
    np.savetxt(paths["params"], table, fmt="%.6f")
    paths["mask"] = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, OBLIQUE), paths["mask"])
    paths["t1"] = tmp_path / "t1.npy"
    np.save(paths["t1"], vox.t1.reshape(6, 5, 4))
    return paths


def test_nifti_file_keeps_qform_only_oblique_geometry(nifti_input, tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = nifti_input
    r = _run(
        str(p["data"]), "--params", str(p["params"]), "--mask", str(p["mask"]), "--out", str(out)
    )
    assert r.exit_code == 0, r.output
    ref = nib.load(p["data"])
    assert ref.header["sform_code"] == 0 and ref.header["qform_code"] == 1
    for name in MAP_NAMES:
        _assert_same_geometry(out / f"{name}.nii.gz", ref)
    t1 = np.asarray(nib.load(out / "T1.nii.gz").dataobj)
    truth = np.load(p["t1"])
    assert np.isnan(t1[0]).all()
    np.testing.assert_allclose(t1[1:], truth[1:], rtol=1e-3)
    # Existing maps are not overwritten without --force.
    r = _run(str(p["data"]), "--params", str(p["params"]), "--out", str(out))
    assert r.exit_code == 1 and "--force" in r.output
    r = _run(str(p["data"]), "--params", str(p["params"]), "--out", str(out), "--force")
    assert r.exit_code == 0, r.output  # default mask: voxels with any non-zero volume
    assert np.isnan(np.asarray(nib.load(out / "T1.nii.gz").dataobj)[0]).all()


def _write(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    return path


def test_bad_inputs_are_clean_errors(nifti_input, tiny_dataset: Path, tmp_path: Path) -> None:
    p = nifti_input
    out = str(tmp_path / "o")
    table = np.loadtxt(p["params"])
    short = tmp_path / "short.txt"
    np.savetxt(short, table[:-1])
    bad_row = tmp_path / "bad.txt"
    bad = table.copy()
    bad[3, 4] = -1.0
    np.savetxt(bad_row, bad)
    cases = [
        ([str(p["data"]), "--out", out], "--params"),
        (
            [str(p["data"]), "--params", str(short), "--out", out],
            "14 parameter rows but dwi.nii has 15 volumes",
        ),
        ([str(p["data"]), "--params", str(bad_row), "--out", out], "row 4 field TI = -1.0"),
        (
            [str(p["data"]), "--params", str(tmp_path / "none.txt"), "--out", out],
            "none.txt: no such file",
        ),
        (
            [
                str(p["data"]),
                "--params",
                str(p["params"]),
                "--mask",
                str(_write(tmp_path / "m.nii", np.ones((2, 2, 2), np.uint8))),
                "--out",
                out,
            ],
            "m.nii: mask shape (2, 2, 2) does not match the data grid (6, 5, 4)",
        ),
        (
            [
                str(_write(tmp_path / "v3.nii", np.ones((2, 2, 2), np.float32))),
                "--params",
                str(p["params"]),
                "--out",
                out,
            ],
            "v3.nii: expected a 4D image",
        ),
        (
            [str(tmp_path / "nothing.nii"), "--params", str(p["params"]), "--out", out],
            "no such file",
        ),
        ([str(tiny_dataset), "--subject", "cdmri0099", "--out", out], "no subject 'cdmri0099'"),
        ([str(tiny_dataset), "--params", str(p["params"]), "--out", out], "dataset directory"),
    ]
    for args, message in cases:
        r = _run(*args)
        assert r.exit_code != 0, (args, r.output)
        assert message in r.output, (message, r.output)
        assert "Traceback" not in r.output
