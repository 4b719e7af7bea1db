"""Features of point clouds (hit cells x, y, z, E in global coordinates, a barrel layout).

Features: ``bary_x/y/z`` (energy-weighted barycentre, mm), ``bary_r``, ``bary_phi``,
``depth_mean`` (energy-weighted mean of R - R_inner, mm) and ``width_lateral`` (energy-weighted
RMS distance of the cells from the line origin-barycentre, mm). Spectra: ``cell_energy`` and the
energy-weighted profiles ``profile_long`` (R - R_inner), ``profile_radial`` (distance from the
shower axis), ``profile_rphi`` (R (phi - phi_bary)) and ``profile_z`` (z - z_bary), in mm.
The low-level input rasterises the cells into a (layers, 15, 15) pad grid around the barycentre.
"""

from __future__ import annotations

import numpy as np

from calobench.data.showerset import ShowerSet
from calobench.metrics.features.common import EPS, FeatureExtractor

#: Half-size, in pads, of the grid that point-cloud showers are rasterised into for cls-low.
PC_LOW_HALF = 7


class PointCloudFeatures(FeatureExtractor):
    spectra = ["cell_energy", "profile_long", "profile_radial", "profile_rphi", "profile_z"]

    def _build(self) -> list[str]:
        return ["bary_x", "bary_y", "bary_z", "bary_r", "bary_phi", "depth_mean", "width_lateral"]

    @property
    def _inner_radius(self) -> float:
        return self.geometry.barrel.inner_radius if self.geometry.barrel else 0.0

    def _cloud(self, chunk: ShowerSet) -> tuple[np.ndarray, np.ndarray]:
        """Cells above threshold as (m, 4) float64 rows x, y, z, E and their event index (m,)."""
        cl = chunk.showers
        keep = cl.cells[:, 3] >= self.threshold
        return cl.cells[keep].astype(np.float64), cl.event_index[keep]

    @staticmethod
    def _transverse(cells, ev, bx, by, bz) -> np.ndarray:
        """Distance (mm) of each cell from the line through the origin and its shower's barycentre."""
        axis = np.stack([bx, by, bz], axis=1)
        axis /= np.linalg.norm(axis, axis=1, keepdims=True) + EPS
        p = cells[:, :3]
        u = axis[ev]
        along = (p * u).sum(axis=1)
        return np.sqrt(np.clip((p * p).sum(axis=1) - along ** 2, 0.0, None))

    def compute(self, chunk: ShowerSet) -> np.ndarray:
        n = len(chunk)
        cells, ev = self._cloud(chunk)
        x, y, z, e = cells.T
        etot = np.bincount(ev, weights=e, minlength=n)
        den = etot + EPS
        bx = np.bincount(ev, weights=e * x, minlength=n) / den
        by = np.bincount(ev, weights=e * y, minlength=n) / den
        bz = np.bincount(ev, weights=e * z, minlength=n) / den
        r = np.hypot(x, y)
        depth = np.bincount(ev, weights=e * (r - self._inner_radius), minlength=n) / den
        d_perp = self._transverse(cells, ev, bx, by, bz)
        width = np.sqrt(np.bincount(ev, weights=e * d_perp ** 2, minlength=n) / den)
        count = np.bincount(ev, minlength=n).astype(np.float64)
        return np.stack([etot, etot / chunk.energies, count, bx, by, bz, np.hypot(bx, by),
                         np.arctan2(by, bx), depth, width], axis=1)

    def cell_spectra(self, chunk: ShowerSet) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``cell_energy`` (MeV, weight 1) and the profiles (mm, weighted by the cell energy)."""
        cells, ev = self._cloud(chunk)
        x, y, z, e = cells.T
        n = len(chunk)
        den = np.bincount(ev, weights=e, minlength=n) + EPS
        bx, by, bz = (np.bincount(ev, weights=e * v, minlength=n) / den for v in (x, y, z))
        r = np.hypot(x, y)
        dphi = np.angle(np.exp(1j * (np.arctan2(y, x) - np.arctan2(by, bx)[ev])))
        ones = np.ones(len(e))
        return {
            "cell_energy": (e, ones, ev),
            "profile_long": (r - self._inner_radius, e, ev),
            "profile_radial": (self._transverse(cells, ev, bx, by, bz), e, ev),
            "profile_rphi": (r * dphi, e, ev),
            "profile_z": (z - bz[ev], e, ev),
        }

    # ---- high-level vector ------------------------------------------------------------
    def _hlf_feature_names(self) -> list[str]:
        return ["log10_etot", "log10_etot_einc", "n_hit", "bary_x", "bary_y", "bary_z", "depth_mean",
                "width_lateral"]

    def _hlf_columns(self, table: np.ndarray) -> list[np.ndarray]:
        """log10(E_tot + 1e-8), log10(E_tot/E_inc + 1e-8), n_hit / 1000, barycentre / 1000,
        depth_mean / 100, width_lateral / 100."""
        col = lambda name: table[:, self.index[name]][:, None]  # noqa: E731
        return [np.log10(col("etot") + 1e-8), np.log10(col("etot_einc") + 1e-8), col("n_hit") / 1e3,
                table[:, [self.index[n] for n in ("bary_x", "bary_y", "bary_z")]] / 1e3,
                col("depth_mean") / 1e2, col("width_lateral") / 1e2]

    # ---- low-level classifier input -----------------------------------------------------
    @property
    def _n_low_cells(self) -> int:
        w = 2 * PC_LOW_HALF + 1
        return self.geometry.barrel.n_layers * w * w

    def _low_level_cells(self, chunk: ShowerSet) -> np.ndarray:
        """Cell energies summed into a (layers, 15, 15) pad grid centred on the barycentre
        (R dphi and z in pads of the cell size), flattened."""
        b = self.geometry.barrel
        n = len(chunk)
        w = 2 * PC_LOW_HALF + 1
        grid = np.zeros((n, b.n_layers, w, w), dtype=np.float64)
        cells, ev = self._cloud(chunk)
        x, y, z, e = cells.T
        den = np.bincount(ev, weights=e, minlength=n) + EPS
        bx, by, bz = (np.bincount(ev, weights=e * v, minlength=n) / den for v in (x, y, z))
        layer = b.layer_of(x, y)
        r = np.hypot(x, y)
        dphi = np.angle(np.exp(1j * (np.arctan2(y, x) - np.arctan2(by, bx)[ev])))
        iu = np.rint(r * dphi / b.cell_size).astype(np.int64) + PC_LOW_HALF
        iv = np.rint((z - bz[ev]) / b.cell_size).astype(np.int64) + PC_LOW_HALF
        ok = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < w)
        np.add.at(grid, (ev[ok], layer[ok], iu[ok], iv[ok]), e[ok])
        return grid.reshape(n, -1)
