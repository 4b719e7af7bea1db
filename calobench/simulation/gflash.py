"""GFlash-style parametric shower simulation in vectorized numpy.

A shower is a set of equal-energy spots (Grindhammer & Peters, hep-ex/0001020):
- total deposited energy: f = E_dep / E_inc ~ Normal(mean(lnE), sigma(lnE)) per particle group;
- longitudinal: the spot depth (mm) follows a Gamma(alpha, beta) law whose per-shower
  (ln mean depth, ln alpha) are drawn from a correlated bivariate normal whose mean is linear
  in ln E (the fluctuations and correlation of the longitudinal profile);
- radial: a core + tail mixture, f(r) = p 2r Rc^2/(r^2+Rc^2)^2 + (1-p) 2r Rt^2/(r^2+Rt^2)^2,
  with (Rc, Rt, p) per readout layer (depth dependence);
- the spots are binned into the readout cells, rescaled to the sampled E_dep, and every cell
  gets a Gamma sampling fluctuation of variance eps * E_cell (MeV^2) (the shower total kept),
  then the threshold.
Parameters are fitted to a Geant4 reference ShowerSet (``fit_gflash``). Lengths in mm, MeV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, nnls

from ..geometry import CYLINDRICAL, GRID, Geometry

#: Single-layer crystal readouts have no longitudinal information: GFlash's homogeneous
#: parametrisation in radiation lengths is used (X0 mm, critical energy MeV, Z; PDG values).
MATERIALS = {"stcf11x11": (18.6, 11.17, 54.0), "bes3-11x11": (18.6, 11.17, 54.0)}


@dataclass
class Frame:
    """How a geometry reads out spots: depth of a layer (mm) and the cell binning."""

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

    def bin(self, x: np.ndarray, y: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Cell index of spots at (x, y) mm and depth mm; -1 outside the readout."""
        g = self.geometry
        layer = np.floor(depth / self.layer_depth).astype(np.int64)
        ok = (layer >= 0) & (layer < self.n_layers)
        if g.kind == GRID:
            _, ny, nx = g.shape
            dx, dy = g.sizes[0, 0], g.sizes[0, 1]
            ix = np.floor(x / dx + nx / 2.0).astype(np.int64)
            iy = np.floor(y / dy + ny / 2.0).astype(np.int64)
            ok &= (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
            cell = (layer * ny + iy) * nx + ix
        elif g.kind == CYLINDRICAL:
            binning = g.layers[0]
            edges = np.asarray(binning.r_edges)
            r = np.hypot(x, y)
            ir = np.searchsorted(edges, r, side="right") - 1
            ok &= (ir >= 0) & (ir < binning.n_r)
            ia = np.floor((np.arctan2(y, x) + np.pi) / (2 * np.pi / binning.n_alpha)).astype(np.int64)
            ia = np.clip(ia, 0, binning.n_alpha - 1)
            cell = layer * binning.n_cells + ia * binning.n_r + ir
        else:
            raise ValueError(f"GFlash needs a voxel geometry, {g.name} is {g.kind}")
        return np.where(ok, cell, -1)


def radial_draws(rng: np.random.Generator, n: int, rc, rt, p):
    """n radial distances (mm) from the core + tail mixture (arrays broadcast to (n,))."""
    u = rng.random(n)
    v = np.clip(rng.random(n), 1e-12, 1 - 1e-9)
    scale = np.where(u < p, rc, rt)
    return scale * np.sqrt(v / (1.0 - v))


def impact(dataset: str, conditions: dict[str, np.ndarray], rng: np.random.Generator, n: int):
    """Local impact point (x0, y0) mm and slopes (tx, ty) of the shower axis per shower."""
    zeros = np.zeros(n)
    if dataset == "stcf11x11" and "dz_pos" in conditions:
        radius = 1000.0  # setups.Stcf.radius
        x0 = np.radians(conditions["dphi_pos"]) * radius
        y0 = np.asarray(conditions["dz_pos"], dtype=np.float64)
        tx = np.tan(np.radians(conditions["dphi_mom"]))
        ty = -np.tan(np.radians(conditions["dtheta_mom"]))
        return x0, y0, tx, ty
    if dataset == "bes3-11x11":  # offsets are not conditions of this dataset: their sampled law
        x0 = rng.uniform(-0.45 * 52.0, 0.45 * 52.0, n)
        y0 = rng.uniform(-0.45 * 52.0, 0.45 * 52.0, n)
        return x0, y0, np.full(n, np.tan(np.radians(1.5))), zeros
    if dataset == "darkshine":
        return np.full(n, 12.5), np.full(n, 12.5), zeros, zeros
    return zeros + 0.0, zeros + 0.0, zeros, zeros


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
    radial (G, L, 3): ln Rc, ln Rt, logit p; eps (G,): cell fluctuation MeV.
    """

    codes: np.ndarray
    response: np.ndarray
    long_mean: np.ndarray
    long_cov: np.ndarray
    radial: np.ndarray
    eps: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.__dict__.items()}

    @staticmethod
    def from_arrays(arrays: dict[str, np.ndarray]) -> "GFlashParams":
        return GFlashParams(**{k: np.asarray(arrays[k], dtype=np.float64) for k in
                               ("codes", "response", "long_mean", "long_cov", "radial", "eps")})


def _homogeneous_profile(dataset: str, energies: np.ndarray, codes: np.ndarray):
    """GFlash homogeneous-medium (ln mu, ln alpha) in mm for single-layer crystals."""
    x0, ec, z = MATERIALS[dataset]
    y = np.maximum(energies / ec, 2.0)
    t_max = np.log(y) - 0.858 + np.where(codes == 22, 0.5, 0.0)
    alpha = np.exp(0.21 + (0.492 + 2.38 / z) * np.log(y))
    beta = (alpha - 1.0) / np.maximum(t_max, 0.3)
    return np.log(alpha / beta * x0), np.log(alpha)


def sample_showers(params: GFlashParams, dataset: str, frame: Frame, energies: np.ndarray,
                   conditions: dict[str, np.ndarray], rng: np.random.Generator, n_spots: int) -> np.ndarray:
    """(n, cells) float32 showers in MeV for incident energies (n,) MeV; n_spots: most spots per shower."""
    n = len(energies)
    energies = np.asarray(energies, dtype=np.float64)
    codes = groups_of(conditions, n)
    gi = np.searchsorted(params.codes, codes)
    gi = np.clip(gi, 0, len(params.codes) - 1)
    le = np.log(energies)
    # total deposited energy
    a, b, c, d = (params.response[gi, k] for k in range(4))
    frac = a + b * le + np.sqrt(np.maximum(c ** 2 / energies + d ** 2, 0.0)) * rng.standard_normal(n)
    e_dep = energies * np.clip(frac, 0.0, None)
    # longitudinal (correlated fluctuations)
    if frame.n_layers > 1:
        mean = params.long_mean[gi, :, 0] + params.long_mean[gi, :, 1] * le[:, None]
        chol = np.linalg.cholesky(params.long_cov + 1e-9 * np.eye(2))[gi]
        z = np.einsum("nij,nj->ni", chol, rng.standard_normal((n, 2)))
        ln_mu, ln_alpha = (mean + z).T
    else:
        ln_mu, ln_alpha = _homogeneous_profile(dataset, energies, codes)
    alpha = np.maximum(np.exp(ln_alpha), 1.05)
    mu = np.exp(ln_mu)
    # spots: about two per threshold energy (so faint cells can appear), at most n_spots
    per = np.clip(np.rint(2.0 * e_dep / frame.geometry.threshold), 32, n_spots).astype(np.int64)
    m = int(per.sum())
    event = np.repeat(np.arange(n), per)
    depth = rng.gamma(np.repeat(alpha, per), np.repeat(mu / alpha, per))
    layer = np.clip((depth / frame.layer_depth).astype(np.int64), 0, frame.n_layers - 1)
    rad = params.radial[gi[event], layer]
    r = radial_draws(rng, m, np.exp(rad[:, 0]), np.exp(rad[:, 1]), 1.0 / (1.0 + np.exp(-rad[:, 2])))
    phi = rng.uniform(-np.pi, np.pi, m)
    x0, y0, tx, ty = impact(dataset, conditions, rng, n)
    x = x0[event] + tx[event] * depth + r * np.cos(phi)
    y = y0[event] + ty[event] * depth + r * np.sin(phi)
    cell = frame.bin(x, y, depth)
    inside = cell >= 0
    n_cells = frame.geometry.n_cells
    flat = event[inside] * n_cells + cell[inside]
    # work on the touched cells only (sparse), then scatter into the dense output
    counts = np.bincount(flat, minlength=n * n_cells)
    live = np.flatnonzero(counts)
    ev = live // n_cells
    spots_in = counts[live].astype(np.float64)
    hits = np.bincount(ev, spots_in, minlength=n)
    energy = spots_in * (e_dep / np.maximum(hits, 1.0))[ev]
    # per-cell sampling fluctuation: Gamma with mean E_cell and variance eps * E_cell
    eps = np.maximum(params.eps[gi], 1e-9)[ev]
    energy = rng.gamma(energy / eps, 1.0) * eps
    total = np.bincount(ev, energy, minlength=n)
    energy *= (e_dep / np.maximum(total, 1e-12))[ev]  # keep the fitted total
    energy[energy < frame.geometry.threshold] = 0.0
    showers = np.zeros(n * n_cells, dtype=np.float32)
    showers[live] = energy
    return showers.reshape(n, n_cells)


# ---------------------------------------------------------------- fitting
def _fit_response(energies: np.ndarray, frac: np.ndarray) -> np.ndarray:
    le = np.log(energies)
    design = np.stack([np.ones_like(le), le], axis=1)
    coef, *_ = np.linalg.lstsq(design, frac, rcond=None)
    resid2 = (frac - design @ coef) ** 2
    design2 = np.stack([1.0 / energies, np.ones_like(le)], axis=1)
    var_coef, _ = nnls(design2, resid2)
    return np.array([coef[0], coef[1], np.sqrt(var_coef[0]), np.sqrt(var_coef[1])])


def _fit_longitudinal(frame: Frame, energies: np.ndarray, profiles: np.ndarray):
    """profiles (n, L) layer energies -> (mean coefficients (2, 2), residual covariance (2, 2))."""
    dz = frame.layer_depth
    centres = (np.arange(frame.n_layers) + 0.5) * dz
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


def _fit_radial_layer(frame: Frame, dataset: str, target: np.ndarray, layer: int, conditions: dict,
                      ln_mu_alpha, rng_seed: int, draws: int) -> np.ndarray:
    """Fit (ln Rc, ln Rt, logit p) so binned spots match the mean cell fractions of one layer."""
    rng = np.random.default_rng(rng_seed)
    n = len(next(iter(conditions.values()))) if conditions else 1
    x0, y0, tx, ty = impact(dataset, conditions, rng, n) if conditions else impact(dataset, {}, rng, 1)
    pick = rng.integers(0, len(x0), draws)
    ln_mu, ln_alpha = ln_mu_alpha
    depth = rng.gamma(np.exp(ln_alpha), np.exp(ln_mu - ln_alpha), draws)
    if frame.n_layers > 1:
        depth = (layer + rng.random(draws)) * frame.layer_depth
    v = np.clip(rng.random(draws), 1e-12, 1 - 1e-9)
    radius_unit = np.sqrt(v / (1 - v))
    phi = rng.uniform(-np.pi, np.pi, draws)
    bx = x0[pick] + tx[pick] * depth
    by = y0[pick] + ty[pick] * depth
    depth_bin = np.full(draws, (layer + 0.5) * frame.layer_depth)
    lo = layer * frame.cells_per_layer

    def fractions(scale):
        cell = frame.bin(bx + scale * radius_unit * np.cos(phi), by + scale * radius_unit * np.sin(phi), depth_bin)
        ok = cell >= 0
        return np.bincount(cell[ok] - lo, minlength=frame.cells_per_layer) / draws

    def loss(theta):
        rc, rt = np.exp(theta[0]), np.exp(theta[1])
        p = 1.0 / (1.0 + np.exp(-theta[2]))
        model = p * fractions(rc) + (1 - p) * fractions(rt)
        model = model / max(model.sum(), 1e-12)
        # Hellinger distance: the sparse tail cells count, not only the hot core
        return float(np.sum((np.sqrt(model) - np.sqrt(target)) ** 2))

    cell_size = float(np.sqrt(frame.geometry.sizes[lo, 0] * frame.geometry.sizes[lo, 1]))
    start = np.array([np.log(0.3 * cell_size), np.log(1.5 * cell_size), 1.5])
    best = minimize(loss, start, method="Nelder-Mead", options={"maxiter": 250, "xatol": 1e-3, "fatol": 1e-7})
    theta = best.x
    theta[2] = np.clip(theta[2], -6, 6)
    if theta[0] > theta[1]:  # keep the core the narrower component
        theta = np.array([theta[1], theta[0], -theta[2]])
    return theta


def _fit_eps(params: GFlashParams, g: int, dataset: str, frame: Frame, energies, conditions, ref_hits,
             n_spots: int, seed: int) -> float:
    """Cell fluctuation scale eps (MeV) whose mean count of cells above threshold matches."""
    grid = np.geomspace(1e-4, 10.0, 13) * frame.geometry.threshold * 10
    best, best_err = grid[0], np.inf
    for eps in grid:
        trial = GFlashParams(**{k: np.array(v, copy=True) for k, v in params.__dict__.items()})
        trial.eps[g] = eps
        out = sample_showers(trial, dataset, frame, energies, conditions, np.random.default_rng(seed), n_spots)
        err = abs((out > 0).sum(axis=1).mean() - ref_hits)
        if err < best_err:
            best, best_err = eps, err
    return float(best)


def fit_gflash(dataset: str, geometry: Geometry, energies: np.ndarray, showers: np.ndarray,
               conditions: dict[str, np.ndarray], n_spots: int, draws: int, max_events: int,
               seed: int = 0) -> GFlashParams:
    """Fit GFlash parameters to reference showers (n, cells) MeV with incident energies (n,)."""
    frame = Frame(geometry)
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
                          np.tile(np.eye(2) * 1e-3, (G, 1, 1)), np.zeros((G, L, 3)), np.ones(G))
    params.codes = codes.astype(np.float64)
    for g, code in enumerate(codes):
        sel = codes_all == code
        e, s = energies[sel], showers[sel]
        cond = {k: v[sel] for k, v in conditions.items()}
        tot = s.sum(axis=1)
        params.response[g] = _fit_response(e, tot / e)
        profiles = s.reshape(len(e), L, -1).sum(axis=2)
        if L > 1:
            params.long_mean[g], params.long_cov[g] = _fit_longitudinal(frame, e, profiles)
        layer_energy = profiles.mean(axis=0)
        e_mid = float(np.exp(np.log(e).mean()))
        ln_mu, ln_alpha = (_homogeneous_profile(dataset, np.array([e_mid]), np.array([code]))
                           if L == 1 else (params.long_mean[g, 0, 0] + params.long_mean[g, 0, 1] * np.log(e_mid),
                                           params.long_mean[g, 1, 0] + params.long_mean[g, 1, 1] * np.log(e_mid)))
        fitted = {}
        for layer in range(L):
            if layer_energy[layer] < 1e-3 * layer_energy.max():
                continue
            block = s[:, layer * frame.cells_per_layer:(layer + 1) * frame.cells_per_layer]
            target = (block / np.maximum(block.sum(axis=1, keepdims=True), 1e-12)).mean(axis=0)
            fitted[layer] = _fit_radial_layer(frame, dataset, target, layer, cond,
                                              (float(np.ravel(ln_mu)[0]), float(np.ravel(ln_alpha)[0])),
                                              seed + layer, draws)
        done = np.array(sorted(fitted))
        for layer in range(L):
            nearest = done[np.argmin(np.abs(done - layer))]
            params.radial[g, layer] = fitted[int(nearest)]
        hits = float((s > 0).sum(axis=1).mean())
        params.eps[g] = _fit_eps(params, g, dataset, frame, e[:200], {k: v[:200] for k, v in cond.items()},
                                 float((s[:200] > 0).sum(axis=1).mean()) if len(e) >= 1 else hits,
                                 n_spots, seed)
        # calibrate the response for what the threshold removes after the cell fluctuations
        out = sample_showers(params, dataset, frame, e, cond, np.random.default_rng(seed + 1), n_spots)
        ratio = float((tot / e).mean() / max((out.sum(axis=1) / e).mean(), 1e-12))
        params.response[g, :2] *= ratio
    return params


# ---------------------------------------------------------------- cepc point clouds
def _cepc_constants():
    from ..geometry import cepc_barrel
    return np.asarray(cepc_barrel.layer_radii()), cepc_barrel.CELL_MM


R_BINS_MM = np.concatenate([np.arange(0.0, 30.0, 2.5), np.arange(30.0, 121.0, 10.0)])
CEPC_LAYER_GROUPS = 6


def cepc_local(cells, offsets, theta_deg, phi_deg):
    """Reference point clouds in the shower frame: per cell (event, layer, dy, dz) where dy is the
    r-phi distance (mm) and dz the z distance (mm) from the shower axis at that layer."""
    radii, _ = _cepc_constants()
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


def fit_cepc(energies, cells, offsets, theta, phi, threshold: float, n_spots: int, draws: int,
             seed: int = 0) -> GFlashParams:
    """Fit GFlash to cepc point clouds (one particle group; layer units for the depth)."""
    radii, cell = _cepc_constants()
    n_layers = len(radii)
    energies = np.asarray(energies, dtype=np.float64)
    event, layer, dy, dz = cepc_local(cells, offsets, np.asarray(theta), np.asarray(phi))
    e = cells[:, 3].astype(np.float64)
    n = len(energies)
    tot = np.bincount(event, e, minlength=n)
    params = GFlashParams(np.zeros(1), np.zeros((1, 4)), np.zeros((1, 2, 2)), np.eye(2)[None] * 1e-3,
                          np.zeros((1, n_layers, 3)), np.ones(1))
    params.response[0] = _fit_response(energies, tot / energies)
    profiles = np.zeros((n, n_layers))
    np.add.at(profiles, (event, layer), e)
    frame = type("LayerFrame", (), {"layer_depth": 1.0, "n_layers": n_layers})()
    params.long_mean[0], params.long_cov[0] = _fit_longitudinal(frame, energies, profiles)
    # radial: per group of layers, match the energy-weighted pad-distance histogram
    rng = np.random.default_rng(seed)
    v = np.clip(rng.random(draws), 1e-12, 1 - 1e-9)
    unit = np.sqrt(v / (1 - v))
    ang = rng.uniform(-np.pi, np.pi, draws)
    oy, oz = rng.uniform(0, cell, draws), rng.uniform(0, cell, draws)
    dr = np.hypot(dy, dz)
    groups = np.array_split(np.arange(n_layers), CEPC_LAYER_GROUPS)
    for members in groups:
        sel = np.isin(layer, members)
        target = _cepc_radial_hist(dr[sel], e[sel])

        def loss(th):
            rc, rt, p = np.exp(th[0]), np.exp(th[1]), 1 / (1 + np.exp(-th[2]))
            hc = _cepc_radial_hist(_cepc_pad_distance(rc * unit * np.cos(ang), rc * unit * np.sin(ang), oy, oz, cell),
                                   np.ones(draws))
            ht = _cepc_radial_hist(_cepc_pad_distance(rt * unit * np.cos(ang), rt * unit * np.sin(ang), oy, oz, cell),
                                   np.ones(draws))
            return float(np.sum((np.sqrt(p * hc + (1 - p) * ht) - np.sqrt(target)) ** 2))

        best = minimize(loss, np.array([np.log(4.0), np.log(20.0), 1.0]), method="Nelder-Mead",
                        options={"maxiter": 250, "xatol": 1e-3, "fatol": 1e-7}).x
        if best[0] > best[1]:
            best = np.array([best[1], best[0], -best[2]])
        params.radial[0, members] = best
    hits = float(np.diff(offsets).mean())
    grid = np.geomspace(1e-3, 10.0, 13)
    errs = []
    for eps in grid:
        params.eps[0] = eps
        out = sample_cepc(params, energies[:100], theta[:100], phi[:100], threshold,
                          np.random.default_rng(seed), n_spots)
        errs.append(abs(np.diff(out[1]).mean() - hits))
    params.eps[0] = grid[int(np.argmin(errs))]
    out = sample_cepc(params, energies, theta, phi, threshold, np.random.default_rng(seed + 1), n_spots)
    gen_tot = np.bincount(np.repeat(np.arange(n), np.diff(out[1])), out[0][:, 3], minlength=n)
    params.response[0, :2] *= float((tot / energies).mean() / max((gen_tot / energies).mean(), 1e-12))
    return params


def sample_cepc(params: GFlashParams, energies, theta_deg, phi_deg, threshold: float,
                rng: np.random.Generator, n_spots: int):
    """cepc point clouds: returns (cells (M, 4) float32 x, y, z, E in global mm / MeV, offsets (n+1,))."""
    radii, cell = _cepc_constants()
    n_layers = len(radii)
    energies = np.asarray(energies, dtype=np.float64)
    theta = np.radians(np.asarray(theta_deg, dtype=np.float64))
    phi = np.radians(np.asarray(phi_deg, dtype=np.float64))
    n = len(energies)
    a, b, c, d = params.response[0]
    le = np.log(energies)
    frac = a + b * le + np.sqrt(np.maximum(c ** 2 / energies + d ** 2, 0.0)) * rng.standard_normal(n)
    e_dep = energies * np.clip(frac, 0.0, None)
    mean = params.long_mean[0, :, 0] + params.long_mean[0, :, 1] * le[:, None]
    z = rng.standard_normal((n, 2)) @ np.linalg.cholesky(params.long_cov[0] + 1e-9 * np.eye(2)).T
    ln_mu, ln_alpha = (mean + z).T
    alpha = np.maximum(np.exp(ln_alpha), 1.05)
    mu = np.exp(ln_mu)
    per = np.clip(np.rint(2.0 * e_dep / threshold), 32, n_spots).astype(np.int64)
    event = np.repeat(np.arange(n), per)
    m = len(event)
    depth = rng.gamma(np.repeat(alpha, per), np.repeat(mu / alpha, per))
    layer = np.floor(depth).astype(np.int64)
    inside = layer < n_layers
    rad = params.radial[0, np.clip(layer, 0, n_layers - 1)]
    r = radial_draws(rng, m, np.exp(rad[:, 0]), np.exp(rad[:, 1]), 1.0 / (1.0 + np.exp(-rad[:, 2])))
    ang = rng.uniform(-np.pi, np.pi, m)
    # pad grids: z edges at multiples of the pad size; r-phi grid offset uniform per shower
    oy = rng.uniform(0.0, cell, n)
    lay = np.clip(layer, 0, n_layers - 1)
    axis_z = radii[lay] / np.tan(theta[event])
    iy = np.floor((r * np.cos(ang) + oy[event]) / cell).astype(np.int64)
    iz = np.floor((axis_z + r * np.sin(ang)) / cell).astype(np.int64)
    keep = inside & (np.abs(iy) < 1000) & (np.abs(iz) < 100000)
    key = ((event[keep] * n_layers + lay[keep]) * 2000 + (iy[keep] + 1000)) * 200000 + (iz[keep] + 100000)
    uniq, count = np.unique(key, return_counts=True)
    ev_u = uniq // (n_layers * 2000 * 200000)
    hits = np.bincount(ev_u, count, minlength=n)
    energy = count * (e_dep / np.maximum(hits, 1.0))[ev_u]
    eps = max(float(params.eps[0]), 1e-9)
    energy = rng.gamma(energy / eps, 1.0) * eps
    scale = e_dep / np.maximum(np.bincount(ev_u, energy, minlength=n), 1e-12)
    energy = energy * scale[ev_u]
    rest = uniq % (n_layers * 2000 * 200000)
    lay_u = rest // (2000 * 200000)
    iy_u = (rest // 200000) % 2000 - 1000
    iz_u = rest % 200000 - 100000
    ok = energy >= threshold
    ev_u, lay_u, iy_u, iz_u, energy = ev_u[ok], lay_u[ok], iy_u[ok], iz_u[ok], energy[ok]
    rl = radii[lay_u]
    y = (iy_u + 0.5) * cell - oy[ev_u]
    zc = (iz_u + 0.5) * cell
    phi_cell = np.arctan2(y, rl) + phi[ev_u]
    cells = np.stack([rl * np.cos(phi_cell), rl * np.sin(phi_cell), zc, energy], axis=1).astype(np.float32)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ev_u, minlength=n), out=offsets[1:])
    return cells, offsets
