"""Training and inference throughput of the SR U-Net at a preset's width, through the project's
own training loop, and what that means for the preset's phases.

    python benchmarks/bench_training.py --preset paper            # on a GPU machine
    python benchmarks/bench_training.py --preset quick --device cpu

Random patches of the right shapes stand in for data (throughput does not depend on values).
Prints pairs/s for phase 1 (whole network), phase 3 (experts: decoder only, encoder frozen),
inference, and the projected wall time of each phase of the preset. Needs only torch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssmoe.models.moe import UNetSR  # noqa: E402
from ssmoe.models.unet import LR_PATCH, UNetConfig, count_weights  # noqa: E402
from ssmoe.presets import get_preset  # noqa: E402
from ssmoe.training.experts import train_experts  # noqa: E402
from ssmoe.training.loop import TrainConfig, mse_loss, pick_device, train  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(task: str, width: int, batch: int, n: int, device: torch.device) -> dict[str, float]:
    x = torch.randn(n, 1, *LR_PATCH[task]).abs() * 10
    y = torch.randn(n, 1, 16, 16, 16).abs() * 10
    acq = torch.zeros(n, 6)
    model = UNetSR(UNetConfig(task, width))
    cfg = TrainConfig(epochs=1, batch_size=batch)
    # warm-up (cuDNN autotuning, allocator)
    train(
        model,
        trainable=model,
        loss_fn=mse_loss,
        train_data=(x[: batch * 3], y[: batch * 3], acq[: batch * 3]),
        val_data=None,
        config=cfg,
        device=device,
        desc="warm-up",
    )
    _sync(device)
    t = time.perf_counter()
    train(
        model,
        trainable=model,
        loss_fn=mse_loss,
        train_data=(x, y, acq),
        val_data=None,
        config=cfg,
        device=device,
        desc="phase1",
    )
    _sync(device)
    phase1 = n / (time.perf_counter() - t)

    routes = torch.randint(0, 4, (n,))
    t = time.perf_counter()
    train_experts(model.config, model.encoder, model.decoder, 4, (x, y, routes), None, cfg, device)
    _sync(device)
    phase3 = n / (time.perf_counter() - t)

    model.eval()
    with torch.no_grad():
        xb = x[:1024].to(device)
        model(xb)
        _sync(device)
        t = time.perf_counter()
        for i in range(0, n, 1024):
            model(x[i : i + 1024].to(device))
        _sync(device)
    infer = n / (time.perf_counter() - t)
    return {"weights": count_weights(model), "phase1": phase1, "phase3": phase3, "infer": infer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pairs", type=int, default=None, help="pairs timed per measurement")
    parser.add_argument("--tasks", default="aniso,iso")
    args = parser.parse_args()
    preset = get_preset(args.preset)
    device = pick_device(args.device)
    n = args.pairs or (64 * 60 if device.type == "cuda" else 64 * 4)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {name}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"preset {preset.name} (width {preset.width}, batch {preset.batch_size})"
    )
    print(
        f"{'task':6s} {'weights':>9s} {'p1 pairs/s':>11s} {'p3 pairs/s':>11s} "
        f"{'infer/s':>9s} {'phase1 h':>9s} {'phase2 h*':>9s} {'phase3 h':>9s}"
    )
    for task in args.tasks.split(","):
        r = measure(task, preset.width, preset.batch_size, n, device)
        p1_h = preset.n_pairs * preset.epochs_phase1 / r["phase1"] / 3600
        # phase 2: encoder features once (inference) + a small MLP (negligible)
        p2_h = preset.n_pairs / r["infer"] / 3600
        p3_h = preset.n_pairs_phase3 * preset.epochs_phase3 / r["phase3"] / 3600
        print(
            f"{task:6s} {r['weights']:9d} {r['phase1']:11.0f} {r['phase3']:11.0f} "
            f"{r['infer']:9.0f} {p1_h:9.2f} {p2_h:9.3f} {p3_h:9.2f}"
        )
    print("* phase 2 time is the frozen encoder's feature pass; the gater MLP is negligible.")


if __name__ == "__main__":
    main()
