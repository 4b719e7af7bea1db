"""The dataset registry: the Dataset record, ``register`` and the look-ups by name.

A dataset is a detector readout (its Geometry) plus what the benchmark knows about it: the
per-event conditions, particles, energies, its reference sample and the facts models and the
Geant4 set-up need. Each detector module of this package registers its datasets; a file's
dataset or geometry is resolved here (``open_dataset_file``), so the data layer below never
sees a dataset name.

Condition units: energies and momenta in MeV, angles in degrees, positions in mm;
``particle`` is a PDG code (22 photon, 11 electron, -11 positron, 211 pion).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from calobench.errors import CalobenchError
from calobench.data.geometry import Geometry
from calobench.data.showerfile import POINTCLOUD_LAYOUT, SPARSE, FileHeader, ShowerFileReader, read_header
from calobench.data.showerset import ShowerSet
from calobench.datasets.benchmark_reference import ReferenceRecipe, built_path
from calobench.datasets.detector import Geant4Setup, Material

PDG = {"gamma": 22, "e-": 11, "e+": -11, "pi+": 211}

GEANT4_SOURCE = "Geant4 (calobench simulate)"
CHALLENGE_SOURCE = "CaloChallenge files; Geant4 Par04 stand-in"

#: impact(conditions, rng, n) -> (x0, y0, tx, ty), each (n,): see Dataset.shower_axis.
ImpactLaw = Callable[[Mapping[str, np.ndarray], np.random.Generator, int],
                     tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def data_path(*parts: str) -> Path:
    """A path inside the package's data folder (calobench/datasets/data)."""
    return Path(str(resources.files("calobench.datasets") / "data")).joinpath(*parts)


def centred_axis(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The shower axis of ``n`` showers along the readout axis through the origin."""
    return np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """A named benchmark dataset.

    geometry: its readout. conditions: names of the extra per-event conditions (besides the
    incident energy), with condition_units. particles: names in PDG. energy_range: (low, high)
    incident energy in MeV of the reference. version: changes whenever the reference data change
    (part of the benchmark version).
    simulation_energy_range: (low, high) MeV that `calobench simulate` uses by default (None:
    energy_range). geant4: how `calobench simulate` builds the detector (None: no Geant4 set-up).
    medium: the material of a homogeneous (crystal) calorimeter, None for sampling ones.
    moving_axis: the shower axis moves from event to event in the readout frame (impact offset
    and angles); impact: the law of that axis (see shower_axis).
    momentum_conditions, position_conditions: the conditions giving the incoming particle's
    momentum (magnitude, components or direction) and its impact position.
    small_reference: the embedded reference holds few showers for its number of cells (a Geant4
    stand-in too slow to make large), so models regularise more in their quick presets.
    challenge_key: the dataset's name in the CaloChallenge 2022 published results ("" if none).
    quick_events: events of the embedded sample (its first ones) that the ``tiny`` smoke-test
    preset uses (None: all of them).
    recipe: how the benchmark reference is built when it is too large to embed (None: the
    embedded sample is the benchmark reference); see calobench.datasets.benchmark_reference.
    quick_train_events: showers the ``quick`` preset trains on at most (the first ones of the
    training split, which is a random part of the reference; None: all of it). Set where the
    reference grew for ranking (metrics v2) but training on all of it would take hours on a
    laptop; the test split, what entries are ranked on, is never cut.
    """

    name: str
    geometry: Geometry
    conditions: tuple[str, ...] = ()
    condition_units: tuple[str, ...] = ()
    particles: tuple[str, ...]
    energy_range: tuple[float, float]
    reference: str
    seed_document: str = ""
    version: str = "1"
    simulation_energy_range: tuple[float, float] | None = None
    geant4: Geant4Setup | None = None
    medium: Material | None = None
    moving_axis: bool = False
    impact: ImpactLaw | None = None
    momentum_conditions: tuple[str, ...] = ()
    position_conditions: tuple[str, ...] = ()
    small_reference: bool = False
    challenge_key: str = ""
    recipe: ReferenceRecipe | None = None
    quick_events: int | None = None
    quick_train_events: int | None = None

    def __post_init__(self) -> None:
        if len(self.condition_units) != len(self.conditions):
            raise ValueError(f"dataset {self.name}: {len(self.conditions)} conditions, "
                             f"{len(self.condition_units)} units")
        unknown = [c for c in self.momentum_conditions + self.position_conditions if c not in self.conditions]
        if unknown:
            raise ValueError(f"dataset {self.name}: {', '.join(unknown)} not among its conditions")
        unknown = [p for p in self.particles if p not in PDG]
        if unknown:
            raise ValueError(f"dataset {self.name}: unknown particle(s) {', '.join(unknown)}; known: {', '.join(PDG)}")

    @property
    def embedded_path(self) -> Path:
        """Where the embedded reference sample lives inside the package."""
        return data_path(f"{self.name}.h5")

    @property
    def has_embedded(self) -> bool:
        return self.embedded_path.is_file()

    @property
    def built_path(self) -> Path | None:
        """The verified, cached benchmark reference built from the recipe (None: not built or no recipe)."""
        return built_path(self.name, self.version, self.recipe)

    @property
    def reference_path(self) -> Path:
        """The file the benchmark ranks against: the built reference when there is one, else the
        embedded sample (which, for a dataset with a recipe, is the recipe's first events)."""
        return self.built_path or self.embedded_path

    def shower_axis(self, conditions: Mapping[str, np.ndarray], rng: np.random.Generator,
                    n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Impact point (x0, y0) in mm and slopes (tx, ty) of the axis of ``n`` showers in the
        readout frame, each (n,): the dataset's ``impact`` law (from the conditions, or drawn
        from ``rng``), else the readout axis through the origin."""
        if self.impact is None:
            return centred_axis(n)
        return self.impact(conditions, rng, n)

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
            "benchmark_reference": ("embedded" if self.recipe is None else
                                    f"built from recipe ({self.recipe.events} events): "
                                    + ("cached" if self.built_path else "not built")),
            "seed_document": self.seed_document,
            "version": self.version,
            "geometry": geometry.summary(),
        }


_DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    """Add a dataset to the registry (names and geometry names are unique); returns it."""
    if dataset.name in _DATASETS:
        raise CalobenchError(f"dataset {dataset.name!r} is already registered")
    other = next((d for d in _DATASETS.values() if d.geometry.name == dataset.geometry.name), None)
    if other is not None and other.geometry is not dataset.geometry:
        raise CalobenchError(f"dataset {dataset.name}: geometry name {dataset.geometry.name!r} is already "
                             f"used by dataset {other.name}")
    _DATASETS[dataset.name] = dataset
    return dataset


def unregister(name: str) -> None:
    """Remove a registered dataset (for tests and interactive sessions)."""
    get_dataset(name)
    del _DATASETS[name]


def dataset_names() -> list[str]:
    return list(_DATASETS)


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``; a CalobenchError listing valid names otherwise."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise CalobenchError(f"unknown dataset {name!r}; valid names: {', '.join(_DATASETS)}") from None


def _geometries() -> dict[str, Geometry]:
    return {d.geometry.name: d.geometry for d in _DATASETS.values()}


def geometry_names() -> list[str]:
    """Names of the geometries of the registered datasets."""
    return list(_geometries())


def get_geometry(name: str) -> Geometry:
    """The geometry called ``name`` (of a registered dataset); a CalobenchError listing valid names otherwise."""
    try:
        return _geometries()[name]
    except KeyError:
        raise CalobenchError(f"unknown geometry {name!r}; valid names: {', '.join(_geometries())}") from None


# ---- files -------------------------------------------------------------------------
class AmbiguousGeometryError(CalobenchError):
    """A file's cell count fits several geometries and it declares none; ``candidates``: their names."""

    def __init__(self, message: str, candidates: list[str]):
        super().__init__(message)
        self.candidates = list(candidates)


def _file_geometry(header: FileHeader, dataset: str | None) -> tuple[Geometry, str, str]:
    """(geometry, dataset name, how it was found) of a file: the dataset asked for, the geometry
    the file declares, or the one geometry with the file's number of cells."""
    path, declared = header.path, header.attrs.get("geometry", "")
    if dataset is not None:
        geometry = get_dataset(dataset).geometry
        if declared and declared != geometry.name:
            raise CalobenchError(f"{path}: attribute 'geometry': expected {geometry.name} for dataset "
                                 f"{dataset}, found {declared}")
        return geometry, dataset, "given"
    if declared:
        geometries = _geometries()
        if declared not in geometries:
            raise CalobenchError(f"{path}: attribute 'geometry': unknown geometry {declared!r}; valid: "
                                 f"{', '.join(geometries)}")
        return geometries[declared], header.attrs.get("dataset", declared), "declared"
    if header.layout == POINTCLOUD_LAYOUT:
        raise CalobenchError(f"{path}: key 'cells': point-cloud file declares no geometry: choose the dataset with "
                             f"--dataset NAME (Python: dataset=NAME)")
    if header.layout == SPARSE:
        raise CalobenchError(f"{path}: attribute 'geometry': sparse file declares no geometry: choose the dataset with "
                             f"--dataset NAME (Python: dataset=NAME)")
    if header.n_cells is None:
        raise CalobenchError(f"{path}: key 'showers': expected shape (N, cells) to infer the geometry; "
                             f"choose the dataset with --dataset NAME (Python: dataset=NAME)")
    by_cells: dict[int, list[str]] = {}
    for geometry in _geometries().values():
        if geometry.is_voxel:
            by_cells.setdefault(geometry.n_cells, []).append(geometry.name)
    candidates = by_cells.get(header.n_cells, [])
    if len(candidates) == 1:
        return _geometries()[candidates[0]], candidates[0], "inferred"
    if not candidates:
        known = ", ".join(f"{k} ({'/'.join(v)})" for k, v in sorted(by_cells.items()))
        raise CalobenchError(f"{path}: key 'showers': {header.n_cells} cells per shower match no geometry; "
                             f"known: {known}")
    raise AmbiguousGeometryError(f"{path}: key 'showers': {header.n_cells} cells per shower fit "
                                 f"{' and '.join(candidates)}: choose one with --dataset NAME "
                                 f"(Python: dataset=NAME)", candidates)


def open_dataset_file(path: str | Path, dataset: str | None = None) -> ShowerFileReader:
    """Open and validate a shower file of a registered geometry.

    dataset: the registered dataset the file belongs to (its geometry is checked against the
    file's); without it the geometry is the one the file declares, else inferred from the cell count.
    """
    header = read_header(path)
    geometry, name, source = _file_geometry(header, dataset)
    return ShowerFileReader(header.path, geometry, name, source)


def open_showers(path: str | Path, dataset: str | None = None) -> ShowerSet:
    """Open and validate a shower file (see open_dataset_file); the showers are read when first used."""
    return open_dataset_file(path, dataset).showerset()


def open_root_file(path: str | Path, dataset: str | None = None, tree: str | None = None,
                   branches: Mapping[str, str] | None = None):
    """Open and validate a ROOT tree of showers (calobench.data.rootfile) -> RootShowerReader.

    dataset: the registered dataset of the file (default: the one ``calobench export`` stored
    in it); its geometry and conditions say which branches are read. tree / branches: see
    RootShowerReader.
    """
    from calobench.data.rootfile import RootShowerReader, read_root_dataset_name

    name = dataset or read_root_dataset_name(path)
    if not name:
        raise CalobenchError(f"{path}: ROOT file declares no dataset: pass --dataset (dataset=); "
                             f"datasets: {', '.join(_DATASETS)}")
    ds = get_dataset(name)
    reader = RootShowerReader(path, ds.geometry, ds.conditions, name, tree, branches)
    reader.geometry_source = "given" if dataset else "declared"
    return reader


def load_reference(name: str, embedded: bool = False) -> ShowerSet:
    """The reference sample of a dataset as a file-backed ShowerSet.

    The benchmark reference built from the dataset's recipe when it is cached, else the
    embedded sample; ``embedded=True`` always gives the embedded sample.
    """
    dataset = get_dataset(name)
    path = dataset.embedded_path if embedded else dataset.reference_path
    if not path.is_file():
        raise CalobenchError(
            f"dataset {name}: no embedded reference sample in this installation; "
            f"make one with `calobench simulate --dataset {name} -n N -o FILE` and pass it with "
            f"--reference FILE (compare: as the REFERENCE argument; Python: a file path)")
    return open_showers(path, name)


__all__ = [
    "AmbiguousGeometryError", "CHALLENGE_SOURCE", "Dataset",
    "GEANT4_SOURCE", "ImpactLaw", "PDG", "centred_axis", "data_path",
    "dataset_names", "geometry_names", "get_dataset", "get_geometry", "load_reference", "open_dataset_file",
    "open_root_file", "open_showers", "register", "unregister",
]
