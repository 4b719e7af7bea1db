"""Reading and writing shower files: the CaloChallenge HDF5 layout plus optional extras.

Layout (all energies in MeV, lengths in mm):
- ``incident_energies`` (N, 1): the CaloChallenge key, read and written unchanged.
- ``showers`` (N, cells): dense voxel showers, the CaloChallenge key.
- or, for sparse voxel storage, ``voxel_index`` (M,) int32 + ``voxel_energy`` (M,) float32
  + ``offsets`` (N + 1,) int64.
- or, for point clouds, ``cells`` (M, 4) float32 rows (x, y, z, E) + ``offsets`` (N + 1,) int64.
- optional ``conditions`` (N, k) float64 with attribute ``names`` (k strings).
- optional root attributes: ``calobench_format_version``, ``geometry``, ``dataset``,
  ``particle``, ``provenance`` (a JSON string).
Writes go to a temporary file in the same folder that is renamed into place on success.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from calobench.errors import CalobenchError
from calobench.data.geometry import Geometry
from calobench.data.showerset import CellList, ShowerSet
from calobench.data.validation import check_conditions, check_energies, check_output_file

FORMAT_VERSION = "1.0"
ENERGY_KEY = "incident_energies"
DENSE_KEY = "showers"
CONDITIONS_KEY = "conditions"
#: The three ways a file stores its showers.
DENSE, SPARSE, POINTCLOUD_LAYOUT = "dense", "sparse", "pointcloud"


def _attr_str(value, path: Path | None = None, key: str = "") -> str:
    """An HDF5 attribute as text; bytes that are not UTF-8 give a one-line CalobenchError."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    try:
        # h5py hands non-UTF-8 text over as bytes, or as str with surrogate escapes
        return value.decode() if isinstance(value, bytes) else str(value).encode("utf-8").decode("utf-8")
    except UnicodeError:
        raise CalobenchError(f"{path}: attribute '{key}': expected UTF-8 text, found undecodable bytes") from None


#: The largest root attribute read (calobench's own are short JSON and names).
ATTRIBUTE_BYTES_MAX = 1 << 20


def _root_attrs(path: Path, f: h5py.File) -> dict[str, str]:
    """The root attributes as text; a name or value that cannot be read gives a CalobenchError."""
    try:
        items = []
        for name in list(f.attrs):
            # a corrupt attribute header can declare gigabytes, which HDF5 would allocate and read
            attr = f.attrs.get_id(name)
            declared = int(np.prod(attr.shape or ())) * attr.dtype.itemsize
            if declared > ATTRIBUTE_BYTES_MAX:
                raise CalobenchError(f"{path}: attribute '{_attr_str(name, path, '(name)')}': declares shape "
                                     f"{attr.shape} ({declared} bytes): corrupt")
            items.append((name, f.attrs[name]))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise CalobenchError(f"{path}: root attributes unreadable ({type(exc).__name__})") from None
    return {_attr_str(k, path, "(name)"): _attr_str(v, path, _attr_str(k, path, "(name)")) for k, v in items}


#: What h5py and numpy raise on a corrupt or malformed file (read inside _guard).
_READ_ERRORS = (OSError, UnicodeDecodeError, ValueError, TypeError, IndexError, KeyError, AttributeError,
                RuntimeError, OverflowError, MemoryError)


class _guard:
    """A context manager turning any low-level read error into a one-line CalobenchError about ``path``."""

    def __init__(self, path: Path, what: str = "") -> None:
        self.path, self.what = path, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, _READ_ERRORS) and not issubclass(exc_type, CalobenchError):
            where = f"{self.what}: " if self.what else ""
            detail = " ".join(str(exc).split())[:160]
            raise CalobenchError(f"{self.path}: {where}unreadable or malformed data, file truncated or corrupt "
                                 f"({type(exc).__name__}: {detail})") from None
        return False


def _open(path: Path) -> h5py.File:
    """The file opened for reading; a one-line CalobenchError when it is missing or not HDF5."""
    if not path.exists():
        raise CalobenchError(f"{path}: no such file")
    if path.is_dir():
        raise CalobenchError(f"{path}: is a folder, expected an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).split("(")[-1].rstrip(")") if "(" in str(exc) else str(exc)
        raise CalobenchError(f"{path}: not a readable HDF5 file ({reason.strip()})") from None


#: A dataset may declare more bytes than it stores (compression) up to this ratio (deflate, the
#: filter of the challenge's files, compresses at most ~1032:1); beyond it, and above
#: DECLARED_BYTES_FREE, its shape is corrupt (a flipped byte can declare terabytes in a small file,
#: which reading would try to allocate).
MAX_COMPRESSION = 1100
DECLARED_BYTES_FREE = 16 << 20


def _fail(path: Path, key: str, problem: str) -> CalobenchError:
    return CalobenchError(f"{path}: key '{key}': {problem}")


def _layout(path: Path, f: h5py.File) -> str:
    """How the file stores its showers: dense, sparse or pointcloud."""
    if DENSE_KEY in f:
        return DENSE
    if "voxel_index" in f:
        return SPARSE
    if "cells" in f:
        return POINTCLOUD_LAYOUT
    raise _fail(path, DENSE_KEY, f"missing (file holds: {', '.join(sorted(f.keys())) or 'nothing'})")


@dataclass(frozen=True)
class FileHeader:
    """What a shower file says about itself, read before its geometry is known.

    attrs: root attributes as strings (``geometry`` and ``dataset`` name the readout when present);
    layout: ``dense``, ``sparse`` or ``pointcloud``; n_cells: cells per shower of a dense file
    (None for the other layouts or a malformed ``showers`` key).
    """

    path: Path
    attrs: dict[str, str]
    layout: str
    n_cells: int | None


def read_header(path: str | Path) -> FileHeader:
    """The attributes and layout of a shower file (nothing is validated beyond that)."""
    path = Path(path)
    with _open(path) as f, _guard(path):
        attrs = _root_attrs(path, f)
        layout = _layout(path, f)
        node = f[DENSE_KEY] if layout == DENSE else None
        if layout == DENSE and not isinstance(node, h5py.Dataset):
            raise _fail(path, DENSE_KEY, "expected a dataset, found a group")
        n_cells = int(node.shape[1]) if isinstance(node, h5py.Dataset) and node.ndim == 2 else None
    return FileHeader(path, attrs, layout, n_cells)


class ShowerFileReader:
    """An opened, validated shower file of a known geometry. Metadata is read at once; showers on demand.

    geometry: the readout the file is checked against (the caller resolves it, see
    calobench.datasets.open_dataset_file); dataset: the dataset name the ShowerSet carries
    (default: the geometry's name); geometry_source: how the geometry was found
    (``given``, ``declared`` or ``inferred``), for reports.
    """

    def __init__(self, path: str | Path, geometry: Geometry, dataset: str = "",
                 geometry_source: str = "given") -> None:
        self.path = Path(path)
        self.geometry = geometry
        self.dataset = dataset or geometry.name
        self.geometry_source = geometry_source
        with _open(self.path) as f, _guard(self.path):
            self._read_metadata(f)

    # ---- metadata and validation ---------------------------------------------------
    def _fail(self, key: str, problem: str) -> CalobenchError:
        return _fail(self.path, key, problem)

    def _dataset(self, f: h5py.File, key: str) -> h5py.Dataset:
        if key not in f:
            raise self._fail(key, f"missing (file holds: {', '.join(sorted(f.keys())) or 'nothing'})")
        node = f[key]
        if not isinstance(node, h5py.Dataset):
            raise self._fail(key, "expected a dataset, found a group")
        if node.dtype.kind not in "fiu":
            raise self._fail(key, f"expected a numeric dtype, found {node.dtype}")
        if node.ndim == 0:
            raise self._fail(key, "expected an array, found a scalar")
        declared = node.size * node.dtype.itemsize
        if declared > DECLARED_BYTES_FREE and not (node.is_virtual or node.external):
            with _guard(self.path, f"key '{key}'"):
                stored = node.id.get_storage_size()
            if declared > MAX_COMPRESSION * stored:
                raise self._fail(key, f"declares shape {node.shape} ({declared / 1e6:.0f} MB) but stores "
                                      f"{stored} bytes: corrupt or truncated")
        return node

    def _values(self, node: h5py.Dataset, key: str) -> np.ndarray:
        """All values of a dataset; corrupt or truncated data give a CalobenchError naming the key."""
        with _guard(self.path, f"key '{key}'"):
            return node[()]

    def _read_metadata(self, f: h5py.File) -> None:
        attrs = _root_attrs(self.path, f)
        self.attrs = attrs
        self.format_version = attrs.get("calobench_format_version", "")
        self.particle = attrs.get("particle", "")
        try:
            self.provenance = json.loads(attrs["provenance"]) if "provenance" in attrs else {}
        except json.JSONDecodeError:
            raise self._fail("provenance", "root attribute is not valid JSON") from None
        if not isinstance(self.provenance, dict):
            raise self._fail("provenance", f"expected a JSON object, found {type(self.provenance).__name__}")

        energies = self._dataset(f, ENERGY_KEY)
        if not (energies.ndim == 1 or (energies.ndim == 2 and energies.shape[1] == 1)):
            raise self._fail(ENERGY_KEY, f"expected shape (N, 1), found {energies.shape}")
        values = self._values(energies, ENERGY_KEY).reshape(-1)
        check_energies(values, f"{self.path}: key '{ENERGY_KEY}'")
        self.energies = values  # the file's own dtype (float32 in challenge files) is kept
        n = self.n_events = len(values)

        self.layout = _layout(self.path, f)
        #: events per HDF5 chunk of the dense showers (None: contiguous or not dense)
        self.chunk_rows: int | None = None
        geometry = self.geometry
        if self.layout == POINTCLOUD_LAYOUT and geometry.is_voxel:
            raise self._fail("cells", f"point-cloud layout given for voxel geometry {geometry.name}")
        if self.layout != POINTCLOUD_LAYOUT and not geometry.is_voxel:
            raise self._fail("cells", f"missing: geometry {geometry.name} is a point cloud")

        if self.layout == DENSE:
            showers = self._dataset(f, DENSE_KEY)
            if showers.ndim != 2 or showers.shape[1] != geometry.n_cells:
                raise self._fail(DENSE_KEY, f"expected shape (N, {geometry.n_cells}) for {geometry.name}, "
                                            f"found {showers.shape}")
            if showers.shape[0] != n:
                raise self._fail(DENSE_KEY, f"expected {n} events (as in '{ENERGY_KEY}'), found {showers.shape[0]}")
            self.chunk_rows = showers.chunks[0] if showers.chunks else None
        else:
            value_key = "voxel_energy" if self.layout == SPARSE else "cells"
            offsets = self._dataset(f, "offsets")
            if offsets.shape != (n + 1,):
                raise self._fail("offsets", f"expected shape ({n + 1},) for {n} events, found {offsets.shape}")
            if offsets.dtype.kind == "f":
                raise self._fail("offsets", f"expected integers, found {offsets.dtype}")
            self.offsets = self._values(offsets, "offsets").astype(np.int64)
            values = self._dataset(f, value_key)
            if self.layout == POINTCLOUD_LAYOUT and (values.ndim != 2 or values.shape[1] != 4):
                raise self._fail("cells", f"expected shape (M, 4) rows x, y, z, E, found {values.shape}")
            if self.layout == SPARSE:
                if values.ndim != 1:
                    raise self._fail("voxel_energy", f"expected shape (M,), found {values.shape}")
                index = self._dataset(f, "voxel_index")
                if index.shape != values.shape:
                    raise self._fail("voxel_index", f"expected shape {values.shape} like 'voxel_energy', "
                                                    f"found {index.shape}")
            if self.offsets[0] != 0 or self.offsets[-1] != values.shape[0] or np.any(np.diff(self.offsets) < 0):
                raise self._fail("offsets", f"expected non-decreasing offsets from 0 to {values.shape[0]}")

        self.condition_names: list[str] = []
        self.conditions: dict[str, np.ndarray] = {}
        if CONDITIONS_KEY in f:
            node = self._dataset(f, CONDITIONS_KEY)
            with _guard(self.path, f"key '{CONDITIONS_KEY}', attribute 'names'"):
                raw = np.atleast_1d(node.attrs.get("names", []))
            if raw.ndim != 1:
                raise self._fail(CONDITIONS_KEY, f"attribute 'names': expected a list of names, found shape {raw.shape}")
            names = [_attr_str(x, self.path, f"{CONDITIONS_KEY}.names") for x in raw]
            if len(set(names)) != len(names):
                raise self._fail(CONDITIONS_KEY, "attribute 'names': a name appears twice")
            if node.ndim != 2 or node.shape[0] != n:
                raise self._fail(CONDITIONS_KEY, f"expected shape ({n}, k), found {node.shape}")
            if len(names) != node.shape[1]:
                raise self._fail(CONDITIONS_KEY, f"attribute 'names' lists {len(names)} names for "
                                                 f"{node.shape[1]} columns")
            matrix = self._values(node, CONDITIONS_KEY)
            self.condition_names = names
            self.conditions = check_conditions({name: matrix[:, i] for i, name in enumerate(names)}, n,
                                               f"{self.path}: key '{CONDITIONS_KEY}'")

    # ---- data ----------------------------------------------------------------------
    def read_showers(self, start: int, stop: int) -> np.ndarray | CellList:
        """Showers of events start..stop-1: (n, cells) float32 or a CellList. Checks values are finite."""
        try:
            with h5py.File(self.path, "r") as f:
                if self.layout == DENSE:
                    out = np.asarray(f[DENSE_KEY][start:stop], dtype=np.float32)
                    key = DENSE_KEY
                else:
                    lo, hi = int(self.offsets[start]), int(self.offsets[stop])
                    offsets = self.offsets[start:stop + 1] - lo
                    if self.layout == SPARSE:
                        key = "voxel_energy"
                        index = f["voxel_index"][lo:hi].astype(np.int64)
                        energy = np.asarray(f["voxel_energy"][lo:hi], dtype=np.float32)
                        if len(index) and (index.min() < 0 or index.max() >= self.geometry.n_cells):
                            raise self._fail("voxel_index", f"expected cell numbers in 0..{self.geometry.n_cells - 1}")
                        out = np.zeros((stop - start, self.geometry.n_cells), dtype=np.float32)
                        rows = np.repeat(np.arange(stop - start), np.diff(offsets))
                        out[rows, index] = energy
                    else:
                        key = "cells"
                        out = CellList(np.asarray(f["cells"][lo:hi], dtype=np.float32), offsets)
        except CalobenchError:
            raise
        except _READ_ERRORS as exc:
            detail = " ".join(str(exc).split())[:160]
            raise CalobenchError(f"{self.path}: events {start}-{stop}: unreadable data, file truncated "
                                 f"or corrupt ({type(exc).__name__}: {detail})") from None
        values = out if isinstance(out, np.ndarray) else out.cells
        if not np.all(np.isfinite(values)):
            bad = np.argwhere(~np.isfinite(values))[0]
            where = f"event {start + bad[0]}" if isinstance(out, np.ndarray) else f"row {int(self.offsets[start]) + bad[0]}"
            raise self._fail(key, f"expected finite values, found {values[tuple(bad)]} at {where}")
        return out

    def showerset(self) -> ShowerSet:
        """A file-backed ShowerSet (showers read lazily)."""
        return ShowerSet(self.geometry, self.energies, None, self.conditions, self.particle,
                         self.provenance, self.dataset, source=self)


class ShowerFileWriter:
    """Write a shower file chunk by chunk, atomically.

    Use as a context manager: data go to ``<path>.partial-<pid>`` and are renamed to
    ``path`` only when the block ends without an error; on error the partial file is removed.
    """

    def __init__(
        self,
        path: str | Path,
        geometry: Geometry,
        condition_names: list[str] | tuple[str, ...] = (),
        particle: str = "",
        provenance: dict | None = None,
        dataset: str = "",
        sparse: bool = False,
        compression: str | None = "gzip",
        energy_dtype=np.float32,
    ) -> None:
        self.path = Path(path)
        self.geometry = geometry
        self.condition_names = list(condition_names)
        self.sparse = sparse and geometry.is_voxel
        self.compression = compression
        self.energy_dtype = energy_dtype
        self.tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        self.n = 0
        self.m = 0
        self._attrs = {
            "calobench_format_version": FORMAT_VERSION,
            "geometry": geometry.name,
            "dataset": dataset or geometry.name,
            "particle": particle,
            "provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
        }
        self.f: h5py.File | None = None

    def __enter__(self) -> "ShowerFileWriter":
        check_output_file(self.path, "save")
        try:
            self.f = h5py.File(self.tmp, "w")
        except OSError as exc:
            raise CalobenchError(f"save: {self.path}: cannot write ({exc})") from None
        for key, value in self._attrs.items():
            self.f.attrs[key] = value
        rows = 1024
        self.f.create_dataset(ENERGY_KEY, shape=(0, 1), maxshape=(None, 1), dtype=self.energy_dtype,
                              chunks=(rows * 16, 1), compression=self.compression)
        if self.condition_names:
            ds = self.f.create_dataset(CONDITIONS_KEY, shape=(0, len(self.condition_names)),
                                       maxshape=(None, len(self.condition_names)), dtype=np.float64,
                                       chunks=(rows * 4, len(self.condition_names)), compression=self.compression)
            ds.attrs["names"] = np.array(self.condition_names, dtype=h5py.string_dtype())
        if self.geometry.is_voxel and not self.sparse:
            v = self.geometry.n_cells
            chunk_rows = max(1, min(1024, (1 << 20) // (4 * v)))
            self.f.create_dataset(DENSE_KEY, shape=(0, v), maxshape=(None, v), dtype=np.float32,
                                  chunks=(chunk_rows, v), compression=self.compression,
                                  shuffle=self.compression is not None)
        else:
            self.f.create_dataset("offsets", shape=(1,), maxshape=(None,), dtype=np.int64, data=[0],
                                  chunks=(1 << 14,), compression=self.compression)
            if self.sparse:
                self.f.create_dataset("voxel_index", shape=(0,), maxshape=(None,), dtype=np.int32,
                                      chunks=(1 << 16,), compression=self.compression, shuffle=True)
                self.f.create_dataset("voxel_energy", shape=(0,), maxshape=(None,), dtype=np.float32,
                                      chunks=(1 << 16,), compression=self.compression, shuffle=True)
            else:
                self.f.create_dataset("cells", shape=(0, 4), maxshape=(None, 4), dtype=np.float32,
                                      chunks=(1 << 14, 4), compression=self.compression, shuffle=True)
        return self

    def append(self, chunk: ShowerSet) -> None:
        """Append the events of an in-memory (or file-backed) ShowerSet."""
        f = self.f
        n = len(chunk)
        if n == 0:
            return
        if chunk.geometry.name != self.geometry.name:
            raise CalobenchError(f"{self.path}: cannot write {chunk.geometry.name} showers into a "
                                 f"{self.geometry.name} file")
        missing = [c for c in self.condition_names if c not in chunk.conditions]
        if missing:
            raise CalobenchError(f"{self.path}: key 'conditions': missing {', '.join(missing)}")
        lo, hi = self.n, self.n + n
        f[ENERGY_KEY].resize((hi, 1))
        f[ENERGY_KEY][lo:hi, 0] = chunk.energies
        if self.condition_names:
            f[CONDITIONS_KEY].resize((hi, len(self.condition_names)))
            f[CONDITIONS_KEY][lo:hi] = chunk.condition_matrix(self.condition_names)
        showers = chunk.showers
        if self.geometry.is_voxel and not self.sparse:
            f[DENSE_KEY].resize((hi, self.geometry.n_cells))
            f[DENSE_KEY][lo:hi] = showers
        else:
            if self.sparse:
                event, cell = np.nonzero(showers)
                values = showers[event, cell]
                counts = np.bincount(event, minlength=n)
            else:
                values, counts = showers.cells, showers.counts
            m_hi = self.m + len(values)
            if self.sparse:
                f["voxel_index"].resize((m_hi,))
                f["voxel_index"][self.m:m_hi] = cell.astype(np.int32)
                f["voxel_energy"].resize((m_hi,))
                f["voxel_energy"][self.m:m_hi] = values
            else:
                f["cells"].resize((m_hi, 4))
                f["cells"][self.m:m_hi] = values
            f["offsets"].resize((hi + 1,))
            f["offsets"][lo + 1:hi + 1] = self.m + np.cumsum(counts)
            self.m = m_hi
        self.n = hi

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.f.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
        except OSError as exc:
            if exc_type is None:
                raise CalobenchError(f"save: {self.path}: cannot write ({exc.strerror or exc})") from None
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


def save(showerset: ShowerSet, path: str | Path, sparse: bool = False, chunk_size: int = 10000,
         compression: str | None = "gzip") -> Path:
    """Write a ShowerSet to ``path`` atomically (temporary file, then rename)."""
    if not isinstance(showerset, ShowerSet):
        raise CalobenchError(f"save: expected a ShowerSet, found {type(showerset).__name__}")
    if not isinstance(path, (str, Path)):
        raise CalobenchError(f"save: expected a file path, found {type(path).__name__}")
    if chunk_size < 1:
        raise CalobenchError(f"save: chunk_size: expected at least 1, found {chunk_size}")
    path = Path(path)
    energy_dtype = showerset.energies.dtype if showerset.energies.dtype.kind == "f" else np.float64
    with ShowerFileWriter(path, showerset.geometry, list(showerset.conditions), showerset.particle,
                          showerset.provenance, showerset.dataset, sparse, compression,
                          energy_dtype) as writer:
        for chunk in showerset.iter_chunks(chunk_size):
            writer.append(chunk)
    return path
