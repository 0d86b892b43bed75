"""Named presets of hyper-parameters: ``paper`` (the paper's, for a GPU), ``quick`` (CPU, minutes)
and ``tiny`` (tests, seconds). A preset fills the phase configs; any flag overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Everything a preset decides. Pairs are HR/LR patch pairs; epochs per phase."""

    name: str
    width: int  # nf of the SR U-Net
    residual: bool  # y = cubic_spline(x) + D(E(x)) (see UNetConfig)
    n_pairs: int  # phase 1-2 training pairs (paper: ~270k)
    n_pairs_phase3: int  # phase-3 expert fine-tuning pairs (paper: 100k)
    epochs_phase1: int
    epochs_phase2: int
    epochs_phase3: int
    batch_size: int = 64
    lr: float = 1e-3
    decay: float = 1e-6
    k: int = 4
    segmenter: str = "mqs"
    eval_stride: int = 16  # HR tiling stride of whole-volume reconstruction
    protocol: str = "quick"


# One preset a line group (not one field a line): what differs between them reads at a glance.
# fmt: off
PRESETS: dict[str, Preset] = {
    "paper": Preset(name="paper", width=64, residual=False, n_pairs=270_000, n_pairs_phase3=100_000,
                    epochs_phase1=100, epochs_phase2=20, epochs_phase3=20,
                    eval_stride=8, protocol="full"),
    "quick": Preset(name="quick", width=8, residual=True, n_pairs=3_000, n_pairs_phase3=2_000,
                    epochs_phase1=6, epochs_phase2=10, epochs_phase3=3),
    "tiny": Preset(name="tiny", width=2, residual=True, n_pairs=256, n_pairs_phase3=256,
                   epochs_phase1=1, epochs_phase2=2, epochs_phase3=1,
                   batch_size=32, k=2, segmenter="quantile", protocol="tiny"),
}
# fmt: on


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
