"""CEPC Si-W ECAL barrel (seed 000), read out as a point cloud.

30 sensitive layers of 0.5 mm silicon with 5x5 mm pads; tungsten absorber of 2.1 mm in front
of each of the first 20 layers and 4.2 mm in front of the last 10 (24 X0 in all, the CEPC CDR
ECAL baseline). Inner radius 1800 mm; each layer also holds 3.0 mm of readout board, glue and
air gap (modelled as gap). Photons of 30-50 GeV from the interaction point, conditions theta
and phi (deg) of their direction. See docs/geometries.md.
"""

from __future__ import annotations

import numpy as np

from calobench.data.geometry import make_barrel
from calobench.datasets.detector import BarrelPatch
from calobench.datasets.registry import GEANT4_SOURCE, Dataset, register

INNER_RADIUS_MM = 1800.0
N_LAYERS = 30
SENSOR_MM = 0.5
GAP_MM = 3.0
CELL_MM = 5.0
HALF_LENGTH_MM = 2350.0
#: (30,) tungsten thickness in front of each sensitive layer, mm.
ABSORBER_MM = np.where(np.arange(N_LAYERS) < 20, 2.1, 4.2)

GEOMETRY = make_barrel(
    "cepc",
    "CEPC Si-W ECAL barrel: 30 layers, 5x5 mm Si pads, inner radius 1.8 m (point cloud)",
    threshold=0.05,
    inner_radius=INNER_RADIUS_MM,
    absorber_thickness=ABSORBER_MM,
    sensor_thickness=SENSOR_MM,
    gap=GAP_MM,
    cell_size=CELL_MM,
    half_length=HALF_LENGTH_MM,
    absorber="G4_W",
    sensor="G4_Si",
    materials="tungsten absorber, 0.5 mm silicon sensors",
)
#: 49 pads in r-phi and 300 along z (|z| < 750 mm) cover theta 73.6-106.4 deg from the IP.
PATCH = BarrelPatch(pads_rphi=49, pads_z=300, theta_deg=(73.6, 106.4))

CEPC = register(Dataset(
    name="cepc",
    geometry=GEOMETRY,
    conditions=("theta", "phi"),
    condition_units=("deg", "deg"),
    particles=("gamma",),
    energy_range=(30000.0, 50000.0),
    reference=GEANT4_SOURCE,
    seed_document="000",
    geant4=PATCH,
    momentum_conditions=("theta", "phi"),
    quick_train_events=1000,  # quick trains on 1000 of the reference's showers (minutes, not hours)
))
