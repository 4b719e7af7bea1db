"""Features of box grids: per-layer features in x and y, and, by what the geometry says,
the crystal-shape features of a crystal image or the energy centre of a multi-layer grid.

Crystal images (``Geometry.crystal_image``, one layer of n x n crystals centred on the hit
crystal): ``e1x1`` .. ``e<n>x<n>`` (energy in the central k x k crystals / E_tot),
``second_moment`` (sum E_i r_i^2 / sum E_i, mm^2, r_i from the energy centroid),
``lateral_moment`` (sum_{i>=3} E_i r_i^2 / (sum_{i>=3} E_i r_i^2 + (E_1 + E_2) pitch^2), energies
sorted) and ``zernike_a20``, ``zernike_a42`` (|A_nm| of the energy fractions inside
``Geometry.zernike_radius``). Multi-layer grids: ``ec_x``, ``ec_y``, ``ec_z``, the energy
centre of the whole shower (mm).
"""

from __future__ import annotations

import numpy as np

from calobench.metrics.features.common import EPS
from calobench.metrics.features.layers import LayerFeatures


class GridFeatures(LayerFeatures):
    axes = ("x", "y")

    def _layer_ids(self) -> list[int]:
        return list(range(self.geometry.n_layers))

    def _alpha_layers(self) -> list[int]:
        return list(range(self.geometry.n_layers))

    @property
    def _depth_centre(self) -> bool:
        return self.geometry.shape[0] > 1

    def _crystal_names(self) -> list[str]:
        if not self.geometry.crystal_image:
            return []
        n = self.geometry.shape[1]
        return [f"e{k}x{k}" for k in range(1, n + 1, 2)] + ["second_moment", "lateral_moment", "zernike_a20",
                                                             "zernike_a42"]

    def _extra_names(self) -> list[str]:
        return self._crystal_names() + (["ec_x", "ec_y", "ec_z"] if self._depth_centre else [])

    def _extra_columns(self, e: np.ndarray, moments: np.ndarray, etot: np.ndarray) -> list[np.ndarray]:
        out = []
        if self.geometry.crystal_image:
            out.append(self._crystal_features(e, etot))
        if self._depth_centre:
            out.append((e @ self.geometry.centres) / (etot[:, None] + EPS))
        return out

    def _crystal_features(self, e: np.ndarray, etot: np.ndarray) -> np.ndarray:
        """(n, n_crystal_names): E_kxk / E_tot, second (mm^2) and lateral moments, |A20|, |A42|."""
        g = self.geometry
        n = g.shape[1]
        img = e.reshape(-1, n, n)
        c = n // 2
        den = etot + EPS
        cols = [img[:, c - k:c + k + 1, c - k:c + k + 1].sum(axis=(1, 2)) / den for k in range(0, c + 1)]
        x, y = g.centres[:, 0], g.centres[:, 1]
        cx, cy = (e @ x) / den, (e @ y) / den
        dx, dy = x[None, :] - cx[:, None], y[None, :] - cy[:, None]
        r2 = dx * dx + dy * dy
        cols.append((e * r2).sum(axis=1) / den)
        pitch = float(g.sizes[0, 0])
        order = np.argsort(-e, axis=1)
        e_sorted = np.take_along_axis(e, order, axis=1)
        r2_sorted = np.take_along_axis(r2, order, axis=1)
        tail = (e_sorted[:, 2:] * r2_sorted[:, 2:]).sum(axis=1)
        cols.append(tail / (tail + (e_sorted[:, 0] + e_sorted[:, 1]) * pitch ** 2 + EPS))
        rho = np.sqrt(r2) / g.zernike_radius
        phi = np.arctan2(dy, dx)
        w = np.where(rho <= 1.0, e, 0.0) / den[:, None]
        for radial, m in (((2 * rho ** 2 - 1), 0), ((4 * rho ** 4 - 3 * rho ** 2), 2)):
            re = (w * radial * np.cos(m * phi)).sum(axis=1)
            im = (w * radial * np.sin(m * phi)).sum(axis=1)
            cols.append(np.hypot(re, im))
        return np.stack(cols, axis=1)

    def _hlf_feature_names(self) -> list[str]:
        """The per-layer columns, log10(E_tot / E_inc), then the crystal-shape or energy-centre features."""
        return self._hlf_layer_names() + ["log10_etot_einc"] + self._extra_names()
