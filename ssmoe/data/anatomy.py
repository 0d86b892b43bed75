"""Subject anatomies from the MNI ICBM152 2009 templates that nilearn ships (offline).

The 1 mm grey-matter, white-matter and brain-mask templates are resampled once per process to
2.5 mm (`template_2p5mm`, cached). Each subject is then sampled onto the release's HR grid
(82 x 92 x 56 voxels of 2.5 mm) through its own small affine and smooth non-linear deformation,
and gets its own tissue-parameter jitter, receive bias field and white-matter fibre field.

Grid placement: the brain mask spans about 145 x 181 x 155 mm in MNI space; the 205 x 230 x 140 mm
HR grid is centred on the brain in x and y and keeps one voxel above the vertex, so the lowest
~19 mm (inferior cerebellum and medulla) fall outside the 56 slices, as in axial acquisitions
whose slab stops above the foramen magnum.

Smaller grids (tests) are crops of that grid: centred in-plane, and anchored at the top in z so
that a tiny grid still holds brain surface and background (a realistic mix for patch sampling).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from ssmoe.data.signal import TISSUES, TissueParams

VOXEL_MM = 2.5
HR_SHAPE: tuple[int, int, int] = (82, 92, 56)
# World (MNI mm) coordinate of the centre of HR voxel (0, 0, 0); see the module docstring.
HR_ORIGIN_MM: tuple[float, float, float] = (-101.25, -130.75, -53.0)
BRAIN_CENTRE_MM = np.array([0.0, -17.0, 10.0])
TISSUE_NAMES: tuple[str, ...] = ("WM", "GM", "CSF")


@dataclass(frozen=True)
class AnatomyConfig:
    """How subjects differ from the template and from each other (mm, degrees, fractions)."""

    shape: tuple[int, int, int] = HR_SHAPE
    max_rotation_deg: float = 3.0
    max_translation_mm: float = 3.0
    scale_sd: float = 0.03
    warp_rms_mm: float = 2.0
    warp_smooth_mm: float = 12.0
    tissue_jitter: float = 0.05
    gain_jitter: float = 0.05
    bias_amplitude: float = 0.08


@dataclass
class SubjectAnatomy:
    """One simulated subject on its HR grid `(X, Y, Z)`.

    fractions: `(3, X, Y, Z)` float32 volume fractions of WM, GM, CSF; sum to 1 in the mask.
    mask: `(X, Y, Z)` bool brain mask.
    fibre: `(X, Y, Z, 3)` float32 unit fibre directions (image axes).
    bias: `(X, Y, Z)` float32 smooth multiplicative receive field, ~1.
    affine: `(4, 4)` voxel -> world (mm).
    tissues: jittered WM, GM, CSF parameters.
    gain: scanner gain relative to the nominal one.
    """

    fractions: np.ndarray
    mask: np.ndarray
    fibre: np.ndarray
    bias: np.ndarray
    affine: np.ndarray
    tissues: tuple[TissueParams, ...]
    gain: float


def grid_affine(shape: tuple[int, int, int] = HR_SHAPE) -> np.ndarray:
    """Voxel-to-world affine `(4, 4)` of the 2.5 mm HR grid, or of a crop of it.

    A crop of shape `(X, Y, Z)` is centred in x and y and keeps the top `Z` slices; offsets are
    even so that LR voxels of the crop coincide with LR voxels of the full grid.
    """
    if any(s > f for s, f in zip(shape, HR_SHAPE, strict=True)) or any(s < 1 for s in shape):
        raise ValueError(f"grid shape {tuple(shape)} must lie within 1..{HR_SHAPE} per axis")
    off = [((HR_SHAPE[0] - shape[0]) // 4) * 2, ((HR_SHAPE[1] - shape[1]) // 4) * 2]
    off.append(((HR_SHAPE[2] - shape[2]) // 2) * 2)
    affine = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    affine[:3, 3] = np.asarray(HR_ORIGIN_MM) + VOXEL_MM * np.asarray(off)
    return affine


@lru_cache(maxsize=1)
def template_2p5mm() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The MNI152 2009 GM, WM and brain-mask maps resampled to 2.5 mm (cached per process).

    Each 1 mm map is pre-filtered with a Gaussian whose variance makes up the difference
    between a 2.5 mm and a 1 mm box (sigma = sqrt((2.5^2 - 1) / 12) mm), then sampled trilinearly
    at 2.5 mm over the template's field of view.

    Returns:
        maps: {"GM", "WM", "mask"} -> float32 `(79, 94, 76)` in [0, 1].
        affine: `(4, 4)` voxel -> MNI mm of those maps.
    """
    from nilearn import datasets  # slow import, only needed here

    loaders = {
        "GM": datasets.load_mni152_gm_template,
        "WM": datasets.load_mni152_wm_template,
        "mask": datasets.load_mni152_brain_mask,
    }
    sigma = np.sqrt((VOXEL_MM**2 - 1.0) / 12.0)
    maps: dict[str, np.ndarray] = {}
    affine = None
    for name, load in loaders.items():
        img = load(resolution=1)
        data = np.asarray(img.get_fdata(dtype=np.float32))
        zoom = float(img.header.get_zooms()[0])
        smooth = ndimage.gaussian_filter(data, sigma / zoom)
        step = VOXEL_MM / zoom
        shape = np.ceil(np.asarray(data.shape) / step).astype(int)
        coords = np.indices(tuple(int(n) for n in shape), dtype=np.float32) * step
        maps[name] = np.clip(ndimage.map_coordinates(smooth, coords, order=1), 0.0, 1.0)
        affine = img.affine @ np.diag([step, step, step, 1.0])
    assert affine is not None
    return maps, affine


def _grid_points(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """World coordinates `(3, X, Y, Z)` (mm) of the voxel centres."""
    ijk = np.indices(shape, dtype=np.float64)
    return np.einsum("ij,j...->i...", affine[:3, :3], ijk) + affine[:3, 3, None, None, None]


def _rotation(angles_deg: np.ndarray) -> np.ndarray:
    ax, ay, az = np.radians(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _displacement(shape: tuple[int, int, int], cfg: AnatomyConfig, rng) -> np.ndarray:
    """Smooth random displacement field `(3, X, Y, Z)` in mm with RMS `cfg.warp_rms_mm`."""
    sigma = cfg.warp_smooth_mm / VOXEL_MM
    u = np.stack(
        [ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect") for _ in "xyz"]
    )
    rms = np.sqrt((u**2).sum(axis=0).mean())
    return u * (cfg.warp_rms_mm / max(rms, 1e-12))


def _bias_field(points: np.ndarray, cfg: AnatomyConfig, rng) -> np.ndarray:
    """Smooth receive field `exp(quadratic polynomial of position)`, within ~±amplitude."""
    q = (points - BRAIN_CENTRE_MM[:, None, None, None]) / 100.0  # ~[-1, 1] over the brain
    terms = [
        q[0],
        q[1],
        q[2],
        q[0] * q[1],
        q[0] * q[2],
        q[1] * q[2],
        q[0] ** 2,
        q[1] ** 2,
        q[2] ** 2,
    ]
    coef = rng.standard_normal(len(terms)) * cfg.bias_amplitude / 2.0
    return np.exp(sum(c * t for c, t in zip(coef, terms, strict=True)))


def fibre_field(wm: np.ndarray, points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Smooth unit fibre directions `(X, Y, Z, 3)` following the white-matter anatomy.

    The direction is the axis along which the smoothed WM map changes least (smallest
    eigenvector of its structure tensor: along WM "tubes"), regularised towards an analytic
    prior that runs left-right near the midline (corpus callosum) and inferior-superior laterally
    (projection fibres), which decides where the WM map is flat.
    """
    w = ndimage.gaussian_filter(wm.astype(np.float64), 1.0)
    grads = np.gradient(w)
    tensor = np.empty(wm.shape + (3, 3))
    for i in range(3):
        for j in range(i, 3):
            tensor[..., i, j] = tensor[..., j, i] = ndimage.gaussian_filter(
                grads[i] * grads[j], 2.0
            )
    trace = np.trace(tensor, axis1=-2, axis2=-1)
    ref = np.median(trace[mask & (wm > 0.5)]) if (mask & (wm > 0.5)).any() else trace.max()
    tensor /= max(float(ref), 1e-12)
    w_cc = np.exp(-((points[0] / 18.0) ** 2))
    prior = np.stack([w_cc, np.zeros_like(w_cc), 1.0 - w_cc], axis=-1)
    prior /= np.linalg.norm(prior, axis=-1, keepdims=True)
    fibre = np.zeros(wm.shape + (3,), dtype=np.float32)
    fibre[..., 2] = 1.0
    sel = mask
    m = tensor[sel] + 0.5 * (np.eye(3) - prior[sel][:, :, None] * prior[sel][:, None, :])
    _, vecs = np.linalg.eigh(m)
    fibre[sel] = vecs[:, :, 0]
    return fibre


def make_subject_anatomy(cfg: AnatomyConfig, rng: np.random.Generator) -> SubjectAnatomy:
    """Draw one subject: warp the cached 2.5 mm template onto the HR grid `cfg.shape`.

    The subject transform maps grid points p to template points
    `R S (p - c) + c + t + u(p)`: rotation R (uniform within ±max_rotation_deg per axis),
    scaling S (1 + N(0, scale_sd) per axis), translation t (±max_translation_mm) about the
    brain centre c, plus a smooth displacement u. Tissue fractions are sampled trilinearly;
    CSF fills the rest of the mask (mask - GM - WM).
    """
    shape = (int(cfg.shape[0]), int(cfg.shape[1]), int(cfg.shape[2]))
    affine = grid_affine(shape)
    maps, t_affine = template_2p5mm()
    points = _grid_points(shape, affine)

    rot = _rotation(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg, 3))
    scale = np.diag(1.0 + cfg.scale_sd * rng.standard_normal(3))
    trans = rng.uniform(-cfg.max_translation_mm, cfg.max_translation_mm, 3)
    c = BRAIN_CENTRE_MM[:, None, None, None]
    warped = np.einsum("ij,j...->i...", rot @ scale, points - c) + c + trans[:, None, None, None]
    warped += _displacement(shape, cfg, rng)
    inv = np.linalg.inv(t_affine)
    vox = np.einsum("ij,j...->i...", inv[:3, :3], warped) + inv[:3, 3, None, None, None]

    def sample(name: str) -> np.ndarray:
        return ndimage.map_coordinates(maps[name], vox, order=1, cval=0.0)

    mask = sample("mask") > 0.5
    gm, wm = sample("GM"), sample("WM")
    total = gm + wm
    over = total > 1.0
    gm[over] /= total[over]
    wm[over] /= total[over]
    csf = 1.0 - gm - wm
    fractions = np.stack([wm, gm, csf]).astype(np.float32) * mask

    tissues = tuple(t.jittered(rng, cfg.tissue_jitter) for t in TISSUES)
    gain = float(1.0 + cfg.gain_jitter * rng.standard_normal())
    bias = _bias_field(points, cfg, rng).astype(np.float32)
    fibre = fibre_field(fractions[0], points, mask)
    return SubjectAnatomy(fractions, mask, fibre, bias, affine, tissues, gain)
