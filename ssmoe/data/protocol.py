"""Super MUDI acquisition tables: the full 1344-volume ZEBRA protocol and two stratified subsets.

Every table is a `(V, 6)` float64 array with columns `PARAM_COLUMNS = (gx, gy, gz, b, TI, TE)`:
a unit gradient direction, the b-value in s/mm^2, the inversion time and the echo time in ms.

The full table follows the released `parameters.txt` structure (METHOD.md section 3):

- three TE blocks (80, 105, 130 ms) of 448 rows, each repeating the same 112 gradient entries;
- the 112 entries are 7, 7, 21, 35, 42 directions at b = 0, 500, 1000, 2000, 3000 s/mm^2,
  interleaved across the block (b=0 entries still carry a direction, as in the release);
- entry `j` is acquired at the four TIs with indices `k, k+7, k+14, k+21`, `k = j mod 7`, out of
  the 28 TIs `20, k*176.625 (k=1..25), 4673.8, 7322.7` ms, so each TI is used by 48 volumes.

The release's own directions are not reproduced; each shell gets a deterministic, well-spread
antipodally symmetric set (electrostatic repulsion started from a Fibonacci sphere).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PARAM_COLUMNS: tuple[str, ...] = ("gx", "gy", "gz", "b", "TI", "TE")
PROTOCOLS: tuple[str, ...] = ("full", "quick", "tiny")

TR_MS = 7500.0
TE_VALUES: tuple[float, ...] = (80.0, 105.0, 130.0)
B_VALUES: tuple[float, ...] = (0.0, 500.0, 1000.0, 2000.0, 3000.0)
DIRECTIONS_PER_SHELL: tuple[int, ...] = (7, 7, 21, 35, 42)  # per TE block
TI_VALUES: tuple[float, ...] = (20.0, *(k * 176.625 for k in range(1, 26)), 4673.8, 7322.7)
TIS_PER_ENTRY = 4
TI_CYCLE = 7

# Volumes per b-shell and TE block in the "quick" subset (38 per TE block, 114 in all).
QUICK_PER_SHELL: tuple[int, ...] = (4, 4, 8, 10, 12)


def fibonacci_sphere(n: int) -> np.ndarray:
    """`(n, 3)` roughly uniform unit vectors on the upper hemisphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    z = 1.0 - i / n  # upper hemisphere: antipodal symmetry makes the lower one redundant
    phi = np.pi * (1.0 + 5.0**0.5) * i
    r = np.sqrt(1.0 - z**2)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def repulsion_directions(n: int, iterations: int = 300, step: float = 0.05) -> np.ndarray:
    """`(n, 3)` unit directions spread by antipodally symmetric electrostatic repulsion.

    Deterministic: starts from `fibonacci_sphere(n)` and runs projected gradient steps on the
    energy sum_{i<j} 1/|g_i - g_j| + 1/|g_i + g_j| (diffusion is symmetric under g -> -g).
    """
    g = fibonacci_sphere(n)
    for _ in range(iterations):
        force = np.zeros_like(g)
        for sign in (1.0, -1.0):
            d = g[:, None, :] - sign * g[None, :, :]
            dist = np.linalg.norm(d, axis=-1)
            np.fill_diagonal(dist, np.inf)
            force += (d / dist[..., None] ** 3).sum(axis=1)
        # Keep only the tangential component and take a normalised step.
        force -= (force * g).sum(axis=1, keepdims=True) * g
        scale = np.abs(force).max()
        if scale > 0:
            g = g + step * force / scale
        g /= np.linalg.norm(g, axis=1, keepdims=True)
    # Canonical sign (z >= 0) and 6 decimals, as written to parameters.txt.
    g *= np.where(g[:, 2:3] < 0, -1.0, 1.0)
    return np.round(g, 6)


def _interleave(counts: tuple[int, ...]) -> np.ndarray:
    """Group labels `0..len(counts)-1`, each repeated `counts[g]` times, spread evenly.

    Item `i` of group `g` sits at fractional position `(i + 0.5) / counts[g]`; sorting by it
    interleaves the groups the way the release interleaves its b-shells.
    """
    pos = np.concatenate([(np.arange(c) + 0.5) / c for c in counts])
    lab = np.concatenate([np.full(c, g) for g, c in enumerate(counts)])
    order = np.lexsort((lab, pos))
    return lab[order]


@lru_cache(maxsize=1)
def _entries() -> tuple[np.ndarray, np.ndarray]:
    """The 112 gradient entries of one TE block: directions `(112, 3)` and b-values `(112,)`."""
    shell_of_entry = _interleave(DIRECTIONS_PER_SHELL)
    dirs = np.zeros((len(shell_of_entry), 3))
    for s, n in enumerate(DIRECTIONS_PER_SHELL):
        dirs[shell_of_entry == s] = repulsion_directions(n)
    b = np.asarray(B_VALUES)[shell_of_entry]
    return dirs, b


@lru_cache(maxsize=1)
def _full() -> np.ndarray:
    dirs, b = _entries()
    rows = []
    for te in TE_VALUES:
        for j in range(len(b)):
            k = j % TI_CYCLE
            for m in range(TIS_PER_ENTRY):
                rows.append((*dirs[j], b[j], TI_VALUES[k + TI_CYCLE * m], te))
    table = np.asarray(rows, dtype=np.float64)
    table.setflags(write=False)
    return table


def _ti_index(ti: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(ti)[:, None] - np.asarray(TI_VALUES)[None, :]).argmin(axis=1)


def _select(per_shell: tuple[int, ...], te_values: tuple[float, ...], mult: int) -> np.ndarray:
    """Row indices into the full table: a stratified subset.

    For every TE block, `sum(per_shell)` volumes are chosen whose TIs are spread evenly over the
    28 TI values (every TI appears when the block has >= 28 volumes); TIs are dealt to shells by a
    block-dependent permutation so each shell sees different TIs in different TE blocks. Each
    volume is the first unused row of its shell with that TI (else the nearest available TI).
    """
    full = _full()
    ti_idx = _ti_index(full[:, 4])
    shell = np.searchsorted(B_VALUES, full[:, 3])
    n_block = sum(per_shell)
    shells = _interleave(per_shell)
    chosen: list[int] = []
    for t, te in enumerate(te_values):
        # Evenly spaced TI indices, shifted by a fraction of the spacing per TE block.
        last = len(TI_VALUES) - 1
        spacing = last / max(n_block - 1, 1)
        shift = spacing * t / len(te_values)
        targets = np.clip(np.round(np.linspace(0, last, n_block) + shift), 0, last).astype(int)
        perm = (np.arange(n_block) * mult + 3 * t) % n_block
        used_entries: set[int] = set()
        for s, tau in zip(shells, targets[perm], strict=True):
            cand = np.flatnonzero((full[:, 5] == te) & (shell == s))
            entry = cand // TIS_PER_ENTRY
            free = np.array([e not in used_entries for e in entry])
            pool = cand[free] if free.any() else cand
            dist = np.abs(ti_idx[pool] - tau)
            row = int(pool[np.argmin(dist)])
            used_entries.add(row // TIS_PER_ENTRY)
            chosen.append(row)
    return np.sort(np.asarray(chosen))


def protocol_rows(name: str) -> np.ndarray:
    """Indices `(V,)` of the rows of the full table that make up protocol `name`."""
    if name == "full":
        return np.arange(len(_full()))
    if name == "quick":
        return _select(QUICK_PER_SHELL, TE_VALUES, mult=11)
    if name == "tiny":
        # One volume per (b-shell, TE): 15 volumes.
        return _select((1,) * len(B_VALUES), TE_VALUES, mult=2)
    raise ValueError(f"unknown protocol {name!r}; expected one of {PROTOCOLS}")


def get_protocol(name: str) -> np.ndarray:
    """The acquisition table of protocol `name` ("full", "quick" or "tiny").

    Returns a `(V, 6)` float64 array with columns `PARAM_COLUMNS` (unit gradient, b in s/mm^2,
    TI in ms, TE in ms); "full" has 1344 rows, "quick" 114, "tiny" 15. Subsets keep the order of
    the full table.
    """
    return _full()[protocol_rows(name)].copy()
