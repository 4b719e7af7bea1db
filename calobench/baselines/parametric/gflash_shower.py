"""GFlash-style parametric shower simulation in vectorized numpy, computed per readout cell.

A shower (Grindhammer & Peters, hep-ex/0001020) is built in four steps:
- deposited energy: f = E_dep / E_inc ~ Normal(a + b lnE, c^2/E + d^2) per particle group;
- longitudinal: the energy density in depth (mm) is a Gamma(alpha, mu/alpha) law whose per-shower
  (ln mu, ln alpha) come from a correlated bivariate normal with a mean linear in ln E (the
  fluctuations and correlation of the longitudinal profile); a layer receives E_dep times the
  Gamma probability of its depth interval (regularised incomplete gamma function);
- radial: a core + tail mixture per layer, p 2r Rc^2/(r^2+Rc^2)^2 + (1-p) 2r Rt^2/(r^2+Rt^2)^2,
  integrated in closed form over every cell (``radial_profile``) around the shower axis
  (impact point + slope x mean depth);
- every cell gets its mean energy E_layer x fraction with a Gamma sampling fluctuation of
  variance eps x E_cell (MeV^2), drawn with the Wilson-Hilferty cube-root normal approximation
  (one normal number per cell); the shower total is kept, then the threshold is applied.

The cost is a fixed number of array operations per cell drawn, whatever the energy. Sparse
cells (Gamma shape below ``SPARSE_SHAPE``) are not drawn one by one: their hits are, as a
Poisson process in the small-shape limit of the Gamma law (``_sparse_hits``).
Parameters are fitted to a Geant4 reference ShowerSet (``fit_gflash``, ``fit_cepc``).
Lengths in mm, energies in MeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, nnls
from scipy.special import exp1, gammainc, ndtri

from calobench.data.geometry import CYLINDRICAL, GRID, BarrelLayout, Geometry
from calobench.datasets import Dataset
from calobench.datasets.detector import Material
from calobench.progress import Bar
from calobench.baselines.parametric.radial_profile import mixture, rectangle_fraction, ring_fraction, unpack

#: Cells of mean energy below SPARSE_SHAPE x eps (Gamma shape below it) get hits, not draws.
SPARSE_SHAPE = 0.05
#: Standard normal quantiles at the 65536 mid-probabilities (i + 0.5) / 65536: a 16-bit uniform
#: integer indexes a normal number (tails cut at 4.2 sigma).
NORMAL_QUANTILES = ndtri((np.arange(65536) + 0.5) / 65536).astype(np.float32)
#: Quantiles tabulated for the energy of a sparse cell's hit.
TAIL_QUANTILES = 4096
#: Axis-position tables (datasets whose shower axis moves from shower to shower, ``moving_axis``):
#: bins per cell width and the covered range (cell widths either side of the central cell's centre).
TABLE_BINS_PER_CELL = 32
TABLE_HALF_RANGE_CELLS = 1.5


@dataclass
class Frame:
    """How a geometry reads out a shower: number and depth (mm) of layers, cells per layer."""

    geometry: Geometry

    @property
    def n_layers(self) -> int:
        return self.geometry.n_layers

    @property
    def layer_depth(self) -> float:
        return float(self.geometry.sizes[0, 2])

    @property
    def cells_per_layer(self) -> int:
        return self.geometry.n_cells // self.n_layers

    def cell_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Grid geometries: x1, x2, y1, y2 (mm) of the cells of one layer, shape (cells_per_layer,)."""
        g = self.geometry
        if g.kind != GRID:
            raise ValueError(f"{g.name} is not a grid geometry")
        c = g.centres[: self.cells_per_layer]
        s = g.sizes[: self.cells_per_layer]
        return c[:, 0] - s[:, 0] / 2, c[:, 0] + s[:, 0] / 2, c[:, 1] - s[:, 1] / 2, c[:, 1] + s[:, 1] / 2

    def layer_cell_fractions(self, theta: np.ndarray, ax: np.ndarray, ay: np.ndarray) -> np.ndarray:
        """Mean fraction of one layer's energy in each of its cells, (cells_per_layer,), for the
        radial parameters theta (ln Rc, ln Rt, logit p), averaged over axis positions ax, ay (mm)."""
        g = self.geometry
        rc, rt, p = unpack(theta)
        if g.kind == CYLINDRICAL:  # showers centred on the axis: uniform in alpha
            binning = g.layers[0]
            edges = np.asarray(binning.r_edges)
            rings = mixture(ring_fraction(edges[:-1], edges[1:], rc), ring_fraction(edges[:-1], edges[1:], rt), p)
            return np.repeat(rings[None, :] / binning.n_alpha, binning.n_alpha, axis=0).ravel()
        if g.kind != GRID:
            raise ValueError(f"GFlash needs a voxel geometry, {g.name} is {g.kind}")
        x1, x2, y1, y2 = self.cell_edges()
        ax, ay = np.atleast_1d(ax)[:, None], np.atleast_1d(ay)[:, None]
        core = rectangle_fraction(x1 - ax, x2 - ax, y1 - ay, y2 - ay, rc)
        tail = rectangle_fraction(x1 - ax, x2 - ax, y1 - ay, y2 - ay, rt)
        return mixture(core, tail, p).mean(axis=0)


def groups_of(conditions: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Particle group of each shower (the PDG code when a 'particle' condition exists, else 0)."""
    if "particle" in conditions:
        return np.asarray(conditions["particle"], dtype=np.int64)
    return np.zeros(n, dtype=np.int64)


@dataclass
class GFlashParams:
    """Fitted parameters, per particle group g (G groups) and layer l (L layers).

    codes (G,); response (G, 4): mean f = a + b lnE, var f = c^2/E + d^2;
    long_mean (G, 2, 2): [ln mu, ln alpha] = A[:, 0] + A[:, 1] lnE; long_cov (G, 2, 2);
    radial (G, L, 3): ln Rc, ln Rt, logit p; eps (G,): cell fluctuation MeV;
    energy_range (2,): lowest and highest fitted incident energy, MeV;
    lateral_sigma (G,): shower-to-shower spread of logit p, the core share (moving-axis datasets).
    """

    codes: np.ndarray
    response: np.ndarray
    long_mean: np.ndarray
    long_cov: np.ndarray
    radial: np.ndarray
    eps: np.ndarray
    energy_range: np.ndarray
    lateral_sigma: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.__dict__.items()}

    def copy(self) -> "GFlashParams":
        return GFlashParams.from_arrays(self.arrays())

    @staticmethod
    def from_arrays(arrays: dict[str, np.ndarray]) -> "GFlashParams":
        return GFlashParams(**{k: np.array(arrays[k], dtype=np.float64) for k in
                               ("codes", "response", "long_mean", "long_cov", "radial", "eps", "energy_range",
                                "lateral_sigma")})


def _homogeneous_profile(medium: Material, energies: np.ndarray, codes: np.ndarray):
    """GFlash homogeneous-medium (ln mu, ln alpha) in mm for single-layer crystals: single-layer
    readouts have no longitudinal information, so the parametrisation in radiation lengths of
    the dataset's medium is used (X0 mm, critical energy MeV, Z)."""
    x0, ec, z = medium.x0_mm, medium.critical_energy_mev, medium.z
    y = np.maximum(energies / ec, 2.0)
    t_max = np.log(y) - 0.858 + np.where(codes == 22, 0.5, 0.0)
    alpha = np.exp(0.21 + (0.492 + 2.38 / z) * np.log(y))
    beta = (alpha - 1.0) / np.maximum(t_max, 0.3)
    return np.log(alpha / beta * x0), np.log(alpha)


def deposited_energy(params: GFlashParams, gi: np.ndarray, energies: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """E_dep (n,) MeV: the sampled response times the incident energies (n,) MeV."""
    a, b, c, d = (params.response[gi, k] for k in range(4))
    frac = a + b * np.log(energies) + np.sqrt(np.maximum(c ** 2 / energies + d ** 2, 0.0)) * rng.standard_normal(len(energies))
    return energies * np.clip(frac, 0.0, None)


def longitudinal(params: GFlashParams, gi: np.ndarray, energies: np.ndarray, rng: np.random.Generator,
                 medium: Material | None, codes: np.ndarray, n_layers: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-shower (mean depth mu, shape alpha) of the Gamma depth profile (mu in the depth unit);
    medium: the homogeneous medium of a single-layer readout (unused with several layers)."""
    if n_layers > 1:
        le = np.log(energies)
        mean = params.long_mean[gi, :, 0] + params.long_mean[gi, :, 1] * le[:, None]
        chol = np.linalg.cholesky(params.long_cov + 1e-9 * np.eye(2))[gi]
        z = np.einsum("nij,nj->ni", chol, rng.standard_normal((len(energies), 2)))
        ln_mu, ln_alpha = (mean + z).T
    else:
        ln_mu, ln_alpha = _homogeneous_profile(medium, energies, codes)
    return np.exp(ln_mu), np.maximum(np.exp(ln_alpha), 1.05)


def layer_fractions(mu: np.ndarray, alpha: np.ndarray, n_layers: int, layer_depth: float) -> np.ndarray:
    """(n, L) float32 fractions of the energy in each layer (normalised over the layers)."""
    if n_layers == 1:
        return np.ones((len(mu), 1), dtype=np.float32)
    edges = np.arange(n_layers + 1) * layer_depth
    cdf = gammainc(alpha[:, None], edges[None, :] * (alpha / mu)[:, None])
    frac = np.diff(cdf, axis=1)
    frac /= np.maximum(frac.sum(axis=1, keepdims=True), 1e-12)
    return frac.astype(np.float32)


def fluctuate(mean: np.ndarray, eps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cell energies (float32, shape of ``mean``) with mean ``mean`` MeV and variance eps x mean.

    Gamma(k = mean/eps, scale eps), drawn as Gamma(k + 1) U^(1/k) (Marsaglia & Tsang's boost,
    exact for the small shapes of sparse cells) with Gamma(k + 1) from the Wilson-Hilferty
    approximation (k+1)(1 - 1/(9(k+1)) + z/(3 sqrt(k+1)))^3, z standard normal (inverse transform
    of a 16-bit uniform through ``NORMAL_QUANTILES``, 2.5x faster than numpy's normal), cut at zero.
    ``eps`` broadcasts against ``mean``. Never negative.
    """
    k = np.divide(mean, np.asarray(eps, dtype=np.float32))
    k1 = k + np.float32(1.0)
    base = NORMAL_QUANTILES[rng.integers(0, NORMAL_QUANTILES.size, mean.shape, dtype=np.uint16)]
    base /= np.sqrt(k1)
    base *= np.float32(1.0 / 3.0)
    base += np.float32(1.0)
    base -= np.float32(1.0 / 9.0) / k1
    np.maximum(base, np.float32(0.0), out=base)
    energy = base * base
    energy *= base
    energy *= k1
    # U^(1/k) = exp(ln(U) / k), U in (0, 1]
    u = rng.random(mean.shape, dtype=np.float32)
    np.subtract(np.float32(1.0), u, out=u)
    np.log(u, out=u)
    u /= np.maximum(k, np.float32(1e-30))
    np.exp(u, out=u)
    energy *= u
    energy *= np.asarray(eps, dtype=np.float32)
    return energy


@dataclass
class CellMaps:
    """Mean fraction of a layer's energy in each cell, built from the parameters.

    fixed axis: per group g and layer l the cells ordered by falling fraction,
    cells (G, L, C) cell indices and fractions (G, L, C); cut (G,) the mean energy (MeV) below
    which a cell is sparse (``SPARSE_SHAPE`` x eps); sparse cells are not drawn one by one: their
    hits are (see ``_sparse_hits``), with cumulative (G, L, C + 1) the running sum of the ordered
    fractions (running: the same for all blocks as one increasing array), rate (G,) hits per MeV of mean energy and tail (G, Q) quantiles of a hit's energy.
    moving axis (single-layer grids): fractions (2, G * B * B, C), the core and the tail map per
    axis-position bin (B bins of ``step`` mm from ``low`` mm in x and y), all C cells simulated;
    each shower mixes them with its own core share p.
    """

    cells: np.ndarray
    fractions: np.ndarray
    moving: bool
    cut: np.ndarray | None = None
    cumulative: np.ndarray | None = None
    running: np.ndarray | None = None
    rate: np.ndarray | None = None
    tail: np.ndarray | None = None
    bins: int = 0
    low: float = 0.0
    step: float = 1.0


def build_cell_maps(params: GFlashParams, dataset: Dataset, frame: Frame) -> CellMaps:
    """Integrate the fitted radial profiles over the cells (once per parameter set)."""
    G, L, C = len(params.codes), frame.n_layers, frame.cells_per_layer
    if dataset.moving_axis:
        if L != 1:
            raise ValueError("moving-axis tables are built for single-layer readouts only")
        pitch = float(frame.geometry.sizes[0, 0])
        bins = int(2 * TABLE_HALF_RANGE_CELLS * TABLE_BINS_PER_CELL)
        step = pitch / TABLE_BINS_PER_CELL
        low = -TABLE_HALF_RANGE_CELLS * pitch
        centres = low + (np.arange(bins) + 0.5) * step
        ax, ay = np.repeat(centres, bins)[:, None], np.tile(centres, bins)[:, None]  # row = bx * bins + by
        x1, x2, y1, y2 = frame.cell_edges()
        table = np.empty((2, G, bins * bins, C), dtype=np.float32)
        for g in range(G):
            rc, rt, _ = unpack(params.radial[g, 0])
            table[0, g] = rectangle_fraction(x1 - ax, x2 - ax, y1 - ay, y2 - ay, rc)
            table[1, g] = rectangle_fraction(x1 - ax, x2 - ax, y1 - ay, y2 - ay, rt)
        return CellMaps(np.arange(C), table.reshape(2, G * bins * bins, C), True, bins=bins, low=low, step=step)
    x0, y0, _, _ = dataset.shower_axis({}, np.random.default_rng(0), 1)
    maps = np.stack([np.stack([frame.layer_cell_fractions(params.radial[g, l], x0, y0) for l in range(L)])
                     for g in range(G)])  # (G, L, C)
    order = np.argsort(-maps, axis=2, kind="stable")
    cells = order + (np.arange(L) * C)[None, :, None]
    fractions = np.take_along_axis(maps, order, axis=2)
    cumulative = np.concatenate([np.zeros((G, L, 1)), np.cumsum(fractions, axis=2)], axis=2)
    eps = np.maximum(params.eps, 1e-9)
    x = frame.geometry.threshold / eps
    tails = np.stack([sparse_tail_quantiles(e, frame.geometry.threshold) for e in eps])
    # one increasing sequence for all (group, layer) blocks: block b shifted by 2 b
    running = (cumulative + 2.0 * np.arange(G * L).reshape(G, L, 1))[:, :, 1:].ravel()
    return CellMaps(cells, fractions.astype(np.float32), False, cut=SPARSE_SHAPE * eps, cumulative=cumulative,
                    running=running, rate=exp1(x) / eps, tail=tails)


def sparse_tail_quantiles(eps: float, threshold: float, size: int = TAIL_QUANTILES) -> np.ndarray:
    """Energies (MeV) at ``size`` evenly spaced probabilities of a sparse cell's hit energy.

    As k -> 0 a Gamma(k, eps) cell passes the threshold t with probability k E1(t/eps) (E1 the
    exponential integral) and then has the density x^-1 exp(-x/eps) on x > t, whose
    distribution function is 1 - E1(x/eps) / E1(t/eps); this inverts it on a grid.
    """
    x = threshold * np.geomspace(1.0, max(200.0 * eps / threshold, 10.0), 4000)
    cdf = 1.0 - exp1(x / eps) / exp1(threshold / eps)
    u = (np.arange(size) + 0.5) / size
    return np.interp(u, cdf, x)


def _sparse_hits(maps: CellMaps, gi: np.ndarray, layer_e: np.ndarray, counts: np.ndarray,
                 rng: np.random.Generator):
    """Hits of the sparse cells: per (shower, layer) a Poisson number with mean rate x (the layer
    energy in its sparse cells), each in a sparse cell drawn with probability proportional to its
    fraction, with an energy drawn from the tail quantiles. Returns shower (H,), cell (H,), energy (H,)."""
    n, L = layer_e.shape
    C = maps.fractions.shape[2]
    rows = (gi[:, None] * L + np.arange(L)[None, :]).ravel()  # (n * L,) index of (group, layer)
    cum = maps.cumulative.reshape(-1, C + 1)
    lo = cum[rows, counts.ravel()]
    hi = cum[rows, C]
    lam = maps.rate[gi].repeat(L) * layer_e.ravel() * (hi - lo)
    hits = rng.poisson(lam)
    segment = np.repeat(np.arange(n * L), hits)
    # a global running sum: each (group, layer) block shifted by 2 (its fractions sum to at most 1)
    u = lo[segment] + rng.random(len(segment)) * (hi - lo)[segment] + 2.0 * rows[segment]
    position = np.minimum(np.searchsorted(maps.running, u, side="right"), maps.running.size - 1)
    cell = maps.cells.reshape(-1)[position]
    q = maps.tail.shape[1]
    energy = maps.tail[gi[segment // L], np.minimum((rng.random(len(segment)) * q).astype(np.int64), q - 1)]
    return segment // L, cell, energy.astype(np.float32)


def _simulated_cells(maps: CellMaps, gi: np.ndarray, layer_e: np.ndarray):
    """Ragged list of the dense cells: per entry its shower (S,), cell index (S,) and mean energy
    (S,) MeV, keeping in each (shower, layer) the cells whose mean is above the cut; also returns
    counts (n, L), the number of dense cells of each (shower, layer)."""
    n, L = layer_e.shape
    C = maps.fractions.shape[2]
    counts = np.zeros((n, L), dtype=np.int64)
    for g in np.unique(gi):
        sel = np.flatnonzero(gi == g)
        need = maps.cut[g] / np.maximum(layer_e[sel], 1e-30)  # (m, L) smallest useful fraction
        for layer in range(L):
            counts[sel, layer] = np.searchsorted(-maps.fractions[g, layer], -need[:, layer], side="right")
    flat = counts.ravel()
    segment = np.repeat(np.arange(n * L, dtype=np.int32), flat)
    starts = np.cumsum(flat) - flat
    rows = ((gi[:, None] * L + np.arange(L)[None, :]) * C).ravel() - starts  # first cell of each row, shifted
    index = np.arange(len(segment), dtype=np.int32)
    index += rows.astype(np.int32)[segment]
    mean = layer_e.ravel()[segment]
    mean *= maps.fractions.ravel()[index]
    return segment // np.int32(L), maps.cells.ravel()[index], mean, counts


def sample_showers(params: GFlashParams, maps: CellMaps, dataset: Dataset, frame: Frame, energies: np.ndarray,
                   conditions: dict[str, np.ndarray], rng: np.random.Generator,
                   out: np.ndarray | None = None) -> np.ndarray:
    """(n, cells) float32 showers in MeV for incident energies (n,) MeV (written into ``out``,
    a zero-filled (n, cells) float32 array, when given)."""
    n = len(energies)
    energies = np.asarray(energies, dtype=np.float64)
    codes = groups_of(conditions, n)
    gi = np.clip(np.searchsorted(params.codes, codes), 0, len(params.codes) - 1)
    e_dep = deposited_energy(params, gi, energies, rng)
    mu, alpha = longitudinal(params, gi, energies, rng, dataset.medium, codes, frame.n_layers)
    layer_e = layer_fractions(mu, alpha, frame.n_layers, frame.layer_depth) * e_dep[:, None].astype(np.float32)
    n_cells = frame.geometry.n_cells
    showers = np.zeros((n, n_cells), dtype=np.float32) if out is None else out
    if maps.moving:
        x0, y0, tx, ty = dataset.shower_axis(conditions, rng, n)
        bx = np.clip(((x0 + tx * mu - maps.low) / maps.step).astype(np.int64), 0, maps.bins - 1)
        by = np.clip(((y0 + ty * mu - maps.low) / maps.step).astype(np.int64), 0, maps.bins - 1)
        row = (gi * maps.bins + bx) * maps.bins + by
        tail = maps.fractions[1][row]
        mean = maps.fractions[0][row]
        logit = params.radial[gi, 0, 2] + params.lateral_sigma[gi] * rng.standard_normal(n)
        mean -= tail
        mean *= (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)[:, None]  # p core + (1 - p) tail
        mean += tail
        mean *= layer_e[:, :1]
        energy = fluctuate(mean, np.maximum(params.eps[gi], 1e-9).astype(np.float32)[:, None], rng)
        total = energy.sum(axis=1, dtype=np.float64)
        energy *= (e_dep / np.maximum(total, 1e-12)).astype(np.float32)[:, None]  # keep the sampled total
        energy[energy < frame.geometry.threshold] = 0.0
        showers[:, maps.cells] = energy
        return showers
    shower, cell, mean, counts = _simulated_cells(maps, gi, layer_e)
    eps = np.maximum(params.eps, 1e-9).astype(np.float32)
    energy = fluctuate(mean, eps[0] if len(eps) == 1 else eps[gi][shower], rng)
    sparse_shower, sparse_cell, sparse_energy = _sparse_hits(maps, gi, layer_e, counts, rng)
    total = np.bincount(shower, energy, minlength=n) + np.bincount(sparse_shower, sparse_energy, minlength=n)
    scale = (e_dep / np.maximum(total, 1e-12)).astype(np.float32)  # keep the sampled total
    flat = showers.reshape(-1)
    energy *= scale[shower]
    energy[energy < frame.geometry.threshold] = 0.0
    flat[shower.astype(np.int64) * n_cells + cell] = energy  # one entry per dense cell
    sparse_energy *= scale[sparse_shower]
    hit = sparse_energy >= frame.geometry.threshold
    # sparse cells are disjoint from the dense ones; one of them may be hit twice
    np.add.at(flat, sparse_shower[hit].astype(np.int64) * n_cells + sparse_cell[hit], sparse_energy[hit])
    return showers


# ---------------------------------------------------------------- fitting
def _fit_response(energies: np.ndarray, frac: np.ndarray) -> np.ndarray:
    le = np.log(energies)
    design = np.stack([np.ones_like(le), le], axis=1)
    coef, *_ = np.linalg.lstsq(design, frac, rcond=None)
    resid2 = (frac - design @ coef) ** 2
    design2 = np.stack([1.0 / energies, np.ones_like(le)], axis=1)
    var_coef, _ = nnls(design2, resid2)
    return np.array([coef[0], coef[1], np.sqrt(var_coef[0]), np.sqrt(var_coef[1])])


def _fit_longitudinal(layer_depth: float, n_layers: int, energies: np.ndarray, profiles: np.ndarray):
    """profiles (n, L) layer energies -> (mean coefficients (2, 2), residual covariance (2, 2))."""
    dz = layer_depth
    centres = (np.arange(n_layers) + 0.5) * dz
    tot = np.maximum(profiles.sum(axis=1), 1e-12)
    mean = profiles @ centres / tot
    var = profiles @ centres ** 2 / tot - mean ** 2 - dz ** 2 / 12.0
    var = np.maximum(var, (0.05 * dz) ** 2)
    alpha = np.maximum(mean ** 2 / var, 1.05)
    y = np.stack([np.log(mean), np.log(alpha)], axis=1)
    le = np.log(energies)
    design = np.stack([np.ones_like(le), le], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)  # (2, 2): rows const/slope, cols mu/alpha
    resid = y - design @ coef
    cov = np.cov(resid.T) if len(resid) > 2 else np.eye(2) * 1e-3
    return coef.T, cov  # (target, [const, slope])


#: Moving-axis fits: the training showers are split in AXIS_BINS x AXIS_BINS groups of axis position.
AXIS_BINS = 4


def _moving_axis_model(frame: Frame, block: np.ndarray, ax: np.ndarray, ay: np.ndarray):
    """Targets and model for a moving-axis layer: the mean cell fractions per group of axis position.

    The data showers (block (n, C)) are grouped by quantiles of their energy barycentre, the model
    axes (ax, ay mm) by the same quantiles of their position (the barycentre grows with the axis
    position, so equal ranks match), so the fit sees how the map changes with the impact point,
    not only its average. Returns (targets (K, C), weights (K,), model(theta) -> (K, C)).
    """
    fractions = block / np.maximum(block.sum(axis=1, keepdims=True), 1e-12)
    x1, x2, y1, y2 = frame.cell_edges()
    bx, by = fractions @ ((x1 + x2) / 2), fractions @ ((y1 + y2) / 2)
    probs = np.arange(1, AXIS_BINS) / AXIS_BINS

    def group(u, v):
        return np.digitize(u, np.quantile(u, probs)) * AXIS_BINS + np.digitize(v, np.quantile(v, probs))

    data_group, model_group = group(bx, by), group(ax, ay)
    K = AXIS_BINS * AXIS_BINS
    weights = np.bincount(data_group, minlength=K) / len(data_group)
    targets = np.zeros((K, fractions.shape[1]))
    np.add.at(targets, data_group, fractions)
    targets /= np.maximum(targets.sum(axis=1, keepdims=True), 1e-12)
    onehot = np.zeros((K, len(ax)))
    onehot[model_group, np.arange(len(ax))] = 1.0
    onehot /= np.maximum(onehot.sum(axis=1, keepdims=True), 1.0)
    dx1, dx2, dy1, dy2 = x1 - ax[:, None], x2 - ax[:, None], y1 - ay[:, None], y2 - ay[:, None]

    def model(theta):
        rc, rt, p = unpack(theta)
        per_axis = mixture(rectangle_fraction(dx1, dx2, dy1, dy2, rc), rectangle_fraction(dx1, dx2, dy1, dy2, rt), p)
        return onehot @ per_axis

    return targets, weights, model


def _grouped_hellinger_fit(targets: np.ndarray, weights: np.ndarray, model, start: np.ndarray) -> np.ndarray:
    """Minimise the weighted sum over groups of the Hellinger distance of model(theta) (K, C),
    normalised per group, to targets (K, C); one group (K = 1) is the plain fit of a mean map.
    The Hellinger distance lets the sparse tail cells count, not only the hot core."""
    root = np.sqrt(targets)

    def loss(theta):
        m = model(theta)
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1e-12)
        return float(weights @ np.sum((np.sqrt(np.maximum(m, 0.0)) - root) ** 2, axis=1))

    theta = minimize(loss, start, method="Nelder-Mead", options={"maxiter": 300, "xatol": 1e-3, "fatol": 1e-8}).x
    theta[2] = np.clip(theta[2], -6, 6)
    if theta[0] > theta[1]:  # keep the core the narrower component
        theta = np.array([theta[1], theta[0], -theta[2]])
    return theta


def _fit_eps(params: GFlashParams, g: int, dataset: Dataset, frame: Frame, energies, conditions, ref_hits: float,
             seed: int) -> float:
    """Cell fluctuation scale eps (MeV) whose mean count of cells above threshold matches."""
    # moving-axis tables do not depend on eps: integrate them once
    tables = build_cell_maps(params, dataset, frame) if dataset.moving_axis else None

    def error(eps: float) -> float:
        trial = params.copy()
        trial.eps[g] = eps
        maps = tables if tables is not None else build_cell_maps(trial, dataset, frame)
        out = sample_showers(trial, maps, dataset, frame, energies, conditions, np.random.default_rng(seed))
        return abs((out > 0).sum(axis=1).mean() - ref_hits)

    grid = np.geomspace(1e-2, 1e4, 25) * frame.geometry.threshold  # coarse, then around the best
    best = grid[int(np.argmin([error(e) for e in grid]))]
    fine = np.geomspace(best / 1.8, best * 1.8, 9)
    return float(fine[int(np.argmin([error(e) for e in fine]))])


def _fit_lateral_sigma(params: GFlashParams, g: int, dataset: Dataset, frame: Frame, energies, conditions,
                       showers: np.ndarray, seed: int) -> float:
    """Spread of logit p (the core share) per shower whose std of the hottest cell's energy
    fraction matches the reference showers (n, cells)."""
    def spread(x: np.ndarray) -> float:
        return float((x.max(axis=1) / np.maximum(x.sum(axis=1), 1e-12)).std())

    target = spread(showers)
    maps = build_cell_maps(params, dataset, frame)
    grid = np.linspace(0.0, 3.0, 13)
    errors = []
    for sigma in grid:
        trial = params.copy()
        trial.lateral_sigma[g] = sigma
        out = sample_showers(trial, maps, dataset, frame, energies, conditions, np.random.default_rng(seed))
        errors.append(abs(spread(out) - target))
    return float(grid[int(np.argmin(errors))])


#: Refits of the radial profile against targets corrected for what threshold and fluctuations change.
THRESHOLD_ITERATIONS = 2


def _mean_fractions(showers: np.ndarray, n_layers: int) -> np.ndarray:
    """(cells,) mean over showers of each cell's fraction of its layer's energy."""
    n = len(showers)
    blocks = showers.reshape(n, n_layers, -1)
    return (blocks / np.maximum(blocks.sum(axis=2, keepdims=True), 1e-12)).mean(axis=0).ravel()


def _fit_radial(params: GFlashParams, g: int, dataset: Dataset, frame: Frame, showers: np.ndarray,
                layer_energy: np.ndarray, ax: np.ndarray, ay: np.ndarray) -> None:
    """Fit (ln Rc, ln Rt, logit p) of every layer of group g to showers (n, cells); layers with
    almost no energy take the parameters of the nearest fitted layer."""
    L = frame.n_layers
    fitted = {}
    cell_size = float(np.sqrt(frame.geometry.sizes[0, 0] * frame.geometry.sizes[0, 1]))
    start = np.array([np.log(0.3 * cell_size), np.log(1.5 * cell_size), 1.5])
    for layer in range(L):
        if layer_energy[layer] < 1e-3 * layer_energy.max():
            continue
        block = showers[:, layer * frame.cells_per_layer:(layer + 1) * frame.cells_per_layer]
        if dataset.moving_axis:
            fitted[layer] = _grouped_hellinger_fit(*_moving_axis_model(frame, block, ax, ay), start)
        else:
            target = (block / np.maximum(block.sum(axis=1, keepdims=True), 1e-12)).mean(axis=0)
            target = target / max(target.sum(), 1e-12)
            fitted[layer] = _grouped_hellinger_fit(target[None], np.ones(1),
                                                   lambda th: frame.layer_cell_fractions(th, ax, ay)[None], start)
        start = fitted[layer]
    done = np.array(sorted(fitted))
    for layer in range(L):
        params.radial[g, layer] = fitted[int(done[np.argmin(np.abs(done - layer))])]


#: Axis positions used to average the cell maps when fitting a moving-axis dataset.
FIT_AXES = 400


def fit_gflash(dataset: Dataset, energies: np.ndarray, showers: np.ndarray,
               conditions: dict[str, np.ndarray], max_events: int, seed: int = 0, bar: Bar | None = None) -> GFlashParams:
    """Fit GFlash parameters to reference showers (n, cells) MeV of ``dataset`` with incident
    energies (n,) MeV. bar: advanced once per fit step (fit_steps_gflash steps in all)."""
    bar = bar or Bar()
    frame = Frame(dataset.geometry)
    rng = np.random.default_rng(seed)
    n = len(energies)
    if n > max_events:
        keep = np.sort(rng.choice(n, max_events, replace=False))
        energies, showers = energies[keep], showers[keep]
        conditions = {k: v[keep] for k, v in conditions.items()}
        n = max_events
    energies = np.asarray(energies, dtype=np.float64)
    showers = np.asarray(showers, dtype=np.float64)
    codes_all = groups_of(conditions, n)
    codes = np.unique(codes_all)
    G, L = len(codes), frame.n_layers
    params = GFlashParams(codes.astype(np.float64), np.zeros((G, 4)), np.zeros((G, 2, 2)),
                          np.tile(np.eye(2) * 1e-3, (G, 1, 1)), np.zeros((G, L, 3)), np.ones(G),
                          np.array([energies.min(), energies.max()]), np.zeros(G))
    for g, code in enumerate(codes):
        sel = codes_all == code
        e, s = energies[sel], showers[sel]
        cond = {k: v[sel] for k, v in conditions.items()}
        tot = s.sum(axis=1)
        params.response[g] = _fit_response(e, tot / e)
        profiles = s.reshape(len(e), L, -1).sum(axis=2)
        if L > 1:
            params.long_mean[g], params.long_cov[g] = _fit_longitudinal(frame.layer_depth, L, e, profiles)
        # shower axes of the training showers (at their mean depth), a subsample for the cell maps
        mu, _ = longitudinal(params, np.full(len(e), g), e, np.random.default_rng(seed), dataset.medium,
                             np.full(len(e), code), L)
        x0, y0, tx, ty = dataset.shower_axis(cond, np.random.default_rng(seed), len(e))
        pick = np.random.default_rng(seed).choice(len(e), min(FIT_AXES, len(e)), replace=False)
        ax, ay = (x0 + tx * mu)[pick], (y0 + ty * mu)[pick]
        m = min(len(e), 500)
        first = {k: v[:m] for k, v in cond.items()}
        hits = float((s[:m] > 0).sum(axis=1).mean())
        targets = s
        for iteration in range(THRESHOLD_ITERATIONS + 1):
            bar.advance(particle_group=f"{g + 1}/{G}", iteration=f"{iteration + 1}/{THRESHOLD_ITERATIONS + 1}")
            _fit_radial(params, g, dataset, frame, targets, profiles.mean(axis=0), ax, ay)
            params.eps[g] = _fit_eps(params, g, dataset, frame, e[:m], first, hits, seed)
            if dataset.moving_axis:  # then the lateral spread, and eps again with it
                params.lateral_sigma[g] = _fit_lateral_sigma(params, g, dataset, frame, e[:m], first, s[:m], seed)
                params.eps[g] = _fit_eps(params, g, dataset, frame, e[:m], first, hits, seed)
            if iteration < THRESHOLD_ITERATIONS:
                # the threshold and fluctuations reshape the generated maps: correct the targets
                # cell by cell by data / generated, so the fitted profile is the pre-threshold one
                gen = sample_showers(params, build_cell_maps(params, dataset, frame), dataset, frame, e, cond,
                                     np.random.default_rng(seed + 2))
                ratio = _mean_fractions(s, L) / np.maximum(_mean_fractions(gen, L), 1e-12)
                ratio = np.where(_mean_fractions(gen, L) > 0, np.clip(ratio, 0.2, 5.0), 1.0)
                targets = targets * ratio[None, :]
        # calibrate the response for what the threshold removes after the cell fluctuations
        maps = build_cell_maps(params, dataset, frame)
        out = sample_showers(params, maps, dataset, frame, e, cond, np.random.default_rng(seed + 1))
        ratio = float((tot / e).mean() / max((out.sum(axis=1) / e).mean(), 1e-12))
        params.response[g, :2] *= ratio
        bar.advance(particle_group=f"{g + 1}/{G}", step="response calibrated")
    return params


def fit_steps_gflash(conditions: dict[str, np.ndarray], n: int) -> int:
    """How many steps fit_gflash reports: per particle group, the threshold iterations and the calibration."""
    return len(np.unique(groups_of(conditions, n))) * (THRESHOLD_ITERATIONS + 2)



# ---------------------------------------------------------------- cepc point clouds
def _cepc_constants(barrel: BarrelLayout) -> tuple[np.ndarray, float]:
    """(L,) radii (mm) of the sensitive layers and the pad size (mm) of a point-cloud barrel."""
    return np.asarray(barrel.layer_radii), barrel.cell_size


R_BINS_MM = np.concatenate([np.arange(0.0, 30.0, 2.5), np.arange(30.0, 121.0, 10.0)])
CEPC_LAYER_GROUPS = 6
#: Pads simulated either side of the pad holding the shower axis, and axis-position bins per pad.
CEPC_HALF_WINDOW = 12
CEPC_TABLE_BINS = 16


def cepc_local(barrel: BarrelLayout, cells, offsets, theta_deg, phi_deg):
    """Reference point clouds in the shower frame: per cell (event, layer, dy, dz) where dy is the
    r-phi distance (mm) and dz the z distance (mm) from the shower axis at that layer."""
    radii, _ = _cepc_constants(barrel)
    counts = np.diff(offsets)
    event = np.repeat(np.arange(len(counts)), counts)
    x, y, z = (cells[:, k].astype(np.float64) for k in range(3))
    r = np.hypot(x, y)
    layer = np.argmin(np.abs(r[:, None] - radii[None, :]), axis=1)
    dphi = (np.arctan2(y, x) - np.radians(phi_deg[event]) + np.pi) % (2 * np.pi) - np.pi
    dy = radii[layer] * np.tan(dphi)
    dz = z - radii[layer] / np.tan(np.radians(theta_deg[event]))
    return event, layer, dy, dz


def _cepc_radial_hist(dr: np.ndarray, weight: np.ndarray) -> np.ndarray:
    h = np.histogram(np.minimum(dr, R_BINS_MM[-1] - 1e-6), R_BINS_MM, weights=weight)[0]
    return h / max(h.sum(), 1e-12)


def _cepc_pad_distance(ry: np.ndarray, rz: np.ndarray, oy: np.ndarray, oz: np.ndarray, cell: float):
    """Distance from the axis of the pad centre holding a spot at (ry, rz), pad grid offsets (oy, oz)."""
    cy = (np.floor((ry + oy) / cell) + 0.5) * cell - oy
    cz = (np.floor((rz + oz) / cell) + 0.5) * cell - oz
    return np.hypot(cy, cz)


@dataclass
class PadMaps:
    """cepc: fraction of a layer's energy in the pads around the axis pad.

    table (R, B * B, W * W): per distinct radial parameter row R, axis position bin inside its
    pad (B x B) and window pad (W x W, offsets di, dj in pads); group (L,) row of each layer.
    Per layer the window pads are ordered by their largest fraction over the axis positions,
    bound (L, W * W) in that order, order (L, W * W) the pads; rank (L, W * W) the position of
    each pad in it. In a (shower, layer) the pads whose bound reaches a Gamma shape SPARSE_SHAPE
    are dense (drawn one by one); every other pad is sparse: its hits are the points of a Poisson
    number (rate (hits per MeV) x layer energy beyond r_inner) of points of the radial profile
    beyond r_inner that land outside the dense pads, with energies from the quantiles ``tail``.
    reach (L, W * W + 1): for each number of dense pads, the nearest approach of a sparse pad to
    an axis anywhere in pad (0, 0), in mm (r_inner).
    """

    table: np.ndarray
    group: np.ndarray
    bound: np.ndarray
    order: np.ndarray
    rank: np.ndarray
    reach: np.ndarray
    di: np.ndarray
    dj: np.ndarray
    rate: float
    tail: np.ndarray


def build_pad_maps(params: GFlashParams, barrel: BarrelLayout, threshold: float) -> PadMaps:
    """Integrate the fitted radial profiles over the pads around the axis (once per parameter set)."""
    radii, cell = _cepc_constants(barrel)
    rows, group = np.unique(params.radial[0], axis=0, return_inverse=True)
    h, B = CEPC_HALF_WINDOW, CEPC_TABLE_BINS
    offsets = np.arange(-h, h + 1)
    di, dj = np.repeat(offsets, 2 * h + 1), np.tile(offsets, 2 * h + 1)
    u = (np.arange(B) + 0.5) / B * cell
    uy, uz = np.repeat(u, B)[:, None], np.tile(u, B)[:, None]
    y1, z1 = di * cell - uy, dj * cell - uz
    table = np.stack([mixture(rectangle_fraction(y1, y1 + cell, z1, z1 + cell, rc),
                              rectangle_fraction(y1, y1 + cell, z1, z1 + cell, rt), p)
                      for rc, rt, p in (unpack(row) for row in rows)]).astype(np.float32)
    largest = table.max(axis=1)[group]  # (L, W*W)
    order = np.argsort(-largest, axis=1, kind="stable")
    bound = np.take_along_axis(largest, order, axis=1)
    rank = np.argsort(order, axis=1)
    near = (np.maximum(np.abs(di), np.abs(dj)) - 1) * cell  # closest approach of each pad
    suffix = np.minimum.accumulate(near[order][:, ::-1], axis=1)[:, ::-1]
    reach = np.maximum(np.concatenate([suffix, np.full((len(radii), 1), h * cell)], axis=1), 0.0)
    reach = np.minimum(reach, h * cell)
    eps = max(float(params.eps[0]), 1e-9)
    return PadMaps(table, group, bound.astype(np.float32), order, rank, reach, di, dj,
                   float(exp1(threshold / eps) / eps), sparse_tail_quantiles(eps, threshold))


def fit_cepc(barrel: BarrelLayout, energies, cells, offsets, theta, phi, threshold: float, draws: int,
             seed: int = 0, bar: Bar | None = None) -> GFlashParams:
    """Fit GFlash to point clouds of a barrel (one particle group; layer units for the depth).
    bar: advanced once per fit step (FIT_STEPS_CEPC in all)."""
    bar = bar or Bar()
    radii, cell = _cepc_constants(barrel)
    n_layers = len(radii)
    energies = np.asarray(energies, dtype=np.float64)
    event, layer, dy, dz = cepc_local(barrel, cells, offsets, np.asarray(theta), np.asarray(phi))
    e = cells[:, 3].astype(np.float64)
    n = len(energies)
    tot = np.bincount(event, e, minlength=n)
    params = GFlashParams(np.zeros(1), np.zeros((1, 4)), np.zeros((1, 2, 2)), np.eye(2)[None] * 1e-3,
                          np.zeros((1, n_layers, 3)), np.ones(1), np.array([energies.min(), energies.max()]),
                          np.zeros(1))
    params.response[0] = _fit_response(energies, tot / energies)
    profiles = np.zeros((n, n_layers))
    np.add.at(profiles, (event, layer), e)
    params.long_mean[0], params.long_cov[0] = _fit_longitudinal(1.0, n_layers, energies, profiles)
    # radial: per group of layers, match the energy-weighted pad-distance histogram
    rng = np.random.default_rng(seed)
    v = np.clip(rng.random(draws), 1e-12, 1 - 1e-9)
    unit = np.sqrt(v / (1 - v))
    ang = rng.uniform(-np.pi, np.pi, draws)
    oy, oz = rng.uniform(0, cell, draws), rng.uniform(0, cell, draws)
    dr = np.hypot(dy, dz)
    for members in np.array_split(np.arange(n_layers), CEPC_LAYER_GROUPS):
        sel = np.isin(layer, members)
        target = _cepc_radial_hist(dr[sel], e[sel])

        def loss(th):
            rc, rt, p = unpack(th)
            hc = _cepc_radial_hist(_cepc_pad_distance(rc * unit * np.cos(ang), rc * unit * np.sin(ang), oy, oz, cell),
                                   np.ones(draws))
            ht = _cepc_radial_hist(_cepc_pad_distance(rt * unit * np.cos(ang), rt * unit * np.sin(ang), oy, oz, cell),
                                   np.ones(draws))
            return float(np.sum((np.sqrt(mixture(hc, ht, p)) - np.sqrt(target)) ** 2))

        best = minimize(loss, np.array([np.log(4.0), np.log(20.0), 1.0]), method="Nelder-Mead",
                        options={"maxiter": 250, "xatol": 1e-3, "fatol": 1e-7}).x
        if best[0] > best[1]:
            best = np.array([best[1], best[0], -best[2]])
        params.radial[0, members] = best
        bar.advance(step=f"radial profile, layers {members[0]}-{members[-1]}")
    hits = float(np.diff(offsets).mean())
    grid = np.geomspace(1e-3, 10.0, 17)
    errs = []
    m = min(n, 100)
    for eps in grid:
        params.eps[0] = eps
        out = sample_cepc(params, build_pad_maps(params, barrel, threshold), barrel, energies[:m], theta[:m],
                          phi[:m], threshold, np.random.default_rng(seed))
        errs.append(abs(np.diff(out[1]).mean() - hits))
        bar.advance(step=f"fluctuation eps {eps:.3g}")
    params.eps[0] = grid[int(np.argmin(errs))]
    out = sample_cepc(params, build_pad_maps(params, barrel, threshold), barrel, energies, theta, phi, threshold,
                      np.random.default_rng(seed + 1))
    gen_tot = np.bincount(np.repeat(np.arange(n), np.diff(out[1])), out[0][:, 3], minlength=n)
    params.response[0, :2] *= float((tot / energies).mean() / max((gen_tot / energies).mean(), 1e-12))
    bar.advance(step="response calibrated")
    return params


#: Steps that fit_cepc reports: the layer groups, the 17 eps values, the calibration.
FIT_STEPS_CEPC = CEPC_LAYER_GROUPS + 17 + 1


def sample_cepc(params: GFlashParams, maps: PadMaps, barrel: BarrelLayout, energies, theta_deg, phi_deg,
                threshold: float, rng: np.random.Generator):
    """Point clouds of a barrel: returns (cells (M, 4) float32 x, y, z, E in global mm / MeV, offsets (n+1,))."""
    radii, cell = _cepc_constants(barrel)
    n_layers = len(radii)
    energies = np.asarray(energies, dtype=np.float64)
    theta = np.radians(np.asarray(theta_deg, dtype=np.float64))
    phi = np.radians(np.asarray(phi_deg, dtype=np.float64))
    n = len(energies)
    gi = np.zeros(n, dtype=np.int64)
    e_dep = deposited_energy(params, gi, energies, rng)
    mu, alpha = longitudinal(params, gi, energies, rng, None, gi, n_layers)
    layer_e = layer_fractions(mu, alpha, n_layers, 1.0) * e_dep[:, None].astype(np.float32)
    # pad grids: z edges at multiples of the pad size; r-phi grid offset uniform per shower
    B = CEPC_TABLE_BINS
    oy = rng.uniform(0.0, cell, n)
    axis_z = radii[None, :] / np.tan(theta)[:, None]  # (n, L)
    iz0 = np.floor(axis_z / cell)
    by = np.minimum((oy / cell * B).astype(np.int64), B - 1)
    bz = np.minimum(((axis_z - iz0 * cell) / cell * B).astype(np.int64), B - 1)
    eps = max(float(params.eps[0]), 1e-9)
    # dense pads of each (shower, layer): the prefix of the ordered pads whose bound reaches the cut
    counts = np.empty((n, n_layers), dtype=np.int64)
    need = (SPARSE_SHAPE * eps) / np.maximum(layer_e, 1e-30)
    for layer in range(n_layers):
        counts[:, layer] = np.searchsorted(-maps.bound[layer], -need[:, layer], side="right")
    w2 = maps.table.shape[2]
    flat = counts.ravel()
    segment = np.repeat(np.arange(n * n_layers, dtype=np.int32), flat)
    position = np.arange(len(segment), dtype=np.int32) - np.repeat((np.cumsum(flat) - flat).astype(np.int32), flat)
    d_ev, d_layer = segment // np.int32(n_layers), segment % np.int32(n_layers)
    window = maps.order[d_layer, position]
    row = (maps.group[d_layer] * (B * B) + by[d_ev] * B + bz[d_ev, d_layer]) * w2 + window
    mean = maps.table.reshape(-1)[row]
    mean *= layer_e.ravel()[segment]
    energy = fluctuate(mean, np.float32(eps), rng)
    dense_total = np.bincount(d_ev, energy, minlength=n)
    # sparse pads: Poisson points of the radial profile outside the dense pads (thinning)
    r_inner = maps.reach[np.arange(n_layers)[None, :], counts]  # (n, L)
    rc, rt = np.exp(params.radial[0, :, 0]), np.exp(params.radial[0, :, 1])
    p_core = 1.0 / (1.0 + np.exp(-params.radial[0, :, 2]))
    beyond_c = rc ** 2 / (r_inner ** 2 + rc ** 2)  # 1 - F(r_inner) of each component, (n, L)
    beyond_t = rt ** 2 / (r_inner ** 2 + rt ** 2)
    beyond = p_core * beyond_c + (1 - p_core) * beyond_t
    count = rng.poisson(maps.rate * layer_e.astype(np.float64) * beyond)  # (n, L)
    s_ev, s_layer = np.nonzero(count)
    reps = count[s_ev, s_layer]
    s_ev, s_layer = np.repeat(s_ev, reps), np.repeat(s_layer, reps)
    bc, bt = beyond_c[s_ev, s_layer], beyond_t[s_ev, s_layer]
    core = rng.random(len(s_ev)) < p_core[s_layer] * bc / np.maximum(beyond[s_ev, s_layer], 1e-300)
    scale = np.where(core, rc[s_layer], rt[s_layer])
    u_lo = 1.0 - np.where(core, bc, bt)  # F(r_inner) of the component
    u = np.minimum(u_lo + rng.random(len(s_ev)) * (1.0 - u_lo), 1 - 1e-9)
    r = scale * np.sqrt(u / (1.0 - u))
    ang = rng.uniform(-np.pi, np.pi, len(s_ev))
    s_iy = np.floor((r * np.cos(ang) + oy[s_ev]) / cell).astype(np.int64)
    s_iz = np.floor((axis_z[s_ev, s_layer] + r * np.sin(ang)) / cell).astype(np.int64)
    h = CEPC_HALF_WINDOW
    rel_z = s_iz - iz0[s_ev, s_layer].astype(np.int64)
    inside = (np.abs(s_iy) <= h) & (np.abs(rel_z) <= h)
    window_index = np.where(inside, (np.clip(s_iy, -h, h) + h) * (2 * h + 1) + np.clip(rel_z, -h, h) + h, 0)
    keep = ~(inside & (maps.rank[s_layer, window_index] < counts[s_ev, s_layer]))
    q = len(maps.tail)
    s_e = maps.tail[np.minimum((rng.random(int(keep.sum())) * q).astype(np.int64), q - 1)]
    s_ev, s_layer, s_iy, s_iz = s_ev[keep], s_layer[keep], s_iy[keep], s_iz[keep]
    # one entry per sparse pad (it may be hit twice); sparse and dense pads are disjoint
    key = ((s_ev * n_layers + s_layer) * 4096 + (s_iy + 2048)) * 200000 + (s_iz + 100000)
    key, inverse = np.unique(key, return_inverse=True)
    s_e = np.bincount(inverse, s_e, minlength=len(key))
    s_ev = key // (n_layers * 4096 * 200000)
    rest = key % (n_layers * 4096 * 200000)
    s_layer, s_iy, s_iz = rest // (4096 * 200000), (rest // 200000) % 4096 - 2048, rest % 200000 - 100000
    # keep the sampled total, then the threshold
    scale = e_dep / np.maximum(dense_total + np.bincount(s_ev, s_e, minlength=n), 1e-12)
    energy *= scale.astype(np.float32)[d_ev]
    a = np.flatnonzero(energy >= threshold)
    d_ev, d_layer, d_window = d_ev[a].astype(np.int64), d_layer[a].astype(np.int64), window[a]
    s_e = s_e * scale[s_ev]
    ok = s_e >= threshold
    ev = np.concatenate([d_ev, s_ev[ok]])
    order = np.argsort(ev, kind="stable")
    ev = ev[order]
    layer = np.concatenate([d_layer, s_layer[ok]])[order]
    iy = np.concatenate([maps.di[d_window], s_iy[ok]])[order]
    iz = np.concatenate([iz0[d_ev, d_layer].astype(np.int64) + maps.dj[d_window], s_iz[ok]])[order]
    e_pad = np.concatenate([energy[a].astype(np.float64), s_e[ok]])[order]
    y = (iy + 0.5) * cell - oy[ev]
    z = (iz + 0.5) * cell
    r = radii[layer]
    phi_cell = np.arctan2(y, r) + phi[ev]
    cells = np.stack([r * np.cos(phi_cell), r * np.sin(phi_cell), z, e_pad], axis=1).astype(np.float32)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ev, minlength=n), out=offsets[1:])
    return cells, offsets
