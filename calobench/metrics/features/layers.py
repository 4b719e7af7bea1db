"""Per-layer features of voxel geometries (grids and CaloChallenge cylinders), shared by both.

Per layer: energy ``e_layer_L``, centres of energy and widths in the two transverse coordinates
(``ec_<x>_L``, ``width_<x>_L``: sqrt(max(<x^2> - <x>^2, 0)), 1e-16 added to the layer energy)
and ``sparsity_L`` (fraction of the layer's cells with zero energy), all from one matrix product
of the thresholded cells with a (cells, k x layers) table of moments.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from calobench.data.showerset import ShowerSet
from calobench.metrics.features.common import EPS, FeatureExtractor, apply_threshold


class LayerFeatures(FeatureExtractor):
    """Features of a voxel geometry. Subclasses name the layers and the transverse axes, may add
    moment columns (``_extra_moments``) and add their own features after the per-layer ones."""

    spectra = ["voxel_energy"]
    #: names of the two transverse coordinates in feature names
    axes: tuple[str, str]

    @abstractmethod
    def _layer_ids(self) -> list[int]:
        """The id of each layer in feature names."""

    @abstractmethod
    def _alpha_layers(self) -> list[int]:
        """Indices of the layers whose transverse centres and widths are features."""

    def _extra_moments(self, member: np.ndarray) -> list[np.ndarray]:
        """Further (cells, layers) moment columns, read back by ``_extra_columns`` (none here)."""
        return []

    @abstractmethod
    def _extra_names(self) -> list[str]:
        """Names of the features after the per-layer ones."""

    @abstractmethod
    def _extra_columns(self, e: np.ndarray, moments: np.ndarray, etot: np.ndarray) -> list[np.ndarray]:
        """(n, k) columns of ``_extra_names`` from the thresholded cells e (n, cells), their
        moments (n, k x layers) and the total energies (n,)."""

    def _build(self) -> list[str]:
        g = self.geometry
        slices = g.layer_slices
        self.layer_ids = self._layer_ids()
        self.alpha_layers = self._alpha_layers()
        member = np.zeros((g.n_cells, len(slices)))
        for k, s in enumerate(slices):
            member[s, k] = 1.0
        x, y = g.centres[:, 0], g.centres[:, 1]
        self.n_per_layer = member.sum(axis=0)
        columns = [member, member * x[:, None], member * y[:, None], member * (x * x)[:, None],
                   member * (y * y)[:, None]]
        self._moments = np.concatenate(columns + self._extra_moments(member), axis=1)
        self._member = member
        # the moments of layer k are columns k, k + L, k + 2L, ... and non-zero only in the layer's
        # cells: each layer's block is multiplied on its own (the dense product is ~L times larger)
        n_layers = len(slices)
        self._slices = slices
        self._blocks = [self._moments[s, k::n_layers] for k, s in enumerate(slices)]
        outside = [np.delete(self._moments[:, k::n_layers], np.arange(g.n_cells)[s], axis=0) for k, s in enumerate(slices)]
        self._block_diagonal = all(not np.any(block) for block in outside)
        ids, lx, ly = self.layer_ids, *self.axes
        names = [f"e_layer_{i}" for i in ids]
        for prefix in (f"ec_{lx}", f"ec_{ly}", f"width_{lx}", f"width_{ly}"):
            names += [f"{prefix}_{ids[k]}" for k in self.alpha_layers]
        names += [f"sparsity_{i}" for i in ids]
        return names + self._extra_names()

    def compute(self, chunk: ShowerSet) -> np.ndarray:
        energies = np.asarray(chunk.energies, dtype=np.float64)
        e = apply_threshold(chunk.showers, self.threshold)
        n_layers = self._member.shape[1]
        m = self._layer_moments(e)
        el, sx, sy, sxx, syy = (m[:, k * n_layers:(k + 1) * n_layers] for k in range(5))
        den = el + EPS
        ecx, ecy = sx / den, sy / den
        wx = np.sqrt(np.clip(sxx / den - ecx ** 2, 0.0, None))
        wy = np.sqrt(np.clip(syy / den - ecy ** 2, 0.0, None))
        hit = e > 0
        hits = np.stack([np.count_nonzero(hit[:, s], axis=1) for s in self._slices], axis=1).astype(np.float64)
        sparsity = 1.0 - hits / self.n_per_layer
        a = self.alpha_layers
        etot = e.sum(axis=1)
        head = np.stack([etot, etot / energies, hits.sum(axis=1)], axis=1)
        cols = [head, el, ecx[:, a], ecy[:, a], wx[:, a], wy[:, a], sparsity]
        return np.concatenate(cols + self._extra_columns(e, m, etot), axis=1)

    def _layer_moments(self, e: np.ndarray) -> np.ndarray:
        """(n, k x layers) moments of the thresholded cells e (n, cells): e @ self._moments, layer by layer."""
        if not self._block_diagonal:
            return e @ self._moments
        n_layers = len(self._slices)
        m = np.empty((len(e), self._moments.shape[1]))
        for k, (s, block) in enumerate(zip(self._slices, self._blocks)):
            m[:, k::n_layers] = e[:, s] @ block
        return m

    def cell_spectra(self, chunk: ShowerSet) -> dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray]]:
        """``voxel_energy``: energies (MeV) of the cells above threshold (and above 0), weight 1 (None)."""
        e = np.asarray(chunk.showers)
        hit = e >= self.threshold
        if self.threshold <= 0:
            hit &= e > 0
        event = np.repeat(np.arange(len(e)), np.count_nonzero(hit, axis=1))
        return {"voxel_energy": (e[hit], None, event)}

    def spectrum_maxima(self, chunk: ShowerSet) -> dict[str, float]:
        """``voxel_energy``: the largest cell energy, where it is above threshold (and above 0)."""
        e = np.asarray(chunk.showers)
        top = float(e.max()) if e.size else 0.0
        return {"voxel_energy": top} if top >= self.threshold and top > 0 else {}

    # ---- high-level vector ------------------------------------------------------------
    def _hlf_layer_names(self) -> list[str]:
        """log10 layer energies, transverse centres and widths, log10 E_tot and sparsities."""
        ids, lx, ly = self.layer_ids, *self.axes
        al = [ids[k] for k in self.alpha_layers]
        names = [f"log10_e_layer_{i}" for i in ids]
        for p in (f"ec_{lx}", f"ec_{ly}", f"width_{lx}", f"width_{ly}"):
            names += [f"{p}_{i}" for i in al]
        return names + ["log10_etot"] + [f"sparsity_{i}" for i in ids]

    def _hlf_columns(self, table: np.ndarray) -> list[np.ndarray]:
        """log10_F: log10(F + 1e-8); ec_* and width_*: / 100; second_moment: / 1e4; others as they are."""
        out = []
        for name in self._hlf_feature_names():
            col = table[:, self.index[name[6:] if name.startswith("log10_") else name]][:, None]
            if name.startswith("log10_"):
                out.append(np.log10(col + 1e-8))
            elif name.startswith(("ec_", "width_")):
                out.append(col / 1e2)
            elif name == "second_moment":
                out.append(col / 1e4)
            else:
                out.append(col)
        return out

    # ---- low-level classifier input -----------------------------------------------------
    @property
    def _n_low_cells(self) -> int:
        return self.geometry.n_cells

    def _low_level_cells(self, chunk: ShowerSet) -> np.ndarray:
        """The cells after the threshold."""
        return apply_threshold(np.asarray(chunk.showers), self.threshold)
