"""Training and inference pairs/s of the SR U-Net in fp32 vs bf16 autocast, in the same run.

    python benchmarks/bench_precision.py [--tasks aniso,iso] [--width 8] [--batch 64]
                                         [--steps 8] [--repeats 3] [--threads N] [--device cpu]

The quick preset's network (width 8, residual) on random patches of the right shapes (speed does
not depend on values). A training step is the training loop's step (``ssmoe.training.loop``):
forward under ``precision.autocast``, MSE loss in fp32, backward, Adam step; weights and
optimiser state stay fp32. Each mode is also timed with the model in channels-last memory format
(what ``reconstruct`` does on CPU). Prints the median over ``--repeats`` interleaved rounds of
pairs/s from wall time and from CPU (process) time, and each mode's ratio to fp32; CPU-time
figures are the robust ones on a shared machine with ``--threads 1``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssmoe.models.moe import UNetSR  # noqa: E402
from ssmoe.models.unet import LR_PATCH, UNetConfig  # noqa: E402
from ssmoe.training.precision import autocast, bf16_supported  # noqa: E402


def train_steps(model, opt, xs, ys, acq, device, dtype) -> None:
    model.train()
    for x, y in zip(xs, ys, strict=True):
        with autocast(device, dtype):
            out = model(x, acq)
        loss = nn.functional.mse_loss(out.float(), y)  # the loss stays fp32
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())  # the loop reads the loss every step


@torch.no_grad()
def infer(model, xs, acq, device, dtype) -> None:
    model.eval()
    with autocast(device, dtype):
        for x in xs:
            model(x, acq).float().cpu()


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="aniso,iso")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="batches per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if not bf16_supported(device):
        print(f"note: {device} has no native bf16; 'auto' would pick fp32 here")
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"width {args.width}, batch {args.batch}, {args.steps} batches per timing, "
        f"median of {args.repeats}"
    )
    header = f"{'task':6s} {'mode':18s} {'train/s':>8s} {'cpu':>7s} {'x':>5s} {'infer/s':>8s}"
    print(header + f" {'cpu':>7s} {'x':>5s}   (pairs/s from wall and CPU time; x = CPU vs fp32)")
    for task in args.tasks.split(","):
        measure(task, args, device)


MODES = {
    "fp32": (torch.float32, False),
    "bf16": (torch.bfloat16, False),
    "fp32 channels-last": (torch.float32, True),
    "bf16 channels-last": (torch.bfloat16, True),
}


def measure(task: str, args: argparse.Namespace, device: torch.device) -> None:
    n = args.batch * args.steps
    xs = list((torch.rand(n, 1, *LR_PATCH[task]) * 10).to(device).split(args.batch))
    ys = list((torch.rand(n, 1, 16, 16, 16) * 10).to(device).split(args.batch))
    acq = torch.zeros(args.batch, 6, device=device)
    fns: dict[str, dict[str, Callable[[], None]]] = {}
    for name, (dtype, channels_last) in MODES.items():
        torch.manual_seed(0)
        model = UNetSR(UNetConfig(task, args.width, residual=True)).to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        fns[name] = {
            "train": functools.partial(train_steps, model, opt, xs, ys, acq, device, dtype),
            "infer": functools.partial(infer, model, xs, acq, device, dtype),
        }
        for fn in fns[name].values():
            fn()  # warm-up
    times: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {"train": [], "infer": []} for name in MODES
    }
    for _ in range(args.repeats):
        for name in MODES:
            for kind, fn in fns[name].items():
                times[name][kind].append(timed(fn))
    rate = {
        name: {
            kind: (n / statistics.median(t[0] for t in v), n / statistics.median(t[1] for t in v))
            for kind, v in kinds.items()
        }
        for name, kinds in times.items()
    }
    for name in MODES:
        r, ref = rate[name], rate["fp32"]
        print(
            f"{task:6s} {name:18s} {r['train'][0]:8.0f} {r['train'][1]:7.0f} "
            f"{r['train'][1] / ref['train'][1]:5.2f} {r['infer'][0]:8.0f} "
            f"{r['infer'][1]:7.0f} {r['infer'][1] / ref['infer'][1]:5.2f}"
        )


if __name__ == "__main__":
    main()
