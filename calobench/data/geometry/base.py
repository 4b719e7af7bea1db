"""The Geometry data model: an immutable description of a calorimeter readout.

Units: mm for lengths, MeV for energies, radians for angles inside the model.
Three kinds exist:

- ``grid``: a regular box grid of crystals or voxels, shape (layers, ny, nx);
  cells are flattened with x fastest, then y, then layer.
- ``cylindrical``: the CaloChallenge (layer, alpha, r) binning read from an official
  binning XML; cells are flattened with r fastest, then alpha, then layer.
- ``pointcloud``: a detector read out as a list of hit cells (x, y, z, E) in global
  coordinates; there is no fixed cell vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

GRID = "grid"
CYLINDRICAL = "cylindrical"
POINTCLOUD = "pointcloud"
KINDS = (GRID, CYLINDRICAL, POINTCLOUD)


def _frozen(array: np.ndarray | None, dtype=np.float64) -> np.ndarray | None:
    if array is None:
        return None
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class LayerBinning:
    """Polar binning of one readout layer (cylindrical geometries).

    ``layer_id`` is the id in the binning XML, ``r_edges`` the radial bin edges in mm,
    ``n_alpha`` the number of equal azimuthal bins over [-pi, pi).
    """

    layer_id: int
    r_edges: tuple[float, ...]
    n_alpha: int

    @property
    def n_r(self) -> int:
        return len(self.r_edges) - 1

    @property
    def n_cells(self) -> int:
        return self.n_r * self.n_alpha

    @property
    def r_centres(self) -> np.ndarray:
        edges = np.asarray(self.r_edges)
        return 0.5 * (edges[1:] + edges[:-1])

    @property
    def alpha_centres(self) -> np.ndarray:
        edges = np.linspace(-np.pi, np.pi, self.n_alpha + 1)
        return 0.5 * (edges[1:] + edges[:-1])


@dataclass(frozen=True)
class BarrelLayout:
    """Layers of a cylindrical sampling barrel read out as a point cloud.

    ``layer_radii`` (L,) radius of the middle of each sensitive layer in mm;
    ``absorber_thickness`` (L,) mm of absorber in front of each sensitive layer;
    ``sensor_thickness`` mm; ``cell_size`` mm (square pads, in r-phi and z);
    ``half_length`` mm of the barrel along z.
    """

    inner_radius: float
    layer_radii: tuple[float, ...]
    absorber_thickness: tuple[float, ...]
    sensor_thickness: float
    cell_size: float
    half_length: float
    absorber: str
    sensor: str

    @property
    def n_layers(self) -> int:
        return len(self.layer_radii)

    @property
    def outer_radius(self) -> float:
        return float(self.layer_radii[-1] + self.sensor_thickness)

    def layer_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index of the nearest sensitive layer for global positions (x, y) in mm."""
        radii = np.asarray(self.layer_radii)
        r = np.hypot(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        index = np.searchsorted(radii, r)
        index = np.clip(index, 1, len(radii) - 1)
        nearer_left = (r - radii[index - 1]) < (radii[index] - r)
        return np.where(nearer_left, index - 1, index)


@dataclass(frozen=True, eq=False)
class Geometry:
    """An immutable readout description.

    Attributes
    ----------
    name: registered name, e.g. ``"stcf11x11"``.
    kind: ``"grid"``, ``"cylindrical"`` or ``"pointcloud"``.
    description: one line for people.
    threshold: readout threshold per cell in MeV (cells below it read zero).
    shape: ``(layers, ny, nx)`` for grids, ``(cells,)`` for cylindrical, ``()`` for point clouds.
    centres: (cells, 3) cell centres (x, y, z) in mm in the local shower frame
        (z along the depth), ``None`` for point clouds.
    sizes: (cells, 3) cell extents in mm (x, y, z); for cylindrical cells
        (radial width, arc width at the mid radius, depth).
    layer_index: (cells,) layer number of each cell (0-based, in readout order).
    layers: per-layer polar binning (cylindrical only).
    barrel: barrel layout (point clouds only).
    materials: free text naming the materials, for documentation.

    What the metrics ask of a geometry (instead of guessing from its name or shape):

    crystal_image: True for one layer of n x n crystals (n odd) centred on the hit crystal, the
        image a crystal calorimeter's clustering sees; compare adds the crystal-shape features
        (E_kxk, shower moments, Zernike moments).
    zernike_radius: radius R0 in mm of the Zernike moments of a crystal image (None otherwise).
    histogram_ranges: CaloChallenge geometries only: layer id -> {quantity: (lo, hi)}, the
        challenge's histogram range in mm of ``"ec"`` (centres of energy in eta and phi),
        ``"width"`` (widths in eta and phi), ``"ec_r"`` and ``"width_r"``; when set, compare bins
        every feature as the challenge does. None elsewhere (bins from the reference's quantiles).
    """

    name: str
    kind: str
    description: str
    threshold: float
    shape: tuple[int, ...]
    centres: np.ndarray | None = None
    sizes: np.ndarray | None = None
    layer_index: np.ndarray | None = None
    layers: tuple[LayerBinning, ...] = ()
    barrel: BarrelLayout | None = None
    materials: str = ""
    crystal_image: bool = False
    zernike_radius: float | None = None
    histogram_ranges: Mapping[int, Mapping[str, tuple[float, float]]] | None = None
    _layer_starts: tuple[int, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"geometry {self.name}: kind must be one of {KINDS}, found {self.kind!r}")
        object.__setattr__(self, "centres", _frozen(self.centres))
        object.__setattr__(self, "sizes", _frozen(self.sizes))
        object.__setattr__(self, "layer_index", _frozen(self.layer_index, np.int64))
        if self.layer_index is not None:
            starts = np.flatnonzero(np.diff(self.layer_index, prepend=-1)) if len(self.layer_index) else []
            object.__setattr__(self, "_layer_starts", tuple(int(s) for s in starts))
        if self.crystal_image:
            square = self.kind == GRID and self.shape[0] == 1 and self.shape[1] == self.shape[2] and self.shape[1] % 2
            if not square or not self.zernike_radius:
                raise ValueError(f"geometry {self.name}: a crystal image is one layer of n x n crystals (n odd) "
                                 f"with a zernike_radius")

    # ---- sizes -------------------------------------------------------------------
    @property
    def is_voxel(self) -> bool:
        """True when showers are a fixed (N, cells) array (grid or cylindrical)."""
        return self.kind != POINTCLOUD

    @property
    def n_cells(self) -> int | None:
        """Number of readout cells, ``None`` for point clouds."""
        return None if self.centres is None else int(self.centres.shape[0])

    @property
    def n_layers(self) -> int:
        if self.kind == POINTCLOUD:
            return self.barrel.n_layers if self.barrel else 0
        return len(self._layer_starts)

    @property
    def layer_slices(self) -> list[slice]:
        """Contiguous cell ranges of each layer (voxel geometries)."""
        if not self.is_voxel:
            raise ValueError(f"geometry {self.name} is a point cloud: it has no cell vector")
        ends = list(self._layer_starts[1:]) + [self.n_cells]
        return [slice(s, e) for s, e in zip(self._layer_starts, ends)]

    # ---- views -------------------------------------------------------------------
    def point_cloud(self, showers: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Point-cloud view of voxel showers.

        showers: (N, cells) in MeV. Cells with energy above ``threshold`` (default: 0,
        i.e. every non-zero cell) become points.
        Returns ``cells`` (M, 4) float32 rows (x, y, z, E) in mm and MeV, and
        ``offsets`` (N + 1,) int64 so that event i is ``cells[offsets[i]:offsets[i+1]]``.
        """
        if not self.is_voxel:
            raise ValueError(f"geometry {self.name} is already a point cloud")
        showers = np.asarray(showers)
        if showers.ndim != 2 or showers.shape[1] != self.n_cells:
            raise ValueError(f"expected showers of shape (N, {self.n_cells}), found {showers.shape}")
        selected = showers != 0 if threshold is None else showers > threshold
        event, cell = np.nonzero(selected)
        cells = np.empty((len(cell), 4), dtype=np.float32)
        cells[:, :3] = self.centres[cell]
        cells[:, 3] = showers[event, cell]
        counts = np.bincount(event, minlength=showers.shape[0])
        offsets = np.zeros(showers.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cells, offsets

    def summary(self) -> dict:
        """Plain description for tables and JSON."""
        out = {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "threshold_MeV": self.threshold,
            "shape": list(self.shape),
            "cells": self.n_cells,
            "layers": self.n_layers,
            "materials": self.materials,
        }
        if self.barrel is not None:
            out["inner_radius_mm"] = self.barrel.inner_radius
            out["cell_size_mm"] = self.barrel.cell_size
        return out
