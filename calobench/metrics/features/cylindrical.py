"""Features of the CaloChallenge (cylindrical) geometries, equal to the challenge's
HighLevelFeatures.py / evaluate.py (CaloChallenge/homepage, code/).

Layers are named by their binning-XML id; centres of energy use the bin centres
(r cos alpha, r sin alpha) ("eta", "phi"), only in the layers binned in alpha, and the radial
bin centre r (``ec_r_L``, ``width_r_L``, every layer); the high-level vector is the challenge's.
"""

from __future__ import annotations

import numpy as np

from calobench.metrics.features.common import EPS
from calobench.metrics.features.layers import LayerFeatures


class CylindricalFeatures(LayerFeatures):
    axes = ("eta", "phi")

    def _layer_ids(self) -> list[int]:
        return [b.layer_id for b in self.geometry.layers]

    def _alpha_layers(self) -> list[int]:
        return [k for k, b in enumerate(self.geometry.layers) if b.n_alpha > 1]

    def _extra_moments(self, member: np.ndarray) -> list[np.ndarray]:
        r = np.concatenate([np.tile(b.r_centres, b.n_alpha) for b in self.geometry.layers])
        return [member * r[:, None], member * (r * r)[:, None]]

    def _extra_names(self) -> list[str]:
        return [f"ec_r_{i}" for i in self.layer_ids] + [f"width_r_{i}" for i in self.layer_ids]

    def _extra_columns(self, e: np.ndarray, moments: np.ndarray, etot: np.ndarray) -> list[np.ndarray]:
        n_layers = len(self.layer_ids)
        den = moments[:, :n_layers] + EPS
        sr, srr = moments[:, 5 * n_layers:6 * n_layers], moments[:, 6 * n_layers:7 * n_layers]
        ecr = sr / den
        return [ecr, np.sqrt(np.clip(srr / den - ecr ** 2, 0.0, None))]

    def _hlf_feature_names(self) -> list[str]:
        """The challenge's: the per-layer columns, then EC_r and width_r of every layer."""
        return self._hlf_layer_names() + self._extra_names()
