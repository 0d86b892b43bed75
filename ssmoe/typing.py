"""Type aliases shared across the package."""

from __future__ import annotations

import os
from typing import Literal, Union

import numpy as np
import numpy.typing as npt

Task = Literal["aniso", "iso"]
TASKS: tuple[Task, ...] = ("aniso", "iso")
PathLike = Union[str, "os.PathLike[str]"]
FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.integer]
