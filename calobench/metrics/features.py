"""High-level shower features computed from a Geometry, chunk by chunk.

Units: energies in MeV, positions and widths in mm, angles in radians.
Every feature is a per-event scalar; ``cell_spectra`` gives the per-cell distributions
(voxel energy spectrum, point-cloud profiles) that are histogrammed without being stored.

For the CaloChallenge (cylindrical) geometries the definitions equal those of the
challenge's HighLevelFeatures.py / evaluate.py (CaloChallenge/homepage, code/):
cells below the readout threshold are set to zero (``E < threshold``), centres of
energy use the bin centres ``(r cos alpha, r sin alpha)`` ("eta", "phi") and the radial
bin centre r, widths are ``sqrt(max(<x^2> - <x>^2, 0))`` with ``1e-16`` added to every
energy denominator, sparsity is the fraction of cells of a layer with zero energy, and
the high-level vector is the challenge's (see ``FeatureExtractor.hlf_names``).
"""

from __future__ import annotations

import numpy as np

from calobench.data.geometry import CYLINDRICAL, GRID, POINTCLOUD, Geometry
from calobench.data.showerset import ShowerSet

EPS = 1e-16
#: Zernike radius for the crystal-image moments (BESIII EMC reconstruction convention), mm.
ZERNIKE_R0_MM = 150.0
#: Half-size, in pads, of the grid that point-cloud showers are rasterised into for cls-low.
PC_LOW_HALF = 7


def apply_threshold(showers: np.ndarray, threshold: float) -> np.ndarray:
    """Cells with energy below ``threshold`` MeV read zero (the challenge's ``E < min_energy``)."""
    return np.where(showers < threshold, 0.0, showers).astype(np.float64, copy=False)


class FeatureExtractor:
    """Per-event features and the high-level vector of one geometry.

    ``names``: ordered feature names; ``compute(chunk)`` returns an (n, len(names)) float64
    table. ``hlf_names`` / ``hlf(table, energies)``: the multivariate high-level vector.
    """

    def __init__(self, geometry: Geometry, condition_names: tuple[str, ...] = ()) -> None:
        self.geometry = geometry
        self.condition_names = tuple(condition_names)
        self.threshold = float(geometry.threshold)
        names = ["etot", "etot_einc", "n_hit"]
        self.spectra = ["voxel_energy"]
        if geometry.kind == POINTCLOUD:
            names += ["bary_x", "bary_y", "bary_z", "bary_r", "bary_phi", "depth_mean", "width_lateral"]
            self.spectra = ["cell_energy", "profile_long", "profile_radial", "profile_rphi", "profile_z"]
        else:
            self._build_voxel_tables()
            names += self._voxel_names
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}

    # ---- voxel geometries -------------------------------------------------------------
    def _build_voxel_tables(self) -> None:
        g = self.geometry
        slices = g.layer_slices
        n_cells = g.n_cells
        cyl = g.kind == CYLINDRICAL
        ids = [b.layer_id for b in g.layers] if cyl else list(range(len(slices)))
        self.layer_ids = ids
        member = np.zeros((n_cells, len(slices)))
        for k, s in enumerate(slices):
            member[s, k] = 1.0
        x, y = g.centres[:, 0], g.centres[:, 1]
        if cyl:
            r = np.concatenate([np.tile(b.r_centres, b.n_alpha) for b in g.layers])
            alpha_layers = [k for k, b in enumerate(g.layers) if b.n_alpha > 1]
        else:
            r = None
            alpha_layers = list(range(len(slices)))
        self.alpha_layers = alpha_layers
        self.n_per_layer = member.sum(axis=0)
        columns = [member, member * x[:, None], member * y[:, None], member * (x * x)[:, None],
                   member * (y * y)[:, None]]
        if cyl:
            columns += [member * r[:, None], member * (r * r)[:, None]]
        self._moments = np.concatenate(columns, axis=1)
        self._member = member
        lx, ly = ("eta", "phi") if cyl else ("x", "y")
        names = [f"e_layer_{i}" for i in ids]
        for prefix in (f"ec_{lx}", f"ec_{ly}", f"width_{lx}", f"width_{ly}"):
            names += [f"{prefix}_{ids[k]}" for k in alpha_layers]
        names += [f"sparsity_{i}" for i in ids]
        if cyl:
            names += [f"ec_r_{i}" for i in ids] + [f"width_r_{i}" for i in ids]
        self.crystal = g.kind == GRID and g.shape[0] == 1 and g.shape[1] == g.shape[2] and g.shape[1] % 2 == 1
        self.depth_centre = g.kind == GRID and g.shape[0] > 1
        if self.crystal:
            n = g.shape[1]
            names += [f"e{k}x{k}" for k in range(1, n + 1, 2)]
            names += ["second_moment", "lateral_moment", "zernike_a20", "zernike_a42"]
        if self.depth_centre:
            names += ["ec_x", "ec_y", "ec_z"]
        self._voxel_names = names

    def _voxel_features(self, showers: np.ndarray, energies: np.ndarray) -> np.ndarray:
        g = self.geometry
        e = apply_threshold(showers, self.threshold)
        n_layers = self._member.shape[1]
        m = e @ self._moments
        el, sx, sy, sxx, syy = (m[:, k * n_layers:(k + 1) * n_layers] for k in range(5))
        den = el + EPS
        ecx, ecy = sx / den, sy / den
        wx = np.sqrt(np.clip(sxx / den - ecx ** 2, 0.0, None))
        wy = np.sqrt(np.clip(syy / den - ecy ** 2, 0.0, None))
        hit = (e > 0).astype(np.float64)
        sparsity = 1.0 - (hit @ self._member) / self.n_per_layer
        a = self.alpha_layers
        cols = [el, ecx[:, a], ecy[:, a], wx[:, a], wy[:, a], sparsity]
        if g.kind == CYLINDRICAL:
            sr, srr = m[:, 5 * n_layers:6 * n_layers], m[:, 6 * n_layers:7 * n_layers]
            ecr = sr / den
            cols += [ecr, np.sqrt(np.clip(srr / den - ecr ** 2, 0.0, None))]
        etot = e.sum(axis=1)
        head = np.stack([etot, etot / energies, hit.sum(axis=1)], axis=1)
        out = [head] + cols
        if self.crystal:
            out.append(self._crystal_features(e, etot))
        if self.depth_centre:
            c = g.centres
            out.append((e @ c) / (etot[:, None] + EPS))
        return np.concatenate(out, axis=1)

    def _crystal_features(self, e: np.ndarray, etot: np.ndarray) -> np.ndarray:
        """E_kxk / E_tot, second and lateral moments (mm^2, -) and |A20|, |A42| of 11x11 images."""
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
        rho = np.sqrt(r2) / ZERNIKE_R0_MM
        phi = np.arctan2(dy, dx)
        w = np.where(rho <= 1.0, e, 0.0) / den[:, None]
        for radial, m in (((2 * rho ** 2 - 1), 0), ((4 * rho ** 4 - 3 * rho ** 2), 2)):
            re = (w * radial * np.cos(m * phi)).sum(axis=1)
            im = (w * radial * np.sin(m * phi)).sum(axis=1)
            cols.append(np.hypot(re, im))
        return np.stack(cols, axis=1)

    # ---- point clouds -----------------------------------------------------------------
    def _cloud(self, chunk: ShowerSet):
        cl = chunk.showers
        keep = cl.cells[:, 3] >= self.threshold
        cells = cl.cells[keep].astype(np.float64)
        event = cl.event_index[keep]
        return cells, event

    def _cloud_features(self, chunk: ShowerSet) -> np.ndarray:
        n = len(chunk)
        cells, ev = self._cloud(chunk)
        x, y, z, e = cells.T
        etot = np.bincount(ev, weights=e, minlength=n)
        den = etot + EPS
        bx = np.bincount(ev, weights=e * x, minlength=n) / den
        by = np.bincount(ev, weights=e * y, minlength=n) / den
        bz = np.bincount(ev, weights=e * z, minlength=n) / den
        r = np.hypot(x, y)
        inner = self.geometry.barrel.inner_radius if self.geometry.barrel else 0.0
        depth = np.bincount(ev, weights=e * (r - inner), minlength=n) / den
        d_perp = self._transverse(cells, ev, bx, by, bz)
        width = np.sqrt(np.bincount(ev, weights=e * d_perp ** 2, minlength=n) / den)
        count = np.bincount(ev, minlength=n).astype(np.float64)
        return np.stack([etot, etot / chunk.energies, count, bx, by, bz, np.hypot(bx, by),
                         np.arctan2(by, bx), depth, width], axis=1)

    @staticmethod
    def _transverse(cells, ev, bx, by, bz) -> np.ndarray:
        """Distance (mm) of each cell from the line through the origin and its shower's barycentre."""
        axis = np.stack([bx, by, bz], axis=1)
        axis /= np.linalg.norm(axis, axis=1, keepdims=True) + EPS
        p = cells[:, :3]
        u = axis[ev]
        along = (p * u).sum(axis=1)
        return np.sqrt(np.clip((p * p).sum(axis=1) - along ** 2, 0.0, None))

    # ---- public API -------------------------------------------------------------------
    def compute(self, chunk: ShowerSet) -> np.ndarray:
        """(n, len(names)) float64 features of an in-memory chunk."""
        energies = np.asarray(chunk.energies, dtype=np.float64)
        if self.geometry.kind == POINTCLOUD:
            return self._cloud_features(chunk)
        return self._voxel_features(chunk.showers, energies)

    def cell_spectra(self, chunk: ShowerSet) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per-cell values: name -> (values, weights, event index within the chunk).

        ``voxel_energy`` / ``cell_energy``: energies (MeV) of cells above threshold, weight 1.
        Point clouds also give energy-weighted profiles: ``profile_long`` (radius minus the
        inner radius, mm), ``profile_radial`` (distance from the shower axis, mm),
        ``profile_rphi`` (R * (phi - phi_bary), mm) and ``profile_z`` (z - z_bary, mm).
        """
        if self.geometry.kind != POINTCLOUD:
            e = np.asarray(chunk.showers)
            ev, cell = np.nonzero(e >= self.threshold)
            values = e[ev, cell].astype(np.float64)
            keep = values > 0
            return {"voxel_energy": (values[keep], np.ones(keep.sum()), ev[keep])}
        cells, ev = self._cloud(chunk)
        x, y, z, e = cells.T
        n = len(chunk)
        den = np.bincount(ev, weights=e, minlength=n) + EPS
        bx, by, bz = (np.bincount(ev, weights=e * v, minlength=n) / den for v in (x, y, z))
        r = np.hypot(x, y)
        inner = self.geometry.barrel.inner_radius if self.geometry.barrel else 0.0
        dphi = np.angle(np.exp(1j * (np.arctan2(y, x) - np.arctan2(by, bx)[ev])))
        ones = np.ones(len(e))
        return {
            "cell_energy": (e, ones, ev),
            "profile_long": (r - inner, e, ev),
            "profile_radial": (self._transverse(cells, ev, bx, by, bz), e, ev),
            "profile_rphi": (r * dphi, e, ev),
            "profile_z": (z - bz[ev], e, ev),
        }

    # ---- high-level vector ------------------------------------------------------------
    @property
    def hlf_names(self) -> list[str]:
        """Names of the columns of the high-level vector (before the transforms of ``hlf``)."""
        g = self.geometry
        if g.kind == POINTCLOUD:
            base = ["log10_einc", "log10_etot", "log10_etot_einc", "n_hit", "bary_x", "bary_y", "bary_z",
                    "depth_mean", "width_lateral"]
        else:
            ids = self.layer_ids
            lx, ly = ("eta", "phi") if g.kind == CYLINDRICAL else ("x", "y")
            al = [ids[k] for k in self.alpha_layers]
            base = ["log10_einc"] + [f"log10_e_layer_{i}" for i in ids]
            for p in (f"ec_{lx}", f"ec_{ly}", f"width_{lx}", f"width_{ly}"):
                base += [f"{p}_{i}" for i in al]
            base += ["log10_etot"] + [f"sparsity_{i}" for i in ids]
            if g.kind == CYLINDRICAL:
                base += [f"ec_r_{i}" for i in ids] + [f"width_r_{i}" for i in ids]
            if g.kind != CYLINDRICAL:
                base += ["log10_etot_einc"]
            if self.crystal:
                base += [n for n in self.names if n.startswith("e") and "x" in n and n[1].isdigit()]
                base += ["second_moment", "lateral_moment", "zernike_a20", "zernike_a42"]
            if self.depth_centre:
                base += ["ec_x", "ec_y", "ec_z"]
        return base + [f"cond_{c}" for c in self.condition_names]

    def hlf(self, table: np.ndarray, energies: np.ndarray, conditions: np.ndarray | None = None) -> np.ndarray:
        """(n, D) high-level vector from a feature table.

        CaloChallenge layout: log10(E_inc), log10(E_layer + 1e-8), EC_eta/100, EC_phi/100,
        width_eta/100, width_phi/100 (layers binned in alpha), log10(E_tot + 1e-8), sparsity,
        EC_r/100, width_r/100. Grids use x, y for eta, phi and append log10(E_tot/E_inc) and the
        crystal-shape or depth-centre features; every geometry appends its extra conditions.
        """
        t = table
        col = lambda name: t[:, self.index[name]]  # noqa: E731
        out = [np.log10(np.asarray(energies, dtype=np.float64))[:, None]]
        if self.geometry.kind == POINTCLOUD:
            out += [np.log10(col("etot") + 1e-8)[:, None], np.log10(col("etot_einc") + 1e-8)[:, None],
                    col("n_hit")[:, None] / 1e3]
            out += [t[:, [self.index[n] for n in ("bary_x", "bary_y", "bary_z")]] / 1e3]
            out += [col("depth_mean")[:, None] / 1e2, col("width_lateral")[:, None] / 1e2]
        else:
            names = self.hlf_names
            for name in names[1:]:
                if name.startswith("cond_"):
                    continue
                if name.startswith("log10_"):
                    out.append(np.log10(col(name[6:]) + 1e-8)[:, None])
                elif name.startswith(("ec_", "width_")):
                    out.append(col(name)[:, None] / 1e2)
                elif name == "second_moment":
                    out.append(col(name)[:, None] / 1e4)
                else:
                    out.append(col(name)[:, None])
        if conditions is not None and conditions.shape[1]:
            out.append(np.asarray(conditions, dtype=np.float64))
        return np.concatenate(out, axis=1)

    # ---- low-level classifier input -----------------------------------------------------
    @property
    def low_dim(self) -> int:
        if self.geometry.kind == POINTCLOUD:
            n = 2 * PC_LOW_HALF + 1
            return 1 + self.geometry.barrel.n_layers * n * n + len(self.condition_names)
        return 1 + self.geometry.n_cells + len(self.condition_names)

    def low_level(self, chunk: ShowerSet) -> np.ndarray:
        """(n, low_dim) float32 input of the low-level classifier.

        Voxel geometries (the challenge's): log10(E_inc), then cells (after the threshold)
        divided by E_inc. Point clouds: the cells rasterised into a (layers, 15, 15) pad grid
        centred on the barycentre (R*dphi and z in pads of the cell size), divided by E_inc.
        Extra conditions are appended.
        """
        energies = np.asarray(chunk.energies, dtype=np.float64)
        n = len(chunk)
        if self.geometry.kind == POINTCLOUD:
            b = self.geometry.barrel
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
            cells_part = grid.reshape(n, -1)
        else:
            cells_part = apply_threshold(np.asarray(chunk.showers), self.threshold)
        out = [np.log10(energies)[:, None], cells_part / energies[:, None]]
        if self.condition_names:
            out.append(chunk.condition_matrix(list(self.condition_names)))
        return np.concatenate(out, axis=1).astype(np.float32)
