"""The Super MUDI acquisition tables (METHOD.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest

from ssmoe.data.protocol import (
    B_VALUES,
    PARAM_COLUMNS,
    TE_VALUES,
    TI_VALUES,
    get_protocol,
    protocol_rows,
    repulsion_directions,
)


def _counts(column: np.ndarray) -> dict[float, int]:
    values, counts = np.unique(column, return_counts=True)
    return {float(v): int(c) for v, c in zip(values, counts, strict=True)}


def test_columns():
    assert PARAM_COLUMNS == ("gx", "gy", "gz", "b", "TI", "TE")


def test_full_table_counts():
    p = get_protocol("full")
    assert p.shape == (1344, 6)
    assert _counts(p[:, 3]) == {0.0: 84, 500.0: 84, 1000.0: 252, 2000.0: 420, 3000.0: 504}
    assert _counts(p[:, 5]) == {80.0: 448, 105.0: 448, 130.0: 448}
    ti = _counts(p[:, 4])
    assert len(ti) == 28 and set(ti.values()) == {48}


def test_ti_values():
    assert len(TI_VALUES) == 28
    assert TI_VALUES[0] == 20.0
    assert TI_VALUES[1] == pytest.approx(176.625)
    assert TI_VALUES[25] == pytest.approx(25 * 176.625)
    assert TI_VALUES[-2:] == (4673.8, 7322.7)


def test_ti_cycling_and_te_blocks():
    p = get_protocol("full")
    ti_index = np.abs(p[:, 4, None] - np.asarray(TI_VALUES)[None]).argmin(axis=1)
    entries = p.reshape(3, 112, 4, 6)  # TE block, gradient entry, TI
    for j in range(112):
        k = j % 7
        np.testing.assert_array_equal(
            ti_index.reshape(3, 112, 4)[:, j], [[k, k + 7, k + 14, k + 21]] * 3
        )
    # Same gradient and b for the 4 TIs of an entry, and the same 112 entries in every TE block.
    assert (entries[:, :, :, :4] == entries[:, :, :1, :4]).all()
    assert (entries[:, :, :, :4] == entries[:1, :, :, :4]).all()
    assert [np.unique(entries[t, :, :, 5]).tolist() for t in range(3)] == [[te] for te in TE_VALUES]
    # Directions per shell and TE block: 7, 7, 21, 35, 42.
    b_entry = entries[0, :, 0, 3]
    assert [int((b_entry == b).sum()) for b in B_VALUES] == [7, 7, 21, 35, 42]


def test_unit_gradients_even_at_b0():
    p = get_protocol("full")
    np.testing.assert_allclose(np.linalg.norm(p[:, :3], axis=1), 1.0, atol=2e-6)


def test_directions_well_spread():
    g = repulsion_directions(42)
    cos = np.abs(g @ g.T)
    np.fill_diagonal(cos, 0)
    assert np.degrees(np.arccos(cos.max())) > 15.0  # a random set of 42 gets ~3 degrees


@pytest.mark.parametrize("name,size", [("quick", 114), ("tiny", 15)])
def test_subsets_are_stratified(name, size):
    p = get_protocol(name)
    full = get_protocol("full")
    rows = protocol_rows(name)
    assert p.shape == (size, 6)
    np.testing.assert_array_equal(p, full[rows])
    assert (np.diff(rows) > 0).all()
    for b in B_VALUES:
        for te in TE_VALUES:
            assert ((p[:, 3] == b) & (p[:, 5] == te)).any(), (b, te)
    assert p[:, 4].min() == 20.0 and p[:, 4].max() == 7322.7


def test_quick_covers_every_ti():
    p = get_protocol("quick")
    assert len(np.unique(p[:, 4])) == 28
    assert 96 <= len(p) <= 120


def test_unknown_protocol():
    with pytest.raises(ValueError, match="unknown protocol 'huge'"):
        get_protocol("huge")
