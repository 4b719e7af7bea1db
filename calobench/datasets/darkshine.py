"""DarkSHINE ECAL (seed 003): 20x20x11 LYSO cells of 25 x 25 x 40 mm.

The particle (e- or gamma, condition ``particle``, PDG code) enters along the grid axis at the
centre of cell (ix, iy) = (10, 10): for an even grid the geometric centre is a four-cell corner,
and firing along shared cell edges gave unphysical events (notes/geant4-offline).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calobench.data.geometry import make_grid
from calobench.datasets.detector import BeamOnGrid, Material
from calobench.datasets.registry import GEANT4_SOURCE, Dataset, register

NX = NY = 20
GEOMETRY = make_grid(
    "darkshine",
    "DarkSHINE ECAL: 20x20x11 LYSO cells (25x25x40 mm)",
    11, NY, NX, (25.0, 25.0, 40.0), threshold=0.5, materials="LYSO (Lu1.8Y0.2SiO5:Ce, 7.1 g/cm3)",
)
_GRAMS = {"Lu": 1.8 * 174.967, "Y": 0.2 * 88.906, "Si": 28.086, "O": 5 * 15.999}  # per mole of Lu1.8Y0.2SiO5
_MOLAR_MASS = sum(_GRAMS.values())
#: LYSO Lu1.8Y0.2SiO5, 7.1 g/cm3, mass fractions from the formula.
LYSO = Material("LYSO", density=7.1, components=tuple((symbol, g / _MOLAR_MASS) for symbol, g in _GRAMS.items()))
ENTRY_CELL = (10, 10)  # (ix, iy) of the cell whose centre the particle enters
ENTRY_MM = tuple(float(v) for v in GEOMETRY.centres[ENTRY_CELL[1] * NX + ENTRY_CELL[0], :2])


def impact(conditions: Mapping[str, np.ndarray], rng: np.random.Generator, n: int):
    """Every shower starts at the entry point, along the grid axis."""
    return np.full(n, ENTRY_MM[0]), np.full(n, ENTRY_MM[1]), np.zeros(n), np.zeros(n)


DARKSHINE = register(Dataset(
    name="darkshine",
    geometry=GEOMETRY,
    conditions=("particle",),
    condition_units=("pdg",),
    particles=("e-", "gamma"),
    energy_range=(500.0, 8000.0),
    reference=GEANT4_SOURCE,
    seed_document="003",
    geant4=BeamOnGrid(entry_mm=ENTRY_MM, sparse_output=True),
    medium=LYSO,
    impact=impact,
    version="2",  # reference of 20000 events (v1: 3000, now its first events)
    quick_events=3000,
))
