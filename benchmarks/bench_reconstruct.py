"""Whole-volume reconstruction: ours vs MONAI's sliding_window_inference, same network, same tiles.

    pip install -e .[bench]          # MONAI, for this benchmark only
    python benchmarks/bench_reconstruct.py [--strides 16,8] [--tasks aniso,iso] [--repeats 5]

One simulated quick-protocol subject (82 x 92 x 56 HR grid, masked), a quick-width U-Net (width 8,
residual) and an SS-MoE with 4 experts on its encoder; random weights (time does not depend on
them). MONAI gets the LR volume, the LR patch as window (``roi_size``) and ``overlap = 1 -
stride / 16``, so its windows are exactly our tiles (``GridTiler``); the predictor maps LR windows
to 16^3 HR patches and MONAI places them on the HR grid (its zoomed-output mode), averaging with
constant weights as we do. MONAI runs every window; we skip the empty (background) ones.

Per task and stride, median over ``--repeats`` interleaved rounds of wall seconds and CPU seconds
(process time: robust to other processes on a shared machine when ``--threads 1``):
- ``bare``: the network forward alone over the non-empty tiles (batches of ``--batch``), fp32,
  with the model as ``reconstruct`` runs it (channels-last on CPU) and in the default layout;
- ``ours``: ``reconstruct`` in fp32, and with ``precision=auto`` (bf16 where the CPU/GPU has it);
- ``monai``: ``sliding_window_inference`` in fp32, the model in its default layout;
- ``ssmoe``: ``reconstruct`` of the SS-MoE in fp32 and auto.
Checks: max |ours - MONAI| over the tiles we run (MONAI's tiles captured through ``with_coord``),
fp32. Targets (issue 10): ours fp32 <= 1.1 x bare; MONAI fp32 / ours auto >= 3; SS-MoE auto
<= 0.4 s per volume (aniso).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssmoe.data import open_dataset  # noqa: E402
from ssmoe.data.patches import GridTiler  # noqa: E402
from ssmoe.data.simulate import SimulationConfig, simulate_dataset  # noqa: E402
from ssmoe.evaluation.reconstruct import active_tiles, reconstruct  # noqa: E402
from ssmoe.models.gater import AcquisitionNorm, Gater, GaterConfig  # noqa: E402
from ssmoe.models.moe import SSMoE, UNetSR  # noqa: E402
from ssmoe.models.unet import Decoder, UNetConfig  # noqa: E402
from ssmoe.training.precision import resolve_precision  # noqa: E402

try:
    from monai.inferers import sliding_window_inference
except ImportError:  # pragma: no cover - the bench extra is missing
    sys.exit("MONAI is needed for this benchmark: pip install -e .[bench]")


def build_models(task: str, width: int, params: np.ndarray) -> tuple[UNetSR, SSMoE]:
    torch.manual_seed(0)
    config = UNetConfig(task, width, residual=True)
    unet = UNetSR(config).eval()
    gater = Gater(GaterConfig(4 * width, k=4))
    norm = AcquisitionNorm.from_table(torch.as_tensor(params, dtype=torch.float32))
    moe = SSMoE(config, unet.encoder, gater, norm, [Decoder(config) for _ in range(4)])
    return unet, moe.eval()


def monai_reconstruct(model, lr: np.ndarray, acq: np.ndarray, tiler: GridTiler, batch: int):
    """MONAI sliding window over the LR volume, HR output; also returns its tiles by origin."""
    a = torch.as_tensor(acq, dtype=torch.float32).reshape(1, -1)
    tiles: dict[tuple[int, ...], np.ndarray] = {}

    def predictor(windows: torch.Tensor, coords) -> torch.Tensor:
        out = model(windows, a.expand(len(windows), -1))
        for c, y in zip(coords, out, strict=True):  # c: [batch, channel, x, y, z] slices
            lr_start = [s.start for s in c[2:]]
            tiles[tuple(int(v) * int(s) for v, s in zip(lr_start, tiler.scale, strict=True))] = y
        return out

    with torch.no_grad():
        volume = sliding_window_inference(
            torch.from_numpy(lr)[None, None],
            roi_size=tiler.lr_patch,
            sw_batch_size=batch,
            predictor=predictor,
            overlap=1 - tiler.stride / 16,
            mode="constant",
            with_coord=True,
        )
    assert isinstance(volume, torch.Tensor)
    return volume[0, 0].numpy(), tiles


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="aniso,iso")
    parser.add_argument("--strides", default="16,8")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128, help="ours and MONAI's sw_batch_size")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--volume", type=int, default=10, help="volume of the subject to use")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    auto = resolve_precision("auto", device)
    with tempfile.TemporaryDirectory() as tmp:
        simulate_dataset(SimulationConfig(out=Path(tmp), n_subjects=1, progress=False))
        subject = open_dataset(tmp).subjects[0]
        subj = open_dataset(tmp)[subject]
        print(
            f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
            f"auto precision = {auto}, width {args.width}, batch {args.batch}, "
            f"HR grid {subj.hr_shape}, median of {args.repeats}"
        )
        for task in args.tasks.split(","):
            lr, acq = subj.lr_volume(task, args.volume), subj.params[args.volume]
            unet, moe = build_models(task, args.width, subj.params)
            unet.to(device)
            moe.to(device)
            plain = copy.deepcopy(unet)  # default memory layout: what a MONAI user runs
            for stride in (int(s) for s in args.strides.split(",")):
                run_case(task, stride, lr, acq, subj.hr_shape, unet, plain, moe, auto, device, args)


def run_case(task, stride, lr, acq, hr_shape, unet, plain, moe, auto, device, args) -> None:
    tiler = GridTiler(hr_shape, task, stride=stride)
    lr_tiles = tiler.lr_patches(lr)
    active = active_tiles(lr_tiles)
    x = torch.from_numpy(lr_tiles[active]).to(device)
    a = torch.as_tensor(acq, dtype=torch.float32, device=device).reshape(1, -1)
    reconstruct(unet, lr, acq, tiler, device)  # puts unet in reconstruct's layout
    assert plain.encoder.block2.main[0][0].weight.is_contiguous()  # plain: the default layout

    def bare(model) -> None:
        with torch.no_grad():
            for i in range(0, len(x), args.batch):
                model(x[i : i + args.batch], a.expand(len(x[i : i + args.batch]), -1)).cpu()

    methods: dict[str, Callable[[], object]] = {
        "bare forward fp32": lambda: bare(unet),
        "bare fp32 default layout": lambda: bare(plain),
        "ours fp32": lambda: reconstruct(unet, lr, acq, tiler, device, args.batch),
        f"ours auto ({str(auto).replace('torch.', '')})": lambda: reconstruct(
            unet, lr, acq, tiler, device, args.batch, dtype=auto
        ),
        "MONAI fp32": lambda: monai_reconstruct(plain, lr, acq, tiler, args.batch),
        "SS-MoE ours fp32": lambda: reconstruct(moe, lr, acq, tiler, device, args.batch),
        "SS-MoE ours auto": lambda: reconstruct(
            moe, lr, acq, tiler, device, args.batch, dtype=auto
        ),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
    for fn in methods.values():
        fn()  # warm-up (oneDNN primitive creation)
    for _ in range(args.repeats):
        for name, fn in methods.items():
            times[name].append(timed(fn))
    wall = {n: statistics.median(t[0] for t in v) for n, v in times.items()}
    cpu = {n: statistics.median(t[1] for t in v) for n, v in times.items()}

    ours = reconstruct(unet, lr, acq, tiler, device, args.batch)
    monai_volume, monai_tiles = monai_reconstruct(plain, lr, acq, tiler, args.batch)
    index = {tuple(o): i for i, o in enumerate(tiler.origins.tolist())}
    diff = max(
        float(np.abs(ours.tiles[index[o]] - t.cpu().numpy()).max())
        for o, t in monai_tiles.items()
        if index[o] in set(active.tolist())
    )
    print(
        f"\n{task}, stride {stride}: {len(tiler)} tiles, {len(active)} non-empty; "
        f"max |ours - MONAI| on run tiles {diff:.1e}"
    )
    bare_name, monai_name = "bare forward fp32", "MONAI fp32"
    print(f"{'method':24s} {'wall s':>8s} {'cpu s':>8s} {'/bare':>6s} {'MONAI/x':>8s}")
    for name in methods:
        print(
            f"{name:24s} {wall[name]:8.3f} {cpu[name]:8.3f} {cpu[name] / cpu[bare_name]:6.2f} "
            f"{cpu[monai_name] / cpu[name]:8.2f}"
        )
    print(
        "(ratios on CPU seconds; wall ratios: /bare and MONAI/x for ours fp32 = "
        f"{wall['ours fp32'] / wall[bare_name]:.2f}, "
        f"{wall[monai_name] / wall['ours fp32']:.2f})"
    )
    del monai_volume


if __name__ == "__main__":
    main()
