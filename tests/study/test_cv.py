"""Cross-validation summary: mean and sample std over folds of every statistic per method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ssmoe.study.cv import aggregate


def test_aggregate_over_folds() -> None:
    folds = pd.DataFrame(
        {
            "task": ["aniso"] * 4,
            "test_subject": ["s1", "s1", "s2", "s2"],
            "method": ["unet", "ssmoe", "unet", "ssmoe"],
            "average": [1.0, 0.5, 3.0, 1.5],
            "max": [10.0, 4.0, 20.0, 6.0],
            "evaluate_run": ["r1", "r1", "r2", "r2"],
        }
    )
    out = aggregate(folds).set_index("method")
    assert out.loc["unet", "average_mean"] == 2.0
    assert out.loc["unet", "average_std"] == pytest.approx(np.std([1.0, 3.0], ddof=1))
    assert out.loc["ssmoe", "max_mean"] == 5.0
    assert (out["n_folds"] == 2).all()
    assert list(out.index) == ["unet", "ssmoe"]  # methods keep their order
