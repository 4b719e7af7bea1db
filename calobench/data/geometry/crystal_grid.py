"""Regular crystal / voxel grids: stcf11x11, bes3-11x11, darkshine.

Dimensions and their sources are listed in docs/geometries.md.
"""

from __future__ import annotations

import numpy as np

from calobench.data.geometry.base import GRID, Geometry

#: Radius of the Zernike moments of the 11x11 crystal images (BESIII EMC reconstruction convention), mm.
CRYSTAL_ZERNIKE_RADIUS_MM = 150.0


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


def stcf11x11() -> Geometry:
    """STCF ECAL barrel: 11x11 pure CsI crystals, ~5x5 cm face, 28 cm long (seed 001)."""
    return make_grid(
        "stcf11x11",
        "STCF ECAL: 11x11 pure CsI crystals (50x50x280 mm) centred on the hit crystal",
        1, 11, 11, (50.0, 50.0, 280.0), threshold=1.0, materials="pure CsI",
        zernike_radius=CRYSTAL_ZERNIKE_RADIUS_MM,
    )


def bes3_11x11() -> Geometry:
    """BESIII EMC barrel: 11x11 CsI(Tl) crystals, 5.2x5.2 cm front face, 28 cm long (seed 004)."""
    return make_grid(
        "bes3-11x11",
        "BESIII EMC: 11x11 CsI(Tl) crystals (52x52x280 mm) centred on the hit crystal",
        1, 11, 11, (52.0, 52.0, 280.0), threshold=1.0, materials="CsI(Tl)",
        zernike_radius=CRYSTAL_ZERNIKE_RADIUS_MM,
    )


def darkshine() -> Geometry:
    """DarkSHINE ECAL: 20x20x11 LYSO cells of 25x25x40 mm (seed 003, notes/geant4-offline)."""
    return make_grid(
        "darkshine",
        "DarkSHINE ECAL: 20x20x11 LYSO cells (25x25x40 mm)",
        11, 20, 20, (25.0, 25.0, 40.0), threshold=0.5, materials="LYSO (Lu1.8Y0.2SiO5:Ce, 7.1 g/cm3)",
    )
