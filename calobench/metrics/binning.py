"""Bin edges of every feature, taken from the reference sample.

Geometries with the CaloChallenge's histogram ranges (``Geometry.histogram_ranges``) use the
challenge's own binning (evaluate_plotting_helper.py): E_tot/E_inc 100 bins on [0.5, 1.5]; layer
energies 39 log bins from the readout threshold to the reference maximum; centres of energy,
widths, r centres and r widths 100 bins on the geometry's range for that layer; sparsity 20 bins
on [0, 1]; voxel energies 49 log bins from the threshold to the reference maximum. Entries
outside these edges are dropped, as there. Every other feature gets 50 equal bins between the
reference's 0.1 % and 99.9 % quantiles (values outside are counted in the first / last bin).
"""

from __future__ import annotations

import numpy as np

from calobench.data.geometry import Geometry

N_BINS = 50
#: Feature-name prefix -> quantity of Geometry.histogram_ranges.
RANGED = {"ec_eta_": "ec", "ec_phi_": "ec", "width_eta_": "width", "width_phi_": "width", "ec_r_": "ec_r",
          "width_r_": "width_r"}


def challenge_edges(geometry: Geometry, name: str, ref_max: float) -> np.ndarray | None:
    """The challenge's edges for ``name`` (None where the challenge draws no histogram, or the
    geometry is not one of the challenge's)."""
    if geometry.histogram_ranges is None:
        return None
    thr = geometry.threshold
    if name == "etot_einc":
        return np.linspace(0.5, 1.5, 101)
    if name.startswith("e_layer_"):
        return np.logspace(np.log10(thr), np.log10(max(ref_max, thr * 1.0001)), 40)
    if name == "voxel_energy":
        return np.logspace(np.log10(thr), np.log10(max(ref_max, thr * 1.0001)), 50)
    if name.startswith("sparsity_"):
        return np.linspace(0.0, 1.0, 21)
    for prefix, quantity in RANGED.items():
        if name.startswith(prefix):
            lo, hi = geometry.histogram_ranges[int(name[len(prefix):])][quantity]
            return np.linspace(lo, hi, 101)
    return None


def quantile_edges(values: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """n_bins equal bins between the 0.1 % and 99.9 % quantiles of the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.linspace(0.0, 1.0, n_bins + 1)
    lo, hi = np.quantile(v, [0.001, 0.999])
    if hi <= lo:
        pad = max(abs(lo) * 1e-3, 1e-6)
        lo, hi = lo - pad, hi + pad
    return np.linspace(lo, hi, n_bins + 1)


def log_edges(lo: float, hi: float, n_bins: int = N_BINS) -> np.ndarray:
    """n_bins log-spaced bins from lo to hi (lo at least 1e-9, hi above lo)."""
    lo = max(lo, 1e-9)
    hi = max(hi, lo * 1.0001)
    return np.logspace(np.log10(lo), np.log10(hi), n_bins + 1)


def spectrum_edges(geometry: Geometry, name: str, ref_max: float) -> np.ndarray:
    """Edges of a per-cell spectrum (energies log-binned from the threshold to the reference
    maximum; point-cloud profiles on fixed ranges in mm)."""
    fixed = challenge_edges(geometry, name, ref_max)
    if fixed is not None:
        return fixed
    if name in ("voxel_energy", "cell_energy"):
        return log_edges(geometry.threshold if geometry.threshold > 0 else 1e-3, ref_max)
    if name == "profile_long":
        b = geometry.barrel
        return np.linspace(0.0, b.outer_radius - b.inner_radius, N_BINS + 1)
    if name == "profile_radial":
        return np.linspace(0.0, 150.0, N_BINS + 1)
    return np.linspace(-100.0, 100.0, N_BINS + 1)
