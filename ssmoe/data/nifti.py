"""NIfTI-1 helpers: headers with consistent affine/zooms, and a bounded-memory 4D writer."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import nibabel as nib
import numpy as np

from ssmoe.data.protocol import TR_MS


def make_header(shape: tuple[int, ...], affine: np.ndarray, dtype=np.float32) -> nib.Nifti1Header:
    """A NIfTI-1 header whose qform, sform and zooms all agree with `affine` (mm; TR in s)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape(shape)
    hdr.set_qform(affine, code=1)
    hdr.set_sform(affine, code=1)
    zooms = tuple(float(z) for z in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)))
    if len(shape) == 4:
        zooms = zooms + (TR_MS / 1000.0,)
    hdr.set_zooms(zooms)
    hdr.set_xyzt_units("mm", "sec")
    return hdr


def save_volume(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Save a 3D array with a `make_header` header (gzip if the name ends in .gz)."""
    img = nib.Nifti1Image(data, affine, make_header(data.shape, affine, data.dtype))
    nib.save(img, str(path))


class VolumeStreamWriter:
    """Writes a 4D float32 `.nii` file one 3D volume at a time (memory: one volume).

    The header (shape `(X, Y, Z, V)`) is written first; each `write(volume)` appends the next
    volume in NIfTI (Fortran) order. Closing with fewer than V volumes is an error, and the
    partial file is removed when the `with` block raises.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], n_volumes: int, affine) -> None:
        if str(path).endswith(".gz"):
            raise ValueError(f"{path}: streaming writes need an uncompressed .nii file")
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 3:
            raise ValueError(f"{path}: volume shape must be 3D, got {self.shape}")
        self.n_volumes = int(n_volumes)
        self.written = 0
        hdr = make_header(self.shape + (self.n_volumes,), affine, np.float32)
        hdr["vox_offset"] = 352
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        self._file.write(hdr.binaryblock)
        self._file.write(b"\x00" * (352 - len(hdr.binaryblock)))  # empty extension block

    def write(self, volume: np.ndarray) -> None:
        """Append one `(X, Y, Z)` volume (cast to little-endian float32)."""
        if volume.shape != self.shape:
            raise ValueError(f"{self.path}: volume shape {volume.shape} != {self.shape}")
        if self.written >= self.n_volumes:
            raise ValueError(f"{self.path}: more than {self.n_volumes} volumes written")
        self._file.write(np.asarray(volume, dtype="<f4").tobytes(order="F"))
        self.written += 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        if self.written != self.n_volumes:
            raise ValueError(f"{self.path}: {self.written} of {self.n_volumes} volumes written")

    def abort(self) -> None:
        """Close and delete the partial file."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> VolumeStreamWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
