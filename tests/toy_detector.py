"""A test-only detector: a 5x5 grid of 20 x 20 x 200 mm crystals, registered through the public API.

It shows that a detector is one module: nothing else in calobench is edited for it. Importing
this module registers the dataset ``toy5x5`` (no Geant4 set-up, no embedded sample).
"""

from __future__ import annotations

import numpy as np

from calobench.data.geometry import make_grid
from calobench.data.showerset import ShowerSet
from calobench.datasets import Dataset, register

GEOMETRY = make_grid("toy5x5", "toy: 5x5 crystals (20x20x200 mm)", 1, 5, 5, (20.0, 20.0, 200.0),
                     threshold=0.5, materials="toy crystals")

TOY = register(Dataset(
    name="toy5x5",
    geometry=GEOMETRY,
    conditions=("particle",),
    condition_units=("pdg",),
    particles=("gamma",),
    energy_range=(100.0, 1000.0),
    reference="synthetic showers (tests/toy_detector.py)",
))


def synthetic_showers(n: int, seed: int) -> ShowerSet:
    """``n`` toy photon showers: 95 % of E_inc spread as exp(-r / 15 mm) around a random impact
    point within 5 mm of the centre, cell energies with 5 % noise, the readout threshold applied."""
    rng = np.random.default_rng(seed)
    energies = rng.uniform(*TOY.energy_range, n)
    xy = GEOMETRY.centres[:, :2]
    impact = rng.uniform(-5.0, 5.0, (n, 2))
    weight = np.exp(-np.linalg.norm(xy[None] - impact[:, None], axis=2) / 15.0)
    share = weight / weight.sum(axis=1, keepdims=True)
    showers = 0.95 * energies[:, None] * share * rng.normal(1.0, 0.05, share.shape)
    showers = np.where(showers < GEOMETRY.threshold, 0.0, showers).astype(np.float32)
    return ShowerSet(GEOMETRY, energies, showers, {"particle": np.full(n, 22.0)}, particle="gamma",
                     dataset=TOY.name)
