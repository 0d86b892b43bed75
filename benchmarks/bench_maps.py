"""Map-fitting speed on one subject: ours (vectorised over voxels) vs scipy per voxel, same run.

Ours (`ssmoe.maps`): every map comes out of one joint fit per voxel, so the time is reported
per stage (read, start = T1-profiled log-linear fit, LM refinement, derivation of the maps) and
per map as the share of that one fit. Reference: `scipy.optimize.least_squares(method="lm")`
per voxel, the same model, the same starting values and the same second start (sign ambiguity
of the inversion null), with an analytic Jacobian, on a random sample of voxels, extrapolated
to the whole mask; it also checks that both reach the same parameters.

    python benchmarks/bench_maps.py [DATA_DIR] [--subject ID] [--sample 300]

Without DATA_DIR one quick-protocol subject (82 x 92 x 56, 114 volumes) is simulated into a
temporary directory. Issue 15's goal: under a minute for a quick subject on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from ssmoe.data.simulate import SimulationConfig, simulate_dataset
from ssmoe.maps import FitConfig, fit_source, load_subject
from ssmoe.maps.design import Design, make_design
from ssmoe.maps.init import initial_theta, t1_grid


def _residual_and_jacobian(design: Design, y: np.ndarray):
    """Per-voxel model written out again (not ssmoe.maps.model) for the scipy reference."""
    b = design.b_matrix
    k = b.shape[1]

    def parts(theta):
        e = np.exp(np.clip(b @ theta[:k], -700, 700))
        t1 = np.exp(theta[k])
        e_ti, e_tr = np.exp(-design.ti / t1), np.exp(-design.tr / t1)
        ir = 1.0 - 2.0 * e_ti + e_tr
        return e, ir, (design.tr * e_tr - 2.0 * design.ti * e_ti) / t1

    def fun(theta):
        e, ir, _ = parts(theta)
        return e * np.abs(ir) - y

    def jac(theta):
        e, ir, dir_du = parts(theta)
        s = e * np.abs(ir)
        return np.column_stack([s[:, None] * b, np.sign(ir) * e * dir_du])

    return fun, jac


def scipy_reference(
    signals: np.ndarray, params: np.ndarray, cfg: FitConfig, sample: int, seed: int
):
    """Seconds per voxel of per-voxel least squares (start included), and its parameters."""
    design = make_design(params)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(signals), size=min(sample, len(signals)), replace=False)
    y = signals[idx][:, design.rows].astype(np.float64)
    t0 = time.perf_counter()
    theta0, alt, ratio = initial_theta(y, design, t1_grid(*cfg.t1_grid_ms, cfg.t1_grid_points))
    out = np.empty_like(theta0)
    for i in range(len(y)):
        fun, jac = _residual_and_jacobian(design, y[i])
        starts = [theta0[i]] + ([alt[i]] if ratio[i] <= cfg.second_start_ratio else [])
        fits = [
            least_squares(fun, x0, jac=jac, method="lm", xtol=1e-10, ftol=1e-10) for x0 in starts
        ]
        out[i] = min(fits, key=lambda r: r.cost).x  # same two-start rule as ours
    return (time.perf_counter() - t0) / len(y), idx, out, design


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", type=Path, help="dataset directory (default: simulate)")
    ap.add_argument("--subject", default=None)
    ap.add_argument("--sample", type=int, default=300, help="voxels fitted by the reference")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "sim"
            t0 = time.perf_counter()
            simulate_dataset(
                SimulationConfig(out=root, n_subjects=1, protocol="quick", progress=False)
            )
            print(f"simulated one quick subject in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        src = load_subject(root, args.subject)
        t_read = time.perf_counter() - t0
    n, v = src.signals.shape
    cfg = FitConfig()
    t0 = time.perf_counter()
    fit = fit_source(src, cfg)
    t_fit = time.perf_counter() - t0
    sec = fit.voxels.seconds
    print(f"{src.name}: {n} voxels x {v} volumes, grid {src.mask.shape}")
    print(f"  read        {t_read:7.2f} s")
    for stage in ("init", "lm", "derive"):
        print(f"  {stage:11s} {sec[stage]:7.2f} s")
    print(f"  fit total   {t_fit:7.2f} s   ({n / t_fit:,.0f} voxels/s)")
    print(f"  read + fit  {t_read + t_fit:7.2f} s   (goal: < 60 s on 2 cores)")
    names = list(fit.maps)
    print(
        f"  per map     {t_fit / len(names):7.2f} s   (one joint fit gives all {len(names)}: "
        f"{', '.join(names)})"
    )
    print(f"  NaN voxels  {fit.nan_counts}; not converged {fit.voxels.not_converged}")
    print(f"  peak RSS    {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    per_voxel, idx, ref_theta, design = scipy_reference(
        src.signals, src.params, cfg, args.sample, args.seed
    )
    ref_total = per_voxel * n
    print(
        f"reference: scipy least_squares(method='lm') per voxel on {len(idx)} voxels: "
        f"{per_voxel * 1e3:.2f} ms/voxel -> {ref_total:.1f} s for {n} voxels (extrapolated)"
    )
    print(f"speed-up: {ref_total / t_fit:.1f}x (reference / ours, same run)")
    k = len(design.columns)
    t1_ref = np.exp(ref_theta[:, k])
    t1_ours = fit.voxels.values["T1"][idx]
    r2_ref = ref_theta[:, 1]
    t2s_ours = fit.voxels.values["T2star"][idx]
    rel_t1 = np.abs(t1_ours / t1_ref - 1)
    rel_t2s = np.abs(t2s_ours * r2_ref - 1)
    print(
        f"agreement on the sample: |T1 ours/scipy - 1| median {np.nanmedian(rel_t1):.1e}, "
        f"99th pct {np.nanpercentile(rel_t1, 99):.1e}; |T2* ours/scipy - 1| median {np.nanmedian(rel_t2s):.1e}"
    )


if __name__ == "__main__":
    main()
