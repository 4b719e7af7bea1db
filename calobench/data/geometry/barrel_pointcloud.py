"""CEPC Si-W ECAL barrel read out as a point cloud (seed 000).

30 sensitive layers of 0.5 mm silicon with 5x5 mm pads; tungsten absorber of 2.1 mm in
front of each of the first 20 layers and 4.2 mm in front of the last 10 (24 X0 in all,
the CEPC CDR ECAL baseline). Inner radius 1800 mm; each layer also holds 3.0 mm of
readout board, glue and air gap (modelled as gap). See docs/geometries.md.
"""

from __future__ import annotations

import numpy as np

from calobench.data.geometry.base import POINTCLOUD, BarrelLayout, Geometry

INNER_RADIUS_MM = 1800.0
N_LAYERS = 30
SENSOR_MM = 0.5
GAP_MM = 3.0
CELL_MM = 5.0
HALF_LENGTH_MM = 2350.0


def absorber_thickness() -> np.ndarray:
    """(30,) tungsten thickness in front of each sensitive layer, mm."""
    return np.where(np.arange(N_LAYERS) < 20, 2.1, 4.2)


def layer_radii() -> np.ndarray:
    """(30,) radius of the middle of each silicon layer, mm."""
    pitch = absorber_thickness() + SENSOR_MM + GAP_MM
    front = INNER_RADIUS_MM + np.concatenate([[0.0], np.cumsum(pitch)[:-1]])
    return front + absorber_thickness() + SENSOR_MM / 2.0


def cepc() -> Geometry:
    barrel = BarrelLayout(
        inner_radius=INNER_RADIUS_MM,
        layer_radii=tuple(float(r) for r in layer_radii()),
        absorber_thickness=tuple(float(t) for t in absorber_thickness()),
        sensor_thickness=SENSOR_MM,
        cell_size=CELL_MM,
        half_length=HALF_LENGTH_MM,
        absorber="G4_W",
        sensor="G4_Si",
    )
    return Geometry(
        name="cepc",
        kind=POINTCLOUD,
        description="CEPC Si-W ECAL barrel: 30 layers, 5x5 mm Si pads, inner radius 1.8 m (point cloud)",
        threshold=0.05,
        shape=(),
        barrel=barrel,
        materials="tungsten absorber, 0.5 mm silicon sensors",
    )
