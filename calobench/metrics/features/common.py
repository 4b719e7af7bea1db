"""What every feature extractor shares: the interface, the readout threshold, the high-level
vector's first column and conditions, and the low-level classifier input's layout.

Units: energies in MeV, positions and widths in mm, angles in radians. Every feature is a
per-event scalar; ``cell_spectra`` gives the per-cell distributions (voxel energy spectrum,
point-cloud profiles) that are histogrammed without being stored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from calobench.data.geometry import Geometry
from calobench.data.showerset import ShowerSet

#: Added to every energy denominator (the CaloChallenge's 1e-16).
EPS = 1e-16


def apply_threshold(showers: np.ndarray, threshold: float) -> np.ndarray:
    """Cells with energy below ``threshold`` MeV read zero (the challenge's ``E < min_energy``)."""
    showers = np.asarray(showers)
    out = showers.astype(np.float64)
    np.copyto(out, 0.0, where=showers < threshold)
    return out


class FeatureExtractor(ABC):
    """Per-event features, per-cell spectra, the high-level vector and the low-level input of one geometry.

    ``names``: ordered feature names, starting with etot, etot_einc, n_hit; ``compute(chunk)``
    returns an (n, len(names)) float64 table and ``index`` maps a name to its column.
    ``spectra``: names of the distributions of ``cell_spectra``. ``hlf_names`` /
    ``hlf(table, energies, conditions)``: the multivariate high-level vector. ``low_dim`` /
    ``low_level(chunk)``: the low-level classifier input. ``condition_names`` are appended to both.
    """

    spectra: list[str]

    def __init__(self, geometry: Geometry, condition_names: tuple[str, ...] = ()) -> None:
        self.geometry = geometry
        self.condition_names = tuple(condition_names)
        self.threshold = float(geometry.threshold)
        self.names = ["etot", "etot_einc", "n_hit"] + self._build()
        self.index = {n: i for i, n in enumerate(self.names)}

    @abstractmethod
    def _build(self) -> list[str]:
        """Prepare what ``compute`` needs of the geometry; the names of the columns after
        etot, etot_einc, n_hit."""

    @abstractmethod
    def compute(self, chunk: ShowerSet) -> np.ndarray:
        """(n, len(names)) float64 features of an in-memory chunk."""

    @abstractmethod
    def cell_spectra(self, chunk: ShowerSet) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per-cell values: spectrum name -> (values, weights (None: 1 each), event index within the chunk)."""

    def spectrum_maxima(self, chunk: ShowerSet) -> dict[str, float]:
        """Largest value of each non-empty spectrum of ``cell_spectra`` in a chunk (what
        calobench.metrics.histograms.spectrum_edges needs of the reference)."""
        return {name: float(values.max()) for name, (values, _, _) in self.cell_spectra(chunk).items() if len(values)}

    # ---- high-level vector ------------------------------------------------------------
    @abstractmethod
    def _hlf_feature_names(self) -> list[str]:
        """High-level columns between log10_einc and the conditions."""

    @abstractmethod
    def _hlf_columns(self, table: np.ndarray) -> list[np.ndarray]:
        """The columns named by ``_hlf_feature_names``, each (n, k), from a feature table."""

    @property
    def hlf_names(self) -> list[str]:
        """Names of the columns of the high-level vector (before the transforms of ``hlf``)."""
        return ["log10_einc"] + self._hlf_feature_names() + [f"cond_{c}" for c in self.condition_names]

    def hlf(self, table: np.ndarray, energies: np.ndarray, conditions: np.ndarray | None = None) -> np.ndarray:
        """(n, len(hlf_names)) high-level vector: log10(E_inc / MeV), the geometry's columns,
        then the extra conditions (n, k) as given."""
        out = [np.log10(np.asarray(energies, dtype=np.float64))[:, None]] + self._hlf_columns(table)
        if conditions is not None and conditions.shape[1]:
            out.append(np.asarray(conditions, dtype=np.float64))
        return np.concatenate(out, axis=1)

    # ---- low-level classifier input -----------------------------------------------------
    @property
    @abstractmethod
    def _n_low_cells(self) -> int:
        """Number of cell columns of the low-level input."""

    @abstractmethod
    def _low_level_cells(self, chunk: ShowerSet) -> np.ndarray:
        """(n, _n_low_cells) cell energies in MeV (before the division by E_inc)."""

    @property
    def low_dim(self) -> int:
        return 1 + self._n_low_cells + len(self.condition_names)

    def low_level(self, chunk: ShowerSet) -> np.ndarray:
        """(n, low_dim) float32 input of the low-level classifier: log10(E_inc), the cells
        (``_low_level_cells``) divided by E_inc, then the extra conditions."""
        energies = np.asarray(chunk.energies, dtype=np.float64)
        out = [np.log10(energies)[:, None], self._low_level_cells(chunk) / energies[:, None]]
        if self.condition_names:
            out.append(chunk.condition_matrix(list(self.condition_names)))
        return np.concatenate(out, axis=1).astype(np.float32)
