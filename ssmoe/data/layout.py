"""File names of a Super MUDI dataset directory: what the simulator writes, what the reader accepts.

A dataset is a directory with one sub-directory per subject (`cdmri0011`, ...). Inside a subject
directory, or in its `HR/` and `LR/` sub-directories (a layout used by several challenge
entries), the reader looks for, in order of preference (each `.nii` or `.nii.gz`):

- HR 2.5 mm 4D: `MB_Re_t_moco_registered_applytopup_resized`, `MB_Re_t_moco_registered_applytopup`,
  `org`, `hr`
- aniso LR 2.5 x 2.5 x 5 mm: `MB_Re_t_moco_registered_applytopup_anisotropic_voxcor`, `aniso`
- iso LR 5 mm: `MB_Re_t_moco_registered_applytopup_isotropic_voxcor`, `iso`
- brain mask on the HR grid: `brain_mask`, `mask`
- acquisition table: `parameters.txt`, `parameters_new.txt` (in the subject directory, else
  one shared file in the dataset root)

The `MB_Re_t_moco_registered_applytopup*` names are the organisers' release names; `org`, `iso`,
`aniso` are the renamed copies the SS-MoE code used. The simulator writes the release names,
uncompressed (`.nii`) so that volumes can be memory-mapped one at a time.
"""

from __future__ import annotations

from pathlib import Path

HR_STEMS: tuple[str, ...] = (
    "MB_Re_t_moco_registered_applytopup_resized",
    "MB_Re_t_moco_registered_applytopup",
    "org",
    "hr",
)
LR_STEMS: dict[str, tuple[str, ...]] = {
    "aniso": ("MB_Re_t_moco_registered_applytopup_anisotropic_voxcor", "aniso"),
    "iso": ("MB_Re_t_moco_registered_applytopup_isotropic_voxcor", "iso"),
}
MASK_STEMS: tuple[str, ...] = ("brain_mask", "mask")
PARAM_NAMES: tuple[str, ...] = ("parameters.txt", "parameters_new.txt")
NIFTI_EXTENSIONS: tuple[str, ...] = (".nii", ".nii.gz")
SUBDIRS: tuple[str, ...] = ("", "HR", "LR")

# What the simulator writes.
SIM_HR = HR_STEMS[0] + ".nii"
SIM_LR = {task: stems[0] + ".nii" for task, stems in LR_STEMS.items()}
SIM_MASK = "brain_mask.nii.gz"
SIM_PARAMS = "parameters.txt"
SIM_CONFIG = "simulation.json"


def subject_id(index: int) -> str:
    """Release-style subject id: 0 -> "cdmri0011", 1 -> "cdmri0012", ..."""
    return f"cdmri{11 + index:04d}"


def find_nifti(subject_dir: Path, stems: tuple[str, ...]) -> Path | None:
    """First existing `<subdir>/<stem><ext>` in preference order, or None."""
    for stem in stems:
        for sub in SUBDIRS:
            for ext in NIFTI_EXTENSIONS:
                path = subject_dir / sub / (stem + ext)
                if path.is_file():
                    return path
    return None


def find_params(subject_dir: Path) -> Path | None:
    """The subject's parameter table, else the dataset root's shared one, or None."""
    for folder in (subject_dir, subject_dir.parent):
        for name in PARAM_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def expected_names(stems: tuple[str, ...]) -> str:
    """Human-readable list of accepted file names, for error messages."""
    return ", ".join(stem + NIFTI_EXTENSIONS[1] for stem in stems) + " (or .nii)"


def is_subject_dir(path: Path) -> bool:
    """Whether `path` holds any recognised dataset file (directly or in HR/ or LR/)."""
    if not path.is_dir():
        return False
    stems = HR_STEMS + MASK_STEMS + sum(LR_STEMS.values(), ())
    return find_nifti(path, stems) is not None or any(
        (path / name).is_file() for name in PARAM_NAMES
    )
