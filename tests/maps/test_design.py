"""What each acquisition table lets the fit determine, and table validation errors."""

from __future__ import annotations

import numpy as np
import pytest

from ssmoe.data.protocol import get_protocol
from ssmoe.maps.design import make_design, validate_params


@pytest.mark.parametrize("name", ["full", "quick", "tiny"])
def test_protocols_determine_every_map(name: str) -> None:
    design = make_design(get_protocol(name))
    assert design.unsupported == {}
    assert design.fit_t1
    assert design.columns == ("logPD", "R2star", "Dxx", "Dyy", "Dzz", "Dxy", "Dxz", "Dyz")
    assert len(design.rows) == len(get_protocol(name))


def test_one_echo_at_te_min_drops_t2star_only() -> None:
    table = get_protocol("quick")
    design = make_design(table[table[:, 5] == 80.0])
    assert set(design.unsupported) == {"T2star"}
    assert "one echo time only (TE = 80 ms)" in design.unsupported["T2star"]
    assert "R2star" not in design.columns


def test_one_late_echo_also_drops_pd() -> None:
    table = get_protocol("quick")
    design = make_design(table[table[:, 5] == 105.0])
    assert set(design.unsupported) == {"T2star", "PD"}


def test_no_diffusion_weighting_drops_tensor_maps() -> None:
    table = get_protocol("full")
    design = make_design(table[table[:, 3] == 0.0])
    assert set(design.unsupported) == {"MD", "FA", "AD", "RD"}
    assert design.unsupported["MD"] == "no diffusion-weighted volumes"


def test_too_few_directions_drop_tensor_and_its_volumes() -> None:
    table = get_protocol("quick")
    dw = table[:, 3] > 0
    keep = ~dw | (np.cumsum(dw) <= 4)  # b = 0 plus the first 4 diffusion-weighted volumes
    design = make_design(table[keep])
    assert "determine only 4 of 6 tensor elements" in design.unsupported["FA"]
    assert (table[keep][design.rows, 3] == 0).all()


def test_one_ti_drops_t1_and_pd() -> None:
    table = get_protocol("full")
    design = make_design(table[table[:, 4] == 7322.7])
    assert set(design.unsupported) == {"T1", "PD"}
    assert not design.fit_t1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([0, 0, 1, -5, 100, 80], "row 2 field b = -5.0"),
        ([0, 0, 1, 0, 0, 80], "row 2 field TI = 0.0"),
        ([0, 0, 1, 0, 8000, 80], "row 2 field TI = 8000.0: TI must be < TR"),
        ([0, 0, 1, 0, 100, 0], "row 2 field TE = 0.0"),
        ([0, 0.5, 0, 1000, 100, 80], "row 2 field gx gy gz = [0.0, 0.5, 0.0]: gradient norm"),
        ([0, 0, 1, 0, np.nan, 80], "row 2 field TI = nan: not finite"),
    ],
)
def test_bad_table_rows_are_named(row: list[float], message: str) -> None:
    table = np.array([[0, 0, 1, 0, 100, 80], row], dtype=float)
    with pytest.raises(ValueError, match="params.txt: ") as info:
        validate_params(table, source="params.txt")
    assert message in str(info.value)


def test_wrong_column_count() -> None:
    with pytest.raises(ValueError, match="expected 6 columns"):
        validate_params(np.zeros((3, 5)))
