"""Registered datasets: one module per detector, each registering its datasets on import.

- registry: the Dataset record, ``register`` and the look-ups (datasets, geometries, files);
- detector: records of materials and Geant4 set-ups that the detector modules fill in;
- stcf, bes3, darkshine, cepc, calochallenge: the detectors;
- reference_timing: Geant4 time per event of the embedded reference samples.

Adding a detector is one module here (plus its data in data/) calling ``register``.
"""

from calobench.datasets.registry import (
    PDG,
    Dataset,
    dataset_names,
    geometry_names,
    get_dataset,
    get_geometry,
    load_reference,
    open_dataset_file,
    open_root_file,
    open_showers,
    register,
    unregister,
)
from calobench.datasets import stcf, bes3, darkshine, cepc, calochallenge  # noqa: F401 - each registers its datasets, in this order
from calobench.datasets.reference_timing import geant4_ms_per_event

__all__ = [
    "Dataset", "PDG", "dataset_names", "geant4_ms_per_event", "geometry_names", "get_dataset", "get_geometry",
    "load_reference", "open_dataset_file", "open_root_file", "open_showers", "register", "unregister",
]
