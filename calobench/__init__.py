"""calobench: the benchmark and evaluation suite for ML calorimeter fast simulation.

Python API:
    calobench.load(name_or_path, dataset=None) -> ShowerSet
    calobench.save(showerset, path)
    calobench.compare(generated, reference, ...) -> Result
Units: MeV and mm everywhere in the library and in files.
"""

from __future__ import annotations

from pathlib import Path

from calobench.datasets import (Dataset, dataset_names, geometry_names, get_dataset, get_geometry, load_reference,
                                open_showers)
from calobench.errors import CalobenchError
from calobench.data.geometry import Geometry
from calobench.data.showerfile import ShowerFileWriter, save
from calobench.data.showerset import CellList, ShowerSet

__version__ = "0.1.0"


def load(name_or_path: str | Path, dataset: str | None = None) -> ShowerSet:
    """Open a shower file, or the embedded reference sample of a registered dataset.

    A registered dataset name (e.g. ``"stcf11x11"``) that is not an existing path gives
    its embedded reference; anything else is read as an HDF5 file, checked against
    ``dataset`` when given. Showers are read lazily (see ShowerSet.iter_chunks).
    """
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in dataset_names():
        return load_reference(str(name_or_path))
    if not path.exists() and path.suffix == "" and "/" not in str(name_or_path):
        raise CalobenchError(
            f"{name_or_path}: neither a file nor a registered dataset; datasets: {', '.join(dataset_names())}")
    return open_showers(path, dataset)


def compare(generated, reference, **options):
    """Evaluate generated showers against a reference; see calobench.metrics.compare."""
    from calobench.metrics.compare import compare as _compare

    return _compare(generated, reference, **options)


__all__ = [
    "CalobenchError", "CellList", "Dataset", "Geometry", "ShowerFileWriter", "ShowerSet", "__version__",
    "compare", "dataset_names", "geometry_names", "get_dataset", "get_geometry", "load", "open_showers", "save",
]
