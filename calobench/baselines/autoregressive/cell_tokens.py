"""Tokenisation of CEPC barrel point clouds for the autoregressive cell transformer.

A shower's cells (x, y, z, E in global mm / MeV) are written in the shower's local frame:
``layer`` (0..29, from the cell radius), ``v`` (pad row along z, counted from the row that
holds the photon axis in that layer; the axis is the straight line from the origin along
theta, phi) and ``u`` (pad column along r*phi, counted from the stave's central column, the
one the axis enters), both shifted by the window half-width R so that they lie in [0, S),
S = 2R + 1. Cells further than R pads from the
axis are outside the window and are dropped (their number is reported). ``log E`` is kept
as a float.

Cells are ordered by layer, then v, then u (a raster scan of each layer): positions in a
sequence are strictly increasing, so a generated sequence can never place two cells on one
pad, and decoding snaps every cell back onto real pad centres (``PadFrame``, fitted to the
training data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calobench.data.geometry import Geometry


@dataclass
class PadFrame:
    """Pad positions of the barrel, fitted to training showers.

    Each shower is read out by a flat stave of square pads of ``cell`` mm: pad column k of
    layer l sits at global azimuth ``rot + arctan(k * cell / radii[l])`` where ``rot`` is the
    azimuth of the stave's central column (the one the photon axis enters), and ``rot =
    phi - delta`` with the photon azimuth phi; pad row j sits at z = ``z_phase + j * cell``.
    ``delta_quantiles`` (Q,) rad is the distribution of delta over the training showers (it is
    not a condition: generation draws it); ``residual`` is the RMS distance in mm of the
    training cells from their snapped pad centres.
    """

    radii: np.ndarray
    cell: float
    z_phase: float
    delta_quantiles: np.ndarray
    residual: float = 0.0

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"frame_radii": self.radii, "frame_delta_quantiles": self.delta_quantiles,
                "frame_scalars": np.array([self.cell, self.z_phase, self.residual])}

    @staticmethod
    def from_arrays(arrays: dict[str, np.ndarray]) -> "PadFrame":
        scalars = np.asarray(arrays["frame_scalars"], dtype=np.float64)
        return PadFrame(np.asarray(arrays["frame_radii"], np.float64), float(scalars[0]), float(scalars[1]),
                        np.asarray(arrays["frame_delta_quantiles"], np.float64), float(scalars[2]))

    def sample_delta(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n,) stave offsets delta (rad) drawn from the training distribution (inverse CDF)."""
        q = self.delta_quantiles
        return np.interp(rng.uniform(0.0, 1.0, n), np.linspace(0.0, 1.0, len(q)), q)


def nominal_frame(geometry: Geometry) -> PadFrame:
    """Frame before fitting: pad rows with edges at z = 0, the photon on the central column's axis."""
    barrel = geometry.barrel
    return PadFrame(np.asarray(barrel.layer_radii, dtype=np.float64), float(barrel.cell_size),
                    barrel.cell_size / 2.0, np.zeros(2))


def _phase(values: np.ndarray, pitch: float) -> tuple[float, float]:
    """Best lattice phase for ``values`` on a lattice of ``pitch`` and the RMS residual (pitches)."""
    angle = 2.0 * np.pi * np.mod(values, pitch) / pitch
    mean = np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())
    phase = np.mod(mean / (2.0 * np.pi) * pitch, pitch)
    frac = (values - phase) / pitch
    residual = float(np.sqrt(np.mean((frac - np.round(frac)) ** 2)))
    return float(phase), residual


def _wrap(angle: np.ndarray) -> np.ndarray:
    return np.mod(angle + np.pi, 2 * np.pi) - np.pi


def _cell_frame(frame: PadFrame, geometry: Geometry, cells: np.ndarray, event: np.ndarray, n: int,
                phi_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: layer, pad column k (relative to the central column), row kv; per shower: delta."""
    layer = geometry.barrel.layer_of(cells[:, 0], cells[:, 1]).astype(np.int64)
    r = frame.radii[layer]
    d = _wrap(np.arctan2(cells[:, 1], cells[:, 0]) - np.radians(np.asarray(phi_deg, np.float64))[event])
    k0 = np.round(r * np.tan(d) / frame.cell)
    delta_cell = np.arctan(k0 * frame.cell / r) - d
    counts = np.bincount(event, minlength=n)
    delta = np.bincount(event, weights=delta_cell, minlength=n) / np.maximum(counts, 1)
    k = np.round(r * np.tan(d + delta[event]) / frame.cell).astype(np.int64)
    kv = np.round((cells[:, 2] - frame.z_phase) / frame.cell).astype(np.int64)
    return layer, k, kv, delta


def fit_frame(geometry: Geometry, cells: np.ndarray, offsets: np.ndarray, phi_deg: np.ndarray,
              n_quantiles: int = 101) -> PadFrame:
    """Fit the pad frame (z phase, distribution of the stave offset delta) to showers."""
    frame = nominal_frame(geometry)
    cells = np.asarray(cells, dtype=np.float64)
    if len(cells) == 0:
        return frame
    frame.z_phase, _ = _phase(cells[:, 2], frame.cell)
    n = len(offsets) - 1
    event = np.repeat(np.arange(n), np.diff(offsets))
    layer, k, kv, delta = _cell_frame(frame, geometry, cells, event, n, phi_deg)
    has = np.diff(offsets) > 0
    frame.delta_quantiles = np.quantile(delta[has], np.linspace(0.0, 1.0, n_quantiles))
    snapped = decode_positions(frame, layer, k, kv, np.radians(np.asarray(phi_deg, np.float64))[event] - delta[event])
    frame.residual = float(np.sqrt(np.mean(np.sum((snapped - cells[:, :3]) ** 2, axis=1))))
    return frame


def decode_positions(frame: PadFrame, layer: np.ndarray, k: np.ndarray, kv: np.ndarray,
                     rot: np.ndarray) -> np.ndarray:
    """(M, 3) global pad centres (mm) of column k, row kv in ``layer`` for stave azimuths ``rot`` (rad)."""
    r = frame.radii[layer]
    a = rot + np.arctan(k * frame.cell / r)
    return np.stack([r * np.cos(a), r * np.sin(a), frame.z_phase + kv * frame.cell], axis=1)


def axis_frame(frame: PadFrame, theta_deg: np.ndarray, delta: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the photon axis (a line from the origin) crosses each layer.

    Returns ``kv0`` (N, L) int64, the pad row holding the axis, and ``fu``, ``fv`` (N, L):
    the axis position inside its pad column / row in pad units (-0.5..0.5).
    """
    theta = np.radians(np.asarray(theta_deg, dtype=np.float64))[:, None]
    z_axis = frame.radii[None, :] / np.tan(theta)
    av = (z_axis - frame.z_phase) / frame.cell
    kv0 = np.round(av)
    fu = frame.radii[None, :] * np.tan(np.asarray(delta, np.float64))[:, None] / frame.cell
    return kv0.astype(np.int64), fu, av - kv0


@dataclass
class Tokens:
    """Encoded showers: per-cell ``layer``, ``v``, ``u`` (int64, window indices), ``log_e``
    (float32, ln MeV), sorted by (event, layer, v, u); ``offsets`` (N + 1,); ``dropped`` (N,)
    cells outside the window; ``delta`` (N,) stave offset of each shower (rad)."""

    layer: np.ndarray
    v: np.ndarray
    u: np.ndarray
    log_e: np.ndarray
    offsets: np.ndarray
    dropped: np.ndarray
    delta: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def encode(geometry: Geometry, frame: PadFrame, cells: np.ndarray, offsets: np.ndarray,
           theta_deg: np.ndarray, phi_deg: np.ndarray, half_window: int) -> Tokens:
    """Encode a ragged cell list (M, 4) with offsets (N + 1,) into raster-ordered tokens.

    Two cells falling on one pad (not expected in simulated data) are merged (energies summed).
    """
    n = len(offsets) - 1
    event = np.repeat(np.arange(n), np.diff(offsets))
    cells = np.asarray(cells, dtype=np.float64)
    layer, k, kv, delta = _cell_frame(frame, geometry, cells, event, n, phi_deg)
    kv0, _, _ = axis_frame(frame, theta_deg, delta)
    u = k + half_window
    v = kv - kv0[event, layer] + half_window
    size = 2 * half_window + 1
    inside = (u >= 0) & (u < size) & (v >= 0) & (v < size) & (cells[:, 3] > 0)
    dropped = np.bincount(event[~inside], minlength=n).astype(np.int64)
    event, layer, v, u, energy = event[inside], layer[inside], v[inside], u[inside], cells[inside, 3]
    n_layers = geometry.barrel.n_layers
    key = ((event * n_layers + layer) * size + v) * size + u
    unique, inverse = np.unique(key, return_inverse=True)
    energy = np.bincount(inverse.reshape(-1), weights=energy, minlength=len(unique))
    u = unique % size
    v = (unique // size) % size
    layer = (unique // (size * size)) % n_layers
    event = unique // (size * size * n_layers)
    new_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(event, minlength=n), out=new_offsets[1:])
    return Tokens(layer, v, u, np.log(energy).astype(np.float32), new_offsets, dropped, delta)


def decode(frame: PadFrame, layer: np.ndarray, v: np.ndarray, u: np.ndarray, energy: np.ndarray,
           event: np.ndarray, theta_deg: np.ndarray, phi_deg: np.ndarray, delta: np.ndarray,
           half_window: int, half_length: float) -> np.ndarray:
    """Global cells (M, 4) float32 (x, y, z mm, E MeV) on pad centres from window indices.

    ``event`` (M,) is each cell's shower number (index into theta_deg, phi_deg, delta (rad)).
    Rows are clipped to the pads inside +-half_length.
    """
    kv0, _, _ = axis_frame(frame, theta_deg, delta)
    kv = kv0[event, layer] + (v - half_window)
    kv_lo = np.ceil((-half_length + frame.cell / 2 - frame.z_phase) / frame.cell)
    kv_hi = np.floor((half_length - frame.cell / 2 - frame.z_phase) / frame.cell)
    rot = np.radians(np.asarray(phi_deg, np.float64)) - np.asarray(delta, np.float64)
    xyz = decode_positions(frame, layer, u - half_window, np.clip(kv, kv_lo, kv_hi), rot[event])
    out = np.empty((len(layer), 4), dtype=np.float32)
    out[:, :3] = xyz
    out[:, 3] = energy
    return out
