"""Geometries: immutable readout descriptions (see base.Geometry) and the builders of each kind.

The detectors themselves (their names and numbers) are defined in calobench.datasets.
"""

from calobench.data.geometry.barrel_pointcloud import make_barrel
from calobench.data.geometry.base import CYLINDRICAL, GRID, POINTCLOUD, BarrelLayout, Geometry, LayerBinning
from calobench.data.geometry.crystal_grid import make_grid
from calobench.data.geometry.cylindrical import from_binning, read_binning

__all__ = [
    "BarrelLayout", "CYLINDRICAL", "GRID", "Geometry", "LayerBinning", "POINTCLOUD",
    "from_binning", "make_barrel", "make_grid", "read_binning",
]
