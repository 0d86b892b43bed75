"""Map errors per tissue class and the paired Wilcoxon test, on arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ssmoe.maps import as_metrics, map_errors, paired_wilcoxon, tissue_classes


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """A 4 x 5 x 1 grid: column 0 pure WM, 1 pure GM, 2 pure CSF, 3 mixed, 4 outside the mask;
    row-wise fractions at the purity threshold edge in column 0 of row 3."""
    f = np.zeros((4, 5, 1, 3))
    f[:, 0, 0] = (1.0, 0.0, 0.0)
    f[:, 1, 0] = (0.05, 0.95, 0.0)
    f[:, 2, 0] = (0.0, 0.0, 1.0)
    f[:, 3, 0] = (0.5, 0.3, 0.2)
    f[3, 0, 0] = (0.9, 0.1, 0.0)  # exactly at the threshold: still pure WM
    mask = np.ones((4, 5, 1), dtype=bool)
    mask[:, 4] = False
    return f, mask


def test_tissue_classes() -> None:
    f, mask = _grid()
    c = tissue_classes(f, mask)
    assert c["WM"][:, 0, 0].all() and c["WM"].sum() == 4
    assert c["GM"].sum() == 4 and c["CSF"].sum() == 4
    assert c["boundary"].sum() == 4 and c["boundary"][:, 3, 0].all()
    assert c["all"].sum() == 16
    stricter = tissue_classes(f, mask, threshold=0.95)
    assert stricter["WM"].sum() == 3 and stricter["boundary"].sum() == 5
    with pytest.raises(ValueError, match=r"\(X, Y, Z, 3\)"):
        tissue_classes(f[..., :2], mask)


def test_map_errors_numbers() -> None:
    f, mask = _grid()
    truth = {"T1": np.full((4, 5, 1), 1000.0)}
    fitted = {"T1": truth["T1"].copy()}
    fitted["T1"][:, 0, 0] += [10.0, -20.0, 30.0, -40.0]  # WM abs errors 10, 20, 30, 40
    fitted["T1"][0, 1, 0] = np.nan  # one GM voxel not fitted
    fitted["T1"][:, 4, 0] = 1e9  # outside the mask: ignored
    err = map_errors(fitted, truth, f, mask, names=["T1"])["T1"]
    wm = err["WM"]
    assert (wm.n, wm.n_nan) == (4, 0)
    assert (wm.q1, wm.median, wm.q3) == pytest.approx((17.5, 25.0, 32.5))
    assert wm.median_relative == pytest.approx(0.025)
    assert (err["GM"].n, err["GM"].n_nan, err["GM"].median) == (3, 1, 0.0)
    assert err["all"].n == 15 and err["all"].n_nan == 1
    metrics = as_metrics({"T1": err}, prefix="cubic/")
    assert metrics["cubic/T1_WM_median"] == pytest.approx(25.0)
    assert metrics["cubic/T1_GM_n_nan"] == 1.0
    assert len(metrics) == 5 * 6
    with pytest.raises(ValueError, match=r"maps \['MD'\] missing"):
        map_errors(fitted, truth, f, mask, names=["T1", "MD"])


def test_paired_wilcoxon_matches_scipy_and_counts_nan() -> None:
    rng = np.random.default_rng(0)
    shape = (20, 20, 5)
    truth = rng.uniform(500, 1500, shape)
    region = np.ones(shape, dtype=bool)
    a = truth + rng.normal(0, 10, shape)  # the better method
    b = truth + rng.normal(0, 20, shape)
    a[0, 0, :3] = np.nan
    res = paired_wilcoxon(a, b, truth, region)
    ok = np.isfinite(a)
    ref = stats.wilcoxon(np.abs(a - truth)[ok], np.abs(b - truth)[ok])
    assert (res.n, res.n_excluded) == (1997, 3)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.pvalue == pytest.approx(ref.pvalue)
    assert res.pvalue < 1e-10 and res.median_difference < 0
    same = paired_wilcoxon(a, a, truth, region)
    assert same.pvalue == 1.0 and np.isnan(same.statistic)
