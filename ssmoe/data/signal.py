"""ZEBRA signal model (METHOD.md section 3) and literature tissue values at 3 T.

For one tissue with proton density `s0`, relaxation times `T1`, `T2*`, parallel and perpendicular
diffusivities `Dpar`, `Dperp` (a zeppelin along the unit fibre direction `n`), the magnitude
signal of a volume acquired with unit gradient `g`, b-value `b`, inversion time `TI` and echo
time `TE` is

    S = s0 * |1 - 2 exp(-TI/T1) + exp(-TR/T1)|          inversion recovery (magnitude)
           * exp(-(TE - TEmin) / T2*)                    multi-echo gradient-echo decay
           * exp(-b [Dperp + (Dpar - Dperp) (g.n)^2])    zeppelin diffusion

with TR = 7500 ms and TEmin = 80 ms (the first echo). A voxel holding several tissues sums the
signals of its compartments weighted by their volume fractions (partial-volume mixing of the
signal, not of the parameters).

Units: times in ms, b in s/mm^2, diffusivities in mm^2/s.

Tissue values (`WM`, `GM`, `CSF`) are representative 3 T values within published ranges:

- T1: white matter ~830 ms and grey matter ~1330 ms (Wansapura et al., "NMR relaxation times in
  the human brain at 3.0 Tesla", J Magn Reson Imaging 9:531-538, 1999); CSF ~4200 ms (Lu et al.,
  "Routine clinical brain MRI sequences for use at 3.0 Tesla", J Magn Reson Imaging 22:13-22,
  2005; published 3 T values range 3500-4400 ms).
- T2*: white matter ~53 ms and cortical grey matter ~66 ms at 3 T (Peters et al., "T2*
  measurements in human brain at 1.5, 3 and 7 T", Magn Reson Imaging 25:748-753, 2007). CSF T2*
  is long and limited by field inhomogeneity; 230 ms is used (METHOD.md), its exact value hardly
  matters over the 50 ms TE range.
- Diffusion: brain parenchyma mean diffusivity ~0.7e-3 mm^2/s, white matter FA 0.4-0.7, grey
  matter FA 0.1-0.2 (Pierpaoli et al., "Diffusion tensor MR imaging of the human brain",
  Radiology 201:637-648, 1996); CSF is free water at body temperature, ~3.0e-3 mm^2/s (Mills,
  J Phys Chem 77:685-688, 1973, self-diffusion of water at 37 C).
- Relative proton density CSF 1.0, GM 0.86, WM 0.77 (the BrainWeb phantom values, Kwan et al.,
  IEEE Trans Med Imaging 18:1085-1097, 1999).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

TR_MS = 7500.0
TE_MIN_MS = 80.0


@dataclass(frozen=True)
class TissueParams:
    """Signal parameters of one tissue: relative proton density, ms, mm^2/s."""

    name: str
    s0: float
    t1: float
    t2star: float
    d_par: float
    d_perp: float

    @classmethod
    def from_md_fa(
        cls, name: str, s0: float, t1: float, t2star: float, md: float, fa: float
    ) -> TissueParams:
        """Build a zeppelin from its mean diffusivity `md` (mm^2/s) and fractional anisotropy."""
        dpar, dperp = zeppelin_from_md_fa(md, fa)
        return cls(name, s0, t1, t2star, dpar, dperp)

    @property
    def md(self) -> float:
        return (self.d_par + 2.0 * self.d_perp) / 3.0

    @property
    def fa(self) -> float:
        num = np.sqrt(1.5) * np.sqrt((self.d_par - self.md) ** 2 + 2 * (self.d_perp - self.md) ** 2)
        den = np.sqrt(self.d_par**2 + 2 * self.d_perp**2)
        return float(num / den)

    def jittered(self, rng: np.random.Generator, rel_sd: float) -> TissueParams:
        """A copy with each parameter scaled by an independent `1 + N(0, rel_sd)` factor.

        MD and FA are jittered (FA clipped to [0, 0.95]) and turned back into Dpar/Dperp.
        """
        f = 1.0 + rel_sd * rng.standard_normal(5)
        md = self.md * f[3]
        fa = float(np.clip(self.fa * f[4], 0.0, 0.95))
        dpar, dperp = zeppelin_from_md_fa(md, fa)
        return replace(
            self,
            s0=self.s0 * f[0],
            t1=self.t1 * f[1],
            t2star=self.t2star * f[2],
            d_par=dpar,
            d_perp=dperp,
        )


def zeppelin_from_md_fa(md: float, fa: float) -> tuple[float, float]:
    """`(Dpar, Dperp)` of an axially symmetric tensor with mean diffusivity `md` and FA `fa`.

    With r = Dpar/Dperp, FA = (r - 1) / sqrt(r^2 + 2); solving the quadratic
    (1 - FA^2) r^2 - 2 r + (1 - 2 FA^2) = 0 for its root r >= 1.
    """
    if not 0.0 <= fa < 1.0:
        raise ValueError(f"FA must lie in [0, 1), got {fa}")
    a = 1.0 - fa**2
    r = (2.0 + np.sqrt(4.0 - 4.0 * a * (1.0 - 2.0 * fa**2))) / (2.0 * a)
    d_perp = 3.0 * md / (r + 2.0)
    return float(r * d_perp), float(d_perp)


WM = TissueParams.from_md_fa("WM", s0=0.77, t1=832.0, t2star=53.0, md=0.70e-3, fa=0.60)
GM = TissueParams.from_md_fa("GM", s0=0.86, t1=1331.0, t2star=66.0, md=0.80e-3, fa=0.15)
CSF = TissueParams.from_md_fa("CSF", s0=1.00, t1=4163.0, t2star=230.0, md=3.0e-3, fa=0.0)
TISSUES: tuple[TissueParams, ...] = (WM, GM, CSF)


def relaxation_factor(
    ti: np.ndarray | float, te: np.ndarray | float, t1: float, t2star: float
) -> np.ndarray:
    """`|1 - 2 exp(-TI/T1) + exp(-TR/T1)| * exp(-(TE - TEmin)/T2*)`, broadcast over TI, TE (ms)."""
    ti = np.asarray(ti, dtype=np.float64)
    te = np.asarray(te, dtype=np.float64)
    ir = np.abs(1.0 - 2.0 * np.exp(-ti / t1) + np.exp(-TR_MS / t1))
    return ir * np.exp(-(te - TE_MIN_MS) / t2star)


def zebra_signal(
    tissue: TissueParams, acq: np.ndarray, fibre: np.ndarray | None = None
) -> np.ndarray:
    """Signal of one pure tissue for acquisitions `acq` (V, 6) and fibre directions.

    Args:
        tissue: the tissue parameters.
        acq: `(V, 6)` rows `(gx, gy, gz, b, TI, TE)`; `(6,)` is treated as one row.
        fibre: `(..., 3)` unit fibre directions per voxel; may be None only for an
            isotropic tissue (Dpar == Dperp).

    Returns:
        `(..., V)` signal in units of the proton density (float64).
    """
    acq = np.atleast_2d(np.asarray(acq, dtype=np.float64))
    g, b, ti, te = acq[:, :3], acq[:, 3], acq[:, 4], acq[:, 5]
    relax = relaxation_factor(ti, te, tissue.t1, tissue.t2star)  # (V,)
    if fibre is None:
        if tissue.d_par != tissue.d_perp:
            raise ValueError(f"tissue {tissue.name} is anisotropic: a fibre direction is needed")
        cos2 = np.zeros(len(acq))
    else:
        cos2 = (np.asarray(fibre, dtype=np.float64) @ g.T) ** 2  # (..., V)
    adc = tissue.d_perp + (tissue.d_par - tissue.d_perp) * cos2
    return tissue.s0 * relax * np.exp(-b * adc)


def mixed_signal(
    fractions: np.ndarray,
    fibre: np.ndarray,
    tissues: tuple[TissueParams, ...],
    acq_row: np.ndarray,
) -> np.ndarray:
    """Partial-volume signal of one volume: sum over tissues of fraction x pure-tissue signal.

    Args:
        fractions: `(T, ...)` tissue volume fractions (T = len(tissues)), any voxel layout.
        fibre: `(..., 3)` unit fibre directions in the image axes.
        tissues: the T tissue parameter sets.
        acq_row: `(6,)` acquisition `(gx, gy, gz, b, TI, TE)`.

    Returns:
        `(...)` float64 signal in proton-density units (multiply by the scanner gain).
    """
    if len(fractions) != len(tissues):
        raise ValueError(f"{len(fractions)} fraction maps for {len(tissues)} tissues")
    g = np.asarray(acq_row[:3], dtype=np.float64)
    b, ti, te = float(acq_row[3]), float(acq_row[4]), float(acq_row[5])
    cos2 = (fibre @ g) ** 2
    out = np.zeros(fractions.shape[1:], dtype=np.float64)
    for frac, t in zip(fractions, tissues, strict=True):
        relax = t.s0 * float(relaxation_factor(ti, te, t.t1, t.t2star))
        out += frac * (relax * np.exp(-b * (t.d_perp + (t.d_par - t.d_perp) * cos2)))
    return out


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of `signal + N(0, sigma^2) + i N(0, sigma^2)` (Rician noise), same shape."""
    re = signal + sigma * rng.standard_normal(signal.shape)
    im = sigma * rng.standard_normal(signal.shape)
    return np.sqrt(re * re + im * im)
