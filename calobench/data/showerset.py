"""ShowerSet: incident energies, named conditions and showers of one sample.

Units: energies and cell energies in MeV, positions in mm.
Voxel geometries hold showers as a dense (N, cells) float32 array; point clouds hold a
ragged CellList (``cells`` (M, 4) rows x, y, z, E and ``offsets`` (N + 1,)).
A ShowerSet opened from a file reads its showers lazily: ``iter_chunks`` streams them
without loading the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol

import numpy as np

from calobench.errors import CalobenchError
from calobench.data.geometry import Geometry
from calobench.data.validation import check_conditions, check_voxel_showers


@dataclass(frozen=True)
class CellList:
    """Ragged list of point-cloud showers: event i is ``cells[offsets[i]:offsets[i+1]]``.

    cells: (M, 4) float32 rows (x, y, z, E) in mm and MeV; offsets: (N + 1,) int64.
    """

    cells: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        if self.cells.ndim != 2 or self.cells.shape[1] != 4:
            raise ValueError(f"cells must have shape (M, 4), found {self.cells.shape}")
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0 \
                or self.offsets[-1] != len(self.cells) or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must start at 0, never decrease and end at len(cells)")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.cells[self.offsets[index]:self.offsets[index + 1]]

    @property
    def counts(self) -> np.ndarray:
        """(N,) number of cells per shower."""
        return np.diff(self.offsets)

    @property
    def event_index(self) -> np.ndarray:
        """(M,) event number of each cell."""
        return np.repeat(np.arange(len(self)), self.counts)

    def slice(self, start: int, stop: int) -> "CellList":
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        return CellList(self.cells[lo:hi], self.offsets[start:stop + 1] - lo)

    def take(self, index: np.ndarray) -> "CellList":
        """The showers at the given event indices, in that order."""
        index = np.asarray(index, dtype=np.int64)
        counts = self.counts[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        starts = self.offsets[index]
        cell_index = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
        return CellList(self.cells[cell_index], offsets)

    @staticmethod
    def concatenate(parts: list["CellList"]) -> "CellList":
        cells = np.concatenate([p.cells for p in parts]) if parts else np.zeros((0, 4), np.float32)
        counts = np.concatenate([p.counts for p in parts]) if parts else np.zeros(0, np.int64)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return CellList(cells, offsets)

    @staticmethod
    def from_showers(showers: list[np.ndarray]) -> "CellList":
        """Build from a list of (n_i, 4) arrays."""
        counts = np.array([len(s) for s in showers], dtype=np.int64)
        offsets = np.zeros(len(showers) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        cells = np.concatenate(showers).astype(np.float32) if showers else np.zeros((0, 4), np.float32)
        return CellList(cells.reshape(-1, 4), offsets)


class ShowerSource(Protocol):
    """Where a file-backed ShowerSet reads its showers from (a ShowerFileReader)."""

    def read_showers(self, start: int, stop: int) -> "np.ndarray | CellList":
        """Showers of events start..stop-1: (n, cells) float32 or a CellList."""


@dataclass(eq=False)
class ShowerSet:
    """One sample of showers.

    geometry: the readout. energies: (N,) incident energy in MeV.
    conditions: name -> (N,) array of extra conditions (units in the dataset docs).
    showers: (N, cells) float32 for voxel geometries, a CellList for point clouds.
    particle: particle name(s), e.g. ``"gamma"``. provenance: how it was made (JSON-able).
    """

    geometry: Geometry
    energies: np.ndarray
    conditions: dict[str, np.ndarray] = field(default_factory=dict)
    _showers: np.ndarray | CellList | None = None
    particle: str = ""
    provenance: dict = field(default_factory=dict)
    dataset: str = ""
    source: ShowerSource | None = field(default=None, repr=False)

    def __init__(
        self,
        geometry: Geometry,
        energies: np.ndarray,
        showers: np.ndarray | CellList | None = None,
        conditions: dict[str, np.ndarray] | None = None,
        particle: str = "",
        provenance: dict | None = None,
        dataset: str = "",
        source: ShowerSource | None = None,
    ) -> None:
        self.geometry = geometry
        self.energies = np.asarray(energies).reshape(-1)
        self.conditions = check_conditions(conditions, len(self.energies), self._what())
        self.particle = particle
        self.provenance = dict(provenance or {})
        self.dataset = dataset or geometry.name
        self.source = source
        self._showers = None
        if showers is not None:
            self._showers = self._checked(showers)
        elif source is None:
            raise ValueError("a ShowerSet needs showers or a file to read them from")

    def _what(self) -> str:
        return f"showers of {self.geometry.name}"

    def _checked(self, showers):
        n = len(self.energies)
        if self.geometry.is_voxel:
            return check_voxel_showers(showers, n, self.geometry.n_cells, self._what())
        if not isinstance(showers, CellList):
            raise CalobenchError(f"{self._what()}: a point-cloud geometry needs a CellList, "
                                 f"found {type(showers).__name__}")
        if len(showers) != n:
            raise CalobenchError(f"{self._what()}: the CellList holds {len(showers)} showers for {n} energies")
        return showers

    # ---- access ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.energies)

    @property
    def showers(self) -> np.ndarray | CellList:
        """All showers (read from the file on first access when the set is file-backed)."""
        if self._showers is None:
            self._showers = self.source.read_showers(0, len(self))
        return self._showers

    @property
    def is_loaded(self) -> bool:
        return self._showers is not None

    def condition_matrix(self, names: list[str] | None = None) -> np.ndarray:
        """(N, k) float64 matrix of the named conditions (default: all, in order)."""
        names = list(self.conditions) if names is None else names
        if not names:
            return np.zeros((len(self), 0))
        return np.stack([np.asarray(self.conditions[n], dtype=np.float64) for n in names], axis=1)

    def _subset(self, energies, conditions, showers) -> "ShowerSet":
        return ShowerSet(self.geometry, energies, showers, conditions, self.particle,
                         self.provenance, self.dataset)

    def slice(self, start: int, stop: int) -> "ShowerSet":
        """Events start..stop-1 as an in-memory ShowerSet (reads only that range)."""
        stop = min(stop, len(self))
        if self._showers is not None:
            showers = self._showers[start:stop] if self.geometry.is_voxel else self._showers.slice(start, stop)
        else:
            showers = self.source.read_showers(start, stop)
        return self._subset(self.energies[start:stop], {k: v[start:stop] for k, v in self.conditions.items()},
                            showers)

    def take(self, index: np.ndarray) -> "ShowerSet":
        """The events at the given indices, in that order (loads the showers)."""
        index = np.asarray(index, dtype=np.int64)
        showers = self.showers[index] if self.geometry.is_voxel else self.showers.take(index)
        return self._subset(self.energies[index], {k: v[index] for k, v in self.conditions.items()}, showers)

    def iter_chunks(self, size: int) -> Iterator["ShowerSet"]:
        """Consecutive chunks of at most ``size`` events; file-backed sets read one chunk at a time."""
        if size < 1:
            raise ValueError("chunk size must be at least 1")
        for start in range(0, len(self), size):
            yield self.slice(start, start + size)

    @staticmethod
    def concatenate(parts: list["ShowerSet"]) -> "ShowerSet":
        """Join in-memory sets of the same geometry."""
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        if any(p.geometry.name != first.geometry.name for p in parts):
            raise CalobenchError("cannot concatenate showers of different geometries")
        energies = np.concatenate([p.energies for p in parts])
        conditions = {k: np.concatenate([p.conditions[k] for p in parts]) for k in first.conditions}
        if first.geometry.is_voxel:
            showers = np.concatenate([p.showers for p in parts])
        else:
            showers = CellList.concatenate([p.showers for p in parts])
        return ShowerSet(first.geometry, energies, showers, conditions, first.particle, first.provenance,
                         first.dataset)

    # ---- derived quantities --------------------------------------------------------
    def total_energy(self) -> np.ndarray:
        """(N,) summed cell energy in MeV (reads the showers)."""
        if self.geometry.is_voxel:
            return self.showers.sum(axis=1, dtype=np.float64)
        cl = self.showers
        return np.bincount(cl.event_index, weights=cl.cells[:, 3].astype(np.float64), minlength=len(self))

    def point_cloud(self) -> CellList:
        """Point-cloud view (x, y, z, E per non-zero cell); point clouds return themselves."""
        if not self.geometry.is_voxel:
            return self.showers
        cells, offsets = self.geometry.point_cloud(self.showers)
        return CellList(cells, offsets)
