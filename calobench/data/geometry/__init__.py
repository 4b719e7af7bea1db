"""Geometries: named, immutable readout descriptions (see base.Geometry)."""

from __future__ import annotations

from functools import cache
from typing import Callable

from calobench.errors import CalobenchError
from calobench.data.geometry.base import CYLINDRICAL, GRID, POINTCLOUD, BarrelLayout, Geometry, LayerBinning
from calobench.data.geometry.cylindrical import (
    calochallenge_1_photons,
    calochallenge_1_pions,
    calochallenge_2,
    calochallenge_3,
    from_binning,
    read_binning,
)
from calobench.data.geometry.barrel_pointcloud import cepc
from calobench.data.geometry.crystal_grid import bes3_11x11, darkshine, make_grid, stcf11x11

_BUILDERS: dict[str, Callable[[], Geometry]] = {
    "stcf11x11": stcf11x11,
    "bes3-11x11": bes3_11x11,
    "darkshine": darkshine,
    "cepc": cepc,
    "calochallenge-1-photons": calochallenge_1_photons,
    "calochallenge-1-pions": calochallenge_1_pions,
    "calochallenge-2": calochallenge_2,
    "calochallenge-3": calochallenge_3,
}


def geometry_names() -> list[str]:
    return list(_BUILDERS)


@cache
def get_geometry(name: str) -> Geometry:
    """The registered geometry called ``name`` (built once, then shared: it is immutable)."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise CalobenchError(
            f"unknown geometry {name!r}; valid names: {', '.join(_BUILDERS)}"
        ) from None
    return builder()


__all__ = [
    "BarrelLayout", "CYLINDRICAL", "GRID", "Geometry", "LayerBinning", "POINTCLOUD",
    "from_binning", "geometry_names", "get_geometry", "make_grid", "read_binning",
]
