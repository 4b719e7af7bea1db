"""STCF ECAL barrel (seed 001): 11x11 pure CsI crystals around the hit crystal.

Crystals of 50 x 50 x 280 mm (STCF CDR, ~5x5x28 cm) on a barrel of front radius 1000 mm
(assumed; the STCF ECAL barrel inner radius is ~1 m) and half length 1300 mm, pointing to the
interaction point. The six conditions are the seed's: momentum p (MeV), incidence angles
dtheta_mom, dphi_mom (deg) with respect to the crystal axis, impact offset dz_pos (mm) and
dphi_pos (deg on the front radius) inside the hit crystal, and the hit z (mm). See docs/geometries.md.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from calobench.data.geometry import make_grid
from calobench.datasets.detector import CrystalBarrel, Material
from calobench.datasets.registry import GEANT4_SOURCE, Dataset, centred_axis, register

GEOMETRY = make_grid(
    "stcf11x11",
    "STCF ECAL: 11x11 pure CsI crystals (50x50x280 mm) centred on the hit crystal",
    1, 11, 11, (50.0, 50.0, 280.0), threshold=1.0, materials="pure CsI",
    zernike_radius=150.0,  # mm, the BESIII EMC reconstruction's radius of the Zernike moments
)
#: pure CsI (4.51 g/cm3); X0, critical energy and Z: PDG values.
CSI = Material("G4_CESIUM_IODIDE", x0_mm=18.6, critical_energy_mev=11.17, z=54.0)
BARREL = CrystalBarrel(radius_mm=1000.0, half_z_mm=1300.0, spread_deg=2.0)


def impact(conditions: Mapping[str, np.ndarray], rng: np.random.Generator, n: int):
    """The shower axis from the conditions: offset dphi_pos (deg on the front radius) along x and
    dz_pos (mm) along y; slopes from the incidence angles dphi_mom and dtheta_mom (deg)."""
    if "dz_pos" not in conditions:
        return centred_axis(n)
    x0 = np.radians(conditions["dphi_pos"]) * BARREL.radius_mm
    y0 = np.asarray(conditions["dz_pos"], dtype=np.float64)
    tx = np.tan(np.radians(conditions["dphi_mom"]))
    ty = -np.tan(np.radians(conditions["dtheta_mom"]))
    return x0, y0, tx, ty


STCF = register(Dataset(
    name="stcf11x11",
    geometry=GEOMETRY,
    conditions=("p", "dtheta_mom", "dphi_mom", "dz_pos", "dphi_pos", "z"),
    condition_units=("MeV", "deg", "deg", "mm", "deg", "mm"),
    particles=("gamma",),
    energy_range=(50.0, 2000.0),
    reference=GEANT4_SOURCE,
    seed_document="001",
    geant4=BARREL,
    medium=CSI,
    moving_axis=True,
    impact=impact,
    momentum_conditions=("p", "dtheta_mom", "dphi_mom"),
    position_conditions=("dz_pos", "dphi_pos", "z"),
))
