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
from calobench.datasets.benchmark_reference import ReferenceRecipe
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

#: 10 000 showers (test split 2000), built on first use; the embedded 300 are its first events
#: (bit-identical: the embedded file was made by the same command with -n 300).
#: Made with `calobench simulate --workers 2 --seed 1 --dataset cepc -n 10000 --chunk 20`
#: (70 core-minutes of Geant4 on the idle 2-core development machine, AMD EPYC: 36.0 min wall,
#: 4.63 events/s, 415 ms per event; 104 MB as HDF5).
CEPC_RECIPE = ReferenceRecipe(
    events=10000, seed=1, chunk=20, cut_mm=0.7, core_minutes=70.0,
    fingerprint="c7a49660c7c3f85b436774539c0a32be6afddc37409aa748c21ee84f13f6b2f7",
    physics="EmStandardNoData (data-free G4 EM models via ctypes)", geant4_version="geant4-11-04-patch-01")

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
    recipe=CEPC_RECIPE,
    version="2",
))
