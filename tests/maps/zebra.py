"""Test signals from the ZEBRA equation, written independently of ssmoe.data.signal.

    S = PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TEmin/T2) exp(-(TE - TEmin)/T2*)
          exp(-b [Dperp + (Dpar - Dperp)(g.n)^2])

TR = 7500 ms, TEmin = 80 ms; times in ms, b in s/mm^2, diffusivities in mm^2/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TR = 7500.0
TE_MIN = 80.0


@dataclass
class Voxels:
    """Per-voxel true parameters, each `(n,)`; `fibre` is `(n, 3)` unit vectors."""

    pd: np.ndarray
    t1: np.ndarray
    t2: np.ndarray
    t2star: np.ndarray
    md: np.ndarray
    fa: np.ndarray
    fibre: np.ndarray

    @property
    def n(self) -> int:
        return len(self.pd)

    @property
    def dpar_dperp(self) -> tuple[np.ndarray, np.ndarray]:
        """Zeppelin eigenvalues with the given MD and FA (root r = Dpar/Dperp >= 1)."""
        a = 1.0 - self.fa**2
        r = (2.0 + np.sqrt(4.0 - 4.0 * a * (1.0 - 2.0 * self.fa**2))) / (2.0 * a)
        dperp = 3.0 * self.md / (r + 2.0)
        return r * dperp, dperp

    @property
    def apparent_pd(self) -> np.ndarray:
        """What a single-spin-echo fit can see: PD exp(-TEmin/T2)."""
        return self.pd * np.exp(-TE_MIN / self.t2)

    def take(self, idx) -> Voxels:
        return Voxels(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def signal(vox: Voxels, table: np.ndarray) -> np.ndarray:
    """Noise-free magnitude `(n, V)` for acquisitions `table` `(V, 6)` = gx gy gz b TI TE."""
    g, b, ti, te = table[:, :3], table[:, 3], table[:, 4], table[:, 5]
    t1 = vox.t1[:, None]
    ir = np.abs(1.0 - 2.0 * np.exp(-ti / t1) + np.exp(-TR / t1))
    dpar, dperp = vox.dpar_dperp
    cos2 = (vox.fibre @ g.T) ** 2
    adc = dperp[:, None] + (dpar - dperp)[:, None] * cos2
    relax = np.exp(-TE_MIN / vox.t2)[:, None] * np.exp(-(te - TE_MIN) / vox.t2star[:, None])
    return vox.pd[:, None] * ir * relax * np.exp(-b * adc)


def rician(s: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """`|s + N(0, sigma^2) + i N(0, sigma^2)|`."""
    return np.hypot(s + sigma * rng.standard_normal(s.shape), sigma * rng.standard_normal(s.shape))


def random_fibres(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


GAIN = 22.5  # signal units per unit PD, as the simulator
# Pure tissues at 3 T: PD, T1, T2, T2*, MD, FA (the simulator's values after the T2 update).
TISSUES = {
    "WM": (0.69, 838.0, 71.0, 56.0, 0.70e-3, 0.60),
    "GM": (0.84, 1607.0, 76.0, 52.0, 0.80e-3, 0.15),
    "CSF": (1.00, 4300.0, 1900.0, 235.0, 3.0e-3, 0.0),
}
# Noise sigma at SNR 40 of WM at b = 0, TE = TEmin, long TI (as the simulator defines SNR).
SIGMA_SNR40 = GAIN * 0.69 * np.exp(-TE_MIN / 71.0) / 40.0


def tissue_voxels(name: str, n: int, rng: np.random.Generator) -> Voxels:
    """`n` voxels of one pure tissue with random fibre directions."""
    pd, t1, t2, t2s, md, fa = TISSUES[name]
    full = np.full(n, 1.0)
    return Voxels(
        GAIN * pd * full,
        t1 * full,
        t2 * full,
        t2s * full,
        md * full,
        fa * full,
        random_fibres(n, rng),
    )


def random_voxels(n: int, rng: np.random.Generator) -> Voxels:
    """Random parenchyma- and CSF-like parameter sets within physiological 3 T ranges."""
    csf = rng.random(n) < 0.25
    u = rng.uniform
    return Voxels(
        pd=GAIN * u(0.65, 1.0, n),
        t1=np.where(csf, u(3500, 4500, n), u(700, 1800, n)),
        t2=np.where(csf, u(1000, 2500, n), u(60, 110, n)),
        t2star=np.where(csf, u(150, 300, n), u(35, 60, n)),  # T2* <= T2
        md=np.where(csf, u(2.6e-3, 3.2e-3, n), u(0.5e-3, 1.2e-3, n)),
        fa=np.where(csf, u(0.0, 0.08, n), u(0.05, 0.85, n)),
        fibre=random_fibres(n, rng),
    )


def tensor_elements(vox: Voxels) -> np.ndarray:
    """`(n, 6)` zeppelin tensors `(Dxx, Dyy, Dzz, Dxy, Dxz, Dyz)` in mm^2/s."""
    dpar, dperp = vox.dpar_dperp
    n = vox.fibre
    d = dperp[:, None, None] * np.eye(3) + (dpar - dperp)[:, None, None] * (
        n[:, :, None] * n[:, None, :]
    )
    return np.stack([d[:, 0, 0], d[:, 1, 1], d[:, 2, 2], d[:, 0, 1], d[:, 0, 2], d[:, 1, 2]], 1)


def tensor_signal(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """`(V,)` signal of one voxel with `x = (PD', T1, T2*, Dxx, Dyy, Dzz, Dxy, Dxz, Dyz)`."""
    pd_app, t1, t2s = x[:3]
    dxx, dyy, dzz, dxy, dxz, dyz = x[3:]
    g, b, ti, te = table[:, :3], table[:, 3], table[:, 4], table[:, 5]
    gdg = (
        dxx * g[:, 0] ** 2
        + dyy * g[:, 1] ** 2
        + dzz * g[:, 2] ** 2
        + 2 * (dxy * g[:, 0] * g[:, 1] + dxz * g[:, 0] * g[:, 2] + dyz * g[:, 1] * g[:, 2])
    )
    ir = np.abs(1.0 - 2.0 * np.exp(-ti / t1) + np.exp(-TR / t1))
    return pd_app * ir * np.exp(-(te - TE_MIN) / t2s) * np.exp(-b * gdg)


def fa_md(x: np.ndarray) -> tuple[float, float]:
    """FA and MD of the tensor part of `x` (see `tensor_signal`)."""
    dxx, dyy, dzz, dxy, dxz, dyz = x[3:]
    lam = np.linalg.eigvalsh(np.array([[dxx, dxy, dxz], [dxy, dyy, dyz], [dxz, dyz, dzz]]))
    md = lam.mean()
    return float(np.sqrt(1.5 * ((lam - md) ** 2).sum() / (lam**2).sum())), float(md)


def crlb_sd(x: np.ndarray, table: np.ndarray, sigma: float) -> dict[str, float]:
    """Cramer-Rao standard deviations of PD', T1, T2*, MD, FA for Gaussian noise `sigma`.

    Fisher information J^T J / sigma^2 with J by central differences of `tensor_signal`;
    derived maps by the delta method (FA by central differences too).
    """
    steps = np.abs(x) * 1e-6 + 1e-12
    cols = []
    for i, h in enumerate(steps):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((tensor_signal(x + e, table) - tensor_signal(x - e, table)) / (2 * h))
    jac = np.stack(cols, axis=1)
    cov = sigma**2 * np.linalg.inv(jac.T @ jac)
    grad_md = np.zeros(len(x))
    grad_md[3:6] = 1.0 / 3.0
    grad_fa = np.zeros(len(x))
    for i in range(3, 9):
        e = np.zeros_like(x)
        e[i] = steps[i]
        grad_fa[i] = (fa_md(x + e)[0] - fa_md(x - e)[0]) / (2 * steps[i])
    sd = np.sqrt(np.diag(cov))
    return {
        "PD": float(sd[0]),
        "T1": float(sd[1]),
        "T2star": float(sd[2]),
        "MD": float(np.sqrt(grad_md @ cov @ grad_md)),
        "FA": float(np.sqrt(grad_fa @ cov @ grad_fa)),
    }
