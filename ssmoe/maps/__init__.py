"""Quantitative maps from ZEBRA data (T1, T2*, MD/FA/AD/RD, apparent PD) and their errors.

`fit_maps` fits a 4D array, `load_nifti`/`load_subject` + `fit_source` + `write_maps` are the
file path of `ssmoe maps`, and `map_errors`/`paired_wilcoxon` compare fits with ground truth.
Methods and their reasons: docs/maps.md.
"""

from ssmoe.maps.design import MAP_NAMES, Design, make_design, validate_params
from ssmoe.maps.errors import (
    CLASSES,
    PURE_FRACTION,
    ErrorStats,
    PairedTest,
    as_metrics,
    map_errors,
    paired_wilcoxon,
    tissue_classes,
)
from ssmoe.maps.fit import FitConfig, MapFit, VoxelFit, fit_maps, fit_masked, fit_voxels
from ssmoe.maps.io import MapSource, fit_source, load_nifti, load_subject, write_maps

__all__ = [
    "CLASSES",
    "MAP_NAMES",
    "PURE_FRACTION",
    "Design",
    "ErrorStats",
    "FitConfig",
    "MapFit",
    "MapSource",
    "PairedTest",
    "VoxelFit",
    "as_metrics",
    "fit_maps",
    "fit_masked",
    "fit_source",
    "fit_voxels",
    "load_nifti",
    "load_subject",
    "make_design",
    "map_errors",
    "paired_wilcoxon",
    "tissue_classes",
    "validate_params",
    "write_maps",
]
