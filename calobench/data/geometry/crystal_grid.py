"""Regular box grids of crystals or voxels (the ``grid`` kind)."""

from __future__ import annotations

import numpy as np

from calobench.data.geometry.base import GRID, Geometry


def make_grid(
    name: str,
    description: str,
    n_layers: int,
    ny: int,
    nx: int,
    cell_size: tuple[float, float, float],
    threshold: float,
    materials: str,
    zernike_radius: float | None = None,
) -> Geometry:
    """A (layers, ny, nx) box grid centred on the middle cell, x fastest.

    cell_size: (dx, dy, dz) in mm. x and y are transverse, measured from the middle
    of the grid; z is the depth of the cell centre behind the front face.
    threshold: readout threshold per cell in MeV.
    zernike_radius: mm; given for a crystal image (one layer of n x n crystals, n odd, centred
    on the hit crystal), which it marks as such (Geometry.crystal_image).
    """
    dx, dy, dz = cell_size
    layer, iy, ix = np.meshgrid(np.arange(n_layers), np.arange(ny), np.arange(nx), indexing="ij")
    centres = np.stack(
        [
            (ix.ravel() - (nx - 1) / 2.0) * dx,
            (iy.ravel() - (ny - 1) / 2.0) * dy,
            (layer.ravel() + 0.5) * dz,
        ],
        axis=1,
    )
    sizes = np.tile(np.array([dx, dy, dz], dtype=np.float64), (centres.shape[0], 1))
    return Geometry(
        name=name,
        kind=GRID,
        description=description,
        threshold=threshold,
        shape=(n_layers, ny, nx),
        centres=centres,
        sizes=sizes,
        layer_index=layer.ravel(),
        materials=materials,
        crystal_image=zernike_radius is not None,
        zernike_radius=zernike_radius,
    )
