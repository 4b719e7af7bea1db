"""calobench: the benchmark and evaluation suite for ML calorimeter fast simulation.

Python API (calobench.api):
    calobench.load(name_or_path, dataset=None, tree=None, branches=None) -> ShowerSet   (HDF5 or ROOT)
    calobench.save(showerset, path)
    calobench.compare(generated, reference, ...) -> Result    (Result.to_pandas(): one row per metric)
    calobench.Timing(timing_dict).to_pandas()                 (a time_model / leaderboard timing object)
Units: MeV and mm everywhere in the library and in files.
"""

from __future__ import annotations

from calobench.api import compare, load, save
from calobench.data.geometry import Geometry
from calobench.data.showerfile import ShowerFileWriter
from calobench.data.showerset import CellList, ShowerSet
from calobench.datasets import Dataset, dataset_names, geometry_names, get_dataset, get_geometry, open_showers
from calobench.errors import CalobenchError
from calobench.timing_results import Timing
from calobench.version import __version__

__all__ = [
    "CalobenchError", "CellList", "Dataset", "Geometry", "ShowerFileWriter", "ShowerSet", "Timing", "__version__",
    "compare", "dataset_names", "geometry_names", "get_geometry", "get_dataset", "load", "open_showers", "save",
]
