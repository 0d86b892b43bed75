"""Time of MQS-for-K against the number of scores, on one CPU core, and subsample stability.

    python benchmarks/bench_mqs.py [--k 4] [--sizes 10000,30000,100000,270000]

Scores are synthetic per-patch errors: a heavy-tailed mixture over four decades of log-scores.
"cold" includes the Monte-Carlo null simulation (fresh cache dir); "warm" reuses the cache.
Stability: thresholds of the default fit (max_n = 50000, seed 0) against a reference fit with a
larger subsample (100000, or none for n <= 100000) and against subsample seeds 1 and 2;
max |log ratio| of thresholds (0.05 = 5%).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # one core: set before numpy is imported

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from ssmoe.segmenters import MQSSegmenter, multiscale  # noqa: E402


def synthetic_scores(n: int, seed: int = 0) -> np.ndarray:
    """(n,) positive scores: three log-normal populations with Student-t tails."""
    rng = np.random.default_rng(seed)
    comp = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    centre = np.array([-6.0, -3.5, -1.0])[comp]
    scale = np.array([0.6, 0.5, 0.8])[comp]
    return np.exp(centre + scale * rng.standard_t(5, size=n))


def fit(scores: np.ndarray, k: int, cache: str, **opts) -> tuple[MQSSegmenter, float]:
    t0 = time.perf_counter()
    seg = MQSSegmenter(k, cache_dir=cache, **opts).fit(scores)
    return seg, time.perf_counter() - t0


def max_log_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.log(a) - np.log(b))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", default="2,4", help="comma-separated K values")
    parser.add_argument("--sizes", default="10000,30000,100000,270000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("MQS segmenter on one core; change = max |log(t / t_ref)| over thresholds")
    print(
        f"{'K':>2} {'n':>7} {'subsample':>9} {'cold s':>7} {'warm s':>7} {'levels':>6} "
        f"{'modes':>5} {'splits':>6} {'ref n':>6} {'ref s':>6} {'vs ref':>6} "
        f"{'vs seeds':>8}  thresholds"
    )
    for k in (int(v) for v in args.k.split(",")):
        for n in sizes:
            scores = synthetic_scores(n)
            multiscale._MEMORY_CACHE.clear()  # cold = null simulation included
            with tempfile.TemporaryDirectory() as cache:
                seg, cold = fit(scores, k, cache)
                seg, warm = fit(scores, k, cache)
                ref_n = None if n <= 100000 else 100000
                ref, ref_time = fit(scores, k, cache, max_n=ref_n)
                seeds = [fit(scores, k, cache, seed=s)[0] for s in (1, 2)]
            d = seg.describe()
            vs_seeds = max(max_log_change(seg.thresholds_, o.thresholds_) for o in seeds)
            print(
                f"{k:>2} {n:>7} {d['subsample_size']:>9} {cold:>7.2f} {warm:>7.2f} "
                f"{d['n_levels_at_alpha']:>6} {d['n_modes_at_alpha']:>5} "
                f"{d['extra_splits']:>6} {ref.describe()['subsample_size']:>6} {ref_time:>6.1f} "
                f"{max_log_change(seg.thresholds_, ref.thresholds_):>6.3f} {vs_seeds:>8.3f}  "
                + " ".join(f"{t:.3g}" for t in seg.thresholds_)
            )


if __name__ == "__main__":
    main()
