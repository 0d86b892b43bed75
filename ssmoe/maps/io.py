"""Inputs and outputs of `ssmoe maps`: a 4D NIfTI (+ table, mask) or a dataset subject in,
one NIfTI per map out with the input's geometry (qform and sform copied bit for bit).

Volumes are read one at a time and only the mask's voxels are kept, so memory is
`voxels x volumes x 4 bytes` (0.5 GB for a full-protocol subject), never the whole 4D array.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ssmoe.data import layout
from ssmoe.data.reader import Subject, open_dataset, read_params
from ssmoe.maps.design import validate_params
from ssmoe.maps.fit import FitConfig, MapFit, fit_masked

MAP_UNITS: dict[str, str] = {
    "PD": "apparent proton density PD*exp(-TEref/T2), input intensity units",
    "T1": "ms",
    "T2star": "ms",
    "MD": "mm^2/s",
    "FA": "1",
    "AD": "mm^2/s",
    "RD": "mm^2/s",
    "residual": "RMS fit residual, input intensity units",
}
SUMMARY_NAME = "fit_summary.json"


@dataclass
class MapSource:
    """Masked signals of one acquisition: `signals (N, V)` float32 of the True voxels of
    `mask (X, Y, Z)` (C order), `params (V, 6)`, and the 4D header whose geometry the maps get."""

    signals: np.ndarray
    mask: np.ndarray
    params: np.ndarray
    header: nib.Nifti1Header
    affine: np.ndarray
    name: str


def _load_image(path: Path) -> nib.Nifti1Image:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        img = nib.load(str(path), keep_file_open=True) if path.suffix == ".gz" else nib.load(path)
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise ValueError(f"{path}: not a readable NIfTI image ({exc})") from None
    if not isinstance(img, nib.Nifti1Image):
        raise ValueError(f"{path}: expected a NIfTI-1 image, got {type(img).__name__}")
    return img


def read_mask(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """`(X, Y, Z)` bool mask from a NIfTI file (a trailing singleton 4th axis is dropped)."""
    data = np.asarray(_load_image(path).dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.shape != tuple(shape):
        raise ValueError(f"{path}: mask shape {data.shape} does not match the data grid {shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: mask has NaN/Inf voxels")
    mask = data > 0
    if not mask.any():
        raise ValueError(f"{path}: mask is empty (no voxel > 0)")
    return mask


def read_masked(img: nib.Nifti1Image, mask: np.ndarray) -> np.ndarray:
    """`(N, V)` float32 signals of the mask's voxels, reading one volume at a time."""
    n_vol = img.shape[3]
    out = np.empty((int(mask.sum()), n_vol), dtype=np.float32)
    for v in range(n_vol):
        out[:, v] = np.asarray(img.dataobj[..., v], dtype=np.float32)[mask]
    return out


def _check_4d(img: nib.Nifti1Image, path: Path, params: np.ndarray, params_path: Path) -> None:
    if len(img.shape) != 4:
        raise ValueError(f"{path}: expected a 4D image (X, Y, Z, volumes), got shape {img.shape}")
    if len(params) != img.shape[3]:
        raise ValueError(
            f"{params_path}: {len(params)} parameter rows but {path.name} has {img.shape[3]} volumes"
        )


def load_nifti(data_path: Path, params_path: Path, mask_path: Path | None = None) -> MapSource:
    """A 4D NIfTI with its `gx gy gz b TI TE` table and mask (default: voxels with any
    non-zero volume, which reads the data twice)."""
    data_path, params_path = Path(data_path), Path(params_path)
    img = _load_image(data_path)
    if not params_path.is_file():
        raise FileNotFoundError(f"{params_path}: no such file")
    params = validate_params(read_params(params_path), source=str(params_path))
    _check_4d(img, data_path, params, params_path)
    shape = tuple(int(s) for s in img.shape[:3])
    if mask_path is not None:
        mask = read_mask(Path(mask_path), shape)  # type: ignore[arg-type]
    else:
        mask = np.zeros(shape, dtype=bool)
        for v in range(img.shape[3]):
            mask |= np.asarray(img.dataobj[..., v]) != 0
        if not mask.any():
            raise ValueError(f"{data_path}: every voxel is zero in every volume")
    return MapSource(
        read_masked(img, mask), mask, params, img.header, np.asarray(img.affine), data_path.name
    )


def load_subject(root: Path, subject: str | None = None) -> MapSource:
    """The HR data of a dataset subject: `root` is a dataset directory (then `subject`, default
    the first) or a subject directory itself."""
    root = Path(root)
    if layout.find_nifti(root, layout.HR_STEMS) is not None:
        if subject is not None and subject != root.name:
            raise ValueError(f"{root}: is the subject directory {root.name!r}, not {subject!r}")
        subj = Subject(root)
    else:
        dataset = open_dataset(root)
        subj = dataset[subject if subject is not None else dataset.subjects[0]]
    params = validate_params(subj.params, source=str(subj.params_path))
    img = subj.hr_image
    return MapSource(
        read_masked(img, subj.mask), subj.mask, params, img.header, subj.hr_affine, subj.id
    )


def fit_source(source: MapSource, config: FitConfig | None = None) -> MapFit:
    """Fit the maps of a loaded source (see `fit.fit_masked`)."""
    return fit_masked(source.signals, source.mask, source.params, config)


GEOMETRY_FIELDS: tuple[str, ...] = (
    "qform_code",
    "sform_code",
    "quatern_b",
    "quatern_c",
    "quatern_d",
    "qoffset_x",
    "qoffset_y",
    "qoffset_z",
    "srow_x",
    "srow_y",
    "srow_z",
    "xyzt_units",
)


def map_image(data: np.ndarray, header: nib.Nifti1Header, affine: np.ndarray) -> nib.Nifti1Image:
    """A float32 3D image of `data` whose qform, sform, their codes and voxel sizes are copied
    field by field from `header` (so the affine a reader sees is exactly the input's)."""
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    out = img.header
    for key in GEOMETRY_FIELDS:
        out[key] = header[key]
    out["pixdim"][:4] = header["pixdim"][:4]
    return img


def write_maps(
    fit: MapFit, header: nib.Nifti1Header, affine: np.ndarray, out_dir: Path
) -> dict[str, Path]:
    """Write `<out_dir>/<map>.nii.gz` per map (float32, NaN where not determined) with the
    geometry of `header`/`affine` (the input's), and `fit_summary.json` (NaN counts and their
    reasons, timings). Returns the map paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in fit.maps.items():
        img = map_image(data, header, affine)
        img.header["descrip"] = f"ssmoe maps {name} ({MAP_UNITS.get(name, '')})"[:79].encode()
        paths[name] = out_dir / f"{name}.nii.gz"
        nib.save(img, str(paths[name]))
    (out_dir / SUMMARY_NAME).write_text(json.dumps(summary(fit), indent=2) + "\n")
    return paths


def summary(fit: MapFit) -> dict:
    """JSON-ready account of a fit: voxels, NaN counts and their reasons per map, timings."""
    vox = fit.voxels
    return {
        "voxels": int(fit.mask.sum()),
        "units": {name: MAP_UNITS.get(name, "") for name in fit.maps},
        "nan_counts": vox.nan_counts,
        "nan_reasons": {k: v for k, v in vox.reasons.items() if v},
        "not_determined_by_table": vox.unsupported,
        "not_converged": vox.not_converged,
        "iterations_median": vox.iterations_median,
        "seconds": {k: round(v, 3) for k, v in vox.seconds.items()},
    }
