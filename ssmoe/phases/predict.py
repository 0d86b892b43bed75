"""``ssmoe predict``: super-resolve a user's LR NIfTI with a logged model.

The HR grid follows from the LR header and the model's task: each LR voxel of scale s covers s
HR voxels, so the HR affine has voxel size zoom/s and its first voxel centre sits (s-1)/2 HR
voxels before the LR one (the inverse of ``ssmoe.data.degrade.lr_affine``).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from tqdm.auto import tqdm

from ssmoe.data.degrade import SCALES
from ssmoe.data.patches import GridTiler
from ssmoe.data.reader import read_params
from ssmoe.evaluation.reconstruct import reconstruct
from ssmoe.tracking.artifacts import load_model
from ssmoe.training.loop import pick_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictConfig:
    model: str  # runs:/<id>/model, models:/<name>/<version> or a local model directory
    input: str  # LR NIfTI, 3D or 4D (X', Y', Z'[, V])
    params: str  # parameters.txt: one row 'gx gy gz b TI TE' per volume
    output: str  # HR NIfTI to write
    stride: int = 16
    batch_size: int = 256
    device: str = "auto"


def hr_affine_from_lr(lr_affine: np.ndarray, scale: tuple[int, int, int]) -> np.ndarray:
    """HR affine of the grid whose block averages give the LR grid."""
    s = np.asarray(scale, dtype=float)
    affine = np.array(lr_affine, dtype=float)
    affine[:3, :3] = lr_affine[:3, :3] / s
    affine[:3, 3] = lr_affine[:3, 3] - affine[:3, :3] @ ((s - 1) / 2)
    return affine


def run_predict(config: PredictConfig) -> Path:
    """Write the super-resolved volume(s); returns the output path."""
    src = Path(config.input)
    if not src.exists():
        raise ValueError(f"{src}: input file not found")
    image = nib.load(str(src))
    if not isinstance(image, nib.Nifti1Image):
        raise ValueError(f"{src}: not a NIfTI-1 image ({type(image).__name__})")
    n_volumes = image.shape[3] if len(image.shape) == 4 else 1
    if len(image.shape) not in (3, 4):
        raise ValueError(f"{src}: expected a 3D or 4D NIfTI, got shape {image.shape}")
    params = read_params(Path(config.params))
    if len(params) != n_volumes:
        raise ValueError(
            f"{config.params}: {len(params)} parameter rows but {src} has {n_volumes} volume(s)"
        )
    device = pick_device(config.device)
    model: torch.nn.Module = load_model(config.model, device)
    task = str(model.task)
    scale = SCALES[task]
    hr_shape = tuple(int(n * s) for n, s in zip(image.shape[:3], scale, strict=True))
    tiler = GridTiler(hr_shape, task, stride=config.stride)  # type: ignore[arg-type]
    out = np.zeros((*hr_shape, n_volumes), dtype=np.float32)
    for v in tqdm(range(n_volumes), desc="predict", disable=not sys.stderr.isatty()):
        lr = np.asarray(
            image.dataobj[..., v] if n_volumes > 1 or len(image.shape) == 4 else image.dataobj,
            dtype=np.float32,
        )
        if not np.isfinite(lr).all():
            raise ValueError(f"{src}: volume {v} contains NaN or Inf voxels")
        out[..., v] = reconstruct(model, lr, params[v], tiler, device, config.batch_size).volume
    affine = hr_affine_from_lr(image.affine, scale)
    data = out if len(image.shape) == 4 else out[..., 0]
    hr = nib.Nifti1Image(data, affine)
    hr.header.set_xyzt_units(*image.header.get_xyzt_units())
    hr.set_qform(affine, code=1)
    hr.set_sform(affine, code=1)
    dst = Path(config.output)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".partial-{dst.name}")
    nib.save(hr, str(tmp))
    tmp.replace(dst)  # never leave a half-written output under the requested name
    log.info(
        "wrote %s: shape %s, voxel size %s mm",
        dst,
        data.shape,
        np.round(nib.affines.voxel_sizes(affine), 3).tolist(),
    )
    return dst
