"""Registered datasets: a geometry, its conditions, particles and where the reference comes from.

Condition units: energies and momenta in MeV, angles in degrees, positions in mm;
``particle`` is a PDG code (22 photon, 11 electron, -11 positron, 211 pion).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from calobench.errors import CalobenchError
from calobench.data.geometry import Geometry, get_geometry

PDG = {"gamma": 22, "e-": 11, "e+": -11, "pi+": 211}

GEANT4_SOURCE = "Geant4 (calobench simulate)"
CHALLENGE_SOURCE = "CaloChallenge files; Geant4 Par04 stand-in"


@dataclass(frozen=True)
class Dataset:
    """A named benchmark dataset.

    conditions: names of the extra per-event conditions (besides the incident energy).
    energy_range: (low, high) incident energy in MeV of the reference.
    version: changes whenever the reference data change (part of the benchmark version).
    """

    name: str
    geometry_name: str
    conditions: tuple[str, ...]
    condition_units: tuple[str, ...]
    particles: tuple[str, ...]
    energy_range: tuple[float, float]
    reference: str
    seed_document: str
    version: str = "1"

    @property
    def geometry(self) -> Geometry:
        return get_geometry(self.geometry_name)

    @property
    def embedded_path(self) -> Path:
        """Where the embedded reference sample lives inside the package."""
        return Path(str(resources.files("calobench.datasets") / "data" / f"{self.name}.h5"))

    @property
    def has_embedded(self) -> bool:
        return self.embedded_path.is_file()

    def summary(self) -> dict:
        geometry = self.geometry
        return {
            "name": self.name,
            "kind": geometry.kind,
            "cells": geometry.n_cells,
            "layers": geometry.n_layers,
            "conditions": ["E_inc"] + list(self.conditions),
            "condition_units": ["MeV"] + list(self.condition_units),
            "particles": list(self.particles),
            "energy_range_MeV": list(self.energy_range),
            "reference": self.reference,
            "embedded": self.has_embedded,
            "seed_document": self.seed_document,
            "version": self.version,
            "geometry": geometry.summary(),
        }


_DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset("stcf11x11", "stcf11x11",
                ("p", "dtheta_mom", "dphi_mom", "dz_pos", "dphi_pos", "z"),
                ("MeV", "deg", "deg", "mm", "deg", "mm"),
                ("gamma",), (50.0, 2000.0), GEANT4_SOURCE, "001"),
        Dataset("bes3-11x11", "bes3-11x11",
                ("particle", "px", "py", "pz", "E"), ("pdg", "MeV", "MeV", "MeV", "MeV"),
                ("gamma", "e-", "e+"), (50.0, 3000.0), GEANT4_SOURCE, "004"),
        Dataset("darkshine", "darkshine", ("particle",), ("pdg",),
                ("e-", "gamma"), (500.0, 8000.0), GEANT4_SOURCE, "003"),
        Dataset("cepc", "cepc", ("theta", "phi"), ("deg", "deg"),
                ("gamma",), (30000.0, 50000.0), GEANT4_SOURCE, "000"),
        Dataset("calochallenge-1-photons", "calochallenge-1-photons", (), (),
                ("gamma",), (256.0, 4194304.0), "CaloChallenge files only", "002"),
        Dataset("calochallenge-1-pions", "calochallenge-1-pions", (), (),
                ("pi+",), (256.0, 4194304.0), "CaloChallenge files only", "002"),
        Dataset("calochallenge-2", "calochallenge-2", (), (),
                ("e-",), (1000.0, 1000000.0), CHALLENGE_SOURCE, "002"),
        Dataset("calochallenge-3", "calochallenge-3", (), (),
                ("e-",), (1000.0, 1000000.0), CHALLENGE_SOURCE, "002"),
    ]
}


def dataset_names() -> list[str]:
    return list(_DATASETS)


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``; a CalobenchError listing valid names otherwise."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise CalobenchError(f"unknown dataset {name!r}; valid names: {', '.join(_DATASETS)}") from None


def load_reference(name: str):
    """The embedded reference sample of a dataset as a file-backed ShowerSet."""
    from calobench.data.showerfile import open_showers

    dataset = get_dataset(name)
    if not dataset.has_embedded:
        raise CalobenchError(
            f"dataset {name}: no embedded reference sample in this installation; "
            f"make one with `calobench simulate --dataset {name} -n N -o FILE` or pass a file path")
    return open_showers(dataset.embedded_path, name)


__all__ = ["Dataset", "PDG", "dataset_names", "get_dataset", "load_reference"]
