"""BESIII EMC barrel (seed 004): 11x11 CsI(Tl) crystals around the hit crystal.

Crystals of 52 x 52 x 280 mm (5.2x5.2 cm front face, 28 cm = 15.1 X0) on a barrel of inner
radius 940 mm, tilted by 1.5 deg in phi and pointing to z = +-50 mm (BESIII detector paper,
NIM A 614 (2010) 345); a flat +-0.5 deg spread is added. Conditions: the particle (PDG code),
its global momentum px, py, pz and total energy E (MeV). See docs/geometries.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calobench.data.geometry import make_grid
from calobench.datasets.detector import CrystalBarrel, Material
from calobench.datasets.registry import GEANT4_SOURCE, Dataset, register

GEOMETRY = make_grid(
    "bes3-11x11",
    "BESIII EMC: 11x11 CsI(Tl) crystals (52x52x280 mm) centred on the hit crystal",
    1, 11, 11, (52.0, 52.0, 280.0), threshold=1.0, materials="CsI(Tl)",
    zernike_radius=150.0,  # mm, the BESIII EMC reconstruction's radius of the Zernike moments
)
#: CsI (4.51 g/cm3) doped with 0.1 % thallium by mass; shower constants those of CsI (PDG).
CSI_TL = Material("CsI_Tl", density=4.51, components=(("G4_CESIUM_IODIDE", 0.999), ("Tl", 0.001)),
                  x0_mm=18.6, critical_energy_mev=11.17, z=54.0)
BARREL = CrystalBarrel(radius_mm=940.0, half_z_mm=1300.0, z_point_mm=50.0, phi_tilt_deg=1.5, spread_deg=0.5)


def impact(conditions: Mapping[str, np.ndarray], rng: np.random.Generator, n: int):
    """The impact offsets are not conditions of this dataset: drawn from the set-up's law (uniform
    over the offset fraction of the crystal pitch); slope along x from the phi tilt of the crystals."""
    dx, dy, _ = GEOMETRY.sizes[0]
    x0 = rng.uniform(-BARREL.offset_fraction * dx, BARREL.offset_fraction * dx, n)
    y0 = rng.uniform(-BARREL.offset_fraction * dy, BARREL.offset_fraction * dy, n)
    return x0, y0, np.full(n, np.tan(np.radians(BARREL.phi_tilt_deg))), np.zeros(n)


BES3 = register(Dataset(
    name="bes3-11x11",
    geometry=GEOMETRY,
    conditions=("particle", "px", "py", "pz", "E"),
    condition_units=("pdg", "MeV", "MeV", "MeV", "MeV"),
    particles=("gamma", "e-", "e+"),
    energy_range=(50.0, 3000.0),
    reference=GEANT4_SOURCE,
    seed_document="004",
    geant4=BARREL,
    medium=CSI_TL,
    moving_axis=True,
    impact=impact,
    momentum_conditions=("px", "py", "pz"),
))
