"""Per-volume reading of a 4D .nii.gz: `load_nifti` (one gzip stream) vs nibabel's default.

    python benchmarks/bench_reading.py [--shape 82,92,56] [--volumes 200] [--keep DIR]

Writes a 4D float32 .nii.gz of masked, smooth volumes (streamed: one volume in memory), then
reads it volume by volume in increasing order, as `ssmoe predict` and the evaluation do:
- ``nib.load`` default (`keep_file_open=False`, what `ssmoe predict` used): every access opens a
  new gzip stream and decompresses everything before the volume again - work grows with V^2;
- ``load_nifti`` (`ssmoe.data.reader`, used by `Subject`): one stream kept open, volumes in
  order cost the same from first to last - linear in V.
Prints seconds per volume for the first and last 5 volumes of each (the default is timed on
those 10 volumes only: a full pass would take hours at full-protocol size), the full in-order
pass with `load_nifti`, and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssmoe.data.nifti import VolumeStreamWriter  # noqa: E402
from ssmoe.data.reader import load_nifti  # noqa: E402


def write_gz(path: Path, shape: tuple[int, int, int], n: int) -> None:
    """A 4D .nii.gz of `n` masked smooth volumes whose intensity changes per volume."""
    rng = np.random.default_rng(0)
    base = ndimage.gaussian_filter(rng.random(shape), 2.0).astype(np.float32) * 10
    grid = np.indices(shape) / np.asarray(shape).reshape(3, 1, 1, 1) - 0.5
    base[(grid**2).sum(0) > 0.2] = 0
    raw = path.with_suffix("")  # x.nii
    with VolumeStreamWriter(raw, shape, n, np.diag([1.25, 1.25, 2.5, 1])) as writer:
        for v in range(n):
            writer.write(base * (1 + 0.5 * np.sin(v)) + rng.normal(0, 0.1, shape) * (base > 0))
    with open(raw, "rb") as src, gzip.open(path, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    raw.unlink()


def read(image, v: int) -> float:
    t = time.perf_counter()
    np.asarray(image.dataobj[..., v], dtype=np.float32)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="82,92,56", help="volume X,Y,Z (default: HR grid)")
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--keep", type=Path, default=None, help="write the file here and keep it")
    args = parser.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    n = args.volumes
    with tempfile.TemporaryDirectory() as tmp:
        path = (args.keep or Path(tmp)) / "bench_4d.nii.gz"
        if not path.exists():
            t = time.perf_counter()
            write_gz(path, shape, n)  # type: ignore[arg-type]
            print(f"wrote {path} in {time.perf_counter() - t:.1f} s")
        raw_mb = np.prod(shape) * n * 4 / 1e6
        print(
            f"4D .nii.gz {(*shape, n)} float32: {raw_mb:.0f} MB raw, "
            f"{path.stat().st_size / 1e6:.0f} MB compressed"
        )
        first, last = range(5), range(n - 5, n)
        default = [read(nib.load(str(path)), v) for v in (*first, *last)]  # fresh image each
        image = load_nifti(path)
        t = time.perf_counter()
        ours = [read(image, v) for v in range(n)]
        total = time.perf_counter() - t
    rows = {
        "nib.load default": (default[:5], default[5:]),
        "load_nifti in order": (ours[:5], ours[-5:]),
    }
    print(f"{'reader':22s} {'first 5 s/vol':>14s} {'last 5 s/vol':>13s} {'last/first':>11s}")
    for name, (a, b) in rows.items():
        fa, fb = statistics.median(a), statistics.median(b)
        print(f"{name:22s} {fa:14.4f} {fb:13.4f} {fb / fa:10.1f}x")
    mean_default = statistics.median(default[:5]) + statistics.median(default[5:])
    print(
        f"load_nifti, all {n} volumes in order: {total:.2f} s ({total / n:.4f} s/volume); "
        f"nib.load default would take ~{mean_default / 2 * n:.0f} s "
        f"({mean_default / 2 * n / total:.0f}x)"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
