"""ZEBRA signal model against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ssmoe.data.signal import (
    CSF,
    TISSUES,
    WM,
    TissueParams,
    mixed_signal,
    rician,
    zebra_signal,
    zeppelin_from_md_fa,
)
from ssmoe.data.simulate import noise_sigma

# s0 = 1, T1 = 1000 ms, T2* = 50 ms, Dpar = 2e-3, Dperp = 0.5e-3 mm^2/s.
TOY = TissueParams("toy", s0=1.0, t1=1000.0, t2star=50.0, d_par=2.0e-3, d_perp=0.5e-3)
# TI = 500, TE = 100: |1 - 2 e^-0.5 + e^-7.5| * e^-(20/50)
E05, E75, E04 = 0.6065306597126334, 0.0005530843701478336, 0.6703200460356393
RELAX = abs(1.0 - 2.0 * E05 + E75) * E04  # = 0.21250823... * 0.67032005 = 0.14244858...


@pytest.mark.parametrize(
    "fibre,diffusion",
    [
        ((1.0, 0.0, 0.0), 0.1353352832366127),  # parallel: e^(-1000 * 2e-3)
        ((0.0, 1.0, 0.0), 0.6065306597126334),  # perpendicular: e^(-1000 * 0.5e-3)
        ((2**-0.5, 2**-0.5, 0.0), 0.2865047968601901),  # 45 deg: e^(-1000 * 1.25e-3)
    ],
)
def test_toy_tissue_by_hand(fibre, diffusion):
    acq = np.array([1.0, 0.0, 0.0, 1000.0, 500.0, 100.0])
    s = zebra_signal(TOY, acq, fibre=np.array(fibre))
    assert s.shape == (1,)
    assert RELAX == pytest.approx(0.1424485, rel=1e-6)
    assert s[0] == pytest.approx(RELAX * diffusion, rel=1e-12)


def test_b0_te_min_long_ti_is_pure_inversion_recovery():
    # CSF, TI = 7322.7, TE = TEmin: |1 - 2 e^(-7322.7/4163) + e^(-7500/4163)|.
    acq = np.array([0.0, 0.0, 1.0, 0.0, 7322.7, 80.0])
    expected = abs(1 - 2 * np.exp(-7322.7 / 4163.0) + np.exp(-7500.0 / 4163.0))
    assert zebra_signal(CSF, acq)[0] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.8200, abs=1e-3)


def test_null_point():
    ti_null = WM.t1 * np.log(2.0 / (1.0 + np.exp(-7500.0 / WM.t1)))
    acq = np.array([0.0, 0.0, 1.0, 0.0, ti_null, 80.0])
    assert ti_null == pytest.approx(576.4, abs=0.5)
    assert zebra_signal(WM, acq, fibre=np.array([0.0, 0.0, 1.0]))[0] < 1e-12


def test_vectorised_over_voxels_and_volumes():
    rng = np.random.default_rng(0)
    fibre = rng.normal(size=(4, 5, 3))
    fibre /= np.linalg.norm(fibre, axis=-1, keepdims=True)
    acq = np.array([[1, 0, 0, 1000, 500, 100], [0, 1, 0, 3000, 20, 130.0]])
    s = zebra_signal(TOY, acq, fibre)
    assert s.shape == (4, 5, 2)
    one = zebra_signal(TOY, acq[1], fibre[2, 3])
    assert s[2, 3, 1] == pytest.approx(one[0], rel=1e-12)


def test_partial_volume_mixes_signals():
    fibre = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    fr = np.array([[0.25, 1.0], [0.75, 0.0], [0.0, 0.0]])  # (T=3, voxels=2)
    row = np.array([1.0, 0.0, 0.0, 1000.0, 500.0, 100.0])
    s = mixed_signal(fr, fibre, TISSUES, row)
    wm = zebra_signal(WM, row, fibre)[:, 0]
    gm = zebra_signal(TISSUES[1], row, fibre)[:, 0]
    np.testing.assert_allclose(s, 0.25 * wm * [1, 0] + [0, wm[1]] + 0.75 * gm * [1, 0])


def test_zeppelin_md_fa():
    dpar, dperp = zeppelin_from_md_fa(0.7e-3, 0.6)
    assert (dpar + 2 * dperp) / 3 == pytest.approx(0.7e-3)
    assert dpar / dperp == pytest.approx(2.978, abs=1e-3)  # root of 0.64 r^2 - 2 r + 0.28
    assert WM.fa == pytest.approx(0.6) and CSF.fa == pytest.approx(0.0)
    with pytest.raises(ValueError, match="FA"):
        zeppelin_from_md_fa(1e-3, 1.2)


def test_anisotropic_tissue_needs_fibre():
    with pytest.raises(ValueError, match="fibre"):
        zebra_signal(WM, np.array([1.0, 0, 0, 1000, 500, 80]))


def test_rician_noise_floor():
    rng = np.random.default_rng(0)
    zero = rician(np.zeros(200_000), 2.0, rng)
    assert zero.mean() == pytest.approx(2.0 * np.sqrt(np.pi / 2), rel=0.01)  # Rayleigh mean
    high = rician(np.full(200_000, 100.0), 2.0, rng)
    assert high.std() == pytest.approx(2.0, rel=0.02)


def test_noise_sigma_definition():
    # gain 100 x WM s0 0.77 x |1 - 2 e^(-7322.7/832) + e^(-7500/832)| / SNR 40
    ir = abs(1 - 2 * np.exp(-7322.7 / 832.0) + np.exp(-7500.0 / 832.0))
    assert noise_sigma(100.0, 40.0) == pytest.approx(100 * 0.77 * ir / 40, rel=1e-12)
    assert noise_sigma(100.0, 40.0) == pytest.approx(1.925, abs=0.01)
