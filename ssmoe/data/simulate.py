"""Write a simulated Super MUDI dataset in the release's layout (see `layout.py`).

Per subject: an anatomy (`anatomy.make_subject_anatomy`), then for every volume of the protocol
the ZEBRA signal (`signal.mixed_signal`) x bias field x scanner gain, Rician noise, zero outside
the brain mask, written to the HR file; the LR files are `degrade` of that noisy float32 HR
volume. Volumes are streamed to disk one at a time, so memory does not grow with the protocol.

Intensity scale: the scanner gain is `gain` per unit proton density, so a fully relaxed pure CSF
voxel at b = 0 and TE = TEmin reads ~`gain`. Noise: Gaussian in both channels with
`sigma = gain * S_WM / snr`, S_WM the nominal white-matter signal at b = 0, TE = 80 ms and the
longest TI; the default SNR 40 gives sigma ~1.9 for gain 100. The same sigma holds for every
volume (one receiver), so the SNR of a volume falls with its b, TE and |IR| factor and the
darkest volumes sit on the Rician noise floor, as in the real data.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ssmoe.data import layout
from ssmoe.data.anatomy import HR_SHAPE, AnatomyConfig, SubjectAnatomy, make_subject_anatomy
from ssmoe.data.degrade import SCALES, degrade, lr_affine, lr_shape
from ssmoe.data.nifti import VolumeStreamWriter, save_volume
from ssmoe.data.protocol import PROTOCOLS, TI_VALUES, get_protocol
from ssmoe.data.signal import TE_MIN_MS, WM, mixed_signal, rician, zebra_signal


@dataclass
class SimulationConfig:
    """What `simulate_dataset` writes. `progress=None` shows a bar only on a terminal."""

    out: Path
    n_subjects: int = 5
    protocol: str = "quick"
    seed: int = 0
    shape: tuple[int, int, int] = HR_SHAPE
    snr: float = 40.0
    # Scanner units are arbitrary; 22.5 per unit proton density puts the cubic-spline median
    # per-volume MSE of the aniso task at ~0.1, the scale of the paper's Table 1 (0.104).
    gain: float = 22.5
    force: bool = False
    progress: bool | None = None
    anatomy: AnatomyConfig = field(default_factory=AnatomyConfig)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.shape = tuple(int(s) for s in self.shape)  # type: ignore[assignment]
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; expected one of {PROTOCOLS}")
        if not 1 <= self.n_subjects <= 89:
            raise ValueError(f"n_subjects must be in 1..89, got {self.n_subjects}")
        if self.snr <= 0 or self.gain <= 0:
            raise ValueError(f"snr and gain must be positive, got {self.snr}, {self.gain}")
        if len(self.shape) != 3 or min(self.shape) < 16:
            raise ValueError(f"shape must be 3 sizes >= 16 (one 16^3 patch), got {self.shape}")
        self.anatomy = AnatomyConfig(**{**asdict(self.anatomy), "shape": self.shape})


def noise_sigma(gain: float, snr: float) -> float:
    """Noise standard deviation: nominal WM signal at b=0, TE=TEmin, longest TI over `snr`."""
    ref = np.array([0.0, 0.0, 1.0, 0.0, TI_VALUES[-1], TE_MIN_MS])
    return float(gain * zebra_signal(WM, ref, fibre=np.array([0.0, 0.0, 1.0]))[0] / snr)


def simulate_subject(
    subject_dir: Path,
    anatomy: SubjectAnatomy,
    protocol: np.ndarray,
    gain: float,
    sigma: float,
    rng: np.random.Generator,
    bar: tqdm | None = None,
) -> None:
    """Write one subject: HR, aniso and iso 4D files, parameters.txt and the brain mask."""
    subject_dir.mkdir(parents=True, exist_ok=True)
    shape = anatomy.mask.shape
    sel = anatomy.mask
    fractions = anatomy.fractions[:, sel].astype(np.float64)  # (3, M)
    fibre = anatomy.fibre[sel].astype(np.float64)  # (M, 3)
    scale = anatomy.bias[sel].astype(np.float64) * gain * anatomy.gain  # (M,)
    save_volume(subject_dir / layout.SIM_MASK, anatomy.mask.astype(np.uint8), anatomy.affine)
    np.savetxt(subject_dir / layout.SIM_PARAMS, protocol, fmt="%.8g")

    n = len(protocol)
    writers = {"hr": VolumeStreamWriter(subject_dir / layout.SIM_HR, shape, n, anatomy.affine)}
    for task in SCALES:
        writers[task] = VolumeStreamWriter(
            subject_dir / layout.SIM_LR[task],
            lr_shape(shape, task),
            n,
            lr_affine(anatomy.affine, task),
        )
    try:
        hr = np.zeros(shape, dtype=np.float32)
        for row in protocol:
            clean = mixed_signal(fractions, fibre, anatomy.tissues, row) * scale
            hr[sel] = rician(clean, sigma, rng)
            writers["hr"].write(hr)
            for task in SCALES:
                writers[task].write(degrade(hr, task))
            if bar is not None:
                bar.update(1)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        w.close()


def simulate_dataset(cfg: SimulationConfig) -> list[Path]:
    """Simulate `cfg.n_subjects` subjects into `cfg.out`; returns the subject directories.

    Subject `i` draws from `SeedSequence(cfg.seed).spawn(...)[i]`, so it does not depend on how
    many subjects are simulated. Refuses to overwrite existing subject directories unless
    `cfg.force`.
    """
    protocol = get_protocol(cfg.protocol)
    ids = [layout.subject_id(i) for i in range(cfg.n_subjects)]
    dirs = [cfg.out / sid for sid in ids]
    existing = [d for d in dirs if d.exists()]
    if existing and not cfg.force:
        raise ValueError(f"{existing[0]} already exists; pass force=True (--force) to overwrite")
    cfg.out.mkdir(parents=True, exist_ok=True)
    for d in existing:
        shutil.rmtree(d)

    sigma = noise_sigma(cfg.gain, cfg.snr)
    seeds = np.random.SeedSequence(cfg.seed).spawn(cfg.n_subjects)
    record: dict = {
        "generator": "ssmoe.data.simulate",
        "protocol": cfg.protocol,
        "n_volumes": len(protocol),
        "seed": cfg.seed,
        "shape": list(cfg.shape),
        "snr": cfg.snr,
        "gain": cfg.gain,
        "noise_sigma": sigma,
        "anatomy": asdict(cfg.anatomy),
        "subjects": {},
    }
    disable = None if cfg.progress is None else not cfg.progress
    with tqdm(total=cfg.n_subjects * len(protocol), desc="simulate", disable=disable) as bar:
        for sid, d, ss in zip(ids, dirs, seeds, strict=True):
            bar.set_postfix_str(sid)
            anatomy_seed, noise_seed = ss.spawn(2)
            anatomy = make_subject_anatomy(cfg.anatomy, np.random.default_rng(anatomy_seed))
            simulate_subject(
                d, anatomy, protocol, cfg.gain, sigma, np.random.default_rng(noise_seed), bar
            )
            record["subjects"][sid] = {
                "gain": anatomy.gain,
                "tissues": [asdict(t) for t in anatomy.tissues],
                "mask_voxels": int(anatomy.mask.sum()),
            }
    (cfg.out / layout.SIM_CONFIG).write_text(json.dumps(record, indent=2))
    return dirs
