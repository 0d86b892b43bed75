"""Cubic-spline baseline: separable matrices (ours) vs scipy map_coordinates on the full grid.

    python benchmarks/bench_cubic.py [--shape 82,92,56] [--repeats 10]

For each task, one LR volume of the simulator's HR grid (default 82 x 92 x 56, the Super MUDI
geometry) is upsampled by both methods ``--repeats`` times, interleaved; prints the median
seconds per volume of each, their ratio, the one-off cost of building the three 1-D matrices
(cached afterwards) and the relative difference max|ours - scipy| / max|scipy|.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssmoe.data.degrade import SCALES, degrade  # noqa: E402
from ssmoe.evaluation.interpolation import (  # noqa: E402
    cubic_spline_reference,
    cubic_spline_upsample,
    spline_matrix,
)


def phantom(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A smooth positive volume with a zero background (masked-like), float32."""
    rng = np.random.default_rng(seed)
    vol = ndimage.gaussian_filter(rng.random(shape), 2.0) * 10
    grid = np.indices(shape) / np.asarray(shape).reshape(3, 1, 1, 1) - 0.5
    vol[(grid**2).sum(0) > 0.2] = 0
    return vol.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="82,92,56", help="HR grid X,Y,Z")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    x, y, z = (int(s) for s in args.shape.split(","))
    hr_shape = (x, y, z)
    hr = phantom(hr_shape)
    print(f"HR grid {hr_shape}; median of {args.repeats} interleaved runs, seconds per volume")
    print(
        f"{'task':6s} {'scipy s':>9s} {'ours s':>9s} {'speed-up':>9s} {'build s':>8s} "
        f"{'rel diff':>9s}"
    )
    for task, scale in SCALES.items():
        lr = degrade(hr, task)
        spline_matrix.cache_clear()
        t = time.perf_counter()
        for n_hr, n_lr, s in zip(hr_shape, lr.shape, scale, strict=True):
            spline_matrix(n_hr, n_lr, s)
        build = time.perf_counter() - t
        times: dict[str, list[float]] = {"scipy": [], "ours": []}
        for _ in range(args.repeats):
            for name, fn in (("scipy", cubic_spline_reference), ("ours", cubic_spline_upsample)):
                t = time.perf_counter()
                out = fn(lr, scale, hr_shape)
                times[name].append(time.perf_counter() - t)
        ref = cubic_spline_reference(lr, scale, hr_shape)
        ours = cubic_spline_upsample(lr, scale, hr_shape)
        del out
        rel = float(np.abs(ours.astype(np.float64) - ref).max() / np.abs(ref).max())
        t_ref, t_ours = (statistics.median(times[k]) for k in ("scipy", "ours"))
        print(
            f"{task:6s} {t_ref:9.4f} {t_ours:9.4f} {t_ref / t_ours:8.1f}x {build:8.4f} {rel:9.1e}"
        )


if __name__ == "__main__":
    main()
