"""Super MUDI data: protocol tables, ZEBRA simulator, LR degradation, lazy reader, patch pairs."""

from ssmoe.data.degrade import SCALES, degrade, lr_affine, lr_patch_shape, lr_shape
from ssmoe.data.patches import (
    GridTiler,
    PatchIndex,
    PatchPairs,
    extract_pairs,
    sample_index,
    sample_pairs,
    valid_origins,
)
from ssmoe.data.protocol import PARAM_COLUMNS, PROTOCOLS, get_protocol
from ssmoe.data.reader import MudiDataset, Subject, open_dataset

__all__ = [
    "PARAM_COLUMNS",
    "PROTOCOLS",
    "SCALES",
    "GridTiler",
    "MudiDataset",
    "PatchIndex",
    "PatchPairs",
    "Subject",
    "degrade",
    "extract_pairs",
    "get_protocol",
    "lr_affine",
    "lr_patch_shape",
    "lr_shape",
    "open_dataset",
    "sample_index",
    "sample_pairs",
    "valid_origins",
]
