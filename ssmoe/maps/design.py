"""What an acquisition table lets a voxelwise fit determine, and the fit's linear design.

The fitted model (METHOD.md section 3, with the spin-echo T2 factor folded into the proton density):

    S = PD' |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-(TE - TEref) R2*) exp(-b g^T D g)

PD' = PD exp(-TEref/T2) is the *apparent* proton density: with a single spin echo (TEref = TEmin =
80 ms) the T2 factor is a constant of the voxel and cannot be separated from PD. Apart from the
inversion-recovery factor, log S is linear in theta = (log PD', R2*, Dxx, Dyy, Dzz, Dxy, Dxz, Dyz):
`log S = B theta + log|IR(TI; T1)|`, with the rows of B = (1, -(TE - TEref), -b q(g)),
q(g) = (gx^2, gy^2, gz^2, 2 gx gy, 2 gx gz, 2 gy gz).

`make_design` checks which parameters the table determines and drops the others, each with a
reason: one echo time -> no T2*; fewer than 3 inversion times -> no T1 (the rows at the most
common TI are kept and the IR factor goes into PD'); diffusion-weighted directions that do not
determine a tensor -> no MD/FA/AD/RD (the diffusion-weighted rows are dropped). PD' is undefined
when T1 is not fitted, or when T2* is not fitted and the echo is not at TEref.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssmoe.data.protocol import PARAM_COLUMNS, TR_MS

TE_REF_MS = 80.0  # the spin echo (TEmin) of the Super MUDI protocol
B0_TOLERANCE = 50.0  # s/mm^2: rows at or below are "b = 0" (no diffusion weighting)
GRADIENT_NORM_TOLERANCE = 0.01  # | |g| - 1 | allowed on diffusion-weighted rows
MIN_TIS_FOR_T1 = 3  # two TIs leave the magnitude IR curve ambiguous (two T1 roots)
TENSOR_COLUMNS: tuple[str, ...] = ("Dxx", "Dyy", "Dzz", "Dxy", "Dxz", "Dyz")

# Fitted maps and the parameters each depends on.
MAP_NAMES: tuple[str, ...] = ("PD", "T1", "T2star", "MD", "FA", "AD", "RD", "residual")
DIFFUSION_MAPS: tuple[str, ...] = ("MD", "FA", "AD", "RD")


@dataclass(frozen=True)
class Design:
    """The fit's view of an acquisition table.

    Attributes:
        rows: `(V',)` indices of the table rows the fit uses (all, unless a part is unsupported).
        columns: names of the linear parameters, a subset of
            `("logPD", "R2star", *TENSOR_COLUMNS)`; theta follows this order.
        b_matrix: `(V', len(columns))` linear design B (units: 1, ms, s/mm^2).
        ti: `(V',)` inversion times in ms of the used rows.
        fit_t1: whether T1 is a parameter (else the IR factor is a constant inside PD').
        tr: repetition time in ms.
        unsupported: map name -> reason, for maps the table cannot determine (NaN everywhere).
    """

    rows: np.ndarray
    columns: tuple[str, ...]
    b_matrix: np.ndarray
    ti: np.ndarray
    fit_t1: bool
    tr: float
    unsupported: dict[str, str] = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        """Number of fitted parameters (linear ones plus log T1 when fitted)."""
        return len(self.columns) + int(self.fit_t1)


def validate_params(params: np.ndarray, source: str = "parameter table") -> np.ndarray:
    """Check a `(V, 6)` table `gx gy gz b TI TE` (s/mm^2, ms); return it as float64.

    Raises ValueError naming `source`, the row (1-based) and the field with its bad value.
    """
    table = np.asarray(params, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != len(PARAM_COLUMNS):
        raise ValueError(
            f"{source}: expected {len(PARAM_COLUMNS)} columns ({' '.join(PARAM_COLUMNS)}), "
            f"got shape {table.shape}"
        )
    bad_cells = np.argwhere(~np.isfinite(table))
    if len(bad_cells):
        i, j = bad_cells[0]
        raise ValueError(
            f"{source}: row {i + 1} field {PARAM_COLUMNS[j]} = {table[i, j]}: not finite"
        )
    checks = (
        (table[:, 3] < 0, "b", "negative b-value (s/mm^2)"),
        (table[:, 4] <= 0, "TI", "TI must be > 0 ms"),
        (table[:, 4] >= TR_MS, "TI", f"TI must be < TR = {TR_MS:g} ms"),
        (table[:, 5] <= 0, "TE", "TE must be > 0 ms"),
    )
    for bad, name, why in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            value = table[i, PARAM_COLUMNS.index(name)]
            raise ValueError(f"{source}: row {i + 1} field {name} = {value}: {why}")
    dw = table[:, 3] > B0_TOLERANCE
    norm = np.linalg.norm(table[:, :3], axis=1)
    bad = dw & (np.abs(norm - 1.0) > GRADIENT_NORM_TOLERANCE)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{source}: row {i + 1} field gx gy gz = {table[i, :3].tolist()}: gradient norm "
            f"{norm[i]:.4f} is not 1 (b = {table[i, 3]:g} s/mm^2; give b in s/mm^2 and unit "
            "directions)"
        )
    return table


def tensor_rows(g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(V, 6)` rows `b q(g)` so that `b g^T D g = rows @ (Dxx, Dyy, Dzz, Dxy, Dxz, Dyz)`."""
    gx, gy, gz = g[:, 0], g[:, 1], g[:, 2]
    q = np.stack([gx * gx, gy * gy, gz * gz, 2 * gx * gy, 2 * gx * gz, 2 * gy * gz], axis=1)
    return b[:, None] * q


def _rank(matrix: np.ndarray) -> int:
    """Numerical rank after scaling each column to unit maximum."""
    if matrix.size == 0:
        return 0
    scale = np.abs(matrix).max(axis=0)
    scale[scale == 0] = 1.0
    return int(np.linalg.matrix_rank(matrix / scale, tol=1e-8 * np.sqrt(matrix.shape[0])))


def make_design(params: np.ndarray, te_ref: float = TE_REF_MS, tr: float = TR_MS) -> Design:
    """The fit design of a validated `(V, 6)` table; unsupported maps come with reasons."""
    table = validate_params(params)
    rows = np.arange(len(table))
    unsupported: dict[str, str] = {}

    dw = table[:, 3] > B0_TOLERANCE
    q = tensor_rows(table[:, :3], table[:, 3])
    fit_tensor = dw.any() and (~dw).any() and _rank(q[dw]) == 6
    if not fit_tensor:
        why = (
            "no diffusion-weighted volumes"
            if not dw.any()
            else "no b = 0 volume to anchor the tensor"
            if dw.all()
            else f"the diffusion-weighted directions determine only {_rank(q[dw])} of 6 "
            "tensor elements"
        )
        for name in DIFFUSION_MAPS:
            unsupported[name] = why
        rows = rows[~dw]
    if rows.size == 0:
        why = "0 usable volumes do not determine any parameter (no b = 0 volume)"
        return Design(
            rows=rows,
            columns=("logPD",),
            b_matrix=np.ones((0, 1)),
            ti=np.zeros(0),
            fit_t1=False,
            tr=float(tr),
            unsupported={name: unsupported.get(name, why) for name in MAP_NAMES},
        )

    tis, counts = np.unique(table[rows, 4], return_counts=True)
    fit_t1 = len(tis) >= MIN_TIS_FOR_T1
    if not fit_t1:
        unsupported["T1"] = f"{len(tis)} inversion time(s) ({', '.join(f'{t:g}' for t in tis)} ms)"
        unsupported["PD"] = "T1 is not fitted, so the inversion-recovery factor stays in PD'"
        rows = rows[table[rows, 4] == tis[np.argmax(counts)]]

    tes = np.unique(table[rows, 5])
    fit_t2star = len(tes) >= 2
    if not fit_t2star:
        unsupported["T2star"] = f"one echo time only (TE = {tes[0]:g} ms)"
        if not np.isclose(tes[0], te_ref):
            unsupported.setdefault(
                "PD", f"T2* is not fitted and the echo ({tes[0]:g} ms) is not at TEref"
            )

    columns = ["logPD"] + (["R2star"] if fit_t2star else [])
    parts = [np.ones((len(rows), 1))]
    if fit_t2star:
        parts.append(-(table[rows, 5:6] - te_ref))
    if fit_tensor:
        columns += list(TENSOR_COLUMNS)
        parts.append(-q[rows])
    b_matrix = np.concatenate(parts, axis=1)
    n_params = b_matrix.shape[1] + int(fit_t1)
    if len(rows) <= n_params or _rank(b_matrix) < b_matrix.shape[1]:
        why = f"{len(rows)} usable volumes do not determine {n_params} parameters"
        for name in MAP_NAMES:
            unsupported.setdefault(name, why)
    return Design(
        rows=rows,
        columns=tuple(columns),
        b_matrix=b_matrix,
        ti=table[rows, 4].copy(),
        fit_t1=fit_t1,
        tr=float(tr),
        unsupported=unsupported,
    )
