"""Known distortions of a ShowerSet, for the power table (``calobench selftest``).

Each distortion is a function ``(ShowerSet, rng) -> ShowerSet | None`` that acts on the cells
through the Geometry only (never by dataset name); it returns None where it does not apply to the
geometry (reported as "n/a"). Energies in MeV, positions in mm. Voxel showers are (N, cells)
float32; point clouds are a CellList of rows (x, y, z, E). Cells that a distortion pushes below
the geometry's readout threshold read zero (point clouds: the row is dropped).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from calobench.data.geometry import CYLINDRICAL, GRID, Geometry
from calobench.data.showerset import CellList, ShowerSet
from calobench.errors import CalobenchError

Distortion = Callable[[ShowerSet, np.random.Generator], "ShowerSet | None"]

WIDTH_GROWTH = 0.05      # lateral width: relative growth of the transverse second moment
LONGITUDINAL_FRACTION = 0.10  # longitudinal shift: fraction of each layer's energy moved one layer deeper
NOISE = 0.05             # cell noise: relative Gaussian sigma per cell
RESPONSE_SLOPE = 0.03    # energy-dependent response: scale 1 + slope * log10(E_inc / median E_inc)
ENERGY_BINS = 20         # mean shower and shuffled layers: equal-population bins in log E_inc


# ---- helpers -----------------------------------------------------------------------------
def _with_showers(ss: ShowerSet, showers: np.ndarray | CellList) -> ShowerSet:
    """A copy of ``ss`` (energies, conditions, provenance) holding ``showers``."""
    return ShowerSet(ss.geometry, ss.energies.copy(), showers, {k: v.copy() for k, v in ss.conditions.items()},
                     ss.particle, ss.provenance, ss.dataset)


def _threshold_voxels(showers: np.ndarray, threshold: float) -> np.ndarray:
    """(N, cells) with cells below ``threshold`` MeV (and negative ones) set to zero, float32."""
    out = np.asarray(showers, dtype=np.float32).copy()
    out[out < threshold] = 0.0
    return out


def _threshold_cells(cl: CellList, threshold: float) -> CellList:
    """The CellList without the rows whose energy is below ``threshold`` MeV."""
    keep = cl.cells[:, 3] >= threshold
    counts = np.bincount(cl.event_index[keep], minlength=len(cl))
    offsets = np.zeros(len(cl) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return CellList(cl.cells[keep].astype(np.float32), offsets)


def _scaled(ss: ShowerSet, factor: np.ndarray | float) -> ShowerSet:
    """Every cell of event i multiplied by ``factor`` (scalar or (N,)), then the threshold."""
    factor = np.broadcast_to(np.asarray(factor, dtype=np.float64), (len(ss),))
    thr = ss.geometry.threshold
    if ss.geometry.is_voxel:
        return _with_showers(ss, _threshold_voxels(ss.showers * factor[:, None], thr))
    cl = ss.showers
    cells = cl.cells.copy()
    cells[:, 3] = cells[:, 3] * factor[cl.event_index]
    return _with_showers(ss, _threshold_cells(CellList(cells, cl.offsets.copy()), thr))


def energy_bins(energies: np.ndarray, n_bins: int = ENERGY_BINS) -> np.ndarray:
    """(N,) bin number of each event in ``n_bins`` equal-population bins of log E_inc."""
    log_e = np.log(np.asarray(energies, dtype=np.float64))
    edges = np.unique(np.quantile(log_e, np.linspace(0.0, 1.0, n_bins + 1)))
    return np.clip(np.searchsorted(edges, log_e, side="right") - 1, 0, max(len(edges) - 2, 0))


# ---- energy scale and response ---------------------------------------------------------------
def energy_scale(factor: float) -> Distortion:
    """Every cell multiplied by ``factor`` (the total energy scales by it)."""
    def distort(ss: ShowerSet, rng: np.random.Generator) -> ShowerSet:
        return _scaled(ss, factor)
    distort.__doc__ = f"every cell x{factor}"
    return distort


def energy_response(ss: ShowerSet, rng: np.random.Generator) -> ShowerSet:
    """Energy-dependent response: cells of event i x (1 + 0.03 log10(E_inc,i / median E_inc))."""
    energies = ss.energies.astype(np.float64)
    return _scaled(ss, 1.0 + RESPONSE_SLOPE * np.log10(energies / np.median(energies)))


# ---- cells -----------------------------------------------------------------------------------
def cell_noise(ss: ShowerSet, rng: np.random.Generator) -> ShowerSet:
    """Every hit cell x (1 + 0.05 g), g standard normal per cell, then the threshold."""
    thr = ss.geometry.threshold
    if ss.geometry.is_voxel:
        showers = ss.showers.astype(np.float64)
        noisy = showers * (1.0 + NOISE * rng.standard_normal(showers.shape))
        return _with_showers(ss, _threshold_voxels(noisy, thr))
    cl = ss.showers
    cells = cl.cells.copy()
    cells[:, 3] = cells[:, 3] * (1.0 + NOISE * rng.standard_normal(len(cells)))
    return _with_showers(ss, _threshold_cells(CellList(cells, cl.offsets.copy()), thr))


def threshold_x2(ss: ShowerSet, rng: np.random.Generator) -> ShowerSet:
    """Cells below twice the geometry's readout threshold read zero (dropped low cells)."""
    thr = 2.0 * ss.geometry.threshold
    if ss.geometry.is_voxel:
        return _with_showers(ss, _threshold_voxels(ss.showers, thr))
    return _with_showers(ss, _threshold_cells(ss.showers, thr))


def mean_shower(ss: ShowerSet, rng: np.random.Generator) -> ShowerSet | None:
    """No fluctuations: per bin of E_inc (20 equal-population bins in log E_inc) the mean of
    shower / E_tot, times each event's own E_tot, then the threshold (voxel geometries only)."""
    if not ss.geometry.is_voxel:
        return None
    showers = ss.showers.astype(np.float64)
    etot = showers.sum(axis=1)
    fractions = showers / np.where(etot > 0, etot, 1.0)[:, None]
    bins = energy_bins(ss.energies)
    out = np.zeros_like(showers)
    for b in np.unique(bins):
        members = bins == b
        out[members] = fractions[members].mean(axis=0)[None, :] * etot[members, None]
    return _with_showers(ss, _threshold_voxels(out, ss.geometry.threshold))


# ---- lateral width ---------------------------------------------------------------------------
def _grid_neighbours(geometry: Geometry) -> tuple[np.ndarray, float]:
    """(cells, 4) index of the -x, +x, -y, +y neighbour in the same layer (-1 at the edge) of a
    grid geometry, and the squared pitch dx^2 + dy^2 / 2 that one unit moved to them adds."""
    layers, ny, nx = geometry.shape
    index = np.arange(layers * ny * nx).reshape(layers, ny, nx)
    out = np.full((layers, ny, nx, 4), -1, dtype=np.int64)
    out[:, :, 1:, 0] = index[:, :, :-1]
    out[:, :, :-1, 1] = index[:, :, 1:]
    out[:, 1:, :, 2] = index[:, :-1, :]
    out[:, :-1, :, 3] = index[:, 1:, :]
    dx, dy = geometry.sizes[0, 0], geometry.sizes[0, 1]
    return out.reshape(-1, 4), 0.5 * (dx * dx + dy * dy)


def transverse_second_moment(ss: ShowerSet) -> np.ndarray:
    """(N, layers) energy-weighted <(x - x_c)^2 + (y - y_c)^2> per layer in mm^2 (voxel
    geometries; cell centres; 0 for an empty layer)."""
    g = ss.geometry
    showers = ss.showers.astype(np.float64)
    out = np.zeros((len(ss), g.n_layers))
    for layer, cells in enumerate(g.layer_slices):
        e = showers[:, cells]
        x, y = g.centres[cells, 0], g.centres[cells, 1]
        total = e.sum(axis=1)
        w = e / np.where(total > 0, total, 1.0)[:, None]
        mx, my = w @ x, w @ y
        out[:, layer] = w @ (x * x + y * y) - mx * mx - my * my
    return out


def _radial_second_moment(ss: ShowerSet) -> np.ndarray:
    """(N, layers) energy-weighted <r^2> per layer about the shower axis (cylindrical geometries)."""
    g = ss.geometry
    showers = ss.showers.astype(np.float64)
    r2 = g.centres[:, 0] ** 2 + g.centres[:, 1] ** 2
    out = np.zeros((len(ss), g.n_layers))
    for layer, cells in enumerate(g.layer_slices):
        e = showers[:, cells]
        total = e.sum(axis=1)
        out[:, layer] = (e @ r2[cells]) / np.where(total > 0, total, 1.0)
    return out


def _spread(showers: np.ndarray, f: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """(N, cells): a fraction f (N, cells) of each cell's energy in equal parts to its four neighbours."""
    moved = showers * f
    out = showers - moved
    for k in range(4):
        inside = neighbours[:, k] >= 0
        np.add.at(out.T, neighbours[inside, k], (0.25 * moved[:, inside]).T)
    return out


def _wider_grid(ss: ShowerSet, iterations: int = 4) -> np.ndarray:
    """Grids: in every layer of every event a fraction f of each cell's energy goes in equal parts
    to its four transverse neighbours; this adds f (dx^2 + dy^2) / 2 to the layer's second moment
    M2 about its centre, so f starts at 0.05 M2 / ((dx^2 + dy^2) / 2). Since the readout threshold
    then removes the smallest shares, f is corrected ``iterations`` times so that M2 after the
    threshold grows by 5 % (energy that leaves the grid is lost). Returns (N, cells) in MeV."""
    g = ss.geometry
    neighbours, step = _grid_neighbours(g)
    showers = ss.showers.astype(np.float64)
    m2 = transverse_second_moment(ss)                                 # (N, layers)
    f = np.clip(WIDTH_GROWTH * m2 / step, 0.0, 1.0)                   # (N, layers)
    out = _spread(showers, f[:, g.layer_index], neighbours)
    for _ in range(iterations):
        grown = transverse_second_moment(_with_showers(ss, _threshold_voxels(out, g.threshold))) / \
            np.where(m2 > 0, m2, 1.0) - 1.0
        f = np.clip(f * np.where(grown > 1e-4, WIDTH_GROWTH / np.maximum(grown, 1e-4), 1.0), 0.0, 1.0)
        out = _spread(showers, f[:, g.layer_index], neighbours)
    return out


def _wider_cylinder(ss: ShowerSet) -> np.ndarray:
    """Cylindrical geometries: in every layer a fraction f of each radial bin's energy moves to the
    next bin outward (same alpha bin); f makes the layer's <r^2> about the axis grow by 5 %.
    The outermost bins keep their energy."""
    g = ss.geometry
    showers = ss.showers.astype(np.float64)
    r2 = g.centres[:, 0] ** 2 + g.centres[:, 1] ** 2
    outward = np.full(g.n_cells, -1, dtype=np.int64)
    start = 0
    for binning in g.layers:
        index = start + np.arange(binning.n_cells).reshape(binning.n_alpha, binning.n_r)  # r fastest
        outward[index[:, :-1].ravel()] = index[:, 1:].ravel()
        start += binning.n_cells
    has = outward >= 0
    gain = np.zeros(g.n_cells)
    gain[has] = r2[outward[has]] - r2[has]                           # r^2 added per unit moved
    out = showers.copy()
    m2 = _radial_second_moment(ss)
    for layer, cells in enumerate(g.layer_slices):
        e = showers[:, cells]
        added = e @ gain[cells]                                      # (N,) per unit fraction
        total = e.sum(axis=1)
        f = np.clip(np.where(added > 0, WIDTH_GROWTH * m2[:, layer] * total / np.where(added > 0, added, 1.0), 0.0),
                    0.0, 1.0)
        moved = e * f[:, None] * has[cells][None, :]
        out[:, cells] -= moved
        targets = outward[cells][has[cells]]
        np.add.at(out.T, targets, moved[:, has[cells]].T)
    return out


def _wider_cloud(ss: ShowerSet) -> CellList:
    """Point clouds: transverse positions (azimuth about the beam axis and z) of every cell scaled
    by sqrt(1.05) about the shower's energy barycentre; the radius (depth) is kept."""
    cl = ss.showers
    cells = cl.cells.astype(np.float64)
    event = cl.event_index
    e = np.maximum(cells[:, 3], 0.0)
    total = np.bincount(event, weights=e, minlength=len(cl))
    total = np.where(total > 0, total, 1.0)
    r = np.hypot(cells[:, 0], cells[:, 1])
    phi = np.arctan2(cells[:, 1], cells[:, 0])
    # barycentre azimuth from the mean direction (no wrap-around at +-pi)
    phi_c = np.arctan2(np.bincount(event, e * np.sin(phi), len(cl)), np.bincount(event, e * np.cos(phi), len(cl)))
    z_c = np.bincount(event, e * cells[:, 2], len(cl)) / total
    s = np.sqrt(1.0 + WIDTH_GROWTH)
    dphi = np.angle(np.exp(1j * (phi - phi_c[event])))
    new_phi = phi_c[event] + s * dphi
    out = cl.cells.copy()
    out[:, 0] = r * np.cos(new_phi)
    out[:, 1] = r * np.sin(new_phi)
    out[:, 2] = z_c[event] + s * (cells[:, 2] - z_c[event])
    return CellList(out.astype(np.float32), cl.offsets.copy())


def lateral_width(ss: ShowerSet, rng: np.random.Generator) -> ShowerSet | None:
    """Lateral width +5 % (transverse second moment), by geometry kind: grids spread energy to the
    transverse neighbours, cylinders shift energy outward in r, point clouds scale the transverse
    cell positions about the barycentre. Then the threshold."""
    g = ss.geometry
    if g.kind == GRID:
        return _with_showers(ss, _threshold_voxels(_wider_grid(ss), g.threshold))
    if g.kind == CYLINDRICAL:
        return _with_showers(ss, _threshold_voxels(_wider_cylinder(ss), g.threshold))
    return _with_showers(ss, _wider_cloud(ss))


# ---- longitudinal ----------------------------------------------------------------------------
def _deeper_cell(geometry: Geometry) -> np.ndarray:
    """(cells,) the cell of the next layer nearest in (x, y) to each cell; -1 in the last layer."""
    out = np.full(geometry.n_cells, -1, dtype=np.int64)
    slices = geometry.layer_slices
    for here, there in zip(slices[:-1], slices[1:]):
        a, b = geometry.centres[here, :2], geometry.centres[there, :2]
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
        out[here] = there.start + np.argmin(d2, axis=1)
    return out


def longitudinal_shift(ss: ShowerSet, rng: np.random.Generator) -> ShowerSet | None:
    """10 % of every cell's energy moves to the nearest cell of the next layer (the last layer keeps
    its energy); multi-layer voxel geometries only."""
    g = ss.geometry
    if not g.is_voxel or g.n_layers < 2:
        return None
    deeper = _deeper_cell(g)
    has = deeper >= 0
    showers = ss.showers.astype(np.float64)
    moved = showers[:, has] * LONGITUDINAL_FRACTION
    out = showers.copy()
    out[:, has] -= moved
    np.add.at(out.T, deeper[has], moved.T)
    return _with_showers(ss, _threshold_voxels(out, g.threshold))


def shuffled_layers(ss: ShowerSet, rng: np.random.Generator) -> ShowerSet | None:
    """Wrong layer-layer correlation: within each bin of E_inc (20 equal-population bins in
    log E_inc) every layer is taken from an independently permuted event; multi-layer voxel
    geometries only. Each layer's distribution per bin is kept."""
    g = ss.geometry
    if not g.is_voxel or g.n_layers < 2:
        return None
    showers = ss.showers
    out = np.empty_like(showers)
    bins = energy_bins(ss.energies)
    for b in np.unique(bins):
        members = np.flatnonzero(bins == b)
        for cells in g.layer_slices:
            out[members, cells] = showers[rng.permutation(members), cells]
    return _with_showers(ss, out)


#: name -> (distortion, one line for the table). Order: the power table's columns.
DISTORTIONS: dict[str, tuple[Distortion, str]] = {
    "scale_1.01": (energy_scale(1.01), "every cell x1.01"),
    "scale_1.02": (energy_scale(1.02), "every cell x1.02"),
    "scale_1.05": (energy_scale(1.05), "every cell x1.05"),
    "width_5pct": (lateral_width, "transverse second moment +5 %"),
    "longitudinal": (longitudinal_shift, "10 % of each layer's energy one layer deeper"),
    "mean_shower": (mean_shower, "mean shower per E_inc bin, scaled to each event's E_tot"),
    "cell_noise": (cell_noise, "5 % Gaussian noise per cell, then the threshold"),
    "threshold_x2": (threshold_x2, "cells below 2x the readout threshold dropped"),
    "shuffled_layers": (shuffled_layers, "each layer from another event of similar E_inc"),
    "energy_response": (energy_response, "cells x (1 + 0.03 log10(E_inc / median))"),
}


def parse_distortions(names: list[str] | str | None) -> list[str]:
    """Distortion names from a list or comma-separated text (None: all), checked, in the given order."""
    if names is None:
        return list(DISTORTIONS)
    chosen = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not chosen:
        raise CalobenchError("--distortions: no distortion given")
    for name in chosen:
        if name not in DISTORTIONS:
            raise CalobenchError(f"--distortions: unknown distortion {name!r}; valid: {', '.join(DISTORTIONS)}")
    return chosen


def distort(name: str, ss: ShowerSet, rng: np.random.Generator) -> ShowerSet | None:
    """Apply the named distortion (None: it does not apply to the geometry)."""
    return DISTORTIONS[parse_distortions([name])[0]][0](ss, rng)
