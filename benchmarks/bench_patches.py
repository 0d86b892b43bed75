"""Patch-pair sampling speed: ours vs the released code's approach, in the same run.

Ours (`ssmoe.data.patches`): valid origins once per subject from the mask (summed-area table),
uniform draw over (subject, volume, origin), then one read per needed volume and a fancy-index
gather from a sliding-window view.

Released approach (SS-MoE code, sklearn `extract_patches` style): for every volume, cut the HR
and LR volumes into all patches on a stride grid (copies), keep those whose HR patch has more
than 50% non-zero voxels, then draw the requested number of pairs from what was kept.

    python benchmarks/bench_patches.py [DATA_DIR] [--pairs 100000] [--subjects 4] [--task iso]

Without DATA_DIR a 4-subject quick-protocol dataset is simulated into a temporary directory.
Prints pairs per second for both and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ssmoe.data import open_dataset, sample_pairs
from ssmoe.data.degrade import SCALES, lr_patch_shape
from ssmoe.data.reader import MudiDataset
from ssmoe.data.simulate import SimulationConfig, simulate_dataset


def released_approach(
    dataset: MudiDataset, subjects: list[str], task: str, n: int, stride: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """All stride-grid patches of every volume, filtered by foreground, then `n` drawn."""
    scale = np.asarray(SCALES[task])
    lr_p = lr_patch_shape(task)
    kept_hr, kept_lr = [], []
    for sid in subjects:
        subj = dataset[sid]
        for v in range(subj.n_volumes):
            hr = sliding_window_view(subj.hr_volume(v), (16, 16, 16))[::stride, ::stride, ::stride]
            lr_step = tuple(stride // s for s in scale)
            lr = sliding_window_view(subj.lr_volume(task, v), lr_p)
            lr = lr[:: lr_step[0], :: lr_step[1], :: lr_step[2]][: hr.shape[0], : hr.shape[1]]
            lr = lr[:, :, : hr.shape[2]]
            hr = hr.reshape(-1, 16, 16, 16).copy()  # extract_patches + reshape copies
            lr = lr.reshape(-1, *lr_p).copy()
            fg = (hr != 0).mean(axis=(1, 2, 3)) > 0.5
            kept_hr.append(hr[fg])
            kept_lr.append(lr[fg])
    all_hr = np.concatenate(kept_hr)
    all_lr = np.concatenate(kept_lr)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(all_hr), size=n, replace=n > len(all_hr))
    return all_lr[pick], all_hr[pick]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", type=Path, default=None)
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--task", default="iso", choices=sorted(SCALES))
    ap.add_argument("--stride", type=int, default=8, help="Released approach's grid stride.")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp)
            t0 = time.perf_counter()
            simulate_dataset(SimulationConfig(out=root, n_subjects=args.subjects, progress=False))
            print(f"simulated {args.subjects} quick subjects in {time.perf_counter() - t0:.1f} s")
        dataset = open_dataset(root)
        subjects = dataset.subjects[: args.subjects]
        n = args.pairs
        # Warm the page cache for both readers alike.
        for sid in subjects:
            for v in range(dataset[sid].n_volumes):
                dataset[sid].hr_volume(v)

        t0 = time.perf_counter()
        ours = sample_pairs(dataset, subjects, args.task, n, seed=0)
        t_ours = time.perf_counter() - t0
        del ours
        t0 = time.perf_counter()
        lr, hr = released_approach(dataset, subjects, args.task, n, args.stride, seed=0)
        t_rel = time.perf_counter() - t0
        del lr, hr

    print(f"{n} {args.task} pairs from {len(subjects)} subjects")
    print(f"ours     : {t_ours:7.2f} s  {n / t_ours:10.0f} pairs/s")
    print(f"released : {t_rel:7.2f} s  {n / t_rel:10.0f} pairs/s  (stride {args.stride})")
    print(f"speed-up : {t_rel / t_ours:.1f}x")


if __name__ == "__main__":
    main()
