"""Seed 001's training monitor: chi2 between histograms of features of 11x11 crystal images.

chi2 = sum_i (O_i - E_i)^2 / E_i over the bins of the reference (expected) histogram, with the
observed histogram scaled to the reference's number of entries. The features are the seed's
E_total, E_3x3 and E_5x5 (MeV) and the ratios E_total / E_inc, E_3x3 / E_total and
E_5x5 / E_total. Not calobench.metrics' chi2 (a two-sample chi2 per degree of freedom on fixed
bins) nor its features (computed after the readout threshold, other denominators): this is the
seed's own monitoring quantity, kept as the seed defines it.
"""

from __future__ import annotations

import numpy as np

SIDE = 11


def chi2_distance(observed: np.ndarray, expected: np.ndarray, bins: int = 30) -> float:
    """Seed 001's monitoring chi2 = sum (O_i - E_i)^2 / E_i over bins with E_i > 0.

    Histograms on the range of ``expected``; O is scaled to the number of expected entries.
    """
    lo, hi = np.quantile(expected, [0.001, 0.999])
    if not hi > lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    e, _ = np.histogram(np.clip(expected, lo, hi), edges)
    o, _ = np.histogram(np.clip(observed, lo, hi), edges)
    o = o * (e.sum() / max(o.sum(), 1))
    mask = e > 0
    return float(np.sum((o[mask] - e[mask]) ** 2 / e[mask]))


def image_features(images: np.ndarray, energies: np.ndarray) -> dict[str, np.ndarray]:
    """Monitoring features of (N, 121) crystal images (MeV) centred on the hit crystal; energies (N,) MeV.

    The seed's E_total, E_3x3, E_5x5 (MeV), and the ratios E_total/E_inc, E_3x3/E_total,
    E_5x5/E_total, which do not depend on the incident-energy spectrum.
    """
    grid = images.reshape(-1, SIDE, SIDE).astype(np.float64)
    c = SIDE // 2
    total = grid.sum(axis=(1, 2))
    e3 = grid[:, c - 1:c + 2, c - 1:c + 2].sum(axis=(1, 2))
    e5 = grid[:, c - 2:c + 3, c - 2:c + 3].sum(axis=(1, 2))
    safe = np.maximum(total, 1e-9)
    return {"E_total": total, "E_3x3": e3, "E_5x5": e5, "E_total/E_inc": total / energies,
            "E_3x3/E_total": e3 / safe, "E_5x5/E_total": e5 / safe}


def feature_chi2(generated: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
    """chi2_distance of each feature of generated against reference ``image_features``."""
    return {name: chi2_distance(generated[name], reference[name]) for name in reference}
